//! Rules about changing registrations: S5 no event after delete, S6
//! modify, S7 oneshot, S8 fixed capacity, S9 errors change nothing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use super::fds::{self, unused_fd_number};
use super::{setup, PATIENCE, QUIET};
use crate::bits::{IN, OUT};
use crate::{Control, Interest, Poller};

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
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
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
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
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
    let errno = |r: io::Result<()>| r.expect_err("must fail").raw_os_error();

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
