//! The data path (`uring-read`) through the harness: the handler makes no
//! `read` after its events (the kernel consumed the data), takes the bytes
//! it was handed instead, and the run's checks stay exact (every fire
//! delivered once, nothing spurious), over every fd kind. `--handler none`
//! is refused for it by name, and it is skipped from the default list.
//! Real fds, real rings; skipped with the reason when the kernel lacks
//! READ_MULTISHOT.

mod common;

use common::{compare, text, tmp, usage_error};
use compare::backends::{availability, BackendId};
use compare::fds::{FdKind, FdSet};
use compare::harness::{run_one, Workload};

fn skipped() -> bool {
    match availability(BackendId::UringRead) {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipped: {why}");
            true
        }
    }
}

#[test]
fn the_handler_reads_nothing_and_gets_every_fire_s_data_over_every_fd_kind() {
    if skipped() {
        return;
    }
    for kind in FdKind::ALL {
        let w = Workload {
            fds: 200,
            active: 50,
            rounds: 20,
            warmup_rounds: 2,
            ..Workload::default()
        };
        let fds = FdSet::open(kind, w.sources()).unwrap();
        for id in [BackendId::UringRaw, BackendId::UringRead] {
            let o = run_one(id, &w, &fds);
            assert!(!o.failed(), "{id} {kind:?}: {:?}", o.failure());
            assert_eq!(o.events, 1000, "{id} {kind:?}");
            assert_eq!(o.spurious, 0, "{id} {kind:?}");
            let unit = if kind == FdKind::Eventfd { 8 } else { 1 };
            assert_eq!(
                o.handler_bytes,
                1000 * unit,
                "{id} {kind:?}: every fire's data"
            );
            if id == BackendId::UringRead {
                assert_eq!(o.handler_reads, 0, "{kind:?}: no read after an event");
                // The consuming side's calls are the backend's enters only.
                assert_eq!(
                    o.consumer_syscalls(),
                    o.backend.syscalls() + o.consumer_other,
                    "{kind:?}"
                );
            } else {
                assert!(o.handler_reads >= 1000, "{id} {kind:?}: a read per event");
            }
        }
        assert_eq!(
            fds.drain_all(),
            fds.len() as u64,
            "{kind:?}: nothing left behind"
        );
    }
}

#[test]
fn handler_none_is_refused_by_name_for_the_data_path() {
    usage_error(
        &[
            "--backends",
            "epoll-et,uring-read",
            "--handler",
            "none",
            "--fds",
            "10",
            "--active",
            "2",
        ],
        &[
            "uring-read",
            "--handler none",
            "cannot notify without reading",
        ],
    );
}

#[test]
fn handler_none_skips_the_data_path_from_the_default_list_with_a_note() {
    if skipped() {
        return;
    }
    let dir = tmp("none-default");
    let out = dir.join("out");
    let o = compare(&[
        "run",
        "--out",
        out.to_str().unwrap(),
        "--handler",
        "none",
        "--fds",
        "20",
        "--active",
        "2",
        "--rounds",
        "2",
        "--reps",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("skipping uring-read with --handler none: it reads the data"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
