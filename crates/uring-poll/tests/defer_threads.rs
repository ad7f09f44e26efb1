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
