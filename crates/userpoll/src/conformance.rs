//! The conformance suite: one generic test function per rule S1..S14 of
//! `docs/semantics.md`, named after its rule. A backend runs all of them
//! from its own `tests/` with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! userpoll::conformance_tests!(|cap| my_backend::Poller::new(cap));
//! ```
//!
//! The tests use real eventfds, pipes and socketpairs and real threads. They
//! tolerate spurious events where the contract allows them (an event with no
//! new fire) and fail loudly where it does not. Every take made through
//! [`Harness`] also checks S3's one-call rule: no two events for the same
//! registration in one call.
//!
//! A factory that fails with ENOSYS, EPERM or EOPNOTSUPP (the backend is not
//! available on this kernel) makes each test print why and return; set
//! `USERPOLL_REQUIRE_BACKEND=1` to make that a failure instead.
//!
//! S14 counts the process's fds and threads, which other tests of the same
//! binary change; it re-runs itself alone in a child process.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::bits::{IN, OUT, RDHUP};
use crate::sys::errno_of;
use crate::{Control, Event, Events, Interest, Poller};

/// How long a test waits for an event the contract promises.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a test watches for an event the contract forbids.
pub const QUIET: Duration = Duration::from_millis(150);

pub mod fds {
    //! Real file descriptors for the tests: non-blocking, close-on-exec.
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    use crate::syscall;

    /// A new eventfd with counter 0.
    pub fn eventfd() -> io::Result<OwnedFd> {
        // SAFETY: plain system call with no pointers.
        let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
        // SAFETY: a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// A new pipe: (read end, write end).
    pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: fds is a live array of two ints.
        syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
        // SAFETY: two new fds that nothing else owns.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// A new connected UNIX stream socket pair.
    pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [0; 2];
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: fds is a live array of two ints.
        syscall!(socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()))?;
        // SAFETY: two new fds that nothing else owns.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// Fires an eventfd: adds 1 to its counter.
    pub fn fire(efd: BorrowedFd<'_>) -> io::Result<()> {
        write(efd, &1u64.to_ne_bytes())
    }

    /// Writes all of `buf` to `fd` with one `write`.
    pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<()> {
        // SAFETY: buf is live for its length.
        let n = syscall!(write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()))?;
        assert_eq!(n as usize, buf.len(), "short write");
        Ok(())
    }

    /// Reads until the fd would block; returns the bytes read.
    pub fn drain(fd: BorrowedFd<'_>) -> io::Result<usize> {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            // SAFETY: buf is live and writable for its length.
            match syscall!(read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as usize,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }

    /// `shutdown(fd, SHUT_WR)`: the peer sees read hang-up.
    pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: plain system call with no pointers.
        syscall!(shutdown(fd.as_raw_fd(), libc::SHUT_WR)).map(drop)
    }
}

/// Builds a poller, or returns `None` after saying why the backend is not
/// available here (see the module documentation).
pub fn make<P: Poller>(
    rule: &str,
    new: &dyn Fn(usize) -> io::Result<P>,
    capacity: usize,
) -> Option<P> {
    match new(capacity) {
        Ok(p) => Some(p),
        Err(e)
            if matches!(
                errno_of(&e),
                Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)
            ) && std::env::var_os("USERPOLL_REQUIRE_BACKEND").is_none() =>
        {
            eprintln!("SKIPPED {rule}: the backend is not available on this kernel: {e}");
            None
        }
        Err(e) => panic!("{rule}: creating a poller of capacity {capacity} failed: {e}"),
    }
}

/// A poller and an events buffer, with takes that check S3 on every call.
#[derive(Debug)]
pub struct Harness<P: Poller> {
    /// The poller under test.
    pub poller: P,
    events: Events,
}

impl<P: Poller> Harness<P> {
    /// Wraps `poller` with an events buffer of `events` capacity.
    pub fn new(poller: P, events: usize) -> Self {
        Harness {
            poller,
            events: Events::with_capacity(events),
        }
    }

