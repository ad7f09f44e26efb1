//! The measurement loop on the calling thread: registers the fds, runs the
//! warm-up and the measured rounds (or the open-loop schedule), changes
//! registrations in the churn scenario, and reads every counter and clock
//! just before and just after the measured phase.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;

use super::consumers::{await_consumers, take, ConsumerThreads, Tally};
use super::{new_histogram, Outcome, RunState, OPEN, WAIT_SLICE};
use crate::backends::{self, Backend};
use crate::fds::FdSet;
use crate::sys::{self, now_ns};

/// The consuming side's counts at one instant: the calling thread's, or
/// with several consumers the pool's (plus the coordinator's own calls).
/// Read just before and just after the measured phase.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConsumerCounts {
    events: u64,
    spurious: u64,
    reads: u64,
    bytes: u64,
    other_syscalls: u64,
}

impl RunState<'_> {
    /// Burst mode, the consumer: waits until every writer fired round
    /// `round` (returns the futex waits made).
    pub(super) fn await_round(&self, round: u32) -> Result<u64, String> {
        let want = round.wrapping_mul(self.w.writers as u32);
        let mut calls = 0;
        let start = now_ns();
        loop {
            let f = self.fired.load(Ordering::SeqCst);
            if f == want {
                return Ok(calls);
            }
            if self.stop.load(Ordering::Acquire) {
                return Err("the writers stopped".into());
            }
            if now_ns() - start > self.w.stall.as_nanos() as u64 {
                return Err(format!(
                    "stalled: the writers did not fire round {round} within {:?}",
                    self.w.stall
                ));
            }
            calls += 1;
            sys::futex_wait(&self.fired, f, WAIT_SLICE);
        }
    }
}

/// The churn pool: tokens `fds..fds + 2 * churn`, half registered.
pub(super) struct Churn {
    registered: VecDeque<u32>,
    idle: VecDeque<u32>,
}

impl Churn {
    fn step(&mut self, n: usize, fds: &FdSet, b: &mut dyn Backend) -> Result<(), String> {
        for _ in 0..n {
            let (Some(old), Some(new)) = (self.registered.pop_front(), self.idle.pop_front())
            else {
                return Ok(());
            };
            b.delete(fds.read_fd(old as usize), old)
                .map_err(|e| format!("churn delete: {e}"))?;
            b.add(fds.read_fd(new as usize), new)
                .map_err(|e| format!("churn add: {e}"))?;
            self.idle.push_back(old);
            self.registered.push_back(new);
        }
        Ok(())
    }
}

