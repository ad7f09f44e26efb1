//! One run: a backend, a set of fds, writer threads that fire them, and the
//! calling thread consuming (it makes the backend, registers the fds, takes
//! events and runs the handler).
//!
//! Closed loop (the default): each round the writers fire `active`
//! distinct fds chosen with the run's seed (every writer draws the same
//! shuffle and fires its share), and the consumer takes events until it has
//! seen all of them; then the next round starts. Latency runs from just
//! before the writer's `write` to the return of the wait that delivered it.
//!
//! Open loop (`rate`): the same number of fires follow a schedule, one every
//! `1/rate` seconds spread over the writers, each on a random fd that is
//! not already pending; latency runs from the *scheduled* time, so a
//! stalled consumer cannot hide its own stall (coordinated omission).
//!
//! Warm-up rounds (closed loop) come first and are not measured. Every
//! system call the harness itself makes is counted; the backend counts its
//! own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use userpoll::Stats;

use crate::backends::{self, Backend, FloorQueue, MakeCtx};
use crate::fds::FdSet;
use crate::gate::{spin, spins_per_us};
use crate::sys::{self, now_ns, Rng};

/// What the handler does with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Drains the fd (what servers do).
    Read,
    /// Nothing: notification cost alone (edge-like backends only).
    None,
}

impl Handler {
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
    /// calibrated spin loop for about this many nanoseconds. Only for
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
    /// Handler `read` calls in the measured phase.
    pub handler_reads: u64,
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

/// Gate value that starts the open-loop schedule.
const OPEN: u32 = u32::MAX;
/// Open loop: a writer spins rather than sleeps when its next fire is
/// closer than this (its timer slack is cut to 1 ns, so a sleep ends within
/// a few microseconds of its deadline).
const SPIN_NS: u64 = 10_000;
/// How long one wait may block before the consumer looks at the clock.
const WAIT_SLICE: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct WriterCounts {
    writes: AtomicU64,
    other: AtomicU64,
}

struct Shared<'a> {
    fds: &'a FdSet,
    w: &'a Workload,
    /// Per source: the fire time (or scheduled time), 0 when not pending.
    fire: Box<[AtomicU64]>,
    /// Round number (futex word for parked writers); `OPEN` for the schedule.
    gate: AtomicU32,
    /// Burst mode: writer-rounds fired (futex word for the consumer).
    fired: AtomicU32,
    sleepers: AtomicU32,
    stop: AtomicBool,
    floor: Option<Arc<FloorQueue>>,
    counts: WriterCounts,
    /// CPU-time clocks of the writer threads, each published first thing.
    writer_clocks: Mutex<Vec<libc::clockid_t>>,
    /// Open loop: schedule start and the fires to make.
    open_start: AtomicU64,
    open_fires: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Shared<'_> {
    fn fail(&self, msg: String) {
        let mut e = self.error.lock().unwrap_or_else(|e| e.into_inner());
        e.get_or_insert(msg);
        self.stop.store(true, Ordering::SeqCst);
    }

    #[inline]
    fn fire(&self, t: usize, stamp: u64) -> bool {
        self.fire[t].store(stamp, Ordering::Release);
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.fds.fire(t) {
            self.fail(format!("writer: {e}"));
            return false;
        }
        if let Some(q) = &self.floor {
            q.publish(t as u32);
        }
        true
    }

    fn writer(&self, w: usize) {
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
                    self.counts.other.fetch_add(1, Ordering::Relaxed);
                    sys::futex_wait(&self.gate, seen, 100_000_000);
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
    fn fired_round(&self) {
        self.fired.fetch_add(1, Ordering::SeqCst);
        self.counts.other.fetch_add(1, Ordering::Relaxed);
        sys::futex_wake_all(&self.fired);
    }

    /// Burst mode, the consumer: waits until every writer fired round
    /// `round` (returns the futex waits made).
    fn await_round(&self, round: u32) -> Result<u64, String> {
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
            sys::futex_wait(&self.fired, f, WAIT_SLICE.as_nanos() as u64);
        }
    }

