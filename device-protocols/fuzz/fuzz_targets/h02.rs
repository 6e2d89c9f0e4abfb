//! Arbitrary bytes through the H02 codec (in input-chosen chunks) and `parse`.
//! The body is shared with the corpus replay test (`tests/fuzz_corpora.rs`).
#![no_main]

#[path = "../bodies/h02.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
