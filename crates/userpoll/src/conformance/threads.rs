//! S11: control from any thread.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::fds;
use super::{setup, PATIENCE, QUIET};
use crate::{Control, Event, Interest, Poller};

/// S11: `add`, `modify` and `delete` from another thread take effect while
/// the consumer is blocked in `wait`, without it waking by itself.
pub fn s11_control_from_any_thread<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s11", new, 8);
    let efd = Arc::new(fds::eventfd().unwrap());
    fds::fire(efd.as_fd()).unwrap();
    let long = Duration::from_secs(60);

    // add from another thread while we block: the ready fd must wake us.
    let ctl = h.control().clone();
    let barrier = Arc::new(Barrier::new(2));
    let t = {
        let (efd, barrier) = (efd.clone(), barrier.clone());
        thread::spawn(move || {
            barrier.wait();
            thread::sleep(Duration::from_millis(50));
            ctl.add(efd.as_fd(), Interest::READABLE, 1).unwrap();
            ctl
        })
    };
    barrier.wait();
    let start = Instant::now();
    let evs = h.wait(Some(long));
    let ctl = t.join().unwrap();
    assert!(
        evs.iter().any(|e| e.data() == 1),
        "wait returned {evs:?} after {:?} without the event of a cross-thread add",
        start.elapsed()
    );
    assert!(
        start.elapsed() < long / 2,
        "the add did not wake the waiter"
    );

    // modify from another thread while we block: new data wakes us.
    let t = {
        let (efd, ctl) = (efd.clone(), ctl.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            ctl.modify(efd.as_fd(), Interest::READABLE, 2).unwrap();
        })
    };
    let start = Instant::now();
    let mut got = Vec::new();
    while !got.iter().any(|e: &Event| e.data() == 2) && start.elapsed() < long / 2 {
        got.extend(h.wait(Some(long)));
    }
    t.join().unwrap();
    assert!(
        got.iter().any(|e| e.data() == 2),
        "no event after cross-thread modify: {got:?}"
    );
    assert!(!got
        .iter()
        .skip_while(|e| e.data() != 2)
        .any(|e| e.data() == 1));

    // delete from another thread while we block; then fire: nothing for it.
    let t = {
        let (efd, ctl) = (efd.clone(), ctl.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            ctl.delete(efd.as_fd()).unwrap();
            fds::fire(efd.as_fd()).unwrap();
        })
    };
    let evs = h.watch(Duration::from_millis(50) + QUIET);
    t.join().unwrap();
    let after = h.watch(QUIET);
    assert!(
        after.iter().all(|e| e.data() != 2),
        "event after cross-thread delete: {evs:?} {after:?}"
    );

    // Control from many threads at once keeps the table consistent.
    let fdsets: Vec<Vec<OwnedFd>> = (0..4)
        .map(|_| (0..2).map(|_| fds::eventfd().unwrap()).collect())
        .collect();
    thread::scope(|s| {
        for (t, set) in fdsets.iter().enumerate() {
            let ctl = ctl.clone();
            s.spawn(move || {
                for _ in 0..50 {
                    for (i, fd) in set.iter().enumerate() {
                        ctl.add(fd.as_fd(), Interest::READABLE, (10 * t + i) as u64)
                            .unwrap();
                    }
                    for fd in set {
                        ctl.delete(fd.as_fd()).unwrap();
                    }
                }
            });
        }
    });
    h.watch(QUIET);
    for set in &fdsets {
        for fd in set {
            fds::fire(fd.as_fd()).unwrap();
        }
    }
    let evs = h.watch(QUIET);
    assert!(
        evs.is_empty(),
        "events for registrations all deleted: {evs:?}"
    );
}

/// S11, S12: [`Control::wake`] from another thread ends a `wait(None)`
/// blocked on the poller, with no events; a wake made while nobody waits
/// ends the next `wait` at once; a wake with an event pending returns the
/// event; and a wake is never an event itself (many wakes while the owner
/// takes deliver nothing and count no event).
pub fn s12_wake_ends_a_blocked_wait<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s12", new, 4);
    let efd = fds::eventfd().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    h.poll();
    // Blocked (for PATIENCE, standing in for no limit, so that a broken
    // wake fails instead of hanging), woken from another thread.
    let ctl = h.control().clone();
    let waker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        ctl.wake().unwrap();
    });
    let t = Instant::now();
    let evs = h.wait(Some(PATIENCE));
    waker.join().unwrap();
    assert!(
        t.elapsed() < PATIENCE / 2,
        "a wake from another thread did not end a blocked wait"
    );
    assert!(evs.is_empty(), "a wake became events: {evs:?}");
    // A wake before the wait: the wait returns without waiting its time.
    h.control().wake().unwrap();
    h.control().wake().unwrap();
    let t = Instant::now();
    let evs = h.wait(Some(PATIENCE));
    assert!(
        t.elapsed() < PATIENCE / 2,
        "a wake made before wait did not end it"
    );
    assert!(evs.is_empty(), "{evs:?}");
    // A wake with an event pending: the event comes.
    fds::fire(efd.as_fd()).unwrap();
    h.control().wake().unwrap();
    let (ev, _) = h.expect(1, "fired, then woken");
    assert!(ev.is_readable());
    fds::drain(efd.as_fd()).unwrap();
    h.watch(Duration::from_millis(20));
    // Many wakes while the owner takes: no event, none counted.
    let before = h.poller.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let waker = {
        let ctl = h.control().clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 2000 {
                ctl.wake().unwrap();
                n += 1;
            }
        })
    };
    let evs = h.watch(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    waker.join().unwrap();
    assert!(
        evs.is_empty(),
        "wakes became events: {:?}",
        &evs[..evs.len().min(8)]
    );
    let delivered = (h.poller.stats() - before).get(crate::Counter::EventsDelivered);
    assert_eq!(delivered, 0, "wakes were counted as events");
}
