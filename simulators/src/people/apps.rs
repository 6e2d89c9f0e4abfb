//! Volunteers', grid workers' and providers' apps. Pushes arrive on each responder's task topic
//! (`<prefix>/responder/<id>/tasks`) through the real broker; every app confirms receipt on its
//! receipt topic, then its owner decides as their [`Person`] says: accept after a turnout delay
//! (median 1 min 45 s, long tail), decline, or let the offer lapse. Whoever accepts walks or rides
//! there with live location updates, arrives, stays, and completes with a note, all through the
//! responder API with their own session.
//!
//! The simulated apps share one MQTT connection subscribed to every responder's task topic (a
//! phone each would be 10,000 idle sockets on a 2-core machine); each message is still addressed
//! to, confirmed by and acted on by the one responder it was for.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Count;
use crate::api::ApiClient;
use crate::clock::{Ms, SimClock};
use crate::world::{self, APP_PASSWORD, MINUTE, Person};

/// Where the apps connect.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// The API, `http://host:port`.
    pub api: String,
    /// The broker, `host:port`.
    pub broker: String,
    /// Its account, if it needs one.
    pub broker_user: Option<(String, String)>,
    /// The topic prefix.
    pub prefix: String,
    /// MQTT client id (unique per run).
    pub client_id: String,
}

/// What the apps did, for the report.
#[derive(Debug, Default)]
pub struct AppStats {
    /// Pushes received (repeats included).
    pub pushes: Count,
    /// Offers received (first copy).
    pub offers: Count,
    /// Accepts the server took.
    pub accepted: Count,
    /// Accepts refused (offer gone, taken by someone else).
    pub accept_refused: Count,
    /// Offers declined.
    pub declined: Count,
    /// Offers left to lapse.
    pub lapsed: Count,
    /// Arrivals.
    pub arrived: Count,
    /// Tasks completed.
    pub completed: Count,
    /// Stand-downs received while on the way.
    pub stood_down: Count,
    /// API calls that failed (network, 5xx).
    pub errors: Count,
}

struct Apps {
    clock: SimClock,
    settings: AppSettings,
    http: reqwest::Client,
    mqtt: AsyncClient,
    people: HashMap<i64, Arc<Person>>,
    sessions: Mutex<HashMap<i64, Arc<ApiClient>>>,
    /// Notification ids already seen (repeats are confirmed again but not acted on twice).
    seen: Mutex<HashSet<i64>>,
    /// Tasks in hand: (responder, incident) → its stop signal.
    tasks: Mutex<HashMap<(i64, i64), CancellationToken>>,
    stats: Arc<AppStats>,
    stop: CancellationToken,
}

/// Starts the apps of `people` (server responder id → person) and runs them until `stop`.
pub async fn run(
    settings: AppSettings,
    clock: SimClock,
    people: HashMap<i64, Person>,
    stats: Arc<AppStats>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (host, port) = settings
        .broker
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("broker address {} has no port", settings.broker))?;
    let mut options = MqttOptions::new(&settings.client_id, host, port.parse()?);
    options.set_keep_alive(Duration::from_secs(20));
    options.set_max_packet_size(256 * 1024, 256 * 1024);
    if let Some((u, p)) = &settings.broker_user {
        options.set_credentials(u, p);
    }
    let (mqtt, mut events) = AsyncClient::new(options, 4096);
    let filter = format!("{}/responder/+/tasks", settings.prefix);
    let apps = Arc::new(Apps {
        clock,
        http: ApiClient::http(),
        settings,
        mqtt,
        people: people.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        sessions: Mutex::new(HashMap::new()),
        seen: Mutex::new(HashSet::new()),
        tasks: Mutex::new(HashMap::new()),
        stats,
        stop: stop.clone(),
    });
    Ok(tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => break,
                e = events.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let mqtt = apps.mqtt.clone();
                    let filter = filter.clone();
                    tokio::spawn(async move {
                        let _ = mqtt.subscribe(filter, QoS::AtLeastOnce).await;
                    });
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some(rid) = responder_of(&p.topic) else {
                        continue;
                    };
                    let Ok(msg) = serde_json::from_slice::<Value>(&p.payload) else {
                        continue;
                    };
                    tokio::spawn(apps.clone().on_push(rid, msg));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "apps' MQTT connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }))
}

fn responder_of(topic: &str) -> Option<i64> {
    let mut parts = topic.rsplit('/');
    (parts.next()? == "tasks").then_some(())?;
    let id = parts.next()?.parse().ok()?;
    (parts.next()? == "responder").then_some(id)
}