pub(super) fn consume(
    sh: &RunState<'_>,
    b: &mut dyn Backend,
    tally: &mut Tally,
    out: &mut Outcome,
    threads: Option<ConsumerThreads<'_>>,
) -> Result<(), String> {
    let w = sh.w;
    let fds = sh.fds;
    for t in 0..w.fds {
        b.add(fds.read_fd(t), t as u32).map_err(|e| {
            format!(
                "registering fd {} (source {t}): {e}",
                std::os::fd::AsRawFd::as_raw_fd(&fds.read_fd(t))
            )
        })?;
    }
    let mut churn = Churn {
        registered: (w.fds..w.fds + w.churn).map(|t| t as u32).collect(),
        idle: (w.fds + w.churn..w.sources()).map(|t| t as u32).collect(),
    };
    for &t in &churn.registered {
        b.add(fds.read_fd(t as usize), t)
            .map_err(|e| format!("registering churn fd: {e}"))?;
    }
    let mut buf = Vec::with_capacity(backends::BATCH);
    tally.last_progress = now_ns();

    let mut round = 0u32;
    let mut next_round =
        |tally: &mut Tally, b: &mut dyn Backend, hist: Option<&mut Histogram<u64>>| {
            round += 1;
            sh.gate.store(round, Ordering::SeqCst);
            if sh.sleepers.load(Ordering::SeqCst) > 0 {
                tally.other_syscalls += 1;
                sys::futex_wake_all(&sh.gate);
            }
            churn.step(w.churn, fds, b)?;
            if w.burst {
                tally.other_syscalls += sh.await_round(round)?;
            }
            let r = match threads {
                Some(m) => await_consumers(sh, m.pool, w.active as u64, tally),
                None => take(sh, b, w.active as u64, tally, hist, &mut buf),
            };
            // For a progress display: one relaxed add per round, no call.
            if let Some(n) = sh.rounds_done {
                n.fetch_add(1, Ordering::Relaxed);
            }
            r
        };
    for _ in 0..w.warmup_rounds {
        next_round(tally, b, None)?;
    }

    // The measured phase. With several consumers the counts are theirs
    // (pooled) and the CPU time is the sum of their threads'.
    let counts = |tally: &Tally| match threads {
        Some(m) => ConsumerCounts {
            events: m.pool.events.load(Ordering::Acquire),
            spurious: m.pool.spurious.load(Ordering::Acquire),
            reads: m.pool.reads.load(Ordering::Acquire),
            bytes: m.pool.bytes.load(Ordering::Acquire),
            other_syscalls: tally.other_syscalls + m.pool.coordinator_wakes.load(Ordering::Acquire),
        },
        None => ConsumerCounts {
            events: tally.events,
            spurious: tally.spurious,
            reads: tally.reads,
            bytes: tally.bytes,
            other_syscalls: tally.other_syscalls,
        },
    };
    let consumer_cpu = |tally: &mut Tally| match threads {
        Some(m) => {
            tally.other_syscalls += m.clocks.len() as u64;
            m.cpu_ns()
        }
        None => {
            tally.other_syscalls += 1;
            sys::thread_cpu_ns()
        }
    };
    if let Some(m) = threads {
        m.pool.measuring.store(true, Ordering::SeqCst);
    }
    let s0 = b.stats();
    let before = counts(tally);
    let writes0 = sh.counts.writes.load(Ordering::Relaxed);
    let wother0 = sh.counts.other_syscalls.load(Ordering::Relaxed);
    let writer_clocks: Vec<libc::clockid_t> = sh
        .writer_clocks
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let writer_cpu = |tally: &mut Tally| {
        tally.other_syscalls += writer_clocks.len() as u64;
        writer_clocks.iter().map(|&c| sys::clock_ns(c)).sum::<u64>()
    };
    tally.other_syscalls += 1;
    let wcpu0 = writer_cpu(tally);
    let pcpu0 = sys::process_cpu_ns();
    let ccpu0 = consumer_cpu(tally);
    let t0 = now_ns();
    let mut hist = new_histogram();
    let run = if let Some(rate) = w.rate {
        let fires = match w.duration {
            Some(d) => (rate * d.as_secs_f64()).round().max(1.0) as u64,
            None => w.rounds * w.active as u64,
        };
        out.events_expected = fires;
        out.rounds = fires.div_ceil(w.active as u64);
        sh.open_fires.store(fires, Ordering::SeqCst);
        sh.open_start.store(now_ns() + 1_000_000, Ordering::SeqCst);
        sh.gate.store(OPEN, Ordering::SeqCst);
        tally.other_syscalls += 1;
        sys::futex_wake_all(&sh.gate);
        match threads {
            Some(m) => await_consumers(sh, m.pool, fires, tally),
            None => {
                let mut buf = Vec::with_capacity(backends::BATCH);
                take(sh, b, fires, tally, Some(&mut hist), &mut buf)
            }
        }
    } else {
        let mut r = Ok(());
        loop {
            let done = match w.duration {
                Some(d) => now_ns() - t0 >= d.as_nanos() as u64,
                None => out.rounds >= w.rounds,
            };
            if done {
                break;
            }
            out.rounds += 1;
            out.events_expected += w.active as u64;
            r = next_round(tally, b, Some(&mut hist));
            if r.is_err() {
                break;
            }
        }
        r
    };
    out.wall_ns = now_ns() - t0;
    out.consumer_cpu_ns = consumer_cpu(tally) - ccpu0;
    out.process_cpu_ns = sys::process_cpu_ns() - pcpu0;
    // A writer that stopped on an error has exited and its clock reads 0:
    // the split is meaningless then, and the run has failed anyway.
    out.writer_cpu_ns = writer_cpu(tally).saturating_sub(wcpu0);
    tally.other_syscalls += 1;
    out.backend = b.stats() - s0;
    let after = counts(tally);
    out.events = after.events - before.events;
    out.spurious = after.spurious - before.spurious;
    out.handler_reads = after.reads - before.reads;
    out.handler_bytes = after.bytes - before.bytes;
    out.consumer_other = after.other_syscalls - before.other_syscalls;
    out.writer_writes = sh.counts.writes.load(Ordering::Relaxed) - writes0;
    out.writer_other = sh.counts.other_syscalls.load(Ordering::Relaxed) - wother0;
    out.latency = hist;
    run
}
