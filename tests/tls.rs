//! TLS from outside: the web port under HTTPS (with HSTS) and a device listener that speaks TLS
//! only, with a certificate made by `openssl` for the test. Clients that do not speak TLS are
//! turned away one connection at a time and counted; everyone else keeps being served.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AckStatus, AlarmKind, Message};
use onekey_sim::native::{NativeDevice, demo_key};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn connector(cert: &Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("cert") {
        roots.add(c.expect("PEM")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn the_web_port_and_a_device_listener_speak_tls_and_turn_plain_clients_away() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate(certs.path());
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let db = Db::sqlite();
    let server = TestServer::start(
        &db,
        &[
            ("ONEKEY_TLS__CERT_FILE", cert_s.as_str()),
            ("ONEKEY_TLS__KEY_FILE", key_s.as_str()),
            ("ONEKEY_TLS__WEB", "true"),
            ("ONEKEY_TLS__DEVICES", r#"["native"]"#),
        ],
    )
    .await;
    assert_eq!(server.scheme, "https", "the harness logged in over HTTPS");

    // HTTPS, with Strict-Transport-Security on every answer.
    let res = server
        .http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("GET /healthz over HTTPS");
    assert_eq!(res.status(), 200);
    let hsts = res
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(hsts.contains("max-age="), "HSTS: {hsts:?}");

    // Plain HTTP on the same port gets no answer at all.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.addr("http")))
        .timeout(WAIT)
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // A native device over TLS logs in, and its SOS is stored and ACKed.
    let device_key = demo_key(501);
    let (elder, _) = server.register_native_device(501, &device_key).await;
    let tcp = TcpStream::connect(server.addr("device_tcp")).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector(&cert)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let mut device = NativeDevice::over(tls, 501, device_key);
    device.hello(WAIT).await.expect("hello over TLS");
    let (_, reply) = device
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("ACK over TLS");
    match reply.message {
        Message::Ack(a) => assert_eq!(a.status, AckStatus::Stored),
        other => panic!("expected an ACK, got {other:?}"),
    }
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["elder_id"], elder);

    // The same device in clear on the TLS listener: closed, nothing stored, counted.
    let mut clear = NativeDevice::connect(&server.addr("device_tcp"), 501, device_key)
        .await
        .unwrap();
    let (bytes, _) = clear.frame(Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Sos,
        location: None,
    }));
    clear.send_raw(&bytes).await.unwrap();
    assert!(clear.is_closed_by_server(WAIT).await);
    assert_eq!(server.incidents().await.len(), 1);
    server
        .wait_metric(
            r#"onekey_tls_handshake_failures_total{listener="native",reason="failed"}"#,
            1.0,
        )
        .await;
    server
        .wait_metric(
            r#"onekey_tls_handshake_failures_total{listener="http",reason="failed"}"#,
            1.0,
        )
        .await;

    // The TLS device is still served after the failed ones.
    let (_, reply) = device
        .alarm(AlarmKind::Fall, None, WAIT)
        .await
        .expect("served after the plain client");
    assert!(matches!(reply.message, Message::Ack(_)));

    // Listeners not named in [tls] devices still speak in clear (deployed trackers cannot do TLS).
    let gt06 = TcpStream::connect(server.addr("gt06")).await;
    assert!(gt06.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn tls_without_a_certificate_or_for_an_unknown_listener_refuses_to_start() {
    for (env, expected) in [
        (vec![("ONEKEY_TLS__WEB", "true")], "cert_file and key_file"),
        (
            vec![("ONEKEY_TLS__DEVICES", r#"["telnet"]"#)],
            "the device listeners are",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_onekey"));
        cmd.arg("serve")
            .current_dir(dir.path())
            .env(
                "ONEKEY_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("o.db").display()),
            )
            .env("ONEKEY_HTTP_ADDR", "127.0.0.1:0")
            .env("ONEKEY_DEVICE_ADDR", "127.0.0.1:0")
            .env("ONEKEY_GT06_ADDR", "off")
            .env("ONEKEY_WATCH_ADDR", "off")
            .env("ONEKEY_H02_ADDR", "off")
            .env("ONEKEY_SIA_ADDR", "off")
            .env("ONEKEY_MQTT_LISTEN", "127.0.0.1:0");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .expect("the server should exit")
            .expect("run onekey");
        assert!(!out.status.success(), "{env:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
}
