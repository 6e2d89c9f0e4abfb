//! Replays a fuzz target's committed corpus and 2,000 mutations of it through the target's body,
//! on the stable toolchain. Shared by the crates' `tests/fuzz_corpora.rs`.

use std::path::Path;

/// Runs `run` over every input in `corpus/<target>/` under `fuzz_dir`, then over mutations of them.
pub fn replay(fuzz_dir: &Path, target: &str, run: fn(&[u8])) {
    let dir = fuzz_dir.join("corpus").join(target);
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
