//! What each path costs in system calls and SQEs, counted by the poller
//! itself (S1's "no re-arm", the profiles' "without a system call"). Exact
//! where the design promises it; bounds where the kernel decides.

mod common;

use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use uring_poll::{Profile, UringPoll};
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

fn take_one(p: &mut UringPoll, events: &mut Events, data: u64) {
    for _ in 0..100 {
        if p.wait(events, Some(Duration::from_millis(50))).unwrap() > 0 {
            assert!(events.iter().all(|e| e.data() == data), "{events:?}");
            return;
        }
    }
    panic!("no event for data {data}");
}

#[test]
fn s01_multishot_takes_events_without_rearm_or_new_sqes() {
    for &profile in Profile::ALL {
        let b = UringPoll::builder().profile(profile);
        let Some(mut p) = common::make(profile.name(), b.build(4)) else {
            continue;
        };
        let efd = fds::eventfd().unwrap();
        let mut events = Events::with_capacity(4);
        p.control().add(efd.as_fd(), Interest::READABLE, 9).unwrap();
        p.poll(&mut events).unwrap();
        let armed = p.stats();
        for _ in 0..100 {
            fds::fire(efd.as_fd()).unwrap();
            take_one(&mut p, &mut events, 9);
            fds::drain(efd.as_fd()).unwrap();
        }
        let d = p.stats() - armed;
        assert_eq!(d.rearms(), 0, "{profile}: {d:?}");
        assert_eq!(d.get(Counter::SqesSubmitted), 0, "{profile}: {d:?}");
        assert_eq!(d.get(Counter::EnterSubmit), 0, "{profile}: {d:?}");
        assert_eq!(d.get(Counter::EventsDelivered), 100, "{profile}: {d:?}");
    }
}

#[test]
fn default_profile_takes_a_posted_event_with_no_system_call() {
    let Some(mut p) = common::make("default", UringPoll::new(4)) else {
        return;
    };
    let efd = fds::eventfd().unwrap();
    let mut events = Events::with_capacity(4);
    p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    p.poll(&mut events).unwrap();
    for round in 0..10 {
        fds::fire(efd.as_fd()).unwrap();
        // The completion work runs on this thread by interrupt, here while
        // it sleeps; the CQE is then in our memory.
        thread::sleep(Duration::from_millis(20));
        let before = p.stats();
        assert_eq!(p.poll(&mut events).unwrap(), 1, "round {round}");
        let d = p.stats() - before;
        assert_eq!(d.syscalls(), 0, "round {round}: {d:?}");
        fds::drain(efd.as_fd()).unwrap();
    }
}

#[test]
fn defer_profile_poll_enters_only_when_completion_work_is_pending() {
    let b = UringPoll::builder().profile(Profile::Defer);
    let Some(mut p) = common::make("defer", b.build(4)) else {
        return;
    };
    let efd = fds::eventfd().unwrap();
    let mut events = Events::with_capacity(4);
    p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    p.poll(&mut events).unwrap();
    let before = p.stats();
    for _ in 0..10 {
        assert_eq!(p.poll(&mut events).unwrap(), 0);
    }
    let d = p.stats() - before;
    assert_eq!(d.syscalls(), 0, "an idle poll must not enter: {d:?}");
    for round in 0..10 {
        fds::fire(efd.as_fd()).unwrap();
        let before = p.stats();
        assert_eq!(p.poll(&mut events).unwrap(), 1, "round {round}");
        let d = p.stats() - before;
        assert_eq!(d.syscalls(), 1, "round {round}: one GETEVENTS: {d:?}");
        assert_eq!(d.get(Counter::EnterWait), 1, "round {round}: {d:?}");
        fds::drain(efd.as_fd()).unwrap();
    }
}

#[test]
fn control_from_the_owner_thread_costs_no_enter() {
    for &profile in Profile::ALL {
        let b = UringPoll::builder().profile(profile);
        let Some(mut p) = common::make(profile.name(), b.build(64)) else {
            continue;
        };
        let mut events = Events::with_capacity(64);
        p.poll(&mut events).unwrap();
        let efds: Vec<_> = (0..32).map(|_| fds::eventfd().unwrap()).collect();
        let before = p.stats();
        for (i, e) in efds.iter().enumerate() {
            p.control()
                .add(e.as_fd(), Interest::READABLE, i as u64)
                .unwrap();
        }
        let d = p.stats() - before;
        // Per add of an eventfd only the file check (one fstat: an
        // anonymous inode polls) and the fixed-file install; the
        // POLL_ADDs wait for the next take.
        assert_eq!(d.syscalls(), 64, "{profile}: {d:?}");
        assert_eq!(d.get(Counter::OtherSyscall), 64, "{profile}: {d:?}");
        for e in &efds {
            fds::fire(e.as_fd()).unwrap();
        }
        let mut seen = 0;
        while seen < 32 {
            seen += p.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
        }
        let d = p.stats() - before;
        assert_eq!(
            d.get(Counter::SqesSubmitted),
            32,
            "{profile}: one POLL_ADD each: {d:?}"
        );
    }
}

#[test]
fn rearm_mode_rearms_once_per_event() {
    let b = UringPoll::builder().rearm(true);
    let Some(mut p) = common::make("rearm", b.build(4)) else {
        return;
    };
    let efd = fds::eventfd().unwrap();
    let mut events = Events::with_capacity(4);
    p.control().add(efd.as_fd(), Interest::READABLE, 5).unwrap();
    p.poll(&mut events).unwrap();
    let before = p.stats();
    for _ in 0..50 {
        fds::fire(efd.as_fd()).unwrap();
        take_one(&mut p, &mut events, 5);
        fds::drain(efd.as_fd()).unwrap();
    }
    let d = p.stats() - before;
    // The re-arm for the last event is made at the next take.
    assert_eq!(d.get(Counter::RearmMode), 49, "{d:?}");
    assert_eq!(d.get(Counter::SqesSubmitted), 49, "{d:?}");
}

