//! Batched waits (`Builder::min_wait`, IORING_FEAT_MIN_TIMEOUT): a burst
//! that comes while the min wait runs is taken in one wake-up, an event
//! after it is handed out at once, and an idle wait does not wake every
//! min wait (pitfall 17). Every profile, multishot and re-arm mode.

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use uring_poll::{Profile, UringPoll};
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

const N: usize = 32;

fn make(name: &str, profile: Profile, rearm: bool, min_wait: Duration) -> Option<UringPoll> {
    if !profile.has_min_wait() {
        eprintln!("SKIPPED {name}: no IORING_FEAT_MIN_TIMEOUT (Linux 6.12) here");
        return None;
    }
    common::make(
        name,
        UringPoll::builder()
            .profile(profile)
            .rearm(rearm)
            .min_wait(min_wait)
            .build(N + 1),
    )
}

fn registered(p: &UringPoll) -> Vec<OwnedFd> {
    let efds: Vec<OwnedFd> = (0..N).map(|_| fds::eventfd().unwrap()).collect();
    for (i, fd) in efds.iter().enumerate() {
        p.control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
    }
    efds
}

/// N fds fired 2 ms apart while a wait for N events with a 5 s min wait
/// runs: the one wait returns them all. Without the min wait the first
/// wait returns at the first fire (one or two events).
#[test]
fn a_burst_within_the_min_wait_is_taken_in_one_wait() {
    for (name, profile, rearm) in common::variants() {
        let Some(mut p) = make(&name, profile, rearm, Duration::from_secs(5)) else {
            continue;
        };
        let efds = registered(&p);
        let mut events = Events::with_capacity(N);
        // Arms every poll (Defer enables its ring on the first take).
        p.poll(&mut events).unwrap();
        assert!(events.is_empty(), "{name}");
        let fired = thread::scope(|s| {
            let writer = s.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                for fd in &efds {
                    fds::fire(fd.as_fd()).unwrap();
                    thread::sleep(Duration::from_millis(2));
                }
            });
            p.wait(&mut events, Some(Duration::from_secs(30))).unwrap();
            writer.join().unwrap();
            events.len()
        });
        assert_eq!(fired, N, "{name}: one wait took {fired} of {N} events");
    }
}

/// Once the min wait has passed with nothing, the next event ends the wait
/// at once: a wait for N events given one returns it, long before its
/// timeout.
#[test]
fn after_the_min_wait_the_first_event_ends_the_wait() {
    for (name, profile, rearm) in common::variants() {
        let Some(mut p) = make(&name, profile, rearm, Duration::from_millis(20)) else {
            continue;
        };
        let efds = registered(&p);
        let mut events = Events::with_capacity(N);
        p.poll(&mut events).unwrap();
        let start = Instant::now();
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(200));
                fds::fire(efds[7].as_fd()).unwrap();
            });
            p.wait(&mut events, Some(Duration::from_secs(60))).unwrap();
        });
        assert_eq!(
            events.iter().map(|e| e.data()).collect::<Vec<_>>(),
            [7],
            "{name}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name}: the wait held its one event until near its timeout"
        );
    }
}

/// pitfall 17: with a min wait and no timeout the kernel ends the wait
/// with ETIME after the min wait. An idle `wait(None)` woken after 300 ms
/// must not have entered the kernel once per 1 ms min wait meanwhile.
#[test]
fn pitfall_17_an_idle_batched_wait_does_not_wake_every_min_wait() {
    for (name, profile, rearm) in common::variants() {
        let Some(mut p) = make(&name, profile, rearm, Duration::from_millis(1)) else {
            continue;
        };
        let _efds = registered(&p);
        let mut events = Events::with_capacity(N);
        p.poll(&mut events).unwrap();
        let before = p.stats().get(Counter::EnterWait);
        let control = p.control().clone();
        thread::scope(|s| {
            s.spawn(move || {
                thread::sleep(Duration::from_millis(300));
                control.wake().unwrap();
            });
            p.wait(&mut events, None).unwrap();
        });
        let enters = p.stats().get(Counter::EnterWait) - before;
        assert!(
            enters <= 4,
            "{name}: {enters} wait enters in 300 ms idle with a 1 ms min wait"
        );
    }
}