    fn open_writer(&self, w: usize) {
        let n = self.w.fds as u64;
        let rate = self.w.rate.expect("open loop has a rate");
        let start = self.open_start.load(Ordering::Acquire);
        let fires = self.open_fires.load(Ordering::Acquire);
        let mut rng = Rng::new(self.w.seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9));
        // The default 50 us timer slack would make every sleep end late.
        sys::set_timer_slack_ns(1);
        self.counts.other.fetch_add(1, Ordering::Relaxed);
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
                self.counts.other.fetch_add(calls, Ordering::Relaxed);
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

/// The consumer's running tallies, all phases.
#[derive(Debug, Default)]
struct Tally {
    events: u64,
    spurious: u64,
    reads: u64,
    /// Futex wakes of parked writers, CPU-time and rusage reads.
    other: u64,
    last_progress: u64,
}

/// Runs backend `id` once over `fds` (all drained) with workload `w`.
pub fn run_one(id: &str, w: &Workload, fds: &FdSet) -> Outcome {
    if w.spin_ns != 0 {
        spins_per_us(); // calibrated once, outside any measured phase
    }
    let floor = (id == "floor").then(|| Arc::new(FloorQueue::new(w.sources())));
    let shared = Shared {
        fds,
        w,
        fire: (0..w.sources()).map(|_| AtomicU64::new(0)).collect(),
        gate: AtomicU32::new(0),
        fired: AtomicU32::new(0),
        sleepers: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        floor: floor.clone(),
        counts: WriterCounts::default(),
        writer_clocks: Mutex::new(Vec::new()),
        open_start: AtomicU64::new(0),
        open_fires: AtomicU64::new(0),
        error: Mutex::new(None),
    };
    let mut out = Outcome {
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
        writer_writes: 0,
        writer_other: 0,
        consumer_other: 0,
        total_syscalls: 0,
        latency: new_histogram(),
        error: None,
    };
    let ctx = MakeCtx {
        capacity: w.sources(),
        floor,
    };
    let mut backend = match backends::make(id, &ctx) {
        Ok(b) => b,
        Err(e) => {
            out.error = Some(format!("cannot make backend {id}: {e}"));
            return out;
        }
    };
    let first = backend.stats();
    let mut tally = Tally::default();
    let pool = Pool::default();
    let result = std::thread::scope(|s| {
        let sh = &shared;
        let mut spawned = Ok(());
        for i in 0..w.writers {
            let r = std::thread::Builder::new()
                .name(format!("writer-{i}"))
                .spawn_scoped(s, move || sh.writer(i));
            if let Err(e) = r {
                spawned = Err(format!("cannot start writer threads: {e}"));
                break;
            }
        }
        let mut helpers = Vec::new();
        if w.consumers > 1 && spawned.is_ok() {
            for i in 0..w.consumers {
                let Some(b) = backend.another_consumer() else {
                    spawned = Err(format!("backend {id} takes events on one thread only"));
                    break;
                };
                let p = &pool;
                let r = std::thread::Builder::new()
                    .name(format!("consumer-{i}"))
                    .spawn_scoped(s, move || {
                        helper(sh, p, b).unwrap_or_else(|e| {
                            sh.fail(e);
                            new_histogram()
                        })
                    });
                match r {
                    Ok(h) => helpers.push(h),
                    Err(e) => {
                        spawned = Err(format!("cannot start consumer threads: {e}"));
                        break;
                    }
                }
            }
        }
        // Each writer and consumer publishes its CPU-time clock first thing.
        let published = |m: &Mutex<Vec<libc::clockid_t>>| m.lock().map_or(0, |c| c.len());
        while spawned.is_ok()
            && (published(&pool.clocks) < helpers.len() || published(&sh.writer_clocks) < w.writers)
        {
            tally.other += 1;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let clocks: Vec<libc::clockid_t> =
            pool.clocks.lock().map(|c| c.clone()).unwrap_or_default();
        let many = (w.consumers > 1).then_some(Many {
            pool: &pool,
            clocks: &clocks,
        });
        let r = spawned.and_then(|()| consume(sh, &mut *backend, &mut tally, &mut out, many));
        sh.stop.store(true, Ordering::SeqCst);
        pool.quit.store(true, Ordering::SeqCst);
        sh.gate.fetch_add(1, Ordering::SeqCst);
        tally.other += 1;
        sys::futex_wake_all(&sh.gate);
        for h in helpers {
            if let Ok(hist) = h.join() {
                let _ = out.latency.add(&hist);
            }
        }
        r
    });
    out.backend_total_syscalls = (backend.stats() - first).syscalls();
    // A writer's or consumer thread's error is the cause; the consumer's
    // own ("the writers stopped") only follows from it.
    let cause = shared
        .error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    out.error = cause.or(result.err());
    out.total_syscalls = out.backend_total_syscalls
        + shared.counts.writes.load(Ordering::Relaxed)
        + shared.counts.other.load(Ordering::Relaxed)
        + tally.reads
        + tally.other
        + pool.reads.load(Ordering::Relaxed)
        + pool.other.load(Ordering::Relaxed);
    out
}

/// What the consuming threads of a multi-consumer run share.
#[derive(Debug, Default)]
struct Pool {
    /// Fired fds seen, all phases; the coordinator waits for `target`.
    got: AtomicU64,
    target: AtomicU64,
    /// Bumped (and futex-woken) when `got` reaches `target`.
    done: AtomicU32,
    events: AtomicU64,
    spurious: AtomicU64,
    reads: AtomicU64,
    /// Consumer threads' wakes of the coordinator.
    other: AtomicU64,
    last_progress: AtomicU64,
    measuring: AtomicBool,
    quit: AtomicBool,
    /// CPU-time clocks of the consuming threads.
    clocks: Mutex<Vec<libc::clockid_t>>,
}

/// The multi-consumer side of a run, as the coordinator sees it.
#[derive(Clone, Copy)]
struct Many<'a> {
    pool: &'a Pool,
    /// CPU-time clocks of the consuming threads.
    clocks: &'a [libc::clockid_t],
}

impl Many<'_> {
    fn cpu_ns(&self) -> u64 {
        self.clocks.iter().map(|&c| sys::clock_ns(c)).sum()
    }
}

