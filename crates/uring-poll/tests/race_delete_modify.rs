//! S5 and S6 racing in-flight completions: one thread fires, another
//! deletes, re-adds and modifies the registration with ever larger data,
//! 10,000 times, while the owner takes events. An event whose data was
//! retired (by a delete or modify that returned before the take began) is
//! a stale event and fails the test.

mod common;

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use uring_poll::UringPoll;
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

/// Iterations for the two profiles that bound the design (any thread may
/// enter; only the owner may); the others run a fifth of that to keep the
/// test within seconds.
const ITERATIONS: u64 = 10_000;

#[test]
fn s05_s06_delete_and_modify_racing_completions_never_deliver_stale_events() {
    for (name, profile, rearm) in common::variants() {
        let b = UringPoll::builder().profile(profile).rearm(rearm);
        let Some(mut p) = common::make(&name, b.build(16)) else {
            continue;
        };
        let iterations = match (name.as_str(), rearm) {
            ("default" | "defer", false) => ITERATIONS,
            _ => ITERATIONS / 5,
        };
        let started = std::time::Instant::now();
        let efd = Arc::new(fds::eventfd().unwrap());
        // Every data below `retired` belongs to a registration deleted or
        // modified away before the store.
        let retired = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // The largest data the owner has taken an event for.
        let delivered = Arc::new(AtomicU64::new(0));
        let firer = {
            let (efd, stop) = (efd.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    fds::fire(efd.as_fd()).unwrap();
                    fds::drain(efd.as_fd()).unwrap();
                    fds::fire(efd.as_fd()).unwrap();
                    // Two cores are shared by four busy threads here (five
                    // with SQPOLL's kernel thread): let the others run.
                    thread::yield_now();
                }
            })
        };
        let controller = {
            let (efd, retired, ctl) = (efd.clone(), retired.clone(), p.control().clone());
            let delivered = delivered.clone();
            thread::spawn(move || {
                let mut data = 1;
                ctl.add(efd.as_fd(), Interest::READABLE, data).unwrap();
                for i in 0..iterations {
                    let next = data + 1;
                    if i % 2 == 0 {
                        ctl.modify(efd.as_fd(), Interest::READABLE, next).unwrap();
                    } else {
                        ctl.delete(efd.as_fd()).unwrap();
                        ctl.add(efd.as_fd(), Interest::READABLE, next).unwrap();
                    }
                    retired.store(next, Ordering::Release);
                    data = next;
                    // Let the current registration deliver before the next
                    // change, so every delete and modify races a request
                    // that is armed in the kernel with completions in flight.
                    {
                        let t = std::time::Instant::now();
                        while delivered.load(Ordering::Acquire) < data {
                            assert!(
                                t.elapsed() < Duration::from_secs(10),
                                "no event for the current registration (data {data})"
                            );
                            thread::yield_now();
                        }
                    }
                }
                ctl.delete(efd.as_fd()).unwrap();
                retired.store(u64::MAX, Ordering::Release);
            })
        };
        let mut events = Events::with_capacity(16);
        let mut seen = 0u64;
        let mut last_data = 0;
        loop {
            let floor = retired.load(Ordering::Acquire);
            p.wait(&mut events, Some(Duration::from_millis(5))).unwrap();
            for e in &events {
                assert!(
                    e.data() >= floor,
                    "{name}: stale event {e:?}: data below {floor} was retired before this take"
                );
                seen += 1;
                last_data = last_data.max(e.data());
                delivered.fetch_max(e.data(), Ordering::Release);
            }
            if floor == u64::MAX {
                break;
            }
        }
        controller.join().unwrap();
        // Everything is deleted: nothing at all may come now.
        for _ in 0..10 {
            p.wait(&mut events, Some(Duration::from_millis(10)))
                .unwrap();
            assert!(
                events.is_empty(),
                "{name}: event after the last delete: {events:?}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        firer.join().unwrap();
        let s = p.stats();
        eprintln!(
            "{name}: {iterations} iterations in {:?}, {seen} events, last data {last_data}, \
             stats {s:?}",
            started.elapsed()
        );
        assert!(seen >= iterations, "{name}: the race delivered too little");
        assert_eq!(s.get(Counter::ControlOps), iterations * 3 / 2 + 2);
    }
}

/// Under DEFER_TASKRUN a fire leaves the poll's completion work pending
/// until the owner enters with GETEVENTS; an in-place update submitted
/// before that work runs is refused with -EALREADY (tests/kernel_facts.rs).
/// The poller runs the pending work first, so a modify made while a fire is
/// pending is still one accepted update: no cancel, no new POLL_ADD, and
/// only the new data is delivered.
#[test]
fn s06_modify_while_completion_work_pending_is_still_applied_in_place() {
    use uring_poll::Profile;
    let b = UringPoll::builder().profile(Profile::Defer);
    let Some(mut p) = common::make("defer", b.build(4)) else {
        return;
    };
    let efd = fds::eventfd().unwrap();
    let mut events = Events::with_capacity(8);
    p.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    p.poll(&mut events).unwrap(); // submits the POLL_ADD
    assert!(events.is_empty());
    for round in 0..20u64 {
        let old = 1 + round;
        let before = p.stats();
        fds::fire(efd.as_fd()).unwrap(); // completion work now pending
        p.control()
            .modify(efd.as_fd(), Interest::READABLE, old + 1)
            .unwrap();
        let mut got_new = false;
        for _ in 0..100 {
            p.wait(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            for e in &events {
                assert_eq!(e.data(), old + 1, "round {round}: {e:?}");
                got_new = true;
            }
            if got_new {
                break;
            }
        }
        assert!(
            got_new,
            "round {round}: no event under the new data (S4 at modify)"
        );
        let d = p.stats() - before;
        assert_eq!(d.get(Counter::SqesSubmitted), 1, "round {round}: {d:?}");
        assert_eq!(d.rearms(), 0, "round {round}: refused update: {d:?}");
        fds::drain(efd.as_fd()).unwrap();
        while p.wait(&mut events, Some(Duration::from_millis(5))).unwrap() > 0 {}
    }
}
