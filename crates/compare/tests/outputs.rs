//! Output paths are checked before anything is measured: a `--out` or
//! `--json` that cannot be written is a usage error (exit 2) that says
//! which option and why, and nothing is run; missing parent folders are
//! created.

mod common;

use common::{compare, text, tmp};

/// A tiny valid run, with the output options appended.
fn tiny(extra: &[&str]) -> std::process::Output {
    let mut all = vec![
        "run",
        "--backends",
        "epoll-et",
        "--fds",
        "16",
        "--active",
        "4",
        "--rounds",
        "3",
        "--reps",
        "1",
    ];
    all.extend_from_slice(extra);
    compare(&all)
}

#[test]
fn an_unwritable_out_folder_fails_with_exit_2_before_measuring() {
    let dir = tmp("out-unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.join("results");
    let o = tiny(&["--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--out") && err.contains(out.to_str().unwrap()),
        "the message names the option and the path: {err}"
    );
    // Nothing was measured: the summary table (printed after the runs) is
    // not there, and no run was reported.
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_json_path_fails_with_exit_2_before_measuring() {
    let dir = tmp("json-unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = dir.join("out");
    let json = file.join("r.json");
    let o = tiny(&[
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--json") && err.contains(json.to_str().unwrap()),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert!(
        !out.join("results.json").exists(),
        "no results written when an output path is bad"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_parent_folders_of_out_and_json_are_created() {
    let dir = tmp("parents");
    let out = dir.join("a/b/out");
    let json = dir.join("c/d/r.json");
    let o = tiny(&[
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("results.json").is_file());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["failed_runs"], 0);
    assert!(
        !out.join(".compare-write-check").exists(),
        "the write check leaves nothing behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
