//! `onekey import` as an operator runs it: the real binary against a fresh SQLite file and a fresh
//! PostgreSQL database, then the result read back through the API (and a device of the file speaking
//! to the server with its imported key).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AckStatus, AlarmKind, Message};
use onekey_sim::dataset;
use onekey_sim::native::NativeDevice;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn import(db: &Db, file: &Path) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_onekey"));
    cmd.arg("import")
        .arg(file)
        .current_dir(dir.path())
        .env("ONEKEY_DATABASE_URL", db.url())
        .env("ONEKEY_LOG", "warn");
    if let Some(key) = db.secrets_key() {
        cmd.env("ONEKEY_SECRETS_KEY", key);
    }
    let out = cmd.output().await.expect("run onekey import");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn list(server: &TestServer, what: &str) -> Vec<serde_json::Value> {
    let (status, body) = server.get(&format!("/api/v1/{what}?limit=10000")).await;
    assert_eq!(status, 200, "{what}: {body}");
    body.as_array().cloned().unwrap_or_default()
}

async fn dataset_imports_once_and_its_devices_work(db: Db) {
    let data = dataset::generate(60, 30, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("jizhou.json");
    std::fs::write(&file, serde_json::to_vec(&data).expect("json")).expect("write");

    let first = import(&db, &file).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("elders: 60 created, 0 already there"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains(&format!(
            "areas: {} created, 0 already there",
            data.areas.len()
        )),
        "{}",
        first.stdout
    );

    // Again: nothing new.
    let second = import(&db, &file).await;
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    for kind in ["areas", "responders", "elders", "devices"] {
        assert!(
            second.stdout.contains(&format!("{kind}: 0 created")),
            "{kind}: {}",
            second.stdout
        );
    }

    let server = TestServer::start(&db, &[]).await;
    let elders = list(&server, "elders").await;
    assert_eq!(elders.len(), 60);
    let one = elders
        .iter()
        .find(|e| e["name"] == data.elders[0].name && e["address"] == data.elders[0].address)
        .expect("the first elder of the file");
    assert_eq!(
        one["contacts"].as_array().map(Vec::len),
        Some(data.elders[0].contacts.len())
    );
    assert!(one["grid_id"].as_i64().is_some());
    assert_eq!(list(&server, "devices").await.len(), 60);
    assert_eq!(
        list(&server, "responders").await.len(),
        data.responders.len()
    );
    let areas = list(&server, "areas").await;
    assert_eq!(areas.len(), data.areas.len());
    let grids: Vec<_> = areas.iter().filter(|a| a["level"] == "grid").collect();
    assert!(!grids.is_empty());
    assert!(
        grids.iter().all(|g| g["worker_id"].as_i64().is_some()),
        "every grid has its grid worker"
    );

    // A native device of the file is registered with its key: its SOS is stored.
    let (id, key) = data.native_devices()[0];
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), id, key)
        .await
        .expect("connect");
    let (seq, reply) = device
        .alarm(AlarmKind::Sos, None, Duration::from_secs(10))
        .await
        .expect("alarm");
    match reply.message {
        Message::Ack(a) => {
            assert_eq!(a.acked_seq, seq);
            assert_eq!(a.status, AckStatus::Stored);
        }
        other => panic!("expected an ACK, got {other:?}"),
    }
    assert_eq!(server.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_imports_once_and_its_devices_work_sqlite() {
    dataset_imports_once_and_its_devices_work(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_imports_once_and_its_devices_work_postgres() {
    dataset_imports_once_and_its_devices_work(Db::postgres().await).await;
}

async fn csv_bad_rows_are_reported_by_line_and_the_rest_imported(db: Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let areas = dir.path().join("areas.csv");
    std::fs::write(
        &areas,
        "code,level,name,parent_code\n\
         JZ,district,吉州区,\n\
         JZ-WS,street,文山街道,JZ\n\
         JZ-WS-SY,community,思源社区,JZ-WS\n\
         JZ-WS-SY-01,grid,思源社区第1网格,JZ-WS-SY\n\
         JZ-XX,planet,火星,JZ\n",
    )
    .expect("write");
    let run = import(&db, &areas).await;
    assert_ne!(run.code, 0, "a bad row makes the import fail");
    assert!(
        run.stderr.contains("line 6") && run.stderr.contains("planet"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("areas: 4 created"), "{}", run.stdout);

    let responders = dir.path().join("responders.csv");
    std::fs::write(
        &responders,
        "name,phone,kind,team,skills,grid_code,home_lat,home_lon\n\
         刘建华,13907960001,grid_worker,思源社区网格站,first_aid;visit,JZ-WS-SY-01,27.111,114.977\n",
    )
    .expect("write");
    let run = import(&db, &responders).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("grid workers assigned: 1"),
        "{}",
        run.stdout
    );

    let elders = dir.path().join("elders.csv");
    std::fs::write(
        &elders,
        "name,address,lat,lon,living,grid_code,contacts,device_protocol,device_ident,device_secret_hex\n\
         胡秀英,吉州区文山街道思源社区文山路1号,27.111,114.977,alone,JZ-WS-SY-01,罗志强|儿子|13900000001|key,native,860100000000001,"
            .to_string()
            + &"11".repeat(32)
            + "\n\
         王德明,吉州区文山街道思源社区文山路2号,not-a-number,114.977,alone,,,,,\n\
         李玉兰,吉州区文山街道思源社区文山路3号,27.112,114.978,lonely,,,,,\n\
         陈福生,吉州区文山街道思源社区文山路4号,27.113,114.979,empty_nest,JZ-NOWHERE,,,,\n\
         周桂英,吉州区文山街道思源社区文山路5号,27.114,114.976,three_no,,,gt06,868120000000005,\n",
    )
    .expect("write");
    let run = import(&db, &elders).await;
    assert_ne!(run.code, 0);
    for line in ["line 3", "line 4", "line 5"] {
        assert!(run.stderr.contains(line), "{line}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("line 2:"), "{}", run.stderr);
    assert!(!run.stderr.contains("line 6:"), "{}", run.stderr);
    assert!(run.stdout.contains("elders: 2 created"), "{}", run.stdout);
    assert!(run.stdout.contains("devices: 2 created"), "{}", run.stdout);

    let server = TestServer::start(&db, &[]).await;
    let elders = list(&server, "elders").await;
    let names: Vec<&str> = elders.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"胡秀英") && names.contains(&"周桂英"));
    let hu = elders
        .iter()
        .find(|e| e["name"] == "胡秀英")
        .expect("胡秀英");
    assert_eq!(hu["contacts"][0]["key_holder"], true);
    let devices = list(&server, "devices").await;
    assert!(
        devices
            .iter()
            .any(|d| d["protocol"] == "gt06" && d["elder_id"].is_i64())
    );
    let grid = list(&server, "areas")
        .await
        .into_iter()
        .find(|a| a["code"] == "JZ-WS-SY-01")
        .expect("grid");
    assert!(grid["worker_id"].as_i64().is_some());
    assert_eq!(server.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_bad_rows_are_reported_by_line_and_the_rest_imported_sqlite() {
    csv_bad_rows_are_reported_by_line_and_the_rest_imported(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_bad_rows_are_reported_by_line_and_the_rest_imported_postgres() {
    csv_bad_rows_are_reported_by_line_and_the_rest_imported(Db::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecognised_file_fails_with_a_reason() {
    let db = Db::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "foo,bar\n1,2\n").expect("write");
    let run = import(&db, &file).await;
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("cannot tell"), "{}", run.stderr);
}

/// A district's directory is larger than any other request: `POST /api/v1/import` takes a body
/// past the 1 MiB every other route is limited to (here a small dataset padded to 3 MB).
#[tokio::test]
async fn a_directory_larger_than_a_mebibyte_imports_over_the_api() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let data = dataset::generate(5, 3, 11);
    let mut body = serde_json::to_string(&data).expect("json");
    body.push_str(&" ".repeat(3 * 1024 * 1024));
    let res = server
        .http
        .post(format!("{}/api/v1/import", server.base()))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = res.status().as_u16();
    let report: serde_json::Value = res.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{report}");
    assert!(report["created"].as_u64() > Some(5), "{report}");
    assert_eq!(list(&server, "elders").await.len(), 5);
}
