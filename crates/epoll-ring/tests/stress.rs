//! 10,000 registered eventfds. One thread fires random fds; another deletes
//! and re-adds them, half the time on the same fd and half the time on a
//! new eventfd that reuses the closed fd's number; the consumer drains the
//! eventfd of every event it takes. Bounded: a few seconds per driver mode.
//!
//! Checked:
//! - no event after delete (S5): an event whose data belongs to a
//!   registration deleted before the `wait` began fails the test;
//! - no lost event (S2, S10): once firing stops and the consumer has
//!   drained, every registered eventfd reads empty (a fire whose event
//!   never came would leave a count behind).
//!
//! In its own test binary: 10,000 fds must not share the process's
//! RLIMIT_NOFILE with other tests.
#![cfg(not(loom))] // Loom builds run only tests/loom.rs.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use epoll_ring::{DriverMode, EpollRing};
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

const N: usize = 10_000;
const CHURN: Duration = Duration::from_millis(3000);
const DRAIN: Duration = Duration::from_millis(1500);

struct Entry {
    fd: OwnedFd,
    token: u64,
}

/// Data of a registration: generation above, entry index below.
fn token(generation: u64, idx: usize) -> u64 {
    generation << 16 | idx as u64
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Reads the eventfd's count (0 if it would block).
fn read_count(fd: &OwnedFd) -> u64 {
    let mut buf = [0u8; 8];
    if let Ok(8) = rustix::io::read(fd, &mut buf) {
        u64::from_ne_bytes(buf)
    } else {
        0
    }
}

fn stress(mode: DriverMode) {
    let start = Instant::now();
    let mut p = EpollRing::with_mode(N, mode).unwrap();
    let entries: Arc<Vec<Mutex<Entry>>> = Arc::new(
        (0..N)
            .map(|i| {
                let fd = fds::eventfd().unwrap();
                let t = token(0, i);
                p.control().add(fd.as_fd(), Interest::READABLE, t).unwrap();
                Mutex::new(Entry { fd, token: t })
            })
            .collect(),
    );
    let deleted: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let epoch = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let fires = Arc::new(AtomicU64::new(0));

    let firer = {
        let (entries, stop, fires) = (entries.clone(), stop.clone(), fires.clone());
        thread::spawn(move || {
            let mut rng = Rng(0x2545_f491);
            while !stop.load(Ordering::Relaxed) {
                let e = entries[rng.below(N)].lock().unwrap();
                fds::fire(e.fd.as_fd()).unwrap();
                fires.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let churner = {
        let ctl = p.control().clone();
        let (entries, stop, deleted, epoch) = (
            entries.clone(),
            stop.clone(),
            deleted.clone(),
            epoch.clone(),
        );
        thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9);
            let (mut ops, mut reused) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let idx = rng.below(N);
                let mut e = entries[idx].lock().unwrap();
                ctl.delete(e.fd.as_fd()).unwrap();
                {
                    let mut d = deleted.lock().unwrap();
                    let at = epoch.fetch_add(1, Ordering::SeqCst) + 1;
                    d.insert(e.token, at);
                }
                // A fire after delete: must never show the old data.
                fds::fire(e.fd.as_fd()).unwrap();
                let next = token((e.token >> 16) + 1, idx);
                if ops % 2 == 0 {
                    // Re-add the same fd (S4: it is readable, so an event
                    // for the new data follows).
                    ctl.add(e.fd.as_fd(), Interest::READABLE, next).unwrap();
                } else {
                    // Replace the file under the same fd number: dup3
                    // closes the old eventfd and puts a fresh one there.
                    let fresh = fds::eventfd().unwrap();
                    // The number stays owned by e.fd, now naming the
                    // fresh file.
                    rustix::io::dup3(&fresh, &mut e.fd, rustix::io::DupFlags::CLOEXEC).unwrap();
                    drop(fresh);
                    reused += 1;
                    ctl.add(e.fd.as_fd(), Interest::READABLE, next).unwrap();
                }
                e.token = next;
                ops += 1;
            }
            (ops, reused)
        })
    };

    let mut events = Events::with_capacity(256);
    let (mut taken, mut after_delete, mut in_flight) = (0u64, 0u64, 0u64);
    let mut handle = |events: &Events, e0: u64, taken: &mut u64| {
        for ev in events {
            *taken += 1;
            let t = ev.data();
            let idx = (t & 0xffff) as usize;
            assert!(idx < N, "data {t:#x} was never registered");
            let e = entries[idx].lock().unwrap();
            if e.token == t {
                read_count(&e.fd);
                continue;
            }
            match deleted.lock().unwrap().get(&t) {
                Some(&at) if at <= e0 => after_delete += 1,
                Some(_) => in_flight += 1,
                None => panic!("data {t:#x} was never registered"),
            }
        }
    };
    let churn_end = Instant::now() + CHURN;
    while Instant::now() < churn_end {
        let e0 = epoch.load(Ordering::SeqCst);
        p.wait(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        handle(&events, e0, &mut taken);
    }
    stop.store(true, Ordering::Relaxed);
    firer.join().unwrap();
    let (ops, reused) = churner.join().unwrap();

    // Drain until quiet, then every registered eventfd must read empty.
    let drain_end = Instant::now() + DRAIN;
    let mut quiet_since = Instant::now();
    while Instant::now() < drain_end && quiet_since.elapsed() < Duration::from_millis(300) {
        let e0 = epoch.load(Ordering::SeqCst);
        if p.wait(&mut events, Some(Duration::from_millis(20)))
            .unwrap()
            > 0
        {
            quiet_since = Instant::now();
        }
        handle(&events, e0, &mut taken);
    }
    let mut lost = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let e = e.lock().unwrap();
        let left = read_count(&e.fd);
        if left != 0 {
            lost.push((i, e.token, left));
        }
    }
    let s = p.stats();
    eprintln!(
        "{mode:?}: {N} fds, {} fires, {ops} delete+re-add ({reused} reused the fd number), \
         {taken} events taken, {in_flight} in flight at delete, stale dropped {}, published {}, \
         coalesced {}, epoll_wait {}, epoll_ctl {}, futex_wait {}, futex_wake {}, spins {}, {:?}",
        fires.load(Ordering::Relaxed),
        s.get(Counter::StaleDropped),
        s.get(Counter::EventsPublished),
        s.get(Counter::FiresCoalesced),
        s.get(Counter::EpollWait),
        s.get(Counter::EpollCtl),
        s.get(Counter::FutexWait),
        s.get(Counter::FutexWake),
        s.get(Counter::SpinsBeforePark),
        start.elapsed()
    );
    assert_eq!(
        after_delete, 0,
        "{mode:?}: events delivered after their delete returned"
    );
    assert!(
        lost.is_empty(),
        "{mode:?}: {} fds fired with no event, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(reused > 0, "{mode:?}: no fd number was reused");
    assert!(
        ops > 100 && taken > 1000,
        "{mode:?}: the stress did too little ({ops} ops, {taken} events)"
    );
}

#[test]
fn s02_s05_ten_thousand_fds_with_fires_deletes_and_fd_reuse() {
    stress(DriverMode::Thread);
    stress(DriverMode::Inline);
}
