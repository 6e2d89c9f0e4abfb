//! Arbitrary bytes through the GT06 codec (in input-chosen chunks) and `parse`, before and after a
//! login so that every packet decoder is reached.
//! The body is shared with the corpus replay test (`tests/fuzz_corpora.rs`).
#![no_main]

#[path = "../bodies/gt06.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
