//! The `decode` fuzz target, briefly, on the stable toolchain: every input of its committed corpus
//! (`fuzz/corpus/decode/`, grown and minimised by `scripts/fuzz.sh`), then 2,000 mutations of
//! them, through the very body libFuzzer runs (`fuzz/bodies/decode.rs`). A panic fails.

#[path = "../fuzz/bodies/decode.rs"]
mod decode;

#[test]
fn decode_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    assert!(inputs.len() >= 10, "a corpus of {} inputs", inputs.len());
    inputs.sort();
    for input in &inputs {
        decode::run(input);
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2_000 {
        let a = &inputs[next() as usize % inputs.len()];
        let mut m = a.clone();
        for _ in 0..(1 + next() % 3) {
            if !m.is_empty() {
                let i = next() as usize % m.len();
                m[i] ^= 1 << (next() % 8);
            }
        }
        m.truncate(next() as usize % (m.len() + 1) + m.len() / 2);
        decode::run(&m);
    }
}
