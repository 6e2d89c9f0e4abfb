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

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}:\n{text}");
    text
}

#[test]
fn the_debian_package_holds_the_binary_unit_config_and_migrations() {
    // cargo-deb packages `target/release/onekey`; a release build is minutes on two cores, so
    // the test packages the binary it was built with, placed where cargo-deb looks for it.
    let work = tempfile::tempdir().unwrap();
    let release = work.path().join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_onekey"), release.join("onekey")).unwrap();
    let deb = work.path().join("onekey.deb");
    run(std::process::Command::new("cargo")
        .args(["deb", "--no-build", "--fast", "-o"])
        .arg(&deb)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", work.path().join("target")));

    let contents = run(std::process::Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/bin/onekey",
        "./usr/lib/systemd/system/onekey.service",
        "./etc/onekey/onekey.toml",
        "./usr/share/onekey/migrations/sqlite/0001_core.sql",
        "./usr/share/onekey/migrations/postgres/0008_sealed_secrets.sql",
        "./usr/share/onekey/haproxy/onekey.cfg",
        "./usr/share/onekey/prometheus/onekey-alerts.yml",
        "./usr/share/onekey/grafana/onekey-dashboard.json",
        "./usr/share/doc/onekey/deploy.md",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} missing:\n{contents}"
        );
    }
    let migrations =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"))
            .unwrap()
            .count();
    let packaged = contents
        .lines()
        .filter(|l| l.contains("/migrations/postgres/") && l.ends_with(".sql"))
        .count();
    assert_eq!(
        packaged, migrations,
        "every PostgreSQL migration is packaged"
    );
    let info = run(std::process::Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(info.contains("Package: onekey"), "{info}");
    assert!(info.contains("Depends: adduser"), "{info}");

    // The maintainer scripts: the service user and key, and the unit enabled.
    let control = work.path().join("control");
    run(std::process::Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control));
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(postinst.contains("/etc/onekey/secrets.key"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-helper enable onekey.service"),
        "{postinst}"
    );
    run(std::process::Command::new("sh")
        .arg("-n")
        .arg(control.join("postinst")));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert!(conffiles.contains("/etc/onekey/onekey.toml"));

    // The packaged binary runs, and the packaged unit passes systemd's checks (its ExecStart
    // pointed at the unpacked binary) with a low exposure score.
    let root = work.path().join("root");
    run(std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root));
    let version = run(std::process::Command::new(root.join("usr/bin/onekey")).arg("--version"));
    assert!(version.starts_with("onekey "), "{version}");
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/onekey.service")).unwrap();
    let units = work.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("onekey.service"),
        unit.replace(
            "/usr/bin/onekey",
            &root.join("usr/bin/onekey").display().to_string(),
        ),
    )
    .unwrap();
    run(std::process::Command::new("systemd-analyze")
        .args(["verify", "./onekey.service"])
        .current_dir(&units));
    let security = run(std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "./onekey.service"])
        .current_dir(&units));
    let exposure: f64 = security
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for onekey.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{security}"));
    assert!(exposure <= 2.0, "exposure {exposure}:\n{security}");
}

#[test]
fn the_documented_haproxy_configuration_is_valid() {
    let out = run(std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(deploy("haproxy/onekey.cfg")));
    assert!(out.contains("Configuration file is valid"), "{out}");
}
