//! The data path on real fds and real rings, for every fd kind: each fire
//! delivered once with its own data and no `read` (the counters show only
//! `io_uring_enter`), nothing after a delete, nothing lost when a burst
//! overflows the CQ or runs the pool dry, end of file. Skipped with the
//! reason when the kernel lacks READ_MULTISHOT.

use std::collections::BTreeMap;
use std::os::fd::AsFd;

use super::*;
use crate::fds::{FdKind, FdSet};

/// Whether the kernel can run the data path; prints why not, once per
/// test, when it cannot.
fn supported() -> bool {
    match probe() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// The data fire `i` writes: an eventfd adds `i + 1`, the others get
/// the byte `i + 1`, so every delivery can be checked against its fd.
fn fire(fds: &FdSet, i: usize) {
    let v = (i as u64 + 1).to_ne_bytes();
    let len = if fds.kind() == FdKind::Eventfd { 8 } else { 1 };
    let n = rustix::io::write(fds.write_end(i), &v[..len]);
    assert_eq!(n, Ok(len), "fire {i}");
}

/// What the delivered bytes of source `i` must be.
fn expected(kind: FdKind, i: usize) -> Vec<u8> {
    let v = (i as u64 + 1).to_ne_bytes();
    match kind {
        FdKind::Eventfd => v.to_vec(),
        _ => v[..1].to_vec(),
    }
}

/// Takes until `want` events were seen (or 5 s passed), as the harness
/// does: the data of each event, then `handled` (with the fd `fd` gives
/// for the token). No `read` anywhere.
fn take_all<'a>(
    r: &mut UringRead,
    fd: impl Fn(u32) -> BorrowedFd<'a>,
    want: usize,
) -> Vec<(u32, Vec<u8>)> {
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < want && std::time::Instant::now() < deadline {
        buf.clear();
        r.wait(&mut buf, Duration::from_millis(100)).unwrap();
        for &t in &buf {
            let d = r.data(t).expect("a data-path event has data").to_vec();
            r.handled(fd(t), t).unwrap();
            seen.push((t, d));
        }
    }
    seen
}

/// Nothing is left to read in source `i`: the kernel consumed it.
fn empty(fds: &FdSet, i: usize) -> bool {
    let mut b = [0u8; 16];
    rustix::io::read(fds.read_fd(i), &mut b) == Err(rustix::io::Errno::AGAIN)
}

/// Every fired fd delivered exactly once, with the data written to it,
/// and nothing left in the fds.
fn assert_delivered(kind: FdKind, fds: &FdSet, seen: &[(u32, Vec<u8>)], fired: &[usize]) {
    let got: BTreeMap<u32, &Vec<u8>> = seen.iter().map(|(t, d)| (*t, d)).collect();
    assert_eq!(
        seen.len(),
        fired.len(),
        "{kind:?}: each exactly once: {seen:?}"
    );
    for &i in fired {
        assert_eq!(
            got.get(&(i as u32)).map(|d| d.as_slice()),
            Some(expected(kind, i).as_slice()),
            "{kind:?}: source {i}'s own data"
        );
        assert!(empty(fds, i), "{kind:?}: source {i} still holds data");
    }
}

/// The only system calls were io_uring_enter: no read followed an event.
fn assert_enters_only(r: &UringRead, kind: FdKind) {
    let s = r.stats();
    assert_eq!(
        s.syscalls(),
        s.get(Counter::EnterSubmit) + s.get(Counter::EnterWait),
        "{kind:?}: {s:?}"
    );
    assert_eq!(s.get(Counter::OtherSyscall), 0, "{kind:?}: {s:?}");
}

/// Fires 64 fds (each with its own data), then deletes one registration
/// fired before the delete and fires it again: nothing from it.
fn fires_and_deletes(kind: FdKind) {
    let n = 64;
    let fds = FdSet::open(kind, n).unwrap();
    let mut r = UringRead::new(n).unwrap();
    for i in 0..n {
        r.add(fds.read_fd(i), i as u32).unwrap();
    }
    let mut buf = Vec::new();
    r.wait(&mut buf, Duration::from_millis(10)).unwrap();
    assert!(buf.is_empty(), "{kind:?}: nothing fired yet: {buf:?}");
    let fired: Vec<usize> = (0..n).collect();
    for &i in &fired {
        fire(&fds, i);
    }
    let seen = take_all(&mut r, |t| fds.read_fd(t as usize), n);
    assert_delivered(kind, &fds, &seen, &fired);
    assert_enters_only(&r, kind);
    assert_eq!(r.stats().rearms(), 0, "{kind:?}: nothing ended a read");
    assert_eq!(r.no_buffers, 0, "{kind:?}: the pool never ran dry");

    // Fire 2 and 3, delete 2 before taking: only 3 is delivered (data
    // the kernel read for 2 anyway is dropped with its generation).
    fire(&fds, 2);
    fire(&fds, 3);
    r.delete(fds.read_fd(2), 2).unwrap();
    let seen = take_all(&mut r, |t| fds.read_fd(t as usize), 1);
    assert_eq!(seen, [(3, expected(kind, 3))], "{kind:?}");
    fire(&fds, 2);
    buf.clear();
    r.wait(&mut buf, Duration::from_millis(50)).unwrap();
    assert!(
        buf.is_empty(),
        "{kind:?}: deleted source 2 delivered: {buf:?}"
    );
    // Added again, it reads what is there.
    r.add(fds.read_fd(2), 2).unwrap();
    let seen = take_all(&mut r, |t| fds.read_fd(t as usize), 1);
    assert_eq!(seen.len(), 1, "{kind:?}: {seen:?}");
    assert_eq!(seen[0].0, 2, "{kind:?}");
}

