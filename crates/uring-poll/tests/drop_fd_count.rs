//! S14: dropping a poller with thousands of armed (and fired) multishot
//! polls leaves the process fd count where it was, for every variant, also
//! when a control handle outlives the poller. Its own process, so no other
//! test opens or closes fds meanwhile.

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use uring_poll::UringPoll;
use userpoll::conformance::fds;
use userpoll::sys::open_fd_count;
use userpoll::{Control, Events, Interest, Poller};

const N: usize = 4000;

#[test]
fn s14_drop_with_thousands_of_armed_polls_restores_the_fd_count() {
    let efds: Vec<OwnedFd> = (0..N).map(|_| fds::eventfd().unwrap()).collect();
    let before = open_fd_count().unwrap();
    for (name, profile, rearm) in common::variants() {
        let b = UringPoll::builder().profile(profile).rearm(rearm);
        let Some(mut p) = common::make(&name, b.build(N)) else {
            continue;
        };
        for (i, fd) in efds.iter().enumerate() {
            p.control()
                .add(fd.as_fd(), Interest::READABLE, i as u64)
                .unwrap();
        }
        for fd in efds.iter().step_by(3) {
            fds::fire(fd.as_fd()).unwrap();
        }
        let mut events = Events::with_capacity(64);
        assert!(p.wait(&mut events, Some(Duration::from_secs(5))).unwrap() > 0);
        let during = open_fd_count().unwrap();
        // The ring and the wake-up eventfd; registrations cost no fds.
        assert_eq!(during, before + 2, "{name}: fds while running");
        let ctl = p.control().clone();
        drop(p);
        // A control handle that outlives the poller keeps only the eventfd.
        assert_eq!(open_fd_count().unwrap(), before + 1, "{name}");
        ctl.delete(efds[0].as_fd()).unwrap();
        drop(ctl);
        assert_eq!(
            open_fd_count().unwrap(),
            before,
            "{name}: fds leaked by the drop"
        );
    }
    for fd in &efds {
        fds::drain(fd.as_fd()).unwrap();
    }
}