/// One of several consuming threads: takes, handles, and tells the
/// coordinator when a round's target is reached. Returns its latencies.
fn helper(
    sh: &Shared<'_>,
    pool: &Pool,
    mut b: Box<dyn Backend + Send>,
) -> Result<Histogram<u64>, String> {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    if let Ok(mut c) = pool.clocks.lock() {
        c.push(sys::thread_cpu_clock(me));
    }
    let mut hist = new_histogram();
    let mut buf = Vec::with_capacity(backends::BATCH);
    let mut tally = Tally::default();
    while !pool.quit.load(Ordering::Acquire) && !sh.stop.load(Ordering::Acquire) {
        buf.clear();
        b.wait(&mut buf, WAIT_SLICE)
            .map_err(|e| format!("wait: {e}"))?;
        if buf.is_empty() {
            continue;
        }
        let t = now_ns();
        let (e0, s0, r0) = (tally.events, tally.spurious, tally.reads);
        let measuring = pool.measuring.load(Ordering::Acquire);
        let got = handle_batch(
            sh,
            &mut *b,
            &buf,
            t,
            &mut tally,
            measuring.then_some(&mut hist),
        )?;
        pool.events.fetch_add(tally.events - e0, Ordering::Relaxed);
        pool.spurious
            .fetch_add(tally.spurious - s0, Ordering::Relaxed);
        pool.reads.fetch_add(tally.reads - r0, Ordering::Relaxed);
        pool.last_progress.store(t, Ordering::Relaxed);
        let now = pool.got.fetch_add(got, Ordering::AcqRel) + got;
        if got > 0 && now >= pool.target.load(Ordering::Acquire) {
            pool.done.fetch_add(1, Ordering::SeqCst);
            pool.other.fetch_add(1, Ordering::Relaxed);
            sys::futex_wake_all(&pool.done);
        }
    }
    Ok(hist)
}

/// The coordinator's wait for `want` more fired fds to be seen by the
/// consuming threads.
fn wait_many(sh: &Shared<'_>, pool: &Pool, want: u64, tally: &mut Tally) -> Result<(), String> {
    let target = pool.target.load(Ordering::Relaxed) + want;
    pool.target.store(target, Ordering::SeqCst);
    let start = now_ns();
    loop {
        let seq = pool.done.load(Ordering::SeqCst);
        let got = pool.got.load(Ordering::Acquire);
        if got >= target {
            return Ok(());
        }
        if sh.stop.load(Ordering::Acquire) {
            return Err("stopped".into());
        }
        let t = now_ns();
        let last = pool.last_progress.load(Ordering::Relaxed).max(start);
        if t.saturating_sub(last) > sh.w.stall.as_nanos() as u64 {
            return Err(format!(
                "stalled: no event for {:?}, {got} of {target} expected events seen",
                sh.w.stall
            ));
        }
        tally.other += 1;
        sys::futex_wait(&pool.done, seq, WAIT_SLICE.as_nanos() as u64);
    }
}

/// The churn pool: tokens `fds..fds + 2 * churn`, half registered.
struct Churn {
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

fn consume(
    sh: &Shared<'_>,
    b: &mut dyn Backend,
    tally: &mut Tally,
    out: &mut Outcome,
    many: Option<Many<'_>>,
) -> Result<(), String> {
    let w = sh.w;
    let fds = sh.fds;
    for t in 0..w.fds {
        b.add(fds.read_fd(t), t as u32)
            .map_err(|e| format!("registering fd {} (source {t}): {e}", fds.read_fd(t)))?;
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
                tally.other += 1;
                sys::futex_wake_all(&sh.gate);
            }
            churn.step(w.churn, fds, b)?;
            if w.burst {
                tally.other += sh.await_round(round)?;
            }
            match many {
                Some(m) => wait_many(sh, m.pool, w.active as u64, tally),
                None => take(sh, b, w.active as u64, tally, hist, &mut buf),
            }
        };
    for _ in 0..w.warmup_rounds {
        next_round(tally, b, None)?;
    }

