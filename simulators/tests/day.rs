//! The small district day on the real server, as CI runs it: `onekey-sim day --preset small`
//! starts the `onekey` binary built beside it, lives a compressed day through every protocol,
//! the broker, the SMS centre and the API, and fails when an alarm is lost or duplicated, an
//! emergency reached nobody within policy, or a service order was neither done nor escalated.

use std::path::PathBuf;
use std::process::Command;

fn onekey_binary() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_onekey-sim"));
    let dir = exe.parent().expect("target folder");
    let server = dir.join(format!("onekey{}", std::env::consts::EXE_SUFFIX));
    if !server.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "onekey", "--bin", "onekey"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "cannot build the onekey binary");
    }
    assert!(server.is_file(), "no onekey binary at {}", server.display());
    server
}

#[test]
fn a_small_day_keeps_every_promise() {
    let server = onekey_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let chart = dir.path().join("day.html");
    let out = Command::new(env!("CARGO_BIN_EXE_onekey-sim"))
        .args(["day", "--preset", "small", "--seed", "7", "--quiet"])
        .arg("--server")
        .arg(&server)
        .arg("--dir")
        .arg(dir.path().join("day"))
        .arg("--report")
        .arg(&report)
        .arg("--chart")
        .arg(&chart)
        .output()
        .expect("run onekey-sim day");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the day failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    for key in [
        "alarms_sent",
        "alarms_acked",
        "alarms_stored",
        "lost",
        "duplicated",
        "emergencies",
        "emergencies_reached_person",
        "acked_within_60s_pct",
        "accepted_within_2min_pct",
        "on_scene_within_30min_pct",
        "service_orders",
        "service_done_within_24h_pct",
        "welfare_expected",
        "welfare_raised",
        "silent_devices_expected",
        "silent_devices_raised",
    ] {
        assert!(r.get(key).is_some(), "the report has no {key}: {r}");
    }
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    // The day really happened: alarms of the day's shape, answered by people.
    assert!(n("alarms_sent") >= 5, "{r}");
    assert_eq!(n("alarms_acked"), n("alarms_sent"), "{r}");
    assert_eq!(n("lost"), 0, "{r}");
    assert_eq!(n("duplicated"), 0, "{r}");
    assert!(n("emergencies") > 0, "{r}");
    assert_eq!(n("emergencies_reached_person"), n("emergencies"), "{r}");
    assert!(n("service_orders") > 0, "{r}");
    assert_eq!(n("service_neither_done_nor_escalated"), 0, "{r}");
    assert!(r["people"]["app_accepted"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(
        r["people"]["operator_closed"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    assert!(n("sms") > 0, "families were told: {r}");
    // Every link that had something to send had all of it ACKed; most links had something.
    let links = r["links"].as_object().expect("links");
    assert!(links.len() >= 5, "links: {r}");
    for (link, l) in links {
        assert_eq!(l["acked"], l["sent"], "{link}: {r}");
    }
    let page = std::fs::read_to_string(&chart).expect("chart");
    assert!(page.contains("<svg") && page.contains("Alarms per hour"));
}
