//! Several instances on one PostgreSQL database, seen from outside: what one instance commits
//! reaches the consoles and apps connected to another (PostgreSQL `NOTIFY` wakes them; the store
//! is read in log order, the same on every instance).

mod common;

use std::time::{Duration, Instant};

use common::{Db, EventStream, TestServer};
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_alarm_committed_on_one_instance_reaches_the_console_and_app_on_another() {
    let db = Db::postgres().await;
    // A dispatches; B does not, and commits nothing of its own, so whatever its streams show
    // came from A's commits.
    let a = TestServer::start(&db, &[("ONEKEY_DISPATCH__RESPONDER_REFRESH_MS", "200")]).await;
    let b = TestServer::start(&db, &[("ONEKEY_DISPATCH__ENABLED", "false")]).await;
    let mut console_b = EventStream::open(&b, None).await;

    // An elder with no volunteer about: A opens the incident (and escalates it to operators).
    let key = demo_key(901);
    let (_, _) = a.register_native_device(901, &key).await;
    let mut pendant = NativeDevice::connect(&a.addr("device_tcp"), 901, key)
        .await
        .unwrap();
    pendant
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("ACK");
    let acked = Instant::now();
    let Some(opened) = console_b.next_of_kind("opened", WAIT).await else {
        panic!(
            "B's console does not show the incident A opened; B's log:\n{}",
            b.log()
        );
    };
    let first_latency = acked.elapsed();
    let incident = opened.data["incident_id"].as_i64().expect("incident");
    let (_, events) = a.get(&format!("/api/v1/incidents/{incident}")).await;
    let stored: Vec<i64> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();

    // Every event of the incident, in id order, none twice.
    let mut seen = vec![opened.id.expect("id")];
    while seen.len() < stored.len() {
        let e = console_b
            .next(WAIT)
            .await
            .expect("the incident's next event on B");
        seen.push(e.id.expect("id"));
    }
    assert_eq!(seen, stored, "B's console: every event, in order");

    // A volunteer whose app is connected to B is offered the next alarm, which A dispatches.
    let (_, token) = b
        .responder_on_duty("跨实例志愿者", "13900009001", 27.11, 114.98)
        .await;
    let mut app_b = b
        .http
        .get(format!("{}/api/v1/responder/stream", b.base()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("app stream");
    assert_eq!(app_b.status(), 200);
    tokio::time::sleep(Duration::from_millis(800)).await; // A's responder refresh
    let key2 = demo_key(902);
    a.register_native_device(902, &key2).await;
    let mut pendant2 = NativeDevice::connect(&a.addr("device_tcp"), 902, key2)
        .await
        .unwrap();
    pendant2
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("ACK");
    let acked = Instant::now();
    let mut text = String::new();
    let offer_latency = loop {
        let chunk = tokio::time::timeout(WAIT, app_b.chunk())
            .await
            .expect("a push on B's app stream in time")
            .expect("stream")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: offer") {
            break acked.elapsed();
        }
    };
    println!(
        "A → B: console {:.1} ms, app offer {:.1} ms",
        first_latency.as_secs_f64() * 1e3,
        offer_latency.as_secs_f64() * 1e3
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_command_given_on_one_instance_reaches_a_device_connected_to_another() {
    let db = Db::postgres().await;
    let a = TestServer::start(&db, &[]).await;
    let b = TestServer::start(&db, &[]).await;
    let key = demo_key(911);
    let (_, device_row) = a.register_native_device(911, &key).await;
    let mut pendant = NativeDevice::connect(&a.addr("device_tcp"), 911, key)
        .await
        .unwrap();
    pendant.hello(WAIT).await.expect("hello");

    let asked = Instant::now();
    let (status, body) = b
        .post(
            &format!("/api/v1/devices/{device_row}/command"),
            serde_json::json!({"command": "locate"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let command = pendant.recv(WAIT).await.expect("the command, through A");
    let took = asked.elapsed();
    match command.message {
        onekey_protocol::Message::Command(c) => {
            assert_eq!(c.kind, onekey_protocol::CommandKind::Locate);
            assert_eq!(Some(u64::from(c.command_id)), body["command_id"].as_u64());
        }
        other => panic!("expected a command, got {other:?}"),
    }
    println!(
        "command on B → device on A: {:.1} ms",
        took.as_secs_f64() * 1e3
    );

    // A device connected nowhere: B says so.
    let (_, other_row) = a.register_native_device(912, &demo_key(912)).await;
    let (status, body) = b
        .post(
            &format!("/api/v1/devices/{other_row}/command"),
            serde_json::json!({"command": "locate"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    b.stop().await;
    a.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `deploy/haproxy/onekey.cfg`, the documented file, with its addresses replaced by this test's:
/// the frontends on free loopback ports, each backend's three `server` lines pointing at the
/// instances (and their health checks at each instance's own web port), `maxconn` within this
/// machine's descriptor limit, no log socket.
fn haproxy_config(servers: &[&TestServer]) -> (String, u16) {
    let documented = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/onekey.cfg"),
    )
    .expect("deploy/haproxy/onekey.cfg");
    let native = free_port();
    let mut out = String::new();
    for line in documented.lines() {
        let t = line.trim_start();
        let replaced = if t.starts_with("bind *:7700") {
            format!("    bind 127.0.0.1:{native}")
        } else if let Some(bind) = t.strip_prefix("bind *:") {
            let _ = bind;
            format!("    bind 127.0.0.1:{}", free_port())
        } else if t.starts_with("log stdout") {
            String::new()
        } else if t.starts_with("maxconn ") {
            // This machine allows a process 20,000 descriptors; HAProxy needs two per connection.
            "    maxconn 5000".to_string()
        } else if let Some(rest) = t.strip_prefix("server onekey") {
            let n: usize = rest[..1].parse().expect("server number");
            let port = rest.rsplit(':').next().expect("port");
            let server = servers[n - 1];
            let http_port = server.addr("http").rsplit(':').next().unwrap().to_string();
            let listener = match port {
                "7700" => server.addr("device_tcp"),
                "5023" => server.addr("gt06"),
                _ => server.addr("http"),
            };
            format!("    server onekey{n} {listener} port {http_port}")
        } else {
            line.to_string()
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    (out, native)
}

/// The documented HAProxy configuration in front of `servers`, running until dropped.
struct Haproxy {
    /// The native device port's address.
    native: String,
    process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    async fn start(servers: &[&TestServer]) -> Haproxy {
        let (config, native) = haproxy_config(servers);
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, &config).unwrap();
        let process = tokio::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run haproxy (Debian package haproxy)");
        let native = format!("127.0.0.1:{native}");
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(&native).await.is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Haproxy {
            native,
            process,
            _dir: dir,
        }
    }
}

/// One elder's pendant behind the load balancer: sends its SOS and, like firmware, sends the very
/// same frame again on a new connection until it is ACKed. Returns how many tries it took.
async fn sos_until_acked(addr: String, id: u64) -> u32 {
    let key = demo_key(id);
    let mut template = NativeDevice::connect(&addr, id, key)
        .await
        .expect("connect");
    let (frame, _) = template.frame(onekey_protocol::Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Sos,
        location: None,
    }));
    let mut device = Some(template);
    for attempt in 1..=40 {
        let mut d = match device.take() {
            Some(d) => d,
            None => match NativeDevice::connect(&addr, id, key).await {
                Ok(d) => d,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            },
        };
        if d.send_raw(&frame).await.is_ok()
            && let Ok(reply) = d.recv(Duration::from_secs(2)).await
            && matches!(reply.message, onekey_protocol::Message::Ack(_))
        {
            return attempt;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("device {id} was never ACKed");
}

#[tokio::test]
async fn three_instances_behind_haproxy_lose_nothing_when_one_is_killed_under_load() {
    const DEVICES: u64 = 90;
    let db = Db::postgres().await;
    let fast = [("ONEKEY_DISPATCH__RESPONDER_REFRESH_MS", "500")];
    let a = TestServer::start(&db, &fast).await;
    let b = TestServer::start(&db, &fast).await;
    let c = TestServer::start(&db, &fast).await;
    let mut elders = Vec::new();
    for id in 1..=DEVICES {
        elders.push(
            a.register_native_device(9100 + id, &demo_key(9100 + id))
                .await
                .0,
        );
    }
    let mut haproxy = Haproxy::start(&[&a, &b, &c]).await;
    let lb = haproxy.native.clone();
    // Consoles on the instances that survive, from before the first alarm.
    let mut console = EventStream::open(&b, None).await;
    let mut console_a = EventStream::open(&a, None).await;

    // Every elder calls through the load balancer; a third of the way in, instance C dies.
    let started = Instant::now();
    let calls: Vec<_> = (1..=DEVICES)
        .map(|id| {
            let lb = lb.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(id * 15)).await;
                sos_until_acked(lb, 9100 + id).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(DEVICES * 5)).await;
    let killed_at = started.elapsed();
    c.kill().await;
    let mut retried = 0;
    for call in calls {
        if call.await.expect("device task") > 1 {
            retried += 1;
        }
    }
    let all_acked = started.elapsed();

    // Exactly one incident per elder, every one of them.
    let (_, incidents) = a.get("/api/v1/incidents?limit=1000").await;
    let incidents = incidents.as_array().expect("incidents").clone();
    let mut per_elder = std::collections::HashMap::new();
    for i in &incidents {
        *per_elder
            .entry(i["elder_id"].as_i64().unwrap_or(0))
            .or_insert(0) += 1;
    }
    for elder in &elders {
        assert_eq!(
            per_elder.get(elder),
            Some(&1),
            "elder {elder}: {per_elder:?}"
        );
    }
    assert_eq!(incidents.len(), elders.len());

    // The surviving console saw every incident open, none twice, each incident's events in the
    // order they were written.
    let mut opened = Vec::new();
    let mut sequence = Vec::new();
    let mut per_incident: std::collections::HashMap<i64, i64> = Default::default();
    while opened.len() < elders.len() {
        let Some(e) = console.next(WAIT).await else {
            panic!(
                "B's console saw {} of {} openings",
                opened.len(),
                elders.len()
            );
        };
        let id = e.id.expect("id");
        assert!(!sequence.contains(&id), "event {id} twice");
        sequence.push(id);
        let incident = e.data["incident_id"].as_i64().expect("incident");
        let last = per_incident.insert(incident, id).unwrap_or(0);
        assert!(id > last, "incident {incident}: event {id} after {last}");
        if e.data["kind"] == "opened" {
            opened.push(incident);
        }
    }
    // A's console saw the same events in the same order.
    let mut on_a = Vec::new();
    while on_a.len() < sequence.len() {
        let e = console_a.next(WAIT).await.expect("A's console");
        on_a.push(e.id.expect("id"));
    }
    assert_eq!(on_a, sequence, "every instance's console follows one order");
    // A console that reconnects to A after B's tenth event goes on with B's eleventh.
    let mut resumed = EventStream::open(&a, Some(sequence[9])).await;
    let mut after = Vec::new();
    while after.len() < sequence.len() - 10 {
        after.push(resumed.next(WAIT).await.expect("resumed").id.expect("id"));
    }
    assert_eq!(
        after,
        sequence[10..],
        "catch-up after a reconnect to another instance"
    );
    let mut unique = opened.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), elders.len());
    println!(
        "3 instances behind HAProxy, C killed at {:.2} s: {DEVICES} alarms ACKed by {:.2} s \
         ({retried} retried on another instance), {} incidents, 0 duplicates, B's and A's \
         consoles saw all {} openings in one order",
        killed_at.as_secs_f64(),
        all_acked.as_secs_f64(),
        incidents.len(),
        opened.len()
    );
    let _ = haproxy.process.kill().await;
    a.stop().await;
    b.stop().await;
}

/// Waits until `responder`'s own task view shows a pending offer; returns its incident.
async fn offered(
    http: &reqwest::Client,
    bases: &[String],
    first: usize,
    token: &str,
    responder: i64,
) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, tasks, _) = responder_call(http, bases, first, token, None, "tasks").await;
        assert_eq!(status, 200, "{tasks}");
        let pending = tasks.as_array().into_iter().flatten().find_map(|t| {
            (t["offer"]["status"] == "pending")
                .then(|| t["offer"]["incident_id"].as_i64())
                .flatten()
        });
        if let Some(incident) = pending {
            return incident;
        }
        assert!(
            Instant::now() < deadline,
            "responder {responder} was never offered their elder's incident"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One call of the responder API, sent to `bases[first]` and, like an app behind a load balancer,
/// to the next instance whenever one cannot be reached (or dies before answering): the status and
/// JSON body of the first answer, and the instance that gave it.
async fn responder_call(
    http: &reqwest::Client,
    bases: &[String],
    first: usize,
    token: &str,
    post: Option<&str>,
    get: &str,
) -> (u16, serde_json::Value, usize) {
    for attempt in 0..3 * bases.len() {
        let at = (first + attempt) % bases.len();
        let url = format!("{}/api/v1/responder/{}", bases[at], post.unwrap_or(get));
        let req = match post {
            Some(_) => http.post(url).json(&serde_json::json!({})),
            None => http.get(url),
        };
        let sent = req.bearer_auth(token).timeout(WAIT).send().await;
        if let Ok(res) = sent {
            let status = res.status().as_u16();
            if let Ok(text) = res.text().await {
                let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                return (status, body, at);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no instance answered {}", post.unwrap_or(get));
}

#[tokio::test]
async fn volunteers_racing_on_three_instances_take_each_incident_once_when_one_is_killed() {
    const ELDERS: usize = 24;
    const RACERS: usize = 3;
    let db = Db::postgres().await;
    // Short responder refreshes (every instance indexes the volunteers at once), a short timer
    // lease (what the killed instance had claimed is fired again soon), and room for all the
    // volunteers' logins from this one address.
    let env = [
        ("ONEKEY_DISPATCH__RESPONDER_REFRESH_MS", "500"),
        ("ONEKEY_DISPATCH__TIMER_LEASE_MS", "3000"),
        ("ONEKEY_LOGIN_BURST", "500"),
    ];
    let a = TestServer::start(&db, &env).await;
    let b = TestServer::start(&db, &env).await;
    let c = TestServer::start(&db, &env).await;
    let bases = vec![a.base(), b.base(), c.base()];

    // Elders 11 km apart, each with three volunteers within 110 m: each incident is offered to
    // its own three (the emergency team's one nearby seat; no key holders) and to nobody else.
    let mut elders = Vec::new();
    let mut volunteers = Vec::new();
    for i in 0..ELDERS {
        let (lat, lon) = (26.5 + 0.1 * i as f64, 114.98);
        let (status, elder) = a
            .post(
                "/api/v1/elders",
                serde_json::json!({ "name": format!("抢单老人 {i}"), "address": "吉州区 文山街道 1 号",
                                    "lat": lat, "lon": lon, "living": "alone" }),
            )
            .await;
        assert_eq!(status, 201, "{elder}");
        let elder = elder["id"].as_i64().expect("elder id");
        let device = 9300 + i as u64;
        a.register_device(
            "native",
            &device.to_string(),
            Some(&hex::encode(demo_key(device))),
            Some(elder),
        )
        .await;
        let people: Vec<(String, String)> = (0..RACERS)
            .map(|k| {
                (
                    format!("抢单志愿者 {i}-{k}"),
                    format!("1390000{i:02}{k:02}"),
                )
            })
            .collect();
        let group =
            futures_util::future::join_all(people.iter().enumerate().map(|(k, (name, phone))| {
                a.responder_on_duty(name, phone, lat + 0.0005 * k as f64, lon)
            }))
            .await;
        elders.push((elder, device));
        volunteers.push(group);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // every instance's responder refresh

    let mut haproxy = Haproxy::start(&[&a, &b, &c]).await;
    let lb = haproxy.native.clone();

    // Each elder calls through HAProxy; the three volunteers offered the incident wait for the
    // offer in their own task view and accept it at the same moment, each on a different
    // instance (A, B, C; once C is gone, the next one). A third of the way in, C is killed.
    let raced = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut races = Vec::new();
    for (i, ((elder, device), group)) in elders.iter().zip(&volunteers).enumerate() {
        let (lb, raced, device, elder) = (lb.clone(), raced.clone(), *device, *elder);
        let (http, bases, group) = (a.http.clone(), bases.clone(), group.clone());
        races.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            sos_until_acked(lb, device).await;
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
            let racers: Vec<_> = group
                .into_iter()
                .enumerate()
                .map(|(k, (responder, token))| {
                    let (http, bases, barrier) = (http.clone(), bases.clone(), barrier.clone());
                    tokio::spawn(async move {
                        let incident = offered(&http, &bases, k, &token, responder).await;
                        barrier.wait().await;
                        let accept = format!("tasks/{incident}/accept");
                        let (status, body, at) =
                            responder_call(&http, &bases, k, &token, Some(&accept), "").await;
                        (responder, incident, status, body, at)
                    })
                })
                .collect();
            let mut answers = Vec::new();
            for r in racers {
                answers.push(r.await.expect("volunteer task"));
            }
            raced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (elder, answers)
        }));
    }
    while raced.load(std::sync::atomic::Ordering::SeqCst) < ELDERS / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_after = raced.load(std::sync::atomic::Ordering::SeqCst);
    c.kill().await;
    let mut outcomes = Vec::new();
    for race in races {
        outcomes.push(race.await.expect("race"));
    }
    // Races in which C's volunteer was answered by another instance.
    let failed_over = outcomes
        .iter()
        .filter(|(_, answers)| answers[2].4 != 2)
        .count();

    let incidents = a.incidents().await;
    assert_eq!(incidents.len(), ELDERS, "one incident per elder");
    let mut refused = 0;
    for ((elder, answers), group) in outcomes.iter().zip(&volunteers) {
        let incident = answers[0].1;
        assert!(
            answers.iter().all(|(_, i, ..)| *i == incident),
            "elder {elder}: the volunteers were offered different incidents: {answers:?}"
        );
        let mut winners = Vec::new();
        for (responder, _, status, body, _) in answers {
            match status {
                204 => winners.push(*responder),
                409 => {
                    assert_eq!(body["error"]["code"], "conflict", "{body}");
                    refused += 1;
                }
                _ => panic!("responder {responder}, incident {incident}: {status} {body}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "incident {incident}: told they hold the task: {winners:?}; answers {answers:?}"
        );
        let (_, detail) = a.get(&format!("/api/v1/incidents/{incident}")).await;
        assert_eq!(detail["incident"]["elder_id"].as_i64(), Some(*elder));
        assert_eq!(
            detail["incident"]["status"], "accepted",
            "{}",
            detail["incident"]
        );
        let accepted: Vec<i64> = detail["offers"]
            .as_array()
            .expect("offers")
            .iter()
            .filter(|o| o["status"] == "accepted")
            .filter_map(|o| o["responder_id"].as_i64())
            .collect();
        assert_eq!(accepted, winners, "incident {incident}: accepted offers");
        let counted: Vec<i64> = a
            .events_of(incident, "offer_accepted")
            .await
            .iter()
            .filter_map(|e| e["detail"]["responder_id"].as_i64())
            .collect();
        assert_eq!(
            counted, winners,
            "incident {incident}: offer_accepted events"
        );
        // Each volunteer's own view: the winner holds the task, the others have nothing of it.
        for (responder, token) in group {
            let (status, tasks, _) =
                responder_call(&a.http, &bases[..2], 0, token, None, "tasks").await;
            assert_eq!(status, 200);
            let mine: Vec<&serde_json::Value> = tasks
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["offer"]["incident_id"].as_i64() == Some(incident))
                .collect();
            if winners.contains(responder) {
                assert_eq!(mine.len(), 1, "{tasks}");
                assert_eq!(mine[0]["offer"]["status"], "accepted");
            } else {
                assert!(mine.is_empty(), "responder {responder} still sees {mine:?}");
            }
        }
    }
    println!(
        "3 instances, C killed after {killed_after} of {ELDERS} races: {ELDERS} incidents, each \
         accepted once by one of {RACERS} racing volunteers; {refused} losing accepts answered \
         409; in {failed_over} races C's volunteer was answered by A or B"
    );
    let _ = haproxy.process.kill().await;
    a.stop().await;
    b.stop().await;
}
