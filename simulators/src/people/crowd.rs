//! A world's people at work on a server whose directory holds that world: the operators' desks
//! (dispatcher accounts created for them), every responder's app, mapped to the server's ids by
//! phone number. Used by `day`, `demo` and `responders`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::apps::{self, AppSettings, AppStats};
use super::operators::{self, OperatorStats};
use crate::api::ApiClient;
use crate::clock::SimClock;
use crate::world::{Person, World};

/// Where the people work.
#[derive(Debug, Clone)]
pub struct CrowdSettings {
    /// The API, `http://host:port`.
    pub api: String,
    /// An admin account (creates the desks' accounts, maps the responders).
    pub admin: (String, String),
    /// The broker, `host:port`.
    pub broker: String,
    /// Its account, if it needs one.
    pub broker_user: Option<(String, String)>,
    /// The topic prefix.
    pub prefix: String,
    /// Operators at their desks.
    pub operators: usize,
    /// Seed of the operators' choices and the apps' MQTT client id.
    pub seed: u64,
}

/// The people at work.
pub struct Crowd {
    /// What the apps did.
    pub apps: Arc<AppStats>,
    /// What the operators did.
    pub desks: Arc<OperatorStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Creates the desks, finds every responder of `world` on the server and starts them all.
pub async fn start(
    s: &CrowdSettings,
    world: &World,
    clock: SimClock,
    stop: CancellationToken,
) -> anyhow::Result<Crowd> {
    let http = ApiClient::http();
    let admin = ApiClient::new(&s.api, http.clone(), "operator", &s.admin.0, &s.admin.1);
    let mut desks = Vec::new();
    for i in 1..=s.operators.max(1) {
        let name = format!("desk-{i}");
        let password = "desk-pass-12349";
        let (status, body) = admin
            .post(
                "/operators",
                json!({ "name": name, "password": password, "role": "dispatcher" }),
            )
            .await?;
        anyhow::ensure!(
            status < 300 || status == 409,
            "cannot create operator {name}: {status} {body}"
        );
        desks.push(ApiClient::new(
            &s.api,
            http.clone(),
            "operator",
            &name,
            password,
        ));
    }

    // Who is who on the server: the responders' table, page by page.
    let by_phone: HashMap<&str, &Person> =
        world.people.iter().map(|p| (p.phone.as_str(), p)).collect();
    let people: HashMap<i64, Person> = admin
        .table_rows("responders")
        .await?
        .iter()
        .filter_map(|item| {
            let r = &item["responder"];
            let person = by_phone.get(r["phone"].as_str()?)?;
            Some((r["id"].as_i64()?, (*person).clone()))
        })
        .collect();
    anyhow::ensure!(
        people.len() == world.people.len(),
        "{} of the world's {} responders are on the server (is its dataset imported?)",
        people.len(),
        world.people.len()
    );

    let app_stats = Arc::new(AppStats::default());
    let mut tasks = vec![
        apps::run(
            AppSettings {
                api: s.api.clone(),
                broker: s.broker.clone(),
                broker_user: s.broker_user.clone(),
                prefix: s.prefix.clone(),
                client_id: format!("sim-apps-{}-{}", s.seed, std::process::id()),
            },
            clock,
            people,
            app_stats.clone(),
            stop.clone(),
        )
        .await?,
    ];
    let desk_stats = Arc::new(OperatorStats::default());
    tasks.extend(operators::run(
        desks,
        clock,
        Duration::from_millis(1000),
        s.seed,
        desk_stats.clone(),
        stop,
    ));
    Ok(Crowd {
        apps: app_stats,
        desks: desk_stats,
        tasks,
    })
}

impl Crowd {
    /// What everyone did, by name.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let (a, d) = (&self.apps, &self.desks);
        [
            ("app_pushes", a.pushes.get()),
            ("app_offers", a.offers.get()),
            ("app_accepted", a.accepted.get()),
            ("app_accept_refused", a.accept_refused.get()),
            ("app_declined", a.declined.get()),
            ("app_lapsed", a.lapsed.get()),
            ("app_arrived", a.arrived.get()),
            ("app_completed", a.completed.get()),
            ("app_stood_down", a.stood_down.get()),
            ("app_errors", a.errors.get()),
            ("operator_acks", d.acked.get()),
            ("operator_attention", d.attended.get()),
            ("operator_manual_offers", d.manual_offers.get()),
            ("operator_false_alarms", d.false_alarms.get()),
            ("operator_closed", d.closed.get()),
            ("operator_errors", d.errors.get()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Everyone goes home.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}
