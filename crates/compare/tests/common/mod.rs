//! Helpers shared by the `compare` binary's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty folder under the system temp dir, unique to this process
/// and to this call (tests of one binary run in parallel).
pub fn tmp(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("compare-test-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the built `compare` binary with `args`.
pub fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(args)
        .output()
        .expect("run compare")
}

/// Runs `compare run --out DIR ARGS` and checks that it fails as a usage
/// error: exit 2, every string of `says` on stderr, and no results folder.
pub fn usage_error(args: &[&str], says: &[&str]) {
    let dir = tmp("usage");
    let out = dir.join("out");
    let mut all = vec!["run", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = compare(&all);
    assert_eq!(o.status.code(), Some(2), "{all:?}:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for s in says {
        assert!(err.contains(s), "{all:?}: stderr should say {s:?}:\n{err}");
    }
    assert!(!out.exists(), "{all:?}: no results on a usage error");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
