//! `onekey-sim`: command-line front end of the simulators.

fn main() {
    eprintln!("onekey-sim: see `onekey demo` and the load harness in benches/");
}
