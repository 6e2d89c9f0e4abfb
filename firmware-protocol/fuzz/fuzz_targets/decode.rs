//! Arbitrary bytes through the receive path: `frame_len`, `decode`, `verify`. Nothing may panic, and
//! the answers must agree with each other.
//! The body is shared with the corpus replay test (`tests/fuzz_corpora.rs`).
#![no_main]

#[path = "../bodies/decode.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
