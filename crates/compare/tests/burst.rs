//! Burst rounds (the gate's cost scenarios): the writers fire the whole
//! round before the consumer takes any of it, so the batching no longer
//! depends on scheduling. And the writer threads' CPU, the load
//! generator's share of the process, is measured apart.

use compare::backends::BackendId;
use compare::fds::{FdKind, FdSet};
use compare::harness::{run_one, Handler, Workload};
use userpoll::Counter;

fn workload(burst: bool, writers: usize) -> Workload {
    Workload {
        fds: 600,
        active: 300,
        rounds: 40,
        warmup_rounds: 2,
        handler: Handler::Read,
        writers,
        burst,
        ..Workload::default()
    }
}

#[test]
fn a_burst_round_reaches_the_backend_as_one_batch() {
    for writers in [1, 3] {
        let w = workload(true, writers);
        let fds = FdSet::open(FdKind::Eventfd, w.sources()).unwrap();
        let o = run_one(BackendId::EpollEt, &w, &fds);
        assert!(!o.failed(), "{:?}", o.failure());
        assert_eq!(o.events, 40 * 300);
        // Every round was fully fired before the consumer looked: one
        // epoll_wait returns all 300 events (fewer than a batch of 1024).
        assert_eq!(
            o.backend.get(Counter::EpollWait),
            40,
            "{writers} writers: one wait per round"
        );
    }
}

#[test]
fn writer_cpu_is_measured_apart_and_is_part_of_the_process() {
    for burst in [false, true] {
        let w = workload(burst, 2);
        let fds = FdSet::open(FdKind::Eventfd, w.sources()).unwrap();
        let o = run_one(BackendId::Floor, &w, &fds);
        assert!(!o.failed(), "{:?}", o.failure());
        assert!(
            o.writer_cpu_ns > 0,
            "burst {burst}: writers made 12,000 writes"
        );
        assert!(
            o.writer_cpu_ns <= o.process_cpu_ns,
            "burst {burst}: writers {} ns > process {} ns",
            o.writer_cpu_ns,
            o.process_cpu_ns
        );
    }
}
