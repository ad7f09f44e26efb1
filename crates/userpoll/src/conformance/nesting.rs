//! S11, S12 nested: the poller's [`Poller::pollable_fd`] in an outer epoll
//! set, as a program nesting the poller in another event loop uses it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::epoll;

use super::{fds, setup, Harness, PATIENCE};
use crate::sys::{duration_ms, EpollBuffer};
use crate::{Control, Poller};

/// An outer epoll instance holding one fd, level-triggered.
#[derive(Debug)]
pub struct Outer(OwnedFd);

impl Outer {
    /// An epoll set with `fd` in it for `EPOLLIN`.
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<Outer> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&ep, fd, epoll::EventData::new_u64(7), epoll::EventFlags::IN)?;
        Ok(Outer(ep))
    }

    /// Whether the fd became readable within `t`. An interrupted wait
    /// (EINTR: io_uring's completion work on this thread) waits again.
    pub fn ready(&self, t: Duration) -> bool {
        let deadline = Instant::now() + t;
        let mut buf = EpollBuffer::new(1);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match buf.wait(self.0.as_fd(), 1, duration_ms(left)) {
                Ok(got) => return got.len() > 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !left.is_zero() => {}
                Err(e) => panic!("the outer epoll_wait failed: {e}"),
            }
        }
    }
}

/// Waits on `outer` and takes with `poll` (never `wait`), as a nested loop
/// does, until an event with `data` arrives.
fn nested_expect<P: Poller>(h: &mut Harness<P>, outer: &Outer, data: u64, why: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "nested: no event for data {data} within {PATIENCE:?}: {why}"
        );
        if outer.ready(left) {
            // The fd is edge-like: take until a take comes back empty.
            loop {
                let evs = h.poll();
                if evs.iter().any(|e| e.data() == data) {
                    return;
                }
                if evs.is_empty() {
                    break;
                }
            }
        }
    }
}

/// S11, S12 nested: with the poller's `pollable_fd()` in an outer epoll
/// set, a fire from another thread makes it readable and a `poll` then
/// returns the event; once everything is taken it goes quiet (no busy
/// outer loop); an `add` of a ready fd and a `wake` from other threads,
/// made while the owner is blocked in the outer loop, wake it. A backend
/// without such an fd (EOPNOTSUPP) is skipped with a printed reason.
pub fn s11_nested_in_another_epoll<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s11", new, 8);
    let efd = fds::eventfd().unwrap();
    h.control()
        .add(efd.as_fd(), crate::Interest::READABLE, 1)
        .unwrap();
    h.poll(); // the owner takes once first, as a program does before nesting
    let outer = match h.poller.pollable_fd() {
        Ok(fd) => Outer::new(fd).unwrap(),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            eprintln!("SKIPPED s11 nested: this backend gives no pollable fd: {e}");
            return;
        }
        Err(e) => panic!("pollable_fd failed: {e}"),
    };
    while !h.poll().is_empty() {}

    let fire = {
        let efd = efd.try_clone().unwrap();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            fds::fire(efd.as_fd()).unwrap();
        })
    };
    nested_expect(&mut h, &outer, 1, "fired from another thread");
    fire.join().unwrap();
    fds::drain(efd.as_fd()).unwrap();

    // Quiet once taken: a few spurious readinesses at most.
    let mut quiet = false;
    for _ in 0..5 {
        if !outer.ready(Duration::from_millis(30)) {
            quiet = true;
            break;
        }
        while !h.poll().is_empty() {}
    }
    assert!(quiet, "the poller's fd stays readable with nothing to take");

    // An add of a ready fd from another thread while the owner is blocked
    // in the outer loop (S11, S4).
    let ready = fds::eventfd().unwrap();
    fds::fire(ready.as_fd()).unwrap();
    let adder = {
        let ctl = h.control().clone();
        let ready = ready.try_clone().unwrap();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            ctl.add(ready.as_fd(), crate::Interest::READABLE, 2)
                .unwrap();
        })
    };
    nested_expect(&mut h, &outer, 2, "added, ready, from another thread");
    adder.join().unwrap();
    // Drained, as a handler does (a re-arm backend reports a ready fd at
    // every take).
    fds::drain(ready.as_fd()).unwrap();
    while !h.poll().is_empty() {}

    // A wake from another thread reaches the outer loop, and is no event.
    let waker = {
        let ctl = h.control().clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            ctl.wake().unwrap();
        })
    };
    assert!(outer.ready(PATIENCE), "a wake did not reach the outer loop");
    waker.join().unwrap();
    let evs = h.poll();
    assert!(evs.is_empty(), "a wake became events: {evs:?}");
}
