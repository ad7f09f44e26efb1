//! The lifetime of registrations and pollers: S13 closing a registered
//! fd, S14 clean drop (run in a child process, see [`super::child`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use super::fds;
use super::{child, make, setup, Harness, PATIENCE};
use crate::{Control, Interest, Poller};

/// S13: closing a registered fd without `delete` is safe: no event for a
/// new fd that reuses the number; the old registration holds the number
/// (`add` gives EEXIST) until `delete`, after which the number registers
/// afresh.
pub fn s13_closing_a_registered_fd<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s13", new, 8);
    let a = fds::eventfd().unwrap();
    let num = a.as_raw_fd();
    h.control().add(a.as_fd(), Interest::READABLE, 1).unwrap();
    fds::fire(a.as_fd()).unwrap();
    h.expect(1, "before close");
    // Drained, so the old file has nothing to report: under io_uring the
    // poll request keeps the closed file alive, and a backend that re-arms
    // a still-readable file would report it again, legitimately (S13).
    fds::drain(a.as_fd()).unwrap();
    drop(a);
    // Put a new eventfd at the same number.
    let b = fds::eventfd().unwrap();
    let b = if b.as_raw_fd() == num {
        b
    } else {
        // Stays on libc: rustix's dup3 needs an OwnedFd at the target number,
        // and `num` is closed.
        // SAFETY: dup3 onto `num`, which is closed; the result is owned here.
        let r =
            unsafe { crate::syscall!(dup3(b.as_raw_fd(), num, libc::O_CLOEXEC)) }.expect("dup3");
        // SAFETY: r == num is a new fd nothing else owns.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) }
    };
    assert_eq!(b.as_raw_fd(), num);
    fds::fire(b.as_fd()).unwrap();
    h.expect_none(1, "a new fd reusing the number of a closed registered fd");
    let e = h
        .control()
        .add(b.as_fd(), Interest::READABLE, 2)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");
    h.control().delete(b.as_fd()).unwrap();
    h.control().add(b.as_fd(), Interest::READABLE, 2).unwrap();
    let (_, seen) = h.expect(2, "the new fd after delete and add (S4: it is readable)");
    assert!(seen.iter().all(|e| e.data() != 1), "{seen:?}");
    fds::drain(b.as_fd()).unwrap();
    fds::fire(b.as_fd()).unwrap();
    h.expect(2, "the new registration fires");
    h.expect_none(1, "the closed fd's data");
}

/// S14: dropping a poller (and every control handle) with armed, fired
/// registrations releases every fd and thread it made, and every kernel
/// object: nothing holds the caller's files any more (the read end of a
/// watched pipe has no reader left once the caller closes it).
///
/// The fd and thread counts of a test process change whenever libtest runs
/// another test, so the check runs alone in a child ([`child::alone`]).
pub fn s14_clean_drop<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    child::alone(|| s14_in_this_process(new));
}

fn s14_in_this_process<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let efds: Vec<OwnedFd> = (0..1000).map(|_| fds::eventfd().unwrap()).collect();
    let fds_before = crate::sys::open_fd_count().unwrap();
    let threads_before = thread_count();
    for round in 0..3 {
        let Some(p) = make("s14", new, 1024) else {
            return;
        };
        let mut h = Harness::new(p, 64);
        for (i, fd) in efds.iter().enumerate() {
            h.control()
                .add(fd.as_fd(), Interest::READABLE, i as u64)
                .unwrap();
        }
        // A pipe's read end, to see below whether the kernel still holds it.
        let (rd, wr) = fds::pipe().unwrap();
        h.control()
            .add(rd.as_fd(), Interest::READABLE, efds.len() as u64)
            .unwrap();
        for fd in efds.iter().step_by(2) {
            fds::fire(fd.as_fd()).unwrap();
        }
        h.wait(Some(PATIENCE));
        let ctl = h.control().clone();
        drop(h);
        drop(ctl);
        drop(rd);
        let fds_after = crate::sys::open_fd_count().unwrap() - 1; // wr
        assert_eq!(
            fds_after, fds_before,
            "round {round}: fds leaked by a dropped poller"
        );
        // Kernel objects: whatever the poller made in the kernel (an epoll
        // instance, a ring and its requests) is gone, so nothing holds the
        // pipe's read end any more and a write finds no reader. A ring is
        // torn down by a kernel worker after its fd closes: allow it time.
        let deadline = Instant::now() + PATIENCE;
        let no_reader = loop {
            match fds::write(wr.as_fd(), b"x") {
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => break true,
                _ if Instant::now() >= deadline => break false,
                _ => thread::sleep(Duration::from_millis(1)),
            }
        };
        assert!(
            no_reader,
            "round {round}: {PATIENCE:?} after the poller was dropped, the kernel still holds \
             the read end of a pipe it watched (a ring or epoll instance outlived the poller)"
        );
        // Threads are joined on drop, but the kernel may list an exiting
        // thread for a moment.
        let deadline = Instant::now() + PATIENCE;
        while thread_count() != threads_before && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            thread_count(),
            threads_before,
            "round {round}: threads left by a dropped poller"
        );
    }
    for fd in &efds {
        fds::drain(fd.as_fd()).unwrap();
    }
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}
