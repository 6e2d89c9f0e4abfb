//! Arbitrary bytes as a JSON uplink on MQTT: parse, verify, sign, and the event it makes.
//! The body is shared with the corpus replay test (`tests/fuzz_corpora.rs`).
#![no_main]

#[path = "../bodies/json_uplink.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