#[test]
fn s06_modify_of_an_idle_multishot_registration_is_one_in_place_update() {
    for &profile in Profile::ALL {
        let b = UringPoll::builder().profile(profile);
        let Some(mut p) = common::make(profile.name(), b.build(4)) else {
            continue;
        };
        let efd = fds::eventfd().unwrap();
        let mut events = Events::with_capacity(4);
        p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
        p.poll(&mut events).unwrap();
        for data in 2..12 {
            let before = p.stats();
            p.control()
                .modify(efd.as_fd(), Interest::READABLE, data)
                .unwrap();
            // Idle: let the update complete before the fire (under SQPOLL
            // the kernel thread submits it when it gets to it).
            for _ in 0..500 {
                p.wait(&mut events, Some(Duration::from_millis(10)))
                    .unwrap();
                assert!(events.is_empty(), "{profile}: {events:?}");
                if (p.stats() - before).get(Counter::CqesSeen) > 0 {
                    break;
                }
            }
            fds::fire(efd.as_fd()).unwrap();
            take_one(&mut p, &mut events, data);
            fds::drain(efd.as_fd()).unwrap();
            let d = p.stats() - before;
            // One POLL_REMOVE with UPDATE_EVENTS | UPDATE_USER_DATA, which
            // the kernel accepted: no cancel, no new POLL_ADD, no re-arm.
            assert_eq!(d.get(Counter::SqesSubmitted), 1, "{profile}: {d:?}");
            assert_eq!(d.rearms(), 0, "{profile}: {d:?}");
        }
    }
}

#[test]
fn s04_a_fd_ready_at_add_or_modify_is_reported_by_the_very_next_poll() {
    // SQPOLL submits on its kernel thread, later: not "the very next".
    for &profile in Profile::ALL.iter().filter(|&&p| p != Profile::Sqpoll) {
        for rearm in [false, true] {
            let b = UringPoll::builder().profile(profile).rearm(rearm);
            let Some(mut p) = common::make(profile.name(), b.build(4)) else {
                continue;
            };
            let mut events = Events::with_capacity(4);
            p.poll(&mut events).unwrap(); // Defer: this thread owns the ring
            let efd = fds::eventfd().unwrap();
            fds::fire(efd.as_fd()).unwrap();
            p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
            let before = p.stats();
            assert_eq!(p.poll(&mut events).unwrap(), 1, "{profile} rearm={rearm}");
            assert_eq!(events.iter().next().unwrap().data(), 1);
            let d = p.stats() - before;
            assert_eq!(d.syscalls(), 1, "{profile} rearm={rearm}: one enter: {d:?}");
            p.control()
                .modify(efd.as_fd(), Interest::READABLE, 2)
                .unwrap();
            assert_eq!(p.poll(&mut events).unwrap(), 1, "{profile} rearm={rearm}");
            assert_eq!(events.iter().next().unwrap().data(), 2);
        }
    }
}

/// The system calls of one `add` of an eventfd under Defer from another
/// thread: `dup`, `fstat` and `fcntl` (the O_PATH check the install would
/// make) in the call; the install and the `close` of the duplicate at the
/// owner's next take.
#[test]
fn defer_add_from_another_thread_costs_three_calls_then_two_at_the_owner() {
    let b = UringPoll::builder().profile(Profile::Defer);
    let Some(mut p) = common::make("defer", b.build(4)) else {
        return;
    };
    let mut events = Events::with_capacity(4);
    p.poll(&mut events).unwrap();
    let efd = std::sync::Arc::new(fds::eventfd().unwrap());
    let before = p.stats();
    thread::spawn({
        let (ctl, efd) = (p.control().clone(), efd.clone());
        move || ctl.add(efd.as_fd(), Interest::READABLE, 1).unwrap()
    })
    .join()
    .unwrap();
    let d = p.stats() - before;
    assert_eq!(d.get(Counter::OtherSyscall), 3, "{d:?}");
    assert_eq!(d.syscalls(), 3, "{d:?}");
    let before = p.stats();
    p.poll(&mut events).unwrap();
    let d = p.stats() - before;
    assert_eq!(d.get(Counter::OtherSyscall), 2, "install + close: {d:?}");
    // Deleted from the other thread: a clear of the slot for the owner.
    // Then added and deleted again before the owner takes: the delete
    // closes the queued duplicate at once, and the owner has nothing of
    // it left to do but the earlier clear.
    let other = std::sync::Arc::new(fds::eventfd().unwrap());
    let before = p.stats();
    thread::spawn({
        let (ctl, efd, other) = (p.control().clone(), efd.clone(), other.clone());
        move || {
            ctl.delete(efd.as_fd()).unwrap();
            ctl.add(other.as_fd(), Interest::READABLE, 2).unwrap();
            ctl.delete(other.as_fd()).unwrap();
        }
    })
    .join()
    .unwrap();
    let d = p.stats() - before;
    assert_eq!(
        d.get(Counter::OtherSyscall),
        3 + 1,
        "add, then delete's close: {d:?}"
    );
    let before = p.stats();
    p.poll(&mut events).unwrap();
    let d = p.stats() - before;
    assert_eq!(d.get(Counter::OtherSyscall), 1, "the clear: {d:?}");
}
