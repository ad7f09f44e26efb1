//! S12: the non-blocking take and `wait`'s timeout.

use std::io;
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use super::fds;
use super::{setup, PATIENCE, QUIET};
use crate::{Control, Interest, Poller};

/// S12: `poll` never blocks; `wait` returns at once when events are
/// pending, blocks until the timeout otherwise and then returns 0;
/// `wait(Some(0))` behaves as `poll`.
pub fn s12_non_blocking_take<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s12", new, 8);
    let efd = fds::eventfd().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    h.watch(QUIET);
    assert!(h.poll().is_empty(), "poll with nothing ready");
    assert!(
        h.wait(Some(Duration::ZERO)).is_empty(),
        "wait(0) with nothing ready"
    );
    let t = Duration::from_millis(100);
    let start = Instant::now();
    assert!(
        h.wait(Some(t)).is_empty(),
        "wait with nothing ready returns 0 on timeout"
    );
    assert!(
        start.elapsed() >= t,
        "wait returned before its timeout: {:?}",
        start.elapsed()
    );

    fds::fire(efd.as_fd()).unwrap();
    thread::sleep(QUIET);
    let start = Instant::now();
    let evs = h.wait(Some(Duration::from_secs(60)));
    assert!(evs.iter().any(|e| e.data() == 1), "pending event: {evs:?}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "wait blocked with an event pending"
    );
    fds::drain(efd.as_fd()).unwrap();

    fds::fire(efd.as_fd()).unwrap();
    // poll (never blocking) sees the event within a bounded number of calls.
    let deadline = Instant::now() + PATIENCE;
    loop {
        if h.poll().iter().any(|e| e.data() == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "poll never reported a fired fd");
        thread::sleep(Duration::from_millis(1));
    }
}
