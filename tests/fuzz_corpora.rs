//! The server crate's fuzz targets, briefly, on the stable toolchain: every input of their
//! committed corpora (`fuzz/corpus/<target>/`, grown and minimised by `scripts/fuzz.sh`), then
//! 2,000 mutations of them, through the very body libFuzzer runs (`fuzz/bodies/`). A panic fails.

#[path = "../fuzz/bodies/json_uplink.rs"]
mod json_uplink;

#[path = "../fuzz/bodies/import.rs"]
mod import;

#[path = "../device-protocols/fuzz/bodies/replay.rs"]
mod corpus;

#[test]
fn json_uplink_corpus() {
    corpus::replay(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"),
        "json_uplink",
        json_uplink::run,
    );
}

#[test]
fn import_corpus() {
    corpus::replay(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"),
        "import",
        import::run,
    );
}
