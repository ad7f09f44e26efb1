//! The types a run is described and measured by: the [`Workload`] (shared
//! by every backend of a suite), the [`Handler`], and the [`Outcome`] of
//! one run.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use userpoll::Stats;

/// What the handler does with each event. Written `read` / `none` on the
/// command line, in the JSON and in the gate's suite file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Handler {
    /// Drains the fd (what servers do).
    Read,
    /// Nothing: notification cost alone (edge-like backends only).
    None,
}

impl Handler {
    /// `read` or `none`.
    pub fn parse(s: &str) -> Result<Handler, String> {
        match s {
            "read" => Ok(Handler::Read),
            "none" => Ok(Handler::None),
            _ => Err(format!("unknown handler {s:?}; use read or none")),
        }
    }

    /// The name used on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Read => "read",
            Handler::None => "none",
        }
    }
}

/// The shape of a run, shared by every backend of a suite.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Sources fired by the writers (tokens `0..fds`).
    pub fds: usize,
    /// Fds fired per round.
    pub active: usize,
    /// Measured rounds (closed loop), or `rounds * active` fires (open loop).
    pub rounds: u64,
    /// Run measured rounds for this long instead (closed loop), or fire
    /// `rate * duration` times (open loop).
    pub duration: Option<Duration>,
    /// The handler.
    pub handler: Handler,
    /// Writer threads.
    pub writers: usize,
    /// Consuming threads (more than 1 only for backends that support it;
    /// the calling thread then coordinates rounds instead of consuming).
    pub consumers: usize,
    /// Open loop: fires per second.
    pub rate: Option<f64>,
    /// Closed loop in bursts: the writers fire the whole round before the
    /// consumer takes any of it, so every round reaches the backend as one
    /// batch whatever the scheduling. Per-event costs then do not depend on
    /// how the consumer's waits interleave with the writers' fires (the
    /// gate's cost scenarios); latency includes the rest of the round's
    /// firing.
    pub burst: bool,
    /// Writer `w` fires fd `w` every round (the userpoll-series shape);
    /// needs `fds == active == writers`.
    pub own_fd: bool,
    /// Registrations deleted and added again per round, from a pool of
    /// extra fds that are never fired (tokens `fds..fds + 2 * churn`).
    pub churn: usize,
    /// Seed of the fire schedule.
    pub seed: u64,
    /// Unmeasured rounds before the measured ones.
    pub warmup_rounds: u64,
    /// A run with no event for this long has failed.
    pub stall: Duration,
    /// Busy work added to the handler, per event: the consumer runs a
    /// calibrated spin loop for about this threads nanoseconds. Only for
    /// measuring the regression gate (`compare gate`); 0 in every real
    /// measurement.
    pub spin_ns: u64,
}

/// Measured rounds of a default run: 75 runs of the default suite stay
/// well under 3 minutes on a busy 2-vCPU machine.
pub const DEFAULT_ROUNDS: u64 = 250;

impl Default for Workload {
    /// The default of `compare run`: 10,000 fds, 1,000 fired per round, 250
    /// measured rounds after 25 warm-up rounds, handler read, one writer,
    /// one consumer, closed loop.
    fn default() -> Workload {
        Workload {
            fds: 10_000,
            active: 1_000,
            rounds: DEFAULT_ROUNDS,
            duration: None,
            handler: Handler::Read,
            writers: 1,
            consumers: 1,
            rate: None,
            burst: false,
            own_fd: false,
            churn: 0,
            seed: 1,
            warmup_rounds: 25,
            stall: Duration::from_secs(5),
            spin_ns: 0,
        }
    }
}

impl Workload {
    /// Sources the run needs: fired fds plus the churn pool.
    pub fn sources(&self) -> usize {
        self.fds + 2 * self.churn
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Events the run should deliver.
    pub events_expected: u64,
    /// Events delivered in the measured phase (spurious ones included).
    pub events: u64,
    /// Events for an fd that was not fired (included in `events`).
    pub spurious: u64,
    /// Measured rounds completed.
    pub rounds: u64,
    /// Wall time of the measured phase.
    pub wall_ns: u64,
    /// Whole-process CPU time (getrusage) over the measured phase.
    pub process_cpu_ns: u64,
    /// The consuming thread's CPU time over the measured phase.
    pub consumer_cpu_ns: u64,
    /// The writer threads' CPU time over the measured phase: the load
    /// generator's share of `process_cpu_ns` (its `write` calls, and the
    /// kernel's wake-up work that runs inside them).
    pub writer_cpu_ns: u64,
    /// The backend's counters over the measured phase.
    pub backend: Stats,
    /// The backend's system calls over its whole life in the run
    /// (registration and warm-up included; creation and teardown not).
    pub backend_total_syscalls: u64,
    /// Handler `read` calls in the measured phase (none for a backend
    /// that delivers the data itself).
    pub handler_reads: u64,
    /// Bytes the handler got in the measured phase: drained from the fds,
    /// or handed over with the events by a data-path backend.
    pub handler_bytes: u64,
    /// Writer `write` calls in the measured phase.
    pub writer_writes: u64,
    /// Writer futex waits and sleeps in the measured phase.
    pub writer_other: u64,
    /// The consumer's own calls besides the backend's and the handler's in
    /// the measured phase (futex wakes of parked writers).
    pub consumer_other: u64,
    /// Every system call the harness made in the run, all phases: the
    /// number `perf stat -e raw_syscalls:sys_enter` is compared with.
    pub total_syscalls: u64,
    /// Fire-to-delivery latency, nanoseconds.
    pub latency: Histogram<u64>,
    /// Why the run failed, if it did (errors, stalls; a count mismatch is
    /// judged by the caller from `events` and `events_expected`).
    pub error: Option<String>,
}

impl Outcome {
    /// Nothing measured yet, no error.
    pub(super) fn empty() -> Outcome {
        Outcome {
            events_expected: 0,
            events: 0,
            spurious: 0,
            rounds: 0,
            wall_ns: 0,
            process_cpu_ns: 0,
            consumer_cpu_ns: 0,
            writer_cpu_ns: 0,
            backend: Stats::default(),
            backend_total_syscalls: 0,
            handler_reads: 0,
            handler_bytes: 0,
            writer_writes: 0,
            writer_other: 0,
            consumer_other: 0,
            total_syscalls: 0,
            latency: new_histogram(),
            error: None,
        }
    }

    /// A run that delivered a different number of events than expected, or
    /// stopped on an error.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.events != self.events_expected
    }

    /// What went wrong, for a failed run: the counts and the error, as
    /// printed and kept in reports; `None` for a run that did not fail.
    pub fn failure(&self) -> Option<String> {
        if !self.failed() {
            return None;
        }
        let mut s = format!(
            "delivered {} events, expected {}",
            self.events, self.events_expected
        );
        if self.spurious > 0 {
            s += &format!(" ({} for fds that were not fired)", self.spurious);
        }
        if let Some(e) = &self.error {
            s += &format!(": {e}");
        }
        Some(s)
    }

    /// System calls of the consuming side in the measured phase: the
    /// backend's (any thread it runs), the handler's reads, the consumer's
    /// wakes.
    pub fn consumer_syscalls(&self) -> u64 {
        self.backend.syscalls() + self.handler_reads + self.consumer_other
    }
}

/// A new latency histogram: 1 ns to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}