/// 64 registrations, a CQ of 16: firing all at once overflows it; the
/// kernel ends the reads whose CQE did not fit (still carrying data),
/// and every fire is delivered once with its data, three rounds over.
fn burst_larger_than_the_cq(kind: FdKind) {
    let n = 64;
    let fds = FdSet::open(kind, n).unwrap();
    let mut r = UringRead::with_sizes(n, 8, 16, None).unwrap();
    for i in 0..n {
        r.add(fds.read_fd(i), i as u32).unwrap();
    }
    let fired: Vec<usize> = (0..n).collect();
    for round in 0..3 {
        for &i in &fired {
            fire(&fds, i);
        }
        let seen = take_all(&mut r, |t| fds.read_fd(t as usize), n);
        assert_delivered(kind, &fds, &seen, &fired);
        let mut buf = Vec::new();
        r.wait(&mut buf, Duration::from_millis(20)).unwrap();
        assert!(buf.is_empty(), "{kind:?} round {round}: {buf:?}");
    }
    let s = r.stats();
    assert!(s.get(Counter::OverflowRecoveries) >= 1, "{kind:?}: {s:?}");
    assert!(
        s.get(Counter::RearmOverflow) >= 1,
        "{kind:?}: the kernel ended reads on overflow: {s:?}"
    );
    assert_eq!(s.get(Counter::EventsDelivered), 3 * n as u64, "{kind:?}");
    assert_enters_only(&r, kind);
}

fn every_case(kind: FdKind) {
    if supported() {
        fires_and_deletes(kind);
        burst_larger_than_the_cq(kind);
    }
}

#[test]
fn eventfd_every_fire_once_with_its_data_no_read_delete_and_overflow() {
    every_case(FdKind::Eventfd);
}

#[test]
fn pipe_every_fire_once_with_its_data_no_read_delete_and_overflow() {
    every_case(FdKind::Pipe);
}

#[test]
fn socketpair_every_fire_once_with_its_data_no_read_delete_and_overflow() {
    every_case(FdKind::Socketpair);
}

#[test]
fn tcp_every_fire_once_with_its_data_no_read_delete_and_overflow() {
    every_case(FdKind::Tcp);
}

#[test]
fn a_pool_that_runs_dry_ends_reads_and_they_are_re_armed_without_loss() {
    if !supported() {
        return;
    }
    // One 16-byte buffer: two eventfd counters, then -ENOBUFS ends
    // the other reads until the handler gives the buffer back.
    let n = 64;
    let fds = FdSet::open(FdKind::Eventfd, n).unwrap();
    let mut r = UringRead::with_sizes(n, SQ_ENTRIES, cq_entries(n), Some((1, 16))).unwrap();
    for i in 0..n {
        r.add(fds.read_fd(i), i as u32).unwrap();
    }
    let fired: Vec<usize> = (0..n).collect();
    for round in 0..2 {
        for &i in &fired {
            fire(&fds, i);
        }
        let seen = take_all(&mut r, |t| fds.read_fd(t as usize), n);
        assert_delivered(FdKind::Eventfd, &fds, &seen, &fired);
        let mut buf = Vec::new();
        r.wait(&mut buf, Duration::from_millis(20)).unwrap();
        assert!(buf.is_empty(), "round {round}: {buf:?}");
    }
    let s = r.stats();
    assert!(r.no_buffers > 0, "the pool ran dry");
    assert!(s.get(Counter::RearmKernelEnded) > 0, "{s:?}");
    assert_eq!(s.get(Counter::EventsDelivered), 2 * n as u64);
}

#[test]
fn the_default_pool_does_not_run_dry_when_every_registration_has_data() {
    if !supported() {
        return;
    }
    userpoll::sys::raise_fd_limit().unwrap();
    let n = 4096;
    let fds = FdSet::open(FdKind::Eventfd, n).unwrap();
    let mut r = UringRead::new(n).unwrap();
    for i in 0..n {
        r.add(fds.read_fd(i), i as u32).unwrap();
    }
    let fired: Vec<usize> = (0..n).collect();
    for &i in &fired {
        fire(&fds, i);
    }
    let seen = take_all(&mut r, |t| fds.read_fd(t as usize), n);
    assert_delivered(FdKind::Eventfd, &fds, &seen, &fired);
    assert_eq!(r.no_buffers, 0);
    assert_eq!(r.stats().rearms(), 0);
    // 16 bytes of pool per registration, in 4 KiB buffers.
    assert!(r.pool.shape().2, "{}", r.describe());
    assert!(r.pool.shape().3 <= n * 32 + 4096, "{}", r.describe());
}

#[test]
fn end_of_file_is_one_event_without_data_then_silence() {
    if !supported() {
        return;
    }
    let (rd, wr) = userpoll::sys::pipe().unwrap();
    let mut r = UringRead::new(1).unwrap();
    r.add(rd.as_fd(), 0).unwrap();
    assert_eq!(rustix::io::write(&wr, b"hi"), Ok(2));
    drop(wr);
    let seen = take_all(&mut r, |_| rd.as_fd(), 2);
    assert_eq!(seen, [(0, b"hi".to_vec()), (0, Vec::new())]);
    let mut buf = Vec::new();
    r.wait(&mut buf, Duration::from_millis(50)).unwrap();
    assert!(buf.is_empty(), "{buf:?}");
    assert_eq!(
        r.stats().rearms(),
        0,
        "a read at end of file is not re-armed"
    );
}
