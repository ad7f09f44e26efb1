//! Several consumers on one ring, with real threads: every queued entry is
//! taken by exactly one consumer, and no fire is lost.
#![cfg(not(loom))] // Loom builds run only tests/loom.rs.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use epoll_ring::ring::{Publish, Ring};
use epoll_ring::{DriverMode, EpollRing};
use userpoll::conformance::fds;
use userpoll::{Control, Events, Interest, Poller};

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;

#[test]
fn ring_two_producers_three_consumers_each_entry_taken_once() {
    const SLOTS: u32 = 64;
    const FIRES: usize = 100_000;
    let ring = Arc::new(Ring::new(SLOTS as usize).unwrap());
    let gens: Vec<u32> = (0..SLOTS)
        .map(|s| ring.set(s, IN | OUT, s as u64).unwrap())
        .collect();
    let queued: Arc<Vec<AtomicU64>> = Arc::new((0..SLOTS).map(|_| AtomicU64::new(0)).collect());
    let taken: Arc<Vec<AtomicU64>> = Arc::new((0..SLOTS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));

    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            let (ring, queued, gens) = (ring.clone(), queued.clone(), gens.clone());
            thread::spawn(move || {
                let mut x = 0x1234_5678u32 ^ p;
                for i in 0..FIRES {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // Producer p owns the slots of its parity.
                    let slot = (x % (SLOTS / 2)) * 2 + p;
                    let bits = if i % 2 == 0 { IN } else { OUT };
                    if ring.publish(slot, gens[slot as usize], bits) == Publish::Queued {
                        queued[slot as usize].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (ring, taken, done) = (ring.clone(), taken.clone(), done.clone());
            thread::spawn(move || loop {
                let finished = done.load(Ordering::Acquire);
                let mut seen = HashSet::new();
                let t = ring
                    .take(16, |slot, data, bits| {
                        assert_eq!(data, slot as u64);
                        assert!(bits & !(IN | OUT) == 0 && bits != 0, "{bits:#x}");
                        assert!(seen.insert(slot), "one take reported slot {slot} twice");
                        taken[slot as usize].fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                assert_eq!(t.removed, 0);
                if finished && ring.pending().unwrap() == 0 {
                    return;
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for c in consumers {
        c.join().unwrap();
    }
    for s in 0..SLOTS as usize {
        assert_eq!(
            taken[s].load(Ordering::Relaxed),
            queued[s].load(Ordering::Relaxed),
            "slot {s}: every queued entry is taken exactly once"
        );
        assert_eq!(
            ring.items()[s].ready_events.load(Ordering::Relaxed),
            0,
            "slot {s}: fire lost"
        );
    }
    let h = ring.header();
    assert_eq!(
        h.head.load(Ordering::Relaxed),
        h.tail.load(Ordering::Relaxed)
    );
    assert_eq!(ring.counter() & 0xffff_ffff, 0);
}

/// Three consumers of one poller, fires from another thread: each consumer
/// drains the eventfd of every event it takes; every fire is absorbed
/// (an eventfd left with a count would mean a lost event).
fn three_consumers(mode: DriverMode) {
    const N: usize = 128;
    const ROUNDS: u64 = 20;
    let p = EpollRing::with_mode(N, mode).unwrap();
    let efds: Arc<Vec<OwnedFd>> = Arc::new((0..N).map(|_| fds::eventfd().unwrap()).collect());
    for (i, fd) in efds.iter().enumerate() {
        p.control()
            .add(fd.as_fd(), Interest::READABLE, i as u64)
            .unwrap();
    }
    let absorbed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let mut c = p.consumer();
            let (efds, absorbed, stop) = (efds.clone(), absorbed.clone(), stop.clone());
            thread::spawn(move || {
                let mut events = Events::with_capacity(32);
                while !stop.load(Ordering::Acquire) {
                    c.wait(&mut events, Some(Duration::from_millis(20)))
                        .unwrap();
                    let mut seen = HashSet::new();
                    for ev in &events {
                        assert!(seen.insert(ev.data()), "S3: one call, two events");
                        let mut buf = [0u8; 8];
                        let fd = &efds[ev.data() as usize];
                        if let Ok(8) = rustix::io::read(fd, &mut buf) {
                            absorbed.fetch_add(u64::from_ne_bytes(buf), Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    drop(p);
    for _ in 0..ROUNDS {
        for fd in efds.iter() {
            fds::fire(fd.as_fd()).unwrap();
        }
        thread::sleep(Duration::from_millis(1));
    }
    let want = N as u64 * ROUNDS;
    let deadline = Instant::now() + Duration::from_secs(10);
    while absorbed.load(Ordering::Relaxed) != want && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Release);
    for c in consumers {
        c.join().unwrap();
    }
    assert_eq!(
        absorbed.load(Ordering::Relaxed),
        want,
        "{mode:?}: fires never absorbed (lost events)"
    );
}

#[test]
fn thread_mode_three_consumers_lose_nothing() {
    three_consumers(DriverMode::Thread);
}

#[test]
fn inline_mode_three_consumers_lose_nothing() {
    three_consumers(DriverMode::Inline);
}
