//! Operators at the 12349 centre, on the console's API: each follows the console's live feed (and
//! looks over the queue now and then, as a person glances at the list), acknowledges a new
//! incident a human delay (median 12 s) after it arrived, answers what asks for attention (an escalation: no
//! responder yet, acceptance or arrival overdue, a family member unreachable), offers an
//! unanswered incident to the nearest available person by hand, phones an elder who missed a
//! check-in (most answer, and the visit is called off), confirms false alarms after calling the
//! elder back, and closes what responders have completed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Count;
use crate::api::ApiClient;
use crate::clock::{Ms, SimClock};
use crate::dataset::Rng;
use crate::world::MINUTE;

/// What the operators did, for the report.
#[derive(Debug, Default)]
pub struct OperatorStats {
    /// Incidents acknowledged.
    pub acked: Count,
    /// Attention calls answered.
    pub attended: Count,
    /// Offers made by hand.
    pub manual_offers: Count,
    /// False alarms confirmed.
    pub false_alarms: Count,
    /// Incidents closed.
    pub closed: Count,
    /// API calls that failed.
    pub errors: Count,
}

#[derive(Default)]
struct Seen {
    ack_planned: bool,
    attention_at: Option<i64>,
    closing: bool,
    calling_back: bool,
}

/// One operator's desk.
struct Desk {
    api: ApiClient,
    clock: SimClock,
    rng: Mutex<Rng>,
    seen: Mutex<HashMap<i64, Seen>>,
    stats: Arc<OperatorStats>,
}

/// Runs `operators` (API clients of dispatcher accounts), each taking the incidents whose id falls
/// to them, following the live feed and looking over the queue every `glance` of wall time, until
/// `stop`.
pub fn run(
    operators: Vec<ApiClient>,
    clock: SimClock,
    glance: std::time::Duration,
    seed: u64,
    stats: Arc<OperatorStats>,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let n = operators.len().max(1) as i64;
    let mut tasks = Vec::new();
    for (i, api) in operators.into_iter().enumerate() {
        let desk = Arc::new(Desk {
            api,
            clock,
            rng: Mutex::new(Rng::new(seed ^ ((i as u64 + 1) * 0x51ED))),
            seen: Mutex::new(HashMap::new()),
            stats: stats.clone(),
        });
        let mine = move |id: i64| id % n == i as i64;
        tasks.push(tokio::spawn(desk.clone().follow(mine, stop.clone())));
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(glance) => {}
                }
                match desk.api.get("/queue").await {
                    Ok((200, Value::Array(rows))) => {
                        for row in rows {
                            if mine(row["incident"]["id"].as_i64().unwrap_or(0)) {
                                desk.clone().look_at(row);
                            }
                        }
                    }
                    _ => desk.stats.errors.inc(),
                }
            }
        }));
    }
    tasks
}

impl Desk {
    /// The live feed: every event of one of this desk's incidents brings the operator to it.
    async fn follow(self: Arc<Self>, mine: impl Fn(i64) -> bool, stop: CancellationToken) {
        let mut last: Option<i64> = None;
        while !stop.is_cancelled() {
            let mut res = match self.api.console_stream(last).await {
                Ok(r) => r,
                Err(_) => {
                    self.stats.errors.inc();
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let chunk = tokio::select! {
                    _ = stop.cancelled() => return,
                    c = res.chunk() => c,
                };
                let Ok(Some(chunk)) = chunk else { break };
                buf.extend_from_slice(&chunk);
                while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = buf.drain(..end + 2).collect();
                    let text = String::from_utf8_lossy(&block);
                    let data: String = text
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(str::trim_start)
                        .collect();
                    let Ok(event) = serde_json::from_str::<Value>(&data) else {
                        continue;
                    };
                    last = event["id"].as_i64().or(last);
                    let id = event["incident_id"].as_i64().unwrap_or(0);
                    if mine(id) {
                        tokio::spawn(self.clone().refresh(id));
                    }
                }
            }
        }
    }

    /// Reads the incident again and does what it needs.
    async fn refresh(self: Arc<Self>, id: i64) {
        if let Ok((200, detail)) = self.api.get(&format!("/incidents/{id}")).await {
            let row = json!({ "incident": detail["incident"], "stage": "" });
            self.look_at(row);
        }
    }

    fn delay(&self, median: f64) -> Ms {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let u1 = rng.unit().max(1e-9);
        let u2 = rng.unit();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (median * (0.6 * z).exp()).clamp(median / 4.0, median * 5.0) as Ms
    }

