//! S11: control from any thread.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::fds;
use super::{setup, QUIET};
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
