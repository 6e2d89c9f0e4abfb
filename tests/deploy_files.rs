//! The operations files shipped in `deploy/`: the Prometheus alert rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`, Debian's prometheus package), and every OneKey
//! metric the rules and the Grafana dashboard read is on a running server's `/metrics`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn promtool(args: &[&str]) -> String {
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(deploy("prometheus"))
        .output()
        .expect("run promtool (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "onekey-alerts.yml"]);
    assert!(checked.contains("SUCCESS: 12 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "onekey-alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every `onekey_…` metric name in `text`, histogram series (`_bucket`, `_sum`, `_count`) named
/// by their histogram.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("onekey_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_string());
        rest = &tail[end..];
    }
    names
}

/// The metric families a `/metrics` page exposes (from its `# TYPE` lines).
fn exposed(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_metric_the_alerts_and_dashboard_read_exists_on_a_running_server() {
    let rules = std::fs::read_to_string(deploy("prometheus/onekey-alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(deploy("grafana/onekey-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 10));
    let mut wanted = metric_names(&rules);
    wanted.extend(metric_names(&dashboard));
    assert!(wanted.len() >= 15, "{wanted:?}");

    // A server with TLS on one listener, living through a little of its normal life: an alarm
    // that a volunteer is offered and an operator acknowledges, a frame from an unknown device, a
    // client that does not speak TLS.
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate(certs.path());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let db = Db::sqlite();
    let server = TestServer::start(
        &db,
        &[
            ("ONEKEY_TLS__CERT_FILE", cert.as_str()),
            ("ONEKEY_TLS__KEY_FILE", key.as_str()),
            ("ONEKEY_TLS__DEVICES", r#"["sia"]"#),
        ],
    )
    .await;
    let device_key = demo_key(601);
    let (elder, _) = server.register_native_device(601, &device_key).await;
    let _ = server
        .responder_on_duty("值班志愿者", "13900006001", 27.11, 114.98)
        .await;
    let mut pendant = NativeDevice::connect(&server.addr("device_tcp"), 601, device_key)
        .await
        .unwrap();
    pendant
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("ACK");
    let incident = server.first_incident(WAIT).await;
    server.wait_events(incident, "offer_sent", 1, WAIT).await;
    let (status, _) = server
        .post(&format!("/api/v1/incidents/{incident}/ack"), json!({}))
        .await;
    assert_eq!(status, 200);
    let mut stranger = NativeDevice::connect(&server.addr("device_tcp"), 699, demo_key(699))
        .await
        .unwrap();
    let (bytes, _) = stranger.frame(onekey_protocol::Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Sos,
        location: None,
    }));
    stranger.send_raw(&bytes).await.unwrap();
    assert!(stranger.is_closed_by_server(WAIT).await);
    let _ = elder;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let have = exposed(&server.metrics().await);
        let missing: Vec<&String> = wanted.iter().filter(|m| !have.contains(*m)).collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        missing.is_empty(),
        "referenced in deploy/ but not on /metrics: {missing:?}"
    );
    server.stop().await;
}