    /// The control handle.
    pub fn control(&self) -> &P::Control {
        self.poller.control()
    }

    fn checked(&self, n: usize) -> Vec<Event> {
        assert_eq!(
            n,
            self.events.len(),
            "returned count differs from events held"
        );
        let mut seen = HashSet::new();
        for ev in &self.events {
            assert!(
                seen.insert(ev.data()),
                "S3 violated: one call returned two events for data {} ({:?})",
                ev.data(),
                self.events
            );
        }
        self.events.iter().copied().collect()
    }

    /// One `poll`.
    pub fn poll(&mut self) -> Vec<Event> {
        let n = self.poller.poll(&mut self.events).expect("poll");
        self.checked(n)
    }

    /// One `wait`.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Vec<Event> {
        let n = self.poller.wait(&mut self.events, timeout).expect("wait");
        self.checked(n)
    }

    /// Takes events until one with `data` arrives; returns it with every
    /// event taken meanwhile. Panics after [`PATIENCE`].
    pub fn expect(&mut self, data: u64, why: &str) -> (Event, Vec<Event>) {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no event for data {data} within {PATIENCE:?}: {why}; got {seen:?}"
            );
            for ev in self.wait(Some(left)) {
                if ev.data() == data {
                    return (ev, seen);
                }
                seen.push(ev);
            }
        }
    }

    /// Takes events until every data in `want` has had one; returns all
    /// events taken. Panics after [`PATIENCE`] naming what is missing.
    pub fn expect_all(&mut self, want: &HashSet<u64>, why: &str) -> Vec<Event> {
        let deadline = Instant::now() + PATIENCE;
        let mut missing = want.clone();
        let mut all = Vec::new();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {} registrations had no event within {PATIENCE:?}: {why}; e.g. {:?}",
                missing.len(),
                want.len(),
                missing.iter().take(8).collect::<Vec<_>>()
            );
            for ev in self.wait(Some(left)) {
                missing.remove(&ev.data());
                all.push(ev);
            }
        }
        all
    }

    /// Every event taken during `dur`.
    pub fn watch(&mut self, dur: Duration) -> Vec<Event> {
        let deadline = Instant::now() + dur;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return all;
            }
            all.extend(self.wait(Some(left)));
        }
    }

    /// Panics if any event with `data` arrives within [`QUIET`].
    pub fn expect_none(&mut self, data: u64, why: &str) {
        let evs = self.watch(QUIET);
        assert!(
            !evs.iter().any(|e| e.data() == data),
            "event for data {data} where none may come: {why}; got {evs:?}"
        );
    }
}

macro_rules! setup {
    ($rule:expr, $new:expr, $cap:expr) => {
        match make($rule, $new, $cap) {
            Some(p) => Harness::new(p, 256),
            None => return,
        }
    };
}

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

