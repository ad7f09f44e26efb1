//! Rules about delivering events: S1 persistent registration, S2 edge
//! delivery, S3 coalescing, S4 readiness at arm time, S10 no loss under
//! bursts.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::fds;
use super::{make, setup, Harness, PATIENCE, QUIET};
use crate::bits::{IN, OUT, RDHUP};
use crate::{Control, Interest, Poller};

/// S1: after `add`, a registration keeps delivering events with no action by
/// the caller after each event.
pub fn s01_persistent_registration<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s01", new, 8);
    let efd = fds::eventfd().unwrap();
    let (r, w) = fds::pipe().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    h.control().add(r.as_fd(), Interest::READABLE, 2).unwrap();
    for round in 0..20 {
        fds::fire(efd.as_fd()).unwrap();
        fds::write(w.as_fd(), b"x").unwrap();
        let evs = h.expect_all(
            &HashSet::from([1, 2]),
            &format!("round {round} without re-arm"),
        );
        assert!(evs.iter().all(|e| e.is_readable()), "{evs:?}");
        fds::drain(efd.as_fd()).unwrap();
        fds::drain(r.as_fd()).unwrap();
    }
    let ops = h.poller.stats().get(crate::Counter::ControlOps);
    assert_eq!(ops, 2, "S1: the caller made only the two adds, no re-arm");
}

/// S2: every fire after `add` returns is followed by an event whose mask
/// holds the fired bits, for many registrations and fires from another
/// thread.
pub fn s02_edge_delivery_at_least_once<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    const N: usize = 64;
    let mut h = setup!("s02", new, N + 2);
    let efds: Vec<OwnedFd> = (0..N).map(|_| fds::eventfd().unwrap()).collect();
    for (i, fd) in efds.iter().enumerate() {
        h.control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
    }
    let (a, b) = fds::socketpair().unwrap();
    h.control()
        .add(a.as_fd(), Interest::READABLE | Interest::READ_HANGUP, 1000)
        .unwrap();
    let want: HashSet<u64> = (0..N as u64).collect();
    for round in 0..10 {
        // Fire from another thread, after add returned.
        thread::scope(|s| {
            s.spawn(|| {
                for fd in &efds {
                    fds::fire(fd.as_fd()).unwrap();
                }
            });
        });
        let evs = h.expect_all(
            &want,
            &format!("round {round}: eventfd fires from another thread"),
        );
        for e in evs.iter().filter(|e| e.data() < N as u64) {
            assert!(e.ready().contains(IN), "eventfd event without IN: {e:?}");
        }
        for fd in &efds {
            fds::drain(fd.as_fd()).unwrap();
        }
    }
    fds::write(b.as_fd(), b"hello").unwrap();
    let (ev, _) = h.expect(1000, "socket data");
    assert!(ev.ready().contains(IN), "{ev:?}");
    fds::drain(a.as_fd()).unwrap();
    fds::shutdown_write(b.as_fd()).unwrap();
    let (ev, _) = h.expect(1000, "peer shut down its writing half");
    assert!(
        ev.ready().contains(RDHUP),
        "hang-up fire without RDHUP: {ev:?}"
    );
}

/// S3: fires of one registration before the caller takes its event become
/// one event with the OR of their masks; no call returns two events for one
/// registration (checked on every call by [`Harness`]).
pub fn s03_coalescing<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s03", new, 40);
    let efd = fds::eventfd().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 7).unwrap();
    for _ in 0..50 {
        fds::fire(efd.as_fd()).unwrap();
    }
    // Let every fire reach the backend (a driver thread, a CQ) before taking.
    thread::sleep(QUIET);
    let evs = h.wait(Some(PATIENCE));
    let mine: Vec<_> = evs.iter().filter(|e| e.data() == 7).collect();
    assert_eq!(
        mine.len(),
        1,
        "50 fires before one take must be one event: {evs:?}"
    );

    // Two different bits before one take: one event with both.
    let (a, b) = fds::socketpair().unwrap();
    h.control()
        .add(a.as_fd(), Interest::READABLE | Interest::READ_HANGUP, 8)
        .unwrap();
    fds::write(b.as_fd(), b"x").unwrap();
    fds::shutdown_write(b.as_fd()).unwrap();
    thread::sleep(QUIET);
    let mut mask = 0;
    let deadline = Instant::now() + PATIENCE;
    while mask & (IN | RDHUP) != IN | RDHUP && Instant::now() < deadline {
        for e in h.wait(Some(Duration::from_millis(100))) {
            if e.data() == 8 {
                mask |= e.ready().bits();
            }
        }
    }
    assert_eq!(
        mask & (IN | RDHUP),
        IN | RDHUP,
        "the OR of the fired bits must arrive"
    );

    // Many fds fired repeatedly from another thread while we take: the
    // one-call rule is checked on every take.
    let efds: Vec<OwnedFd> = (0..32).map(|_| fds::eventfd().unwrap()).collect();
    for (i, fd) in efds.iter().enumerate() {
        h.control()
            .add(fd.as_fd(), Interest::READABLE, 100 + i as u64)
            .unwrap();
    }
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..200 {
                for fd in &efds {
                    fds::fire(fd.as_fd()).unwrap();
                }
            }
            stop.store(true, Ordering::Release);
        });
        while !stop.load(Ordering::Acquire) {
            h.wait(Some(Duration::from_millis(50)));
        }
    });
    h.watch(QUIET);
}

/// S4: an fd that is ready when `add` or `modify` returns gets an event
/// without a further fire.
pub fn s04_readiness_at_arm_time<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s04", new, 8);
    let efd = fds::eventfd().unwrap();
    fds::fire(efd.as_fd()).unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    let (ev, _) = h.expect(1, "eventfd readable before add");
    assert!(ev.ready().contains(IN), "{ev:?}");

    let (a, _b) = fds::socketpair().unwrap();
    h.control().add(a.as_fd(), Interest::WRITABLE, 2).unwrap();
    let (ev, _) = h.expect(2, "socket writable before add");
    assert!(ev.ready().contains(OUT), "{ev:?}");

    // Still ready (never drained): modify must report it again, new data.
    h.watch(QUIET);
    h.control()
        .modify(efd.as_fd(), Interest::READABLE, 3)
        .unwrap();
    let (ev, _) = h.expect(3, "eventfd still readable at modify");
    assert!(ev.ready().contains(IN), "{ev:?}");
}

/// S10: a burst larger than any internal queue loses no event: every
/// registration fired gets an event, burst after burst, with a small
/// events buffer.
pub fn s10_no_loss_under_bursts<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    const N: usize = 2048;
    let Some(p) = make("s10", new, N) else { return };
    let mut h = Harness::new(p, 64);
    let efds: Vec<OwnedFd> = (0..N).map(|_| fds::eventfd().unwrap()).collect();
    for (i, fd) in efds.iter().enumerate() {
        h.control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
    }
    let want: HashSet<u64> = (0..N as u64).collect();
    for burst in 0..4 {
        for _ in 0..4 {
            for fd in &efds {
                fds::fire(fd.as_fd()).unwrap();
            }
        }
        h.expect_all(&want, &format!("burst {burst}: {N} fds fired 4 times each"));
        for fd in &efds {
            fds::drain(fd.as_fd()).unwrap();
        }
        h.watch(Duration::from_millis(20));
    }
}
