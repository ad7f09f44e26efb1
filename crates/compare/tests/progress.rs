//! Progress: the harness counts every round of a run as it goes (what the
//! progress bar shows within a run), and nothing is drawn when stderr is
//! not a terminal.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::{compare, text, tmp};
use compare::backends::BackendId;
use compare::fds::{FdKind, FdSet};
use compare::harness::{run_one_counting, Workload};

#[test]
fn every_round_of_a_run_is_counted_warm_up_included() {
    let w = Workload {
        fds: 64,
        active: 8,
        rounds: 30,
        warmup_rounds: 4,
        ..Workload::default()
    };
    let fds = FdSet::open(FdKind::Eventfd, w.sources()).unwrap();
    let done = AtomicU64::new(100);
    let o = run_one_counting(BackendId::EpollEt, &w, &fds, Some(&done));
    assert!(!o.failed(), "{:?}", o.failure());
    assert_eq!(done.load(Ordering::Relaxed), 100 + 4 + 30);
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let dir = tmp("progress");
    let out = dir.join("out");
    let o = compare(&[
        "run",
        "--backends",
        "floor,epoll-et",
        "--fds",
        "64",
        "--active",
        "8",
        "--rounds",
        "50",
        "--reps",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("ETA") && !err.contains("elapsed") && !err.contains('\r'),
        "stderr is a pipe here, so no bar: {err:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