impl Apps {
    fn session(&self, rid: i64, person: &Person) -> Arc<ApiClient> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .entry(rid)
            .or_insert_with(|| {
                Arc::new(ApiClient::new(
                    &self.settings.api,
                    self.http.clone(),
                    "responder",
                    &person.phone,
                    APP_PASSWORD,
                ))
            })
            .clone()
    }

    async fn on_push(self: Arc<Self>, rid: i64, msg: Value) {
        self.stats.pushes.inc();
        let Some(id) = msg["id"].as_i64() else { return };
        // The receipt, as the app sends it the moment a push arrives.
        let topic = format!("{}/responder/{rid}/receipt", self.settings.prefix);
        let _ = self
            .mqtt
            .publish(
                topic,
                QoS::AtLeastOnce,
                false,
                json!({ "ids": [id] }).to_string(),
            )
            .await;
        let first = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
        if !first {
            return;
        }
        let Some(person) = self.people.get(&rid).cloned() else {
            return;
        };
        let incident = msg["incident_id"].as_i64().unwrap_or(0);
        match msg["type"].as_str().unwrap_or("") {
            "offer" => self.on_offer(rid, person, incident, &msg).await,
            "assigned" => {
                let target = target_of(&msg, &person);
                self.go(rid, person, incident, target, category_of(&msg))
                    .await;
            }
            "stand_down" => {
                let task = self
                    .tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(rid, incident));
                if let Some(t) = task {
                    self.stats.stood_down.inc();
                    t.cancel();
                }
            }
            _ => {}
        }
    }

    async fn on_offer(&self, rid: i64, person: Arc<Person>, incident: i64, msg: &Value) {
        self.stats.offers.inc();
        let category = category_of(msg);
        let mut rng = world::rng(person.seed ^ (incident as u64).wrapping_mul(0x9E37));
        let busy = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .any(|(r, _)| *r == rid);
        let p = person.accept.get(&category).copied().unwrap_or(0.2);
        if busy || !rng.chance(p) {
            if rng.chance(person.decline) {
                self.clock.sleep(20_000 + rng.below(60_000) as Ms).await;
                let path = format!("/responder/tasks/{incident}/decline");
                match self.session(rid, &person).post(&path, json!({})).await {
                    Ok((s, _)) if s < 300 => self.stats.declined.inc(),
                    Ok(_) => {}
                    Err(_) => self.stats.errors.inc(),
                }
            } else {
                self.stats.lapsed.inc();
            }
            return;
        }
        self.clock.sleep(person.turnout(&mut rng)).await;
        let path = format!("/responder/tasks/{incident}/accept");
        match self.session(rid, &person).post(&path, json!({})).await {
            Ok((s, _)) if s < 300 => {
                self.stats.accepted.inc();
                let target = target_of(msg, &person);
                self.go(rid, person, incident, target, category).await;
            }
            Ok(_) => self.stats.accept_refused.inc(),
            Err(_) => self.stats.errors.inc(),
        }
    }

    /// On the way, there, and done: location updates, arrival, the time on scene, completion.
    async fn go(
        &self,
        rid: i64,
        person: Arc<Person>,
        incident: i64,
        target: (f64, f64),
        category: String,
    ) {
        let stop = self.stop.child_token();
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((rid, incident), stop.clone());
        let api = self.session(rid, &person);
        let mut rng = world::rng(person.seed ^ 0xA5A5 ^ incident as u64);
        let metres = world::distance_m(person.home, target).max(50.0);
        let travel = ((metres / person.speed_mps) * 1000.0) as Ms + 60_000;
        let steps = (travel / (2 * MINUTE)).clamp(1, 10);
        for i in 1..=steps {
            let f = i as f64 / steps as f64;
            let at = (
                person.home.0 + (target.0 - person.home.0) * f,
                person.home.1 + (target.1 - person.home.1) * f,
            );
            tokio::select! {
                _ = stop.cancelled() => return self.forget(rid, incident),
                _ = self.clock.sleep(travel / steps) => {}
            }
            if api
                .post("/responder/location", json!({ "lat": at.0, "lon": at.1 }))
                .await
                .is_err()
            {
                self.stats.errors.inc();
            }
        }
        match api
            .post(&format!("/responder/tasks/{incident}/arrived"), json!({}))
            .await
        {
            Ok((s, _)) if s < 300 => self.stats.arrived.inc(),
            Ok(_) => return self.forget(rid, incident),
            Err(_) => self.stats.errors.inc(),
        }
        let stay = match category.as_str() {
            "emergency" => 15 + rng.below(25),
            "service" => 30 + rng.below(60),
            _ => 10 + rng.below(20),
        } as Ms
            * MINUTE;
        tokio::select! {
            _ = stop.cancelled() => return self.forget(rid, incident),
            _ = self.clock.sleep(stay) => {}
        }
        let note = match category.as_str() {
            "emergency" => "到达现场，老人情况稳定，已联系家属",
            "service" => "服务已完成，老人满意",
            "technical" => "设备已检查，电源和信号正常",
            _ => "已上门探访，老人安好",
        };
        match api
            .post(
                &format!("/responder/tasks/{incident}/completed"),
                json!({ "note": note }),
            )
            .await
        {
            Ok((s, _)) if s < 300 => self.stats.completed.inc(),
            Ok(_) => {}
            Err(_) => self.stats.errors.inc(),
        }
        self.forget(rid, incident);
    }

    fn forget(&self, rid: i64, incident: i64) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(rid, incident));
    }
}

fn category_of(msg: &Value) -> String {
    msg["category"].as_str().unwrap_or("emergency").to_string()
}

fn target_of(msg: &Value, person: &Person) -> (f64, f64) {
    match (msg["lat"].as_f64(), msg["lon"].as_f64()) {
        (Some(lat), Some(lon)) => (lat, lon),
        // Unknown: about a kilometre away.
        _ => (person.home.0 + 0.006, person.home.1 + 0.006),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_responder_id_comes_from_the_task_topic() {
        assert_eq!(responder_of("onekey/responder/42/tasks"), Some(42));
        assert_eq!(responder_of("a/b/responder/7/tasks"), Some(7));
        assert_eq!(responder_of("onekey/responder/42/receipt"), None);
        assert_eq!(responder_of("onekey/responder/x/tasks"), None);
    }
}
