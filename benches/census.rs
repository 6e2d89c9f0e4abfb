//! A statement census: how many statements, and which, one SOS costs on the real binary, from its
//! frame to the end of its dispatch (offers, timers, notifications), on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench census` (`ONEKEY_CENSUS_WAIT_MS`, default 1,500: how long after the ACK
//! statements are still counted). The server logs every statement (`sqlx::query=debug`); the
//! census counts the lines logged between the SOS and the end of the wait, by their first word
//! and by their text, most frequent first.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};

/// `line` without its terminal colour codes (`ESC [ … m`).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn statements(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("sqlx::query"))
        .map(|l| {
            let l = plain(l);
            let text = l.split_once("summary=").map_or(l.as_str(), |(_, s)| s);
            let text = text.trim_start_matches(|c: char| !c.is_ascii_alphabetic());
            // sqlx's summary: the statement's first words, up to the closing quote.
            let text = text.split(['"', '…']).next().unwrap_or(text).trim_end();
            text.chars().take(90).collect()
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let wait = std::env::var("ONEKEY_CENSUS_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500u64);
    for (name, db) in [("sqlite", Db::sqlite()), ("postgres", Db::postgres().await)] {
        let server = TestServer::start(&db, &[("ONEKEY_LOG", "warn,sqlx::query=debug")]).await;
        for i in 0..5 {
            server
                .responder_on_duty(
                    &format!("志愿者{i}"),
                    &format!("1390000{i:04}"),
                    27.1101,
                    114.9801,
                )
                .await;
        }
        let key = demo_key(311);
        server.register_native_device(311, &key).await;
        let mut device = NativeDevice::connect(&server.addr("device_tcp"), 311, key).await?;
        device.hello(Duration::from_secs(5)).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = statements(&server.log()).len();
        device
            .alarm(AlarmKind::Sos, None, Duration::from_secs(5))
            .await?;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let all = statements(&server.log());
        let one: &[String] = all.get(before..).unwrap_or_default();
        let mut by_word: HashMap<&str, usize> = HashMap::new();
        let mut by_text: HashMap<&str, usize> = HashMap::new();
        for s in one {
            *by_word
                .entry(s.split_whitespace().next().unwrap_or(""))
                .or_default() += 1;
            *by_text.entry(s.as_str()).or_default() += 1;
        }
        let mut words: Vec<_> = by_word.into_iter().collect();
        words.sort_by_key(|w| std::cmp::Reverse(w.1));
        let mut texts: Vec<_> = by_text.into_iter().collect();
        texts.sort_by_key(|t| std::cmp::Reverse(t.1));
        println!("\n{name}: one opening SOS, {} statements", one.len());
        println!("  by kind: {words:?}");
        for (text, n) in texts.iter().take(25) {
            println!("  {n:>3}  {text}");
        }
        server.stop().await;
    }
    Ok(())
}
