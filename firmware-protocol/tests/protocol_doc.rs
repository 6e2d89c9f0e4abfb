//! Keeps the hex examples in `PROTOCOL.md` true: every `example <name>: <hex>` line inside a ```text
//! block must equal the frame the code encodes for that example (`tests/common/mod.rs`).
//!
//! To refresh the doc after an intended change:
//! `UPDATE_PROTOCOL_DOC=1 cargo test -p onekey-protocol --test protocol_doc`

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{KEY, encode_example, examples};
use onekey_protocol::*;

const MARKER: &str = "example ";
const UPDATE_VAR: &str = "UPDATE_PROTOCOL_DOC";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("PROTOCOL.md")
}

/// Splits a line `example <name>: <hex>` into name and hex.
fn parse_example_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix(MARKER)?;
    let (name, hex) = rest.split_once(':')?;
    Some((name.trim(), hex.trim()))
}

/// Example lines inside ```text fences: name → (line index, hex as written).
fn doc_examples(doc: &str) -> BTreeMap<String, (usize, String)> {
    let mut found = BTreeMap::new();
    let mut in_text = false;
    for (i, line) in doc.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            in_text = !in_text && info.trim() == "text";
            continue;
        }
        if !in_text {
            continue;
        }
        if let Some((name, hex)) = parse_example_line(line) {
            let previous = found.insert(name.to_string(), (i, hex.to_string()));
            assert!(
                previous.is_none(),
                "PROTOCOL.md: example {name} appears twice"
            );
        }
    }
    found
}

/// Hex without the spaces and `|` separators used for readability.
fn normalize(hex: &str) -> String {
    hex.chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Byte widths of a body's fields, as in the body tables of `PROTOCOL.md`.
fn body_fields(ty: MessageType, body_len: usize) -> Vec<usize> {
    let location = |fixed: &[usize]| {
        let mut v = fixed.to_vec();
        v.push(1);
        if body_len > fixed.iter().sum::<usize>() + 1 {
            v.extend([4, 4, 2]);
        }
        v
    };
    match ty {
        MessageType::Hello => vec![4, 2, 4],
        MessageType::Heartbeat => location(&[1, 1, 1]),
        MessageType::Alarm => location(&[1]),
        MessageType::Cancel => vec![4],
        MessageType::CheckIn => vec![],
        MessageType::ServiceRequest => vec![1],
        MessageType::CommandResult => vec![4, 1],
        MessageType::Ack => vec![4, 1, 1, 4],
        MessageType::Command => vec![4, 1, 4],
    }
}

/// The frame as hex, one group per field, `|` between header, body and tag.
fn grouped_hex(bytes: &[u8], ty: MessageType) -> String {
    let body_len = bytes.len() - HEADER_LEN - TAG_LEN;
    let mut widths = vec![2, 1, 1, 2, 8, 4, 4];
    let header_fields = widths.len();
    let body = body_fields(ty, body_len);
    assert_eq!(body.iter().sum::<usize>(), body_len, "field widths of {ty}");
    let body_fields = body.len();
    widths.extend(body);
    widths.push(TAG_LEN);
    let mut out = String::new();
    let mut at = 0;
    for (i, w) in widths.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if i == header_fields || (i == header_fields + body_fields && body_fields > 0) {
            out.push_str("| ");
        }
        out.push_str(&hex::encode(&bytes[at..at + w]));
        at += w;
    }
    out
}

#[test]
fn protocol_md_examples_match_the_code() {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path).expect("read PROTOCOL.md");
    let in_doc = doc_examples(&doc);
    let update = std::env::var_os(UPDATE_VAR).is_some();

    let mut problems = Vec::new();
    let mut replacements = BTreeMap::new();
    let mut names = Vec::new();
    for (name, header, message) in examples() {
        names.push(name);
        let bytes = encode_example(&header, &message);
        let want = grouped_hex(&bytes, message.message_type());
        match in_doc.get(name) {
            None => problems.push(format!(
                "missing: add this line inside a ```text block of PROTOCOL.md:\n    example {name}: {want}"
            )),
            Some((line, got)) if normalize(got) != normalize(&want) => {
                problems.push(format!(
                    "PROTOCOL.md line {}: example {name} is stale\n    doc:  {got}\n    code: {want}",
                    line + 1
                ));
                replacements.insert(*line, format!("example {name}: {want}"));
            }
            Some(_) => {}
        }
    }
    for name in in_doc.keys() {
        if !names.contains(&name.as_str()) {
            problems.push(format!(
                "PROTOCOL.md has example {name}, which tests/common/mod.rs does not define"
            ));
        }
    }

    if update && !replacements.is_empty() {
        let mut lines: Vec<String> = doc.lines().map(String::from).collect();
        for (i, text) in &replacements {
            lines[*i] = text.clone();
        }
        let mut new_doc = lines.join("\n");
        new_doc.push('\n');
        std::fs::write(&path, new_doc).expect("write PROTOCOL.md");
        problems.retain(|p| !p.contains("is stale"));
    }
    assert!(
        problems.is_empty(),
        "PROTOCOL.md does not match the code:\n\n{}\n\nIf the change is intended, run\n    \
         {UPDATE_VAR}=1 cargo test -p onekey-protocol --test protocol_doc\nto rewrite the stale \
         lines (missing examples must be added by hand), then review the diff.",
        problems.join("\n\n")
    );
}

#[test]
fn protocol_md_examples_decode_and_verify_with_the_example_key() {
    let doc = std::fs::read_to_string(doc_path()).expect("read PROTOCOL.md");
    let by_name: BTreeMap<_, _> = examples()
        .into_iter()
        .map(|(n, h, m)| (n, (h, m)))
        .collect();
    for (name, (_, hex)) in doc_examples(&doc) {
        let bytes = hex::decode(normalize(&hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (unverified, used) = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(used, bytes.len(), "{name}: trailing bytes");
        let frame = unverified
            .verify(&KEY)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some((header, message)) = by_name.get(name.as_str()) {
            assert_eq!((&frame.header, &frame.message), (header, message), "{name}");
        }
    }
}

#[test]
fn the_doc_parser_sees_only_text_blocks() {
    let doc = "example a: 00\n```text\nexample b: 4f 4b\n```\n```rust\nexample c: 01\n```\n";
    let found = doc_examples(doc);
    assert_eq!(found.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(normalize(&found["b"].1), "4f4b");
}
