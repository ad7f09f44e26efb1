//! Every numeric option of `compare run` refuses a value outside its range
//! with exit 2, before anything runs, and the message names the option and
//! the range (never only one end of it).

mod common;

use common::{compare, text, tmp};

/// `compare run ARGS` must exit 2 with every one of `says` on stderr and
/// leave no results folder.
fn refused(args: &[&str], says: &[&str]) {
    let dir = tmp("ranges");
    let out = dir.join("out");
    let mut all = vec!["run", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = compare(&all);
    assert_eq!(o.status.code(), Some(2), "{all:?}:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for s in says {
        assert!(err.contains(s), "{all:?}: stderr should say {s:?}:\n{err}");
    }
    assert!(!out.exists(), "{all:?}: nothing runs on a usage error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fds_names_its_range_at_both_ends() {
    let range = "use 1 to 2147483647 fds";
    refused(&["--fds", "3000000000"], &["--fds 3000000000", range]);
    refused(&["--fds", "0"], &["--fds 0", range]);
    refused(
        &["--fds", "99999999999999999999999"],
        &["--fds", "too large", range],
    );
}

#[test]
fn active_names_its_range() {
    let range = "between 1 and --fds (10)";
    refused(&["--fds", "10", "--active", "0"], &["--active 0", range]);
    refused(&["--fds", "10", "--active", "11"], &["--active 11", range]);
}

#[test]
fn rounds_and_reps_name_their_ranges() {
    refused(&["--rounds", "0"], &["--rounds 0", "use 1 to 1000000000"]);
    refused(
        &["--rounds", "1000000001"],
        &["--rounds 1000000001", "use 1 to 1000000000"],
    );
    refused(&["--reps", "0"], &["--reps 0", "use 1 to 1000"]);
    refused(&["--reps", "1001"], &["--reps 1001", "use 1 to 1000"]);
}

#[test]
fn threads_name_their_ranges() {
    refused(&["--writers", "0"], &["--writers 0", "use 1 to 256"]);
    refused(&["--writers", "257"], &["--writers 257", "use 1 to 256"]);
    refused(&["--consumers", "0"], &["--consumers 0", "use 1 to 64"]);
    refused(&["--consumers", "65"], &["--consumers 65", "use 1 to 64"]);
}

#[test]
fn rate_duration_churn_and_spin_name_their_ranges() {
    let rate = "more than 0 and at most 1000000000";
    refused(&["--rate", "0"], &["--rate 0", rate]);
    refused(&["--rate", "2e9"], &["--rate 2000000000", rate]);
    let duration = "more than 0s and at most 86400s";
    refused(&["--duration", "0s"], &["--duration", duration]);
    refused(&["--duration", "2d"], &["unknown unit"]);
    refused(&["--duration", "90000s"], &["--duration 90000s", duration]);
    refused(
        &["--scenario", "churn", "--fds", "100", "--churn", "0"],
        &["--churn 0", "use 1 to 100"],
    );
    refused(
        &["--scenario", "churn", "--fds", "100", "--churn", "101"],
        &["--churn 101", "use 1 to 100"],
    );
    refused(
        &["--spin-ns", "10000001"],
        &["--spin-ns 10000001", "use 0 to 10000000"],
    );
}

#[test]
fn a_number_that_is_not_a_whole_number_says_so() {
    refused(&["--fds", "ten"], &["--fds", "not a whole number"]);
}
