//! Records the exact versions of the crates `compare` measures or builds on
//! (from the workspace's Cargo.lock) so the JSON's `env` can name them.

fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let wanted = [
        "io-uring",
        "mio",
        "polling",
        "hdrhistogram",
        "libc",
        "userpoll",
        "epoll-ring",
        "uring-poll",
    ];
    let mut found = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                if wanted.contains(&n.as_str()) {
                    found.push(format!("{n}={}", v.trim_matches('"')));
                }
            }
        }
    }
    println!("cargo:rustc-env=COMPARE_DEP_VERSIONS={}", found.join(","));
}
