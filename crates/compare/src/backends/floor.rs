//! The floor: the same writers and the same handler, with readiness passed
//! through plain shared memory instead of the kernel. A writer fires its fd
//! (so the handler has the same bytes to drain), then publishes the token
//! in an index ring; the consumer takes tokens from the ring, spins a
//! little when it is empty, then parks on a futex that a writer wakes.
//! Nothing readiness-related can be cheaper, so every backend is reported
//! against it.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use userpoll::{Counter, Counters, Stats};

use super::{Backend, FireListener, BATCH};
use crate::sys::{futex_wait, futex_wake_all, now_ns};

/// Empty-ring polls before the consumer parks.
const SPINS: u32 = 256;

/// The shared index ring between the writers and the floor's consumer.
/// Each fd is published at most once until the consumer has handled it
/// (the harness never re-fires an fd before that), so a ring with a slot
/// per fd cannot overflow.
#[derive(Debug)]
pub struct FloorQueue {
    /// Token + 1, or 0 for an empty slot.
    slots: Box<[AtomicU32]>,
    mask: usize,
    tail: AtomicUsize,
    /// 1 while the consumer is parked or about to park (the futex word).
    parked: AtomicU32,
    counters: Counters,
}

impl FloorQueue {
    /// A ring for up to `capacity` outstanding tokens.
    pub fn new(capacity: usize) -> FloorQueue {
        let len = capacity.max(2).next_power_of_two();
        FloorQueue {
            slots: (0..len).map(|_| AtomicU32::new(0)).collect(),
            mask: len - 1,
            tail: AtomicUsize::new(0),
            parked: AtomicU32::new(0),
            counters: Counters::new(),
        }
    }

    /// Publishes `token` (writer side); wakes the consumer if it parked.
    #[inline]
    pub fn publish(&self, token: u32) {
        let pos = self.tail.fetch_add(1, Ordering::Relaxed);
        self.slots[pos & self.mask].store(token + 1, Ordering::Release);
        self.counters.incr(Counter::EventsPublished);
        // Pairs with the consumer's fence between setting `parked` and
        // re-checking the ring: one of the two sees the other.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) != 0 && self.parked.swap(0, Ordering::AcqRel) != 0 {
            self.counters.incr(Counter::FutexWake);
            futex_wake_all(&self.parked);
        }
    }
}

impl FireListener for FloorQueue {
    fn fired(&self, token: u32) {
        self.publish(token);
    }
}

/// The floor's consuming side.
#[derive(Debug)]
pub struct Floor {
    queue: Arc<FloorQueue>,
    head: usize,
}

impl Floor {
    /// A floor for up to `capacity` sources, with its own queue (the
    /// writers reach it through [`Backend::fire_listener`]).
    pub fn new(capacity: usize) -> Floor {
        Floor::with_queue(Arc::new(FloorQueue::new(capacity)))
    }

    /// The consumer of `queue`.
    pub fn with_queue(queue: Arc<FloorQueue>) -> Floor {
        Floor { queue, head: 0 }
    }

    fn take(&mut self, out: &mut Vec<u32>) -> usize {
        let q = &*self.queue;
        let mut n = 0;
        while n < BATCH {
            let slot = &q.slots[self.head & q.mask];
            let v = slot.load(Ordering::Acquire);
            if v == 0 {
                break;
            }
            slot.store(0, Ordering::Relaxed);
            out.push(v - 1);
            self.head += 1;
            n += 1;
        }
        n
    }
}

impl Backend for Floor {
    fn add(&mut self, _fd: BorrowedFd<'_>, _token: u32) -> io::Result<()> {
        self.queue.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&mut self, _fd: BorrowedFd<'_>, _token: u32) -> io::Result<()> {
        self.queue.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        let deadline = now_ns() + timeout.as_nanos() as u64;
        let mut spins = 0;
        loop {
            let n = self.take(out);
            if n > 0 {
                self.queue.counters.add(Counter::EventsDelivered, n as u64);
                return Ok(());
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let q = &*self.queue;
            q.parked.store(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if q.slots[self.head & q.mask].load(Ordering::Acquire) != 0 {
                q.parked.store(0, Ordering::Relaxed);
                continue;
            }
            let now = now_ns();
            if now >= deadline {
                q.parked.store(0, Ordering::Relaxed);
                return Ok(());
            }
            q.counters.incr(Counter::FutexWait);
            futex_wait(
                &q.parked,
                1,
                std::time::Duration::from_nanos(deadline - now),
            );
            q.parked.store(0, Ordering::Relaxed);
            spins = 0;
        }
    }

    fn stats(&self) -> Stats {
        self.queue.counters.snapshot()
    }

    fn fire_listener(&self) -> Option<Arc<dyn FireListener>> {
        Some(self.queue.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_delivers_across_threads_and_parks() {
        let q = Arc::new(FloorQueue::new(8));
        let mut floor = Floor::with_queue(q.clone());
        let mut out = Vec::new();
        floor.wait(&mut out, Duration::from_millis(1)).unwrap();
        assert!(out.is_empty());
        let w = {
            let q = q.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                for t in 0..5 {
                    q.publish(t);
                }
            })
        };
        while out.len() < 5 {
            floor.wait(&mut out, Duration::from_secs(5)).unwrap();
        }
        w.join().unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4]);
        let s = floor.stats();
        assert_eq!(s.get(Counter::EventsDelivered), 5);
        assert!(
            s.get(Counter::FutexWait) >= 1,
            "parked while the writer slept"
        );
    }
}
