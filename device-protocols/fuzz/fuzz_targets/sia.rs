//! Arbitrary bytes through the DC-09 codec (in input-chosen chunks) and `parse`, with a keyed,
//! a plain and an unknown account, in lenient and strict mode.
//! The body is shared with the corpus replay test (`tests/fuzz_corpora.rs`).
#![no_main]

#[path = "../bodies/sia.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
