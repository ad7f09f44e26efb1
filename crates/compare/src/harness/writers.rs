//! The writer threads: closed-loop rounds (every writer draws the same
//! seeded shuffle and fires its share), bursts (then wake the consumer),
//! and the open-loop schedule (a fire every `1/rate` seconds, latency from
//! the scheduled time).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{RunState, OPEN};
use crate::sys::{self, now_ns, Rng};

/// The writers' system calls, counted as they make them.
#[derive(Debug, Default)]
pub(super) struct WriterCounts {
    /// `write` calls (fires).
    pub(super) writes: AtomicU64,
    /// Futex waits and wakes, sleeps, timer-slack changes.
    pub(super) other_syscalls: AtomicU64,
}

/// Open loop: a writer spins rather than sleeps when its next fire is
/// closer than this (its timer slack is cut to 1 ns, so a sleep ends within
/// a few microseconds of its deadline).
const SPIN_NS: u64 = 10_000;

impl RunState<'_> {
    #[inline]
    pub(super) fn fire(&self, t: usize, stamp: u64) -> bool {
        self.fire[t].store(stamp, Ordering::Release);
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.fds.fire(t) {
            self.fail(format!("writer: {e}"));
            return false;
        }
        if let Some(l) = &self.listener {
            l.fired(t as u32);
        }
        true
    }

    pub(super) fn writer(&self, w: usize) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        if let Ok(mut c) = self.writer_clocks.lock() {
            c.push(sys::thread_cpu_clock(me));
        }
        let wl = self.w;
        let n = wl.fds;
        let mut perm: Vec<u32> = (0..n as u32).collect();
        let mut rng = Rng::new(wl.seed);
        let mut seen = 0u32;
        loop {
            // Wait for the next round (or the schedule, or the end).
            loop {
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                let g = self.gate.load(Ordering::Acquire);
                if g != seen {
                    seen = g;
                    break;
                }
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                if self.gate.load(Ordering::SeqCst) == seen && !self.stop.load(Ordering::SeqCst) {
                    self.counts.other_syscalls.fetch_add(1, Ordering::Relaxed);
                    sys::futex_wait(&self.gate, seen, std::time::Duration::from_millis(100));
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
            if seen == OPEN {
                self.open_writer(w);
                continue;
            }
            if wl.own_fd {
                if !self.fire(w, now_ns()) {
                    return;
                }
                if wl.burst {
                    self.fired_round();
                }
                continue;
            }
            // Every writer draws the same shuffle, round after round.
            for i in 0..wl.active {
                let j = i + rng.below((n - i) as u64) as usize;
                perm.swap(i, j);
            }
            for i in (w..wl.active).step_by(wl.writers) {
                if !self.fire(perm[i] as usize, now_ns()) {
                    return;
                }
            }
            if wl.burst {
                self.fired_round();
            }
        }
    }

    /// Burst mode: this writer's share of the round is fired; wake the
    /// consumer waiting for the whole round.
    pub(super) fn fired_round(&self) {
        self.fired.fetch_add(1, Ordering::SeqCst);
        self.counts.other_syscalls.fetch_add(1, Ordering::Relaxed);
        sys::futex_wake_all(&self.fired);
    }

    fn open_writer(&self, w: usize) {
        let n = self.w.fds as u64;
        let rate = self.w.rate.expect("open loop has a rate");
        let start = self.open_start.load(Ordering::Acquire);
        let fires = self.open_fires.load(Ordering::Acquire);
        let mut rng = Rng::new(self.w.seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9));
        // The default 50 us timer slack would make every sleep end late.
        sys::set_timer_slack_ns(1);
        self.counts.other_syscalls.fetch_add(1, Ordering::Relaxed);
        let mut i = w as u64;
        while i < fires {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let at = start + (i as f64 * 1e9 / rate) as u64;
            // Sleep when the next fire is far off; spin the last stretch (a
            // sleep still overshoots by a few microseconds on a VM).
            let now = now_ns();
            if now + SPIN_NS < at {
                let calls = sys::sleep_until_ns(at - SPIN_NS);
                self.counts
                    .other_syscalls
                    .fetch_add(calls, Ordering::Relaxed);
            }
            while now_ns() < at {
                std::hint::spin_loop();
            }
            // A random fd that is not pending (claimed with the stamp).
            let t = loop {
                let t = rng.below(n) as usize;
                if self.fire[t]
                    .compare_exchange(0, at, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    break t;
                }
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
            };
            if !self.fire(t, at) {
                return;
            }
            i += self.w.writers as u64;
        }
    }
}
