//! S5 and S13 with fd numbers reused: after delete + close, a new fd that
//! gets the same number and is added delivers only its own registration's
//! events; and after a close without delete, fires of the new fd never
//! carry the old data (the poll holds the old file, not the number).

mod common;

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use uring_poll::UringPoll;
use userpoll::conformance::fds;
use userpoll::{Control, Events, Interest, Poller};

/// The tests here close fds and put new ones at the same numbers; run in
/// parallel, one test's new fd could land on a number another test is about
/// to `dup3` onto. Each test holds this for its whole run.
static FD_NUMBERS: Mutex<()> = Mutex::new(());

fn numbers() -> MutexGuard<'static, ()> {
    FD_NUMBERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// `fd` moved to number `num` (closed), so the number is surely reused.
fn onto(fd: OwnedFd, num: i32) -> OwnedFd {
    if fd.as_raw_fd() == num {
        return fd;
    }
    // Stays on libc: rustix's dup3 needs an OwnedFd at the target number,
    // and `num` is closed.
    // SAFETY: plain system call; `num` is closed, so dup3 makes a new fd
    // there that we own.
    let r = unsafe { libc::dup3(fd.as_raw_fd(), num, libc::O_CLOEXEC) };
    assert_eq!(r, num, "dup3 onto {num}");
    // SAFETY: r is a new fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(r) }
}

/// Waits (patiently: SQPOLL submits asynchronously, on a busy machine
/// late) for a first event, then takes the rest as `take_all`.
fn expect_some(p: &mut UringPoll, events: &mut Events) -> Vec<u64> {
    for _ in 0..500 {
        if p.wait(events, Some(Duration::from_millis(10))).unwrap() > 0 {
            let mut got: Vec<u64> = events.iter().map(|e| e.data()).collect();
            got.extend(take_all(p, events));
            return got;
        }
    }
    Vec::new()
}

/// Every event taken during 150 ms (for what must not come).
fn watch(p: &mut UringPoll, events: &mut Events) -> Vec<u64> {
    let end = std::time::Instant::now() + Duration::from_millis(150);
    let mut got = Vec::new();
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        p.wait(events, Some(left)).unwrap();
        got.extend(events.iter().map(|e| e.data()));
    }
    got
}

fn take_all(p: &mut UringPoll, events: &mut Events) -> Vec<u64> {
    // Bounded: in re-arm mode an fd left ready reports on every take.
    let mut got = Vec::new();
    for _ in 0..50 {
        if p.wait(events, Some(Duration::from_millis(10))).unwrap() == 0 {
            break;
        }
        got.extend(events.iter().map(|e| e.data()));
    }
    got
}

#[test]
fn s05_fd_number_reused_after_delete_and_close_delivers_only_the_new_registration() {
    let _numbers = numbers();
    for (name, profile, rearm) in common::variants() {
        let b = UringPoll::builder().profile(profile).rearm(rearm);
        let Some(mut p) = common::make(&name, b.build(8)) else {
            continue;
        };
        let mut events = Events::with_capacity(8);
        let mut num = None;
        for i in 0..300u64 {
            let mut fd = fds::eventfd().unwrap();
            match num {
                Some(n) => fd = onto(fd, n),
                None => num = Some(fd.as_raw_fd()),
            }
            p.control().add(fd.as_fd(), Interest::READABLE, i).unwrap();
            fds::fire(fd.as_fd()).unwrap();
            // The old fd was fired and deleted with its event maybe queued;
            // only the new data may come.
            let mut got_mine = false;
            for _ in 0..200 {
                p.wait(&mut events, Some(Duration::from_millis(20)))
                    .unwrap();
                for e in &events {
                    assert_eq!(
                        e.data(),
                        i,
                        "{name} iteration {i}: event of another registration"
                    );
                    got_mine = true;
                }
                if got_mine {
                    break;
                }
            }
            assert!(
                got_mine,
                "{name} iteration {i}: no event for the new registration"
            );
            fds::fire(fd.as_fd()).unwrap();
            p.control().delete(fd.as_fd()).unwrap();
            drop(fd);
        }
        assert!(watch(&mut p, &mut events).is_empty(), "{name}");
    }
}

#[test]
fn s13_close_without_delete_never_reports_the_new_fd_under_the_old_data() {
    let _numbers = numbers();
    for (name, profile, rearm) in common::variants() {
        let b = UringPoll::builder().profile(profile).rearm(rearm);
        let Some(mut p) = common::make(&name, b.build(8)) else {
            continue;
        };
        let mut events = Events::with_capacity(8);
        let a = fds::eventfd().unwrap();
        let num = a.as_raw_fd();
        p.control().add(a.as_fd(), Interest::READABLE, 1).unwrap();
        fds::fire(a.as_fd()).unwrap();
        assert!(expect_some(&mut p, &mut events).contains(&1), "{name}");
        fds::drain(a.as_fd()).unwrap();
        // In re-arm mode a re-arm made before the drain may still report
        // (a spurious event); after one more round it is quiet.
        take_all(&mut p, &mut events);
        assert!(!watch(&mut p, &mut events).contains(&1), "{name}: drained");
        drop(a);
        let b = onto(fds::eventfd().unwrap(), num);
        for _ in 0..5 {
            fds::fire(b.as_fd()).unwrap();
            let got = watch(&mut p, &mut events);
            assert!(
                !got.contains(&1),
                "{name}: the new fd's fire came with the old data"
            );
        }
        // The number is still held by the old registration until delete.
        p.control().delete(b.as_fd()).unwrap();
        p.control().add(b.as_fd(), Interest::READABLE, 2).unwrap();
        // One event in multishot mode; one per take in re-arm mode, since
        // `b` is never drained.
        let got = expect_some(&mut p, &mut events);
        assert!(
            !got.is_empty() && got.iter().all(|&d| d == 2),
            "{name}: {got:?}"
        );
    }
}

/// The window between `add` returning and the owner's next take: under
/// Defer an add from another thread cannot touch the ring, yet closing the
/// fd and reusing its number right after must not make the owner poll the
/// new file under the old data.
#[test]
fn s13_close_and_reuse_right_after_a_cross_thread_add_polls_the_added_file() {
    let _numbers = numbers();
    for (name, profile, rearm) in common::variants() {
        let b = UringPoll::builder().profile(profile).rearm(rearm);
        let Some(mut p) = common::make(&name, b.build(8)) else {
            continue;
        };
        let mut events = Events::with_capacity(8);
        p.poll(&mut events).unwrap(); // the owner is this thread
        let a = fds::eventfd().unwrap();
        let num = a.as_raw_fd();
        let ctl = p.control().clone();
        let b = std::thread::spawn(move || {
            ctl.add(a.as_fd(), Interest::READABLE, 1).unwrap();
            drop(a);
            let b = onto(fds::eventfd().unwrap(), num);
            fds::fire(b.as_fd()).unwrap();
            b
        })
        .join()
        .unwrap();
        let got = watch(&mut p, &mut events);
        assert!(
            !got.contains(&1),
            "{name}: the new fd polled under the old data: {got:?}"
        );
        p.control().delete(b.as_fd()).unwrap();
        p.control().add(b.as_fd(), Interest::READABLE, 2).unwrap();
        let got = expect_some(&mut p, &mut events);
        assert!(
            !got.is_empty() && got.iter().all(|&d| d == 2),
            "{name}: {got:?}"
        );
    }
}
