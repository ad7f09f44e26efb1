//! The `compare` command: see `compare --help` and `docs/compare.md`.

fn main() {
    std::process::exit(compare::cli::main());
}
