//! The kernel behaviour this crate relies on (docs/uring-poll.md,
//! /work/shared/spec/io_uring-poll.md), checked on the running kernel with
//! raw rings from the io-uring crate, so a kernel that changes it fails
//! here by name rather than somewhere in the poller.

use std::os::fd::{AsFd, AsRawFd};

use io_uring::{cqueue, opcode, types, IoUring};
use userpoll::conformance::fds;

const IN: u32 = libc::POLLIN as u32;

fn ring(b: &mut io_uring::Builder, sq: u32) -> Option<IoUring> {
    match b.build(sq) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("SKIPPED: io_uring_setup failed here: {e}");
            None
        }
    }
}

fn multishot(fd: i32, ud: u64) -> io_uring::squeue::Entry {
    opcode::PollAdd::new(types::Fd(fd), IN)
        .multi(true)
        .build()
        .user_data(ud)
}

fn reap(r: &mut IoUring) -> Vec<(u64, i32, bool)> {
    r.completion()
        .map(|c| (c.user_data(), c.result(), cqueue::more(c.flags())))
        .collect()
}

#[test]
fn multishot_poll_posts_one_cqe_per_wakeup_with_f_more() {
    let Some(mut r) = ring(IoUring::builder().setup_cqsize(64), 8) else {
        return;
    };
    let efd = fds::eventfd().unwrap();
    // SAFETY: a POLL_ADD carries no buffer pointers.
    unsafe { r.submission().push(&multishot(efd.as_raw_fd(), 7)).unwrap() };
    r.submit().unwrap();
    for _ in 0..5 {
        fds::fire(efd.as_fd()).unwrap();
    }
    r.submit_and_wait(1).unwrap();
    let cqes = reap(&mut r);
    // Not coalesced per registration: several CQEs for one poll (wakeups
    // before the completion work runs may merge, so at least 1).
    assert!(!cqes.is_empty() && cqes.len() <= 5, "{cqes:?}");
    assert!(cqes
        .iter()
        .all(|&(ud, res, more)| ud == 7 && res as u32 & IN != 0 && more));
}

#[test]
fn cq_overflow_ends_multishot_polls_without_f_more_and_needs_getevents_to_flush() {
    let Some(mut r) = ring(IoUring::builder().setup_cqsize(4), 4) else {
        return;
    };
    assert!(r.params().is_feature_nodrop());
    let efds: Vec<_> = (0..8).map(|_| fds::eventfd().unwrap()).collect();
    for (i, e) in efds.iter().enumerate() {
        // SAFETY: a POLL_ADD carries no buffer pointers.
        unsafe {
            r.submission()
                .push(&multishot(e.as_raw_fd(), i as u64))
                .unwrap()
        };
        r.submit().unwrap();
    }
    for e in &efds {
        fds::fire(e.as_fd()).unwrap();
    }
    // Let the completion work run (default setup: by interrupt).
    r.submit_and_wait(1).unwrap();
    assert!(
        r.submission().cq_overflow(),
        "8 CQEs did not overflow a CQ of 4"
    );
    let mut all = reap(&mut r);
    assert_eq!(
        all.len(),
        4,
        "reading the CQ does not flush the overflow list"
    );
    assert!(
        r.submission().cq_overflow(),
        "still flagged until GETEVENTS"
    );
    while r.submission().cq_overflow() {
        // SAFETY: no argument pointer.
        unsafe {
            r.submitter()
                .enter::<libc::sigset_t>(0, 0, 1, None)
                .unwrap()
        };
        all.extend(reap(&mut r));
    }
    all.extend(reap(&mut r));
    assert_eq!(all.len(), 8, "{all:?}");
    // Fire again: every poll that fires while (or after, until re-armed)
    // the overflow ended it gives no F_MORE; at least the overflowed ones
    // must be ended.
    let ended = all.iter().filter(|c| !c.2).count();
    assert!(ended >= 4, "CQEs that overflowed kept F_MORE: {all:?}");
    assert!(
        all.iter().all(|c| c.1 as u32 & IN != 0),
        "the final CQE carries the mask"
    );
}

#[test]
fn poll_update_is_refused_with_ealready_while_completion_work_is_pending() {
    // DEFER_TASKRUN keeps the fire's completion work pending until this
    // thread enters with GETEVENTS, so the refusal is deterministic.
    let mut b = IoUring::builder();
    b.setup_single_issuer().setup_defer_taskrun();
    let Some(mut r) = ring(&mut b, 8) else {
        return;
    };
    let efd = fds::eventfd().unwrap();
    // SAFETY: a POLL_ADD carries no buffer pointers.
    unsafe { r.submission().push(&multishot(efd.as_raw_fd(), 1)).unwrap() };
    r.submit().unwrap();
    fds::fire(efd.as_fd()).unwrap();
    // The crate's update SQE is private; POLL_REMOVE shows the same
    // ownership check (io_poll_disarm), so use it as the probe.
    let remove = opcode::PollRemove::new(1).build().user_data(2);
    // SAFETY: POLL_REMOVE carries no buffer pointers.
    unsafe { r.submission().push(&remove).unwrap() };
    r.submit().unwrap();
    r.submit_and_wait(1).unwrap();
    let cqes = reap(&mut r);
    let rm = cqes
        .iter()
        .find(|c| c.0 == 2)
        .expect("the remove completes");
    assert_eq!(rm.1, -libc::EALREADY, "{cqes:?}");
    // The poll goes on: it delivered its event and still has F_MORE.
    assert!(cqes.iter().any(|c| c.0 == 1 && c.2), "{cqes:?}");
}

#[test]
fn poll_add_level_is_rejected() {
    let Some(mut r) = ring(&mut IoUring::builder(), 4) else {
        return;
    };
    let efd = fds::eventfd().unwrap();
    let mut e = multishot(efd.as_raw_fd(), 3);
    // IORING_POLL_ADD_LEVEL (1 << 3) in len, next to ADD_MULTI.
    // SAFETY: squeue::Entry is #[repr(C)] over the 64-byte SQE; len is the
    // u32 at offset 24.
    unsafe { *(std::ptr::addr_of_mut!(e) as *mut u8).add(24).cast::<u32>() |= 1 << 3 };
    // SAFETY: a POLL_ADD carries no buffer pointers.
    unsafe { r.submission().push(&e).unwrap() };
    r.submit_and_wait(1).unwrap();
    let cqes = reap(&mut r);
    assert_eq!(cqes, vec![(3, -libc::EINVAL, false)]);
}
