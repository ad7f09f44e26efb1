//! Defer (SINGLE_ISSUER + DEFER_TASKRUN): only the thread the ring is
//! enabled on may enter it. The poller is `Send`, so a poller taken to
//! another thread rebuilds its ring there and keeps every registration,
//! with control from a third thread all along.

mod common;

use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use uring_poll::{Profile, UringPoll};
use userpoll::conformance::fds;
use userpoll::sys::open_fd_count;
use userpoll::{Control, Events, Interest, Poller};

/// The first test compares the process fd count before and after: the
/// tests here run one at a time so the other's fds do not count.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn take(p: &mut UringPoll, data: u64) {
    let mut events = Events::with_capacity(8);
    for _ in 0..200 {
        p.wait(&mut events, Some(Duration::from_millis(25)))
            .unwrap();
        assert!(events.iter().all(|e| e.data() == data), "{events:?}");
        if !events.is_empty() {
            return;
        }
    }
    panic!("no event for data {data}");
}

#[test]
fn defer_poller_moved_between_threads_keeps_its_registrations() {
    let _serial = one_at_a_time();
    let fds_before = open_fd_count().unwrap();
    let b = UringPoll::builder().profile(Profile::Defer);
    let Some(mut p) = common::make("defer", b.build(8)) else {
        return;
    };
    let efd = Arc::new(fds::eventfd().unwrap());
    p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    fds::fire(efd.as_fd()).unwrap();
    take(&mut p, 1); // enables the ring on this thread
    fds::drain(efd.as_fd()).unwrap();
    let ctl = p.control().clone();
    let mut p = thread::spawn({
        let efd = efd.clone();
        move || {
            // A new owner: the ring is rebuilt here, the registration kept.
            fds::fire(efd.as_fd()).unwrap();
            take(&mut p, 1);
            fds::drain(efd.as_fd()).unwrap();
            p
        }
    })
    .join()
    .unwrap();
    // Back on the first thread, with a modify made from elsewhere.
    thread::spawn({
        let (ctl, efd) = (ctl.clone(), efd.clone());
        move || ctl.modify(efd.as_fd(), Interest::READABLE, 2).unwrap()
    })
    .join()
    .unwrap();
    fds::fire(efd.as_fd()).unwrap();
    take(&mut p, 2);
    ctl.delete(efd.as_fd()).unwrap();
    fds::fire(efd.as_fd()).unwrap();
    let mut events = Events::with_capacity(8);
    p.wait(&mut events, Some(Duration::from_millis(100)))
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    // Dropped on yet another thread.
    thread::spawn(move || drop(p)).join().unwrap();
    drop(ctl);
    drop(efd);
    assert_eq!(open_fd_count().unwrap(), fds_before);
}

/// Under Defer, an add from another thread is installed by the owner later;
/// a modify (new key, same file) and a delete + add of the same slot queued
/// before that must still leave the registration's own file installed.
#[test]
fn defer_cross_thread_add_then_modify_before_the_owner_runs_polls_the_file() {
    let _serial = one_at_a_time();
    use userpoll::Counter;
    let b = UringPoll::builder().profile(Profile::Defer);
    let Some(mut p) = common::make("defer", b.build(8)) else {
        return;
    };
    let mut events = Events::with_capacity(8);
    p.poll(&mut events).unwrap(); // this thread owns the ring
    let efd = Arc::new(fds::eventfd().unwrap());
    let other = Arc::new(fds::eventfd().unwrap());
    for round in 0..10u64 {
        let base = 10 * round;
        let ctl = p.control().clone();
        let (efd2, other2) = (efd.clone(), other.clone());
        thread::spawn(move || {
            ctl.add(efd2.as_fd(), Interest::READABLE, base + 1).unwrap();
            ctl.modify(efd2.as_fd(), Interest::READABLE, base + 2)
                .unwrap();
            // Same slot again for another fd, then back.
            ctl.delete(efd2.as_fd()).unwrap();
            ctl.add(other2.as_fd(), Interest::READABLE, base + 3)
                .unwrap();
            ctl.delete(other2.as_fd()).unwrap();
            ctl.add(efd2.as_fd(), Interest::READABLE, base + 4).unwrap();
            ctl.modify(efd2.as_fd(), Interest::READABLE, base + 5)
                .unwrap();
        })
        .join()
        .unwrap();
        let before = p.stats();
        fds::fire(efd.as_fd()).unwrap();
        fds::fire(other.as_fd()).unwrap();
        take(&mut p, base + 5);
        let d = p.stats() - before;
        assert_eq!(d.get(Counter::RearmKernelEnded), 0, "round {round}: {d:?}");
        p.control().delete(efd.as_fd()).unwrap();
        fds::drain(efd.as_fd()).unwrap();
        fds::drain(other.as_fd()).unwrap();
        let _ = p
            .wait(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        assert!(events.is_empty(), "round {round}: {events:?}");
    }
}
