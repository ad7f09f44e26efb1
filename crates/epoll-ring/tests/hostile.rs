//! Hostile memory: the consumer side scribbles over `head`, `tail`, the
//! index ring and item words of the shared mapping. The producer never
//! reads or writes out of bounds and never panics; the damaged ring may
//! report garbage or fail with EIO, nothing worse.
#![cfg(not(loom))] // Loom builds run only tests/loom.rs.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use epoll_ring::ring::Ring;
use epoll_ring::{DriverMode, EpollRing};
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A value likely to hurt: extremes, near the ring's sizes, or random.
    fn nasty(&mut self, entries: u32) -> u32 {
        match self.below(6) {
            0 => u32::MAX,
            1 => entries.wrapping_add(self.below(3) as u32).wrapping_sub(1),
            2 => 0,
            3 => (1 << 31) | self.below(8) as u32,
            _ => self.next() as u32,
        }
    }
}

/// One scribble at a random place a consumer can reach.
fn scribble(ring: &Ring, rng: &mut Rng) {
    let entries = ring.layout().index_entries() as u32;
    let v = rng.nasty(entries);
    let r = Ordering::Relaxed;
    let h = ring.header();
    match rng.below(9) {
        0 => h.head.store(v, r),
        1 => h.tail.store(v, r),
        2 => h
            .head
            .store(h.tail.load(r).wrapping_add(rng.below(4) as u32), r),
        3 => {
            let i = rng.below(entries as u64) as usize;
            ring.index()[i].store(v, r)
        }
        4 => {
            let i = rng.below(ring.capacity() as u64) as usize;
            ring.items()[i].ready_events.store(v, r)
        }
        5 => {
            let i = rng.below(ring.capacity() as u64) as usize;
            ring.items()[i].events.store(v, r)
        }
        6 => {
            let i = rng.below(ring.capacity() as u64) as usize;
            ring.items()[i].data.store(rng.next(), r)
        }
        7 => h.max_items_nr.store(v, r),
        _ => {
            h.header_length.store(v, r);
            h.index_length.store(v, r);
            h.magic.store(v, r);
        }
    }
}

fn ok_or_eio<T>(r: std::io::Result<T>) {
    if let Err(e) = r {
        assert_eq!(
            e.raw_os_error(),
            Some(libc::EIO),
            "a damaged ring may only fail with EIO: {e}"
        );
    }
}

#[test]
fn scribbles_never_take_the_producer_out_of_bounds() {
    let mut damage_seen = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let ring = Ring::new(8).unwrap();
        for slot in 0..8 {
            ring.set(slot, IN | OUT, slot as u64).unwrap();
        }
        let (mut published, mut errors) = (0, 0);
        for _ in 0..5000 {
            match rng.below(8) {
                0 | 1 => scribble(&ring, &mut rng),
                2 | 3 => {
                    // Slots 8 and 9 are outside the ring: refused.
                    let slot = rng.below(10) as u32;
                    let gen = ring.generation(slot).unwrap_or(0);
                    ring.publish(slot, gen, if rng.below(2) == 0 { IN } else { OUT });
                    published += 1;
                }
                4 | 5 => match ring.take(rng.below(16) as usize, |_, _, _| {}) {
                    Ok(_) => {}
                    Err(e) => {
                        errors += 1;
                        ok_or_eio::<()>(Err(e));
                    }
                },
                6 => ok_or_eio(ring.pending()),
                _ => {
                    let slot = rng.below(8) as u32;
                    ring.retire(slot).unwrap();
                    ring.set(slot, IN, rng.next()).unwrap();
                }
            }
        }
        assert!(published > 0);
        damage_seen += errors;
    }
    // Not asserted per seed: a scribble may happen to look valid.
    assert!(
        damage_seen > 0,
        "no scribble was ever reported as damage (EIO)"
    );
}

#[test]
fn scribbles_from_another_thread_while_producers_and_consumers_run() {
    let ring = Arc::new(Ring::new(16).unwrap());
    for slot in 0..16 {
        ring.set(slot, IN | OUT, slot as u64).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..2u64 {
        let (ring, stop) = (ring.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            let mut rng = Rng(t + 11);
            while !stop.load(Ordering::Relaxed) {
                let slot = rng.below(16) as u32;
                ring.publish(slot, ring.generation(slot).unwrap(), IN);
            }
        }));
    }
    {
        let (ring, stop) = (ring.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                ok_or_eio(ring.take(8, |_, _, _| {}));
            }
        }));
    }
    {
        let (ring, stop) = (ring.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            let mut rng = Rng(99);
            while !stop.load(Ordering::Relaxed) {
                scribble(&ring, &mut rng);
                thread::yield_now();
            }
        }));
    }
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("no thread may panic on a damaged ring");
    }
}

#[test]
fn a_scribbled_poller_reports_garbage_or_eio_and_drops_cleanly() {
    for mode in [DriverMode::Thread, DriverMode::Inline] {
        let mut p = EpollRing::with_mode(32, mode).unwrap();
        let efds: Arc<Vec<OwnedFd>> = Arc::new((0..32).map(|_| fds::eventfd().unwrap()).collect());
        for (i, fd) in efds.iter().enumerate() {
            p.control()
                .add(fd.as_fd(), Interest::READABLE, i as u64)
                .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let firer = {
            let (efds, stop) = (efds.clone(), stop.clone());
            thread::spawn(move || {
                let mut rng = Rng(5);
                while !stop.load(Ordering::Relaxed) {
                    let fd = &efds[rng.below(32) as usize];
                    fds::fire(fd.as_fd()).unwrap();
                    thread::sleep(Duration::from_micros(50));
                }
            })
        };
        let before = p.stats();
        let mut rng = Rng(77);
        let mut events = Events::with_capacity(16);
        let (mut eio, mut oks) = (0, 0);
        let end = Instant::now() + Duration::from_millis(400);
        while Instant::now() < end {
            for _ in 0..3 {
                scribble(p.ring(), &mut rng);
            }
            match p.wait(&mut events, Some(Duration::from_millis(2))) {
                Ok(_) => oks += 1,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{mode:?}: {e}");
                    eio += 1;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        firer.join().unwrap();
        assert!(oks + eio > 0);
        // The producer kept running: it published (or coalesced, or
        // dropped) fires after the damage, and control still works.
        let d = p.stats() - before;
        assert!(d.get(Counter::EpollWait) > 0, "{mode:?}: {d:?}");
        for fd in efds.iter() {
            p.control().delete(fd.as_fd()).unwrap();
        }
        drop(p);
    }
}
