//! The counters say what each driver mode costs: system calls on each
//! side, events published and taken, coalesced fires, spins before parking.
#![cfg(not(loom))] // Loom builds run only tests/loom.rs.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use epoll_ring::{DriverMode, EpollRing, SPINS_BEFORE_PARK};
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller, Stats};

fn wait_for(p: &EpollRing, what: &str, f: impl Fn(&Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f(&p.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            p.stats()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

fn eventfds(n: usize) -> Vec<OwnedFd> {
    (0..n).map(|_| fds::eventfd().unwrap()).collect()
}

#[test]
fn thread_mode_takes_flowing_events_without_any_system_call() {
    let mut p = EpollRing::new(64).unwrap();
    let efds = eventfds(64);
    for (i, fd) in efds.iter().enumerate() {
        p.control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
    }
    for fd in &efds {
        fds::fire(fd.as_fd()).unwrap();
    }
    wait_for(&p, "64 events published", |s| {
        s.get(Counter::EventsPublished) == 64
    });
    // Let the driver go back into epoll_wait before we snapshot.
    thread::sleep(Duration::from_millis(50));
    let before = p.stats();
    let mut events = Events::with_capacity(8);
    let mut seen = HashSet::new();
    while seen.len() < 64 {
        let n = p.poll(&mut events).unwrap();
        assert!(n > 0, "published events must be in the ring");
        seen.extend(events.iter().map(|e| e.data()));
    }
    let d = p.stats() - before;
    // The consumer's only possible system call is futex_wait. The driver
    // counts its epoll_wait just before making it, so if it was slow to go
    // back to sleep after publishing, one epoll_wait may land in the window.
    assert_eq!(d.get(Counter::FutexWait), 0, "the consumer parked: {d:?}");
    assert!(
        d.syscalls() <= 1 && d.get(Counter::EpollWait) == d.syscalls(),
        "taking published events made system calls: {d:?}"
    );
    assert_eq!(d.get(Counter::EventsDelivered), 64);
    assert_eq!(d.get(Counter::SpinsBeforePark), 0);
}

#[test]
fn thread_mode_wakes_only_a_parked_consumer() {
    let mut p = EpollRing::new(8).unwrap();
    let efd = fds::eventfd().unwrap();
    p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();

    // Nobody waits: the driver publishes without a wake system call.
    fds::fire(efd.as_fd()).unwrap();
    wait_for(&p, "the first event published", |s| {
        s.get(Counter::EventsPublished) == 1
    });
    let s = p.stats();
    assert_eq!(
        s.get(Counter::FutexWake),
        0,
        "woke with nobody parked: {s:?}"
    );
    let mut events = Events::with_capacity(8);
    assert_eq!(p.poll(&mut events).unwrap(), 1);
    fds::drain(efd.as_fd()).unwrap();

    // A consumer parks; a fire from another thread wakes it with one wake.
    let before = p.stats();
    let efd2 = efd.try_clone().unwrap();
    let t = thread::spawn(move || {
        // Long enough for the consumer to spin and park.
        thread::sleep(Duration::from_millis(300));
        fds::fire(efd2.as_fd()).unwrap();
    });
    let n = p.wait(&mut events, Some(Duration::from_secs(10))).unwrap();
    t.join().unwrap();
    assert_eq!(n, 1);
    let d = p.stats() - before;
    assert!(d.get(Counter::FutexWait) >= 1, "{d:?}");
    assert!(d.get(Counter::FutexWake) >= 1, "{d:?}");
    assert!(
        d.get(Counter::SpinsBeforePark) >= SPINS_BEFORE_PARK,
        "{d:?}"
    );
}

/// Thread mode only: the inline driver runs only when the ring is empty,
/// so there a fire meets a queued item only if another consumer left one.
#[test]
fn s03_fires_on_a_queued_item_are_counted_as_coalesced() {
    let mut p = EpollRing::with_mode(8, DriverMode::Thread).unwrap();
    let efd = fds::eventfd().unwrap();
    p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    let mut events = Events::with_capacity(8);
    fds::fire(efd.as_fd()).unwrap();
    wait_for(&p, "published", |s| s.get(Counter::EventsPublished) == 1);
    fds::fire(efd.as_fd()).unwrap();
    wait_for(&p, "coalesced", |s| s.get(Counter::FiresCoalesced) >= 1);
    assert_eq!(p.poll(&mut events).unwrap(), 1, "two fires, one event");
    assert_eq!(p.poll(&mut events).unwrap(), 0);
    assert_eq!(p.stats().get(Counter::EventsPublished), 1);
}

#[test]
fn inline_mode_runs_the_driver_only_on_an_empty_ring() {
    let mut p = EpollRing::with_mode(8, DriverMode::Inline).unwrap();
    let efds = eventfds(3);
    for (i, fd) in efds.iter().enumerate() {
        p.control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
        fds::fire(fd.as_fd()).unwrap();
    }
    let mut one = Events::with_capacity(1);
    let before = p.stats();
    assert_eq!(p.wait(&mut one, Some(Duration::from_secs(5))).unwrap(), 1);
    let d = p.stats() - before;
    assert_eq!(d.get(Counter::EpollWait), 1, "one driver round: {d:?}");
    assert_eq!(d.get(Counter::EventsPublished), 3);
    // The other two are in the ring: taken with no system call.
    let before = p.stats();
    assert_eq!(p.poll(&mut one).unwrap(), 1);
    assert_eq!(p.poll(&mut one).unwrap(), 1);
    let d = p.stats() - before;
    assert_eq!(d.syscalls(), 0, "{d:?}");
    assert_eq!(d.get(Counter::EventsDelivered), 2);
    assert_eq!(d.get(Counter::FutexWait) + d.get(Counter::FutexWake), 0);
}
