//! Every backend's `pollable_fd()` nested in mio's `Poll` (edge-triggered
//! epoll, through `SourceFd`), as a mio program embeds the poller; the
//! plain-epoll nesting is the conformance suite's
//! `s11_nested_in_another_epoll`.

use std::os::fd::{AsFd, AsRawFd};
use std::thread;
use std::time::{Duration, Instant};

use anypoll::{AnyPoller, Backend};
use mio::unix::SourceFd;
use mio::{Events as MioEvents, Poll, Token};
use userpoll::conformance::{fds, PATIENCE};
use userpoll::{Control, Events, Interest, Poller};

/// Which backends give a pollable fd; the others say EOPNOTSUPP.
fn gives_fd(b: Backend) -> bool {
    match b {
        Backend::Reference | Backend::EpollRing(_) => true,
        Backend::UringPoll { profile, .. } => profile != uring_poll::Profile::Defer,
        _ => false,
    }
}

/// Waits in mio until the poller's fd is readable, then takes until a take
/// is empty; true once an event with `data` (or, for `None`, a wake-up of
/// the outer loop) was seen.
fn outer_round(
    mio: &mut Poll,
    poller: &mut AnyPoller,
    events: &mut Events,
    data: Option<u64>,
) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut outer = MioEvents::with_capacity(4);
    while Instant::now() < deadline {
        match mio.poll(&mut outer, Some(deadline - Instant::now())) {
            // io_uring's completion work on this thread interrupts the
            // outer wait (Poller::pollable_fd): wait again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.unwrap(),
        }
        if outer.is_empty() {
            continue;
        }
        let Some(data) = data else { return true };
        loop {
            let n = poller.poll(events).unwrap();
            if events.iter().any(|e| e.data() == data) {
                return true;
            }
            if n == 0 {
                break;
            }
        }
    }
    false
}

#[test]
fn s11_every_backend_nests_in_mio_poll() {
    for b in Backend::ALL.iter().copied() {
        let mut poller = match AnyPoller::new(b, 8) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("SKIPPED {b}: {e}");
                continue;
            }
        };
        let mut events = Events::with_capacity(16);
        let efd = fds::eventfd().unwrap();
        poller
            .control()
            .add(efd.as_fd(), Interest::READABLE, 1)
            .unwrap();
        poller.poll(&mut events).unwrap();
        let raw = match poller.pollable_fd() {
            Ok(fd) => fd.as_raw_fd(),
            Err(e) => {
                assert!(!gives_fd(b), "{b}: pollable_fd failed: {e}");
                assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "{b}: {e}");
                continue;
            }
        };
        assert!(gives_fd(b), "{b} gives a pollable fd: update gives_fd");
        let mut mio = Poll::new().unwrap();
        mio.registry()
            .register(&mut SourceFd(&raw), Token(0), mio::Interest::READABLE)
            .unwrap();
        while poller.poll(&mut events).unwrap() > 0 {}

        let fire = {
            let efd = efd.try_clone().unwrap();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                fds::fire(efd.as_fd()).unwrap();
            })
        };
        assert!(
            outer_round(&mut mio, &mut poller, &mut events, Some(1)),
            "{b}: a fire from another thread never reached the poller through mio"
        );
        fire.join().unwrap();

        let waker = {
            let ctl = poller.control().clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                ctl.wake().unwrap();
            })
        };
        assert!(
            outer_round(&mut mio, &mut poller, &mut events, None),
            "{b}: a wake from another thread never reached mio's poll"
        );
        waker.join().unwrap();
        mio.registry().deregister(&mut SourceFd(&raw)).unwrap();
    }
}
