//! The `decode` fuzz target, briefly, on the stable toolchain: every input of its committed corpus
//! (`fuzz/corpus/decode/`, grown and minimised by `scripts/fuzz.sh`), then 2,000 mutations of
//! them, through the very body libFuzzer runs (`fuzz/bodies/decode.rs`). A panic fails.

#[path = "../fuzz/bodies/decode.rs"]
mod decode;

#[path = "../../device-protocols/fuzz/bodies/replay.rs"]
mod corpus;

#[test]
fn decode_corpus() {
    corpus::replay(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"),
        "decode",
        decode::run,
    );
}