/// S5: once `delete` (or `modify` of the data) returns, no event carries
/// the old data, even when the kernel had queued one already; also with
/// fires racing from another thread and fd numbers reused.
pub fn s05_no_event_after_delete<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s05", new, 8);
    // Queued, then deleted before the take.
    let efd = fds::eventfd().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    fds::fire(efd.as_fd()).unwrap();
    thread::sleep(QUIET);
    h.control().delete(efd.as_fd()).unwrap();
    fds::fire(efd.as_fd()).unwrap();
    h.expect_none(1, "deleted with an event queued");

    // Queued, then modified to new data before the take.
    h.control().add(efd.as_fd(), Interest::READABLE, 2).unwrap();
    fds::fire(efd.as_fd()).unwrap();
    thread::sleep(QUIET);
    h.control()
        .modify(efd.as_fd(), Interest::READABLE, 3)
        .unwrap();
    let evs = h.watch(QUIET);
    assert!(
        !evs.iter().any(|e| e.data() == 2),
        "old data after modify: {evs:?}"
    );
    h.control().delete(efd.as_fd()).unwrap();
    drop(efd);

    // Racing: a thread fires the current fd all the time; we add with new
    // data, see it, delete (or modify), close, and reopen (the number is
    // reused). Data only grows, so any event with data below the current
    // registration's is stale.
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let fd_slot = Arc::new(std::sync::Mutex::new(None::<Arc<OwnedFd>>));
    let firer = {
        let (stop, fd_slot) = (stop.clone(), fd_slot.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let fd = fd_slot.lock().unwrap().clone();
                if let Some(fd) = fd {
                    fds::fire(fd.as_fd()).unwrap();
                }
                thread::yield_now();
            }
        })
    };
    for i in 0..200u64 {
        let fd = Arc::new(fds::eventfd().unwrap());
        let data = 10 * i + 10;
        h.control()
            .add(fd.as_fd(), Interest::READABLE, data)
            .unwrap();
        current.store(data, Ordering::Relaxed);
        *fd_slot.lock().unwrap() = Some(fd.clone());
        loop {
            let evs = h.wait(Some(PATIENCE));
            assert!(!evs.is_empty(), "iteration {i}: no event for a fired fd");
            for e in &evs {
                assert!(
                    e.data() >= data,
                    "iteration {i}: stale event {e:?} (current data {data})"
                );
            }
            if evs.iter().any(|e| e.data() >= data) {
                break;
            }
        }
        if i % 2 == 1 {
            // Modify to new data, then delete under that data.
            h.control()
                .modify(fd.as_fd(), Interest::READABLE, data + 1)
                .unwrap();
            for e in h.poll() {
                assert!(
                    e.data() == data + 1,
                    "iteration {i}: old data after modify: {e:?}"
                );
            }
        }
        h.control().delete(fd.as_fd()).unwrap();
        let evs = h.poll();
        assert!(
            evs.is_empty(),
            "iteration {i}: event after delete returned: {evs:?}"
        );
        *fd_slot.lock().unwrap() = None;
    }
    stop.store(true, Ordering::Relaxed);
    firer.join().unwrap();
    let evs = h.watch(QUIET);
    assert!(
        evs.is_empty(),
        "events after every registration was deleted: {evs:?}"
    );
}

/// S6: after `modify` returns, events use the new interest and data;
/// modify of an unregistered fd fails with ENOENT.
pub fn s06_modify<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s06", new, 8);
    let (a, b) = fds::socketpair().unwrap();
    h.control().add(a.as_fd(), Interest::READABLE, 1).unwrap();
    // Writable from the start, but not asked for: nothing beyond spurious IN-less events.
    for e in h.watch(QUIET) {
        assert!(
            e.data() != 1 || e.ready().bits() & OUT == 0,
            "OUT not asked for: {e:?}"
        );
    }
    fds::write(b.as_fd(), b"x").unwrap();
    let (ev, _) = h.expect(1, "readable");
    assert!(
        ev.ready().contains(IN) && !ev.ready().contains(OUT),
        "{ev:?}"
    );
    fds::drain(a.as_fd()).unwrap();

    h.control()
        .modify(a.as_fd(), Interest::WRITABLE, 2)
        .unwrap();
    let (ev, seen) = h.expect(2, "writable after modify to WRITABLE (S4)");
    assert!(
        ev.ready().contains(OUT) && !ev.ready().contains(IN),
        "{ev:?}"
    );
    assert!(
        !seen.iter().any(|e| e.data() == 1),
        "old data after modify: {seen:?}"
    );

    h.control()
        .modify(a.as_fd(), Interest::READABLE, 3)
        .unwrap();
    h.watch(QUIET);
    fds::write(b.as_fd(), b"y").unwrap();
    let (ev, seen) = h.expect(3, "readable under the third interest");
    assert!(
        ev.ready().contains(IN) && !ev.ready().contains(OUT),
        "{ev:?}"
    );
    assert!(!seen.iter().any(|e| e.data() != 3), "other data: {seen:?}");

    let other = fds::eventfd().unwrap();
    let e = h
        .control()
        .modify(other.as_fd(), Interest::READABLE, 9)
        .unwrap_err();
    assert_eq!(errno_of(&e), Some(libc::ENOENT), "{e}");
}