    /// Decides what this row needs and starts doing it (once per need).
    fn look_at(self: Arc<Self>, row: Value) {
        let inc = &row["incident"];
        let id = inc["id"].as_i64().unwrap_or(0);
        let stage = row["stage"].as_str().unwrap_or("");
        let category = inc["category"].as_str().unwrap_or("").to_string();
        let kind = inc["kind"].as_str().unwrap_or("").to_string();
        let now = self.clock.now();
        let age = now - inc["received_at"].as_i64().unwrap_or(now);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let s = seen.entry(id).or_default();
        if stage == "closed" {
            return;
        }
        if inc["acked_at"].is_null() && !s.ack_planned {
            s.ack_planned = true;
            // A person at the desk sees how long the alarm has been waiting: the click comes a
            // human delay after the alarm arrived, however late the screen showed it.
            let wait = (self.delay(12_000.0).min(40_000) - age).max(0);
            tokio::spawn(self.clone().after(wait, id, Act::Ack));
        }
        let attention_at = inc["attention_at"].as_i64();
        if !inc["attention"].is_null() && attention_at != s.attention_at {
            s.attention_at = attention_at;
            let reason = inc["attention"].as_str().unwrap_or("").to_string();
            let wait = self.delay(30_000.0);
            tokio::spawn(self.clone().after(
                wait,
                id,
                Act::Attend {
                    reason,
                    category: category.clone(),
                },
            ));
        }
        if s.closing {
            return;
        }
        let accepted = !inc["accepted_at"].is_null();
        let outcome = if stage == "done" {
            Some(match category.as_str() {
                "service" => "service_completed",
                _ => "resolved",
            })
        } else if inc["probable_false_alarm"].as_bool() == Some(true) && !accepted {
            if !s.calling_back {
                s.calling_back = true;
                let wait = self.delay(90_000.0);
                tokio::spawn(self.clone().after(wait, id, Act::FalseAlarm));
            }
            None
        } else if category == "welfare" && kind == "missed_check_in" && !accepted {
            // A missed check-in: the operator phones the elder first; most answer.
            if !s.calling_back {
                s.calling_back = true;
                let wait = self.delay(120_000.0);
                tokio::spawn(self.clone().after(wait, id, Act::CallElder));
            }
            None
        } else if category == "technical" && kind == "power_loss" && !accepted && age > 45 * MINUTE
        {
            // The area's outage: the utility restores it; the operator checks by phone.
            Some("resolved_by_phone")
        } else {
            None
        };
        if let Some(outcome) = outcome {
            s.closing = true;
            let wait = self.delay(60_000.0);
            tokio::spawn(self.clone().after(wait, id, Act::Close(outcome)));
        }
    }

    async fn after(self: Arc<Self>, wait: Ms, id: i64, act: Act) {
        self.clock.sleep(wait).await;
        let ok = |r: &anyhow::Result<(u16, Value)>| matches!(r, Ok((s, _)) if *s < 300);
        match act {
            Act::Ack => {
                // A click that did not take (a timeout, a 5xx) is clicked again, as a person
                // would; a refusal (closed meanwhile) is not.
                for _ in 0..3 {
                    let r = self
                        .api
                        .post(&format!("/incidents/{id}/ack"), json!({}))
                        .await;
                    if ok(&r) {
                        self.stats.acked.inc();
                        break;
                    }
                    if matches!(r, Ok((s, _)) if s < 500) {
                        break;
                    }
                    self.stats.errors.inc();
                    self.clock.sleep(2_000).await;
                }
            }
            Act::Attend { reason, category } => {
                let r = self
                    .api
                    .post(&format!("/incidents/{id}/attention"), json!({}))
                    .await;
                if ok(&r) {
                    self.stats.attended.inc();
                }
                // Nobody took it: the operator picks someone by hand (for a service order too,
                // which must be done within the day), unless someone accepted meanwhile.
                let unanswered = matches!(reason.as_str(), "no_responder" | "accept_overdue");
                if unanswered && category != "technical" {
                    self.offer_by_hand(id).await;
                }
            }
            Act::FalseAlarm => {
                let r = self
                    .api
                    .post(&format!("/incidents/{id}/false-alarm"), json!({}))
                    .await;
                if ok(&r) {
                    self.stats.false_alarms.inc();
                    self.close(id, "false_alarm").await;
                }
            }
            Act::Close(outcome) => self.close(id, outcome).await,
            Act::CallElder => {
                let answered = self
                    .rng
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .chance(0.8);
                if answered {
                    self.close(id, "resolved_by_phone").await;
                }
            }
        }
    }

    async fn offer_by_hand(&self, id: i64) {
        let Ok((200, detail)) = self.api.get(&format!("/incidents/{id}")).await else {
            return;
        };
        let inc = &detail["incident"];
        if !inc["accepted_at"].is_null() || inc["status"] == "closed" {
            return;
        }
        let Ok((200, Value::Array(people))) = self
            .api
            .get(&format!("/incidents/{id}/candidates?limit=10"))
            .await
        else {
            return;
        };
        let pick = people
            .iter()
            .find(|p| p["available"].as_bool() == Some(true) && p["offer"].is_null());
        if let Some(rid) = pick.and_then(|p| p["id"].as_i64()) {
            let r = self
                .api
                .post(
                    &format!("/incidents/{id}/offer"),
                    json!({ "responder_id": rid }),
                )
                .await;
            if matches!(r, Ok((s, _)) if s < 300) {
                self.stats.manual_offers.inc();
            }
        }
    }

    async fn close(&self, id: i64, outcome: &str) {
        let r = self
            .api
            .post(
                &format!("/incidents/{id}/close"),
                json!({ "outcome": outcome, "note": "坐席回访后结案" }),
            )
            .await;
        match r {
            Ok((s, _)) if s < 300 => self.stats.closed.inc(),
            Ok(_) => {}
            Err(_) => self.stats.errors.inc(),
        }
    }
}

enum Act {
    Ack,
    /// Phone the elder about a missed check-in; close it when they answer.
    CallElder,
    Attend {
        reason: String,
        category: String,
    },
    FalseAlarm,
    Close(&'static str),
}
