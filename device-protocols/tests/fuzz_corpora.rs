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

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    assert!(
        inputs.len() >= 10,
        "{target}: a corpus of {} inputs",
        inputs.len()
    );
    inputs.sort();
    for input in &inputs {
        run(input);
    }
    // A few mutations of the corpus: flipped bytes, cut and joined inputs.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2_000 {
        let a = &inputs[next() as usize % inputs.len()];
        let b = &inputs[next() as usize % inputs.len()];
        let mut m = a[..(next() as usize % (a.len() + 1))].to_vec();
        m.extend_from_slice(&b[(next() as usize % (b.len() + 1))..]);
        for _ in 0..(next() % 4) {
            if !m.is_empty() {
                let i = next() as usize % m.len();
                m[i] ^= 1 << (next() % 8);
            }
        }
        run(&m);
    }
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
