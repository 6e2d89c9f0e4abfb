//! The fuzz targets, briefly, on the stable toolchain: every input of each target's committed
//! corpus (`fuzz/corpus/<target>/`, grown and minimised by `scripts/fuzz.sh`), then 2,000
//! mutations of them, through the very bodies libFuzzer runs (`fuzz/bodies/`). A panic fails.

#[path = "../fuzz/bodies/gt06.rs"]
mod gt06;
#[path = "../fuzz/bodies/h02.rs"]
mod h02;
#[path = "../fuzz/bodies/sia.rs"]
mod sia;
#[path = "../fuzz/bodies/watch.rs"]
mod watch;

#[path = "../fuzz/bodies/replay.rs"]
mod corpus;

fn replay(target: &str, run: fn(&[u8])) {
    corpus::replay(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"),
        target,
        run,
    );
}

#[test]
fn gt06_corpus() {
    replay("gt06", gt06::run);
}

#[test]
fn h02_corpus() {
    replay("h02", h02::run);
}

#[test]
fn sia_corpus() {
    replay("sia", sia::run);
}

#[test]
fn watch_corpus() {
    replay("watch", watch::run);
}