/// S7: a oneshot registration delivers at most one event, then stays silent
/// until `modify` re-arms it.
pub fn s07_oneshot<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s07", new, 8);
    let efd = fds::eventfd().unwrap();
    h.control()
        .add(efd.as_fd(), Interest::READABLE.oneshot(), 1)
        .unwrap();
    for round in 0..3u64 {
        let data = round + 1;
        for _ in 0..5 {
            fds::fire(efd.as_fd()).unwrap();
        }
        h.expect(data, "first fire of a oneshot registration");
        for _ in 0..5 {
            fds::fire(efd.as_fd()).unwrap();
        }
        let evs = h.watch(QUIET);
        assert!(
            !evs.iter().any(|e| e.data() == data),
            "oneshot fired twice: {evs:?}"
        );
        fds::drain(efd.as_fd()).unwrap();
        h.control()
            .modify(efd.as_fd(), Interest::READABLE.oneshot(), data + 1)
            .unwrap();
    }
    // Re-armed while ready: S4 applies.
    fds::fire(efd.as_fd()).unwrap();
    h.expect(4, "fire after the last re-arm");
    h.control()
        .modify(efd.as_fd(), Interest::READABLE.oneshot(), 5)
        .unwrap();
    h.expect(5, "re-armed while the eventfd is still readable");
}

/// S8: `add` beyond the capacity fails with ENOSPC and changes nothing;
/// after a delete there is room again.
pub fn s08_fixed_capacity<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s08", new, 4);
    assert_eq!(h.poller.capacity(), 4);
    let efds: Vec<OwnedFd> = (0..5).map(|_| fds::eventfd().unwrap()).collect();
    for (i, fd) in efds[..4].iter().enumerate() {
        h.control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
    }
    fds::fire(efds[4].as_fd()).unwrap();
    let e = h
        .control()
        .add(efds[4].as_fd(), Interest::READABLE, 4)
        .unwrap_err();
    assert_eq!(errno_of(&e), Some(libc::ENOSPC), "{e}");
    h.expect_none(4, "the refused registration");
    for fd in &efds[..4] {
        fds::fire(fd.as_fd()).unwrap();
    }
    h.expect_all(&(0..4).collect(), "registrations made before the refusal");
    h.control().delete(efds[0].as_fd()).unwrap();
    h.control()
        .add(efds[4].as_fd(), Interest::READABLE, 4)
        .unwrap();
    h.expect(4, "room again after a delete");
    assert_eq!(h.poller.capacity(), 4, "capacity never grows");
}

