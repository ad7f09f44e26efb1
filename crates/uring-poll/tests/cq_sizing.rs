//! The default CQ (twice the capacity, plus 64) holds what a full capacity
//! of ready registrations posts: each fd fired twice before the first take
//! (two wake-ups, so up to two CQEs each under multishot) overflows
//! nothing, in every variant. A smaller CQ would (overflow_storm.rs shows
//! the recovery then). Its own process: it holds 4,096 fds.

mod common;

use std::os::fd::{AsFd, OwnedFd};

use uring_poll::UringPoll;
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

const N: usize = 4096;

#[test]
fn s10_a_full_capacity_of_ready_fds_fired_twice_never_overflows_the_default_cq() {
    userpoll::sys::raise_fd_limit().unwrap();
    let efds: Vec<OwnedFd> = (0..N).map(|_| fds::eventfd().unwrap()).collect();
    for (name, profile, rearm) in common::variants() {
        let b = UringPoll::builder().profile(profile).rearm(rearm);
        let Some(mut p) = common::make(&name, b.build(N)) else {
            continue;
        };
        assert!(
            p.cq_entries() as usize >= 2 * N,
            "{name}: {}",
            p.cq_entries()
        );
        for (i, fd) in efds.iter().enumerate() {
            p.control()
                .add(fd.as_fd(), Interest::READABLE, i as u64)
                .unwrap();
        }
        let mut events = Events::with_capacity(1024);
        // Arm everything first (Defer arms at the first take).
        p.poll(&mut events).unwrap();
        assert!(events.is_empty(), "{name}: events before any fire");
        for _ in 0..2 {
            for fd in &efds {
                fds::fire(fd.as_fd()).unwrap();
            }
        }
        common::take_all(&name, &mut p, &mut events, N);
        let s = p.stats();
        assert_eq!(
            s.get(Counter::OverflowRecoveries),
            0,
            "{name}: the default CQ of {} overflowed; stats {s:?}",
            p.cq_entries()
        );
        for fd in &efds {
            fds::drain(fd.as_fd()).unwrap();
        }
    }
}