    // The measured phase. With several consumers the counts are theirs
    // (pooled) and the CPU time is the sum of their threads'.
    let counts = |tally: &Tally| match many {
        Some(m) => (
            m.pool.events.load(Ordering::Acquire),
            m.pool.spurious.load(Ordering::Acquire),
            m.pool.reads.load(Ordering::Acquire),
            tally.other + m.pool.other.load(Ordering::Acquire),
        ),
        None => (tally.events, tally.spurious, tally.reads, tally.other),
    };
    let consumer_cpu = |tally: &mut Tally| match many {
        Some(m) => {
            tally.other += m.clocks.len() as u64;
            m.cpu_ns()
        }
        None => {
            tally.other += 1;
            sys::thread_cpu_ns()
        }
    };
    if let Some(m) = many {
        m.pool.measuring.store(true, Ordering::SeqCst);
    }
    let s0 = b.stats();
    let (e0, sp0, r0, o0) = counts(tally);
    let writes0 = sh.counts.writes.load(Ordering::Relaxed);
    let wother0 = sh.counts.other.load(Ordering::Relaxed);
    let writer_clocks: Vec<libc::clockid_t> = sh
        .writer_clocks
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let writer_cpu = |tally: &mut Tally| {
        tally.other += writer_clocks.len() as u64;
        writer_clocks.iter().map(|&c| sys::clock_ns(c)).sum::<u64>()
    };
    tally.other += 1;
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
        tally.other += 1;
        sys::futex_wake_all(&sh.gate);
        match many {
            Some(m) => wait_many(sh, m.pool, fires, tally),
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
    tally.other += 1;
    out.backend = b.stats() - s0;
    let (e1, sp1, r1, o1) = counts(tally);
    out.events = e1 - e0;
    out.spurious = sp1 - sp0;
    out.handler_reads = r1 - r0;
    out.consumer_other = o1 - o0;
    out.writer_writes = sh.counts.writes.load(Ordering::Relaxed) - writes0;
    out.writer_other = sh.counts.other.load(Ordering::Relaxed) - wother0;
    out.latency = hist;
    run
}

/// Takes events until `want` fired fds were seen.
fn take(
    sh: &Shared<'_>,
    b: &mut dyn Backend,
    want: u64,
    tally: &mut Tally,
    mut hist: Option<&mut Histogram<u64>>,
    buf: &mut Vec<u32>,
) -> Result<(), String> {
    let mut got = 0;
    while got < want {
        buf.clear();
        b.wait(buf, WAIT_SLICE).map_err(|e| format!("wait: {e}"))?;
        let t = now_ns();
        if buf.is_empty() {
            if sh.stop.load(Ordering::Acquire) {
                return Err("the writers stopped".into());
            }
            if t - tally.last_progress > sh.w.stall.as_nanos() as u64 {
                return Err(format!(
                    "stalled: no event for {:?}, {got} of {want} expected events seen",
                    sh.w.stall
                ));
            }
            continue;
        }
        tally.last_progress = t;
        got += handle_batch(sh, b, buf, t, tally, hist.as_deref_mut())?;
    }
    Ok(())
}

/// Handles one batch of events delivered at `t`: latency, the handler,
/// the re-arm. Returns how many were for fired fds.
#[inline]
fn handle_batch(
    sh: &Shared<'_>,
    b: &mut dyn Backend,
    buf: &[u32],
    t: u64,
    tally: &mut Tally,
    mut hist: Option<&mut Histogram<u64>>,
) -> Result<u64, String> {
    let n = sh.w.fds;
    let read = sh.w.handler == Handler::Read;
    let mut got = 0;
    for &tok in buf {
        let i = tok as usize;
        if i >= sh.fds.len() {
            return Err(format!(
                "backend delivered token {tok}, which was never registered"
            ));
        }
        tally.events += 1;
        let stamp = if i < n {
            sh.fire[i].load(Ordering::Acquire)
        } else {
            0
        };
        if stamp == 0 {
            tally.spurious += 1;
        } else {
            got += 1;
            if let Some(h) = hist.as_deref_mut() {
                h.saturating_record(t.saturating_sub(stamp).max(1));
            }
        }
        if read {
            tally.reads += sh.fds.drain(i).0;
        }
        if sh.w.spin_ns != 0 {
            spin(sh.w.spin_ns);
        }
        if stamp != 0 {
            sh.fire[i].store(0, Ordering::Release);
        }
        b.handled(sh.fds.read_fd(i), tok)
            .map_err(|e| format!("re-arm of source {i}: {e}"))?;
    }
    Ok(got)
}