/// S9: EBADF, EEXIST, ENOENT, EINVAL, each leaving the poller unchanged.
pub fn s09_errors_change_nothing<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let mut h = setup!("s09", new, 4);
    let efd = fds::eventfd().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    let errno = |r: io::Result<()>| errno_of(&r.expect_err("must fail"));

    // A number no test opens: just below RLIMIT_NOFILE, checked closed.
    let bad = unused_fd_number();
    // SAFETY: the number is not open; the backend must only hand it to the
    // kernel (or check it) and report EBADF; nothing reads or closes it.
    let bad = unsafe { BorrowedFd::borrow_raw(bad) };
    assert_eq!(
        errno(h.control().add(bad, Interest::READABLE, 2)),
        Some(libc::EBADF)
    );
    assert_eq!(
        errno(h.control().add(efd.as_fd(), Interest::WRITABLE, 3)),
        Some(libc::EEXIST)
    );
    let other = fds::eventfd().unwrap();
    assert_eq!(
        errno(h.control().modify(other.as_fd(), Interest::READABLE, 4)),
        Some(libc::ENOENT)
    );
    assert_eq!(errno(h.control().delete(other.as_fd())), Some(libc::ENOENT));
    for bits in [0, crate::bits::EXCLUSIVE | IN, 1 << 20 | IN] {
        let i = Interest::from_epoll_bits(bits);
        assert_eq!(
            errno(h.control().add(other.as_fd(), i, 5)),
            Some(libc::EINVAL),
            "{i:?}"
        );
        assert_eq!(
            errno(h.control().modify(efd.as_fd(), i, 6)),
            Some(libc::EINVAL),
            "{i:?}"
        );
    }
    // Nothing changed: the first registration delivers with its data, the
    // refused ones never do, and all four slots are still free but one.
    fds::fire(efd.as_fd()).unwrap();
    fds::fire(other.as_fd()).unwrap();
    let (ev, seen) = h.expect(1, "the registration that failed calls must not touch");
    assert!(ev.ready().contains(IN));
    let later = h.watch(QUIET);
    assert!(
        seen.iter().chain(&later).all(|e| e.data() == 1),
        "events for refused registrations: {seen:?} {later:?}"
    );
    let more: Vec<OwnedFd> = (0..3).map(|_| fds::eventfd().unwrap()).collect();
    for (i, fd) in more.iter().enumerate() {
        h.control()
            .add(fd.as_fd(), Interest::READABLE, 10 + i as u64)
            .unwrap();
    }
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
        // SAFETY: dup3 onto `num`, which is closed; the result is owned here.
        let r = crate::syscall!(dup3(b.as_raw_fd(), num, libc::O_CLOEXEC)).expect("dup3");
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
    assert_eq!(errno_of(&e), Some(libc::EEXIST), "{e}");
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
/// another test, so the check runs in a child: the test binary started again
/// with only this test selected (libtest names each test's thread after the
/// test, which gives the filter).
pub fn s14_clean_drop<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    const CHILD: &str = "USERPOLL_S14_CHILD";
    let name = thread::current().name().map(str::to_owned);
    match name {
        Some(name) if std::env::var_os(CHILD).is_none() && name != "main" => {
            let exe = std::env::current_exe().expect("current_exe");
            let out = std::process::Command::new(exe)
                .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .output()
                .expect("start the test binary again for s14");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "s14 in a child process failed:\n{text}"
            );
            assert!(
                text.contains("1 passed"),
                "the child ran no test named {name}:\n{text}"
            );
            eprint!(
                "{}",
                text.lines()
                    .filter(|l| l.starts_with("SKIPPED"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
            );
        }
        // In the child, or where the test has no name to select it by.
        _ => s14_in_this_process(new),
    }
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

fn unused_fd_number() -> i32 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a live rlimit.
    crate::syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut rl)).expect("getrlimit");
    let top = (rl.rlim_cur.min(1 << 20) as i32) - 1;
    (top - 64..=top)
        .rev()
        // SAFETY: F_GETFD only reads the fd table.
        .find(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1)
        .expect("a free fd number near RLIMIT_NOFILE")
}

/// Runs every rule S1..S14 against a backend: one `#[test]` per rule, named
/// after it. The argument is a closure from a capacity (`usize`) to
/// `io::Result<P>` where `P: Poller`. Use it once per backend mode, each in
/// its own module.
#[macro_export]
macro_rules! conformance_tests {
    ($new:expr) => {
        $crate::conformance_tests!(@each $new;
            s01_persistent_registration,
            s02_edge_delivery_at_least_once,
            s03_coalescing,
            s04_readiness_at_arm_time,
            s05_no_event_after_delete,
            s06_modify,
            s07_oneshot,
            s08_fixed_capacity,
            s09_errors_change_nothing,
            s10_no_loss_under_bursts,
            s11_control_from_any_thread,
            s12_non_blocking_take,
            s13_closing_a_registered_fd,
            s14_clean_drop
        );
    };
    (@each $new:expr; $($rule:ident),*) => {
        $(
            #[test]
            fn $rule() {
                $crate::conformance::$rule(&$new);
            }
        )*
    };
}
