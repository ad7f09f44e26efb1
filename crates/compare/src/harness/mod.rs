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
//!
//! The files: `workload` the types a run is described and measured by,
//! `writers` the threads that fire, `consumers` taking and handling
//! events (on the calling thread or several), `measurement` the rounds and
//! the counters read around the measured phase; this file starts the
//! threads of one run ([`run_one`]).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backends::{self, BackendId, FireListener};
use crate::fds::FdSet;
use crate::gate::spins_per_us;
use crate::sys;

mod consumers;
mod measurement;
mod workload;
mod writers;

pub use workload::{new_histogram, Handler, Outcome, Workload, DEFAULT_ROUNDS};

use consumers::{consumer_thread, ConsumerPool, ConsumerThreads, Tally};
use measurement::consume;
use writers::WriterCounts;

/// Gate value that starts the open-loop schedule.
const OPEN: u32 = u32::MAX;
/// How long one wait may block before the consumer looks at the clock.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// What the writers and the consumers of one run share.
struct RunState<'a> {
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
    /// Told of every fire, for a backend that needs it (the floor).
    listener: Option<Arc<dyn FireListener>>,
    /// The backend hands the data over with each event: no handler `read`.
    data_path: bool,
    counts: WriterCounts,
    /// CPU-time clocks of the writer threads, each published first thing.
    writer_clocks: Mutex<Vec<libc::clockid_t>>,
    /// Open loop: schedule start and the fires to make.
    open_start: AtomicU64,
    open_fires: AtomicU64,
    error: Mutex<Option<String>>,
    /// Bumped after every round (warm-up included), for a progress display.
    rounds_done: Option<&'a AtomicU64>,
}

impl RunState<'_> {
    fn fail(&self, msg: String) {
        let mut e = self.error.lock().unwrap_or_else(|e| e.into_inner());
        e.get_or_insert(msg);
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Runs backend `id` once over `fds` (all drained) with workload `w`.
pub fn run_one(id: BackendId, w: &Workload, fds: &FdSet) -> Outcome {
    run_one_counting(id, w, fds, None)
}

/// [`run_one`], adding 1 to `rounds_done` after every closed-loop round
/// (warm-up rounds included) so that another thread can show progress
/// within the run. A relaxed atomic add per round: no system call, nothing
/// the measurement would see.
pub fn run_one_counting(
    id: BackendId,
    w: &Workload,
    fds: &FdSet,
    rounds_done: Option<&AtomicU64>,
) -> Outcome {
    if w.spin_ns != 0 {
        spins_per_us(); // calibrated once, outside any measured phase
    }
    let mut out = Outcome::empty();
    let mut backend = match backends::make(id, w.sources()) {
        Ok(b) => b,
        Err(e) => {
            out.error = Some(format!("cannot make backend {id}: {e}"));
            return out;
        }
    };
    let shared = RunState {
        fds,
        w,
        fire: (0..w.sources()).map(|_| AtomicU64::new(0)).collect(),
        gate: AtomicU32::new(0),
        fired: AtomicU32::new(0),
        sleepers: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        listener: backend.fire_listener(),
        data_path: id.info().delivers_data,
        counts: WriterCounts::default(),
        writer_clocks: Mutex::new(Vec::new()),
        open_start: AtomicU64::new(0),
        open_fires: AtomicU64::new(0),
        error: Mutex::new(None),
        rounds_done,
    };
    let first = backend.stats();
    let mut tally = Tally::default();
    let pool = ConsumerPool::default();
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
        let mut consumers = Vec::new();
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
                        consumer_thread(sh, p, b).unwrap_or_else(|e| {
                            sh.fail(e);
                            new_histogram()
                        })
                    });
                match r {
                    Ok(h) => consumers.push(h),
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
            && (published(&pool.clocks) < consumers.len()
                || published(&sh.writer_clocks) < w.writers)
        {
            tally.other_syscalls += 1;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let clocks: Vec<libc::clockid_t> =
            pool.clocks.lock().map(|c| c.clone()).unwrap_or_default();
        let threads = (w.consumers > 1).then_some(ConsumerThreads {
            pool: &pool,
            clocks: &clocks,
        });
        let r = spawned.and_then(|()| consume(sh, &mut *backend, &mut tally, &mut out, threads));
        sh.stop.store(true, Ordering::SeqCst);
        pool.quit.store(true, Ordering::SeqCst);
        sh.gate.fetch_add(1, Ordering::SeqCst);
        tally.other_syscalls += 1;
        sys::futex_wake_all(&sh.gate);
        for h in consumers {
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
        + shared.counts.other_syscalls.load(Ordering::Relaxed)
        + tally.reads
        + tally.other_syscalls
        + pool.reads.load(Ordering::Relaxed)
        + pool.coordinator_wakes.load(Ordering::Relaxed);
    out
}
