//! Helpers shared by the stress tests: the poller variants and a skip with
//! a stated reason when this kernel lacks one.
#![allow(dead_code)]

use std::io;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use uring_poll::{Profile, UringPoll};
use userpoll::{Events, Poller};

/// Every variant the crate offers: each profile multishot, and re-arm mode.
pub fn variants() -> Vec<(String, Profile, bool)> {
    let mut v: Vec<_> = Profile::ALL
        .iter()
        .map(|&p| (p.name().to_owned(), p, false))
        .collect();
    v.push(("rearm".to_owned(), Profile::Default, true));
    v.push(("rearm-defer".to_owned(), Profile::Defer, true));
    v
}

/// A poller, or `None` after printing why this kernel cannot make it
/// (ENOSYS, EPERM: no io_uring; EOPNOTSUPP: setup flags it lacks).
pub fn make(what: &str, r: io::Result<UringPoll>) -> Option<UringPoll> {
    match r {
        Ok(p) => Some(p),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)
            ) =>
        {
            eprintln!("SKIPPED {what}: {e}");
            None
        }
        Err(e) => panic!("{what}: creating a poller failed: {e}"),
    }
}

/// Takes events until one for every data `0..n` arrived; panics, naming
/// `what` and the poller's counters, after 30 s.
pub fn take_all(what: &str, p: &mut UringPoll, events: &mut Events, n: usize) {
    let mut missing: HashSet<u64> = (0..n as u64).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} registrations lost their event; stats {:?}",
            missing.len(),
            p.stats()
        );
        p.wait(events, Some(Duration::from_millis(100))).unwrap();
        for e in events.iter() {
            assert!(e.is_readable(), "{what}: {e:?}");
            missing.remove(&e.data());
        }
    }
}
