//! S10 under a CQ overflow storm: a CQ of 64 entries, 10,000 registered
//! eventfds fired repeatedly. The kernel ends every multishot poll that
//! fires while its overflow list is non-empty; the poller must flush, re-arm
//! each one and lose no event. Its own process: it holds 10,000 fds.

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use uring_poll::UringPoll;
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

const N: usize = 10_000;

#[test]
fn s10_overflow_storm_cq64_10000_eventfds_loses_nothing() {
    let efds: Vec<OwnedFd> = (0..N).map(|_| fds::eventfd().unwrap()).collect();
    for (name, profile, rearm) in common::variants() {
        let b = UringPoll::builder()
            .profile(profile)
            .rearm(rearm)
            .cq_entries(64);
        let Some(mut p) = common::make(&name, b.build(N)) else {
            continue;
        };
        assert_eq!(p.cq_entries(), 64, "{name}");
        for (i, fd) in efds.iter().enumerate() {
            p.control()
                .add(fd.as_fd(), Interest::READABLE, i as u64)
                .unwrap();
        }
        let mut events = Events::with_capacity(256);
        for round in 0..3 {
            for _ in 0..3 {
                for fd in &efds {
                    fds::fire(fd.as_fd()).unwrap();
                }
            }
            common::take_all(&format!("{name} round {round}"), &mut p, &mut events, N);
            for fd in &efds {
                fds::drain(fd.as_fd()).unwrap();
            }
            // Take the leftovers (spurious events are allowed) so the next
            // round starts from armed, quiet registrations.
            while p
                .wait(&mut events, Some(Duration::from_millis(20)))
                .unwrap()
                > 0
            {}
        }
        let s = p.stats();
        eprintln!("{name}: {s:?}");
        if !rearm {
            // The storm did overflow the CQ, and multishot polls were
            // ended by it and re-armed (the kernel fact this relies on).
            assert!(
                s.get(Counter::OverflowRecoveries) > 0,
                "{name}: no overflow: {s:?}"
            );
            assert!(s.get(Counter::EnterFlush) > 0, "{name}: {s:?}");
            assert!(s.get(Counter::RearmOverflow) > 0, "{name}: {s:?}");
        }
        drop(p);
    }
}
