//! Taking and handling events: the consuming thread's loop ([`take`]),
//! what it does with each event ([`handle_batch`]: latency, the handler,
//! the re-arm), and the extra consuming threads of a multi-consumer run
//! with the pool they share.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

use super::{new_histogram, Handler, RunState, WAIT_SLICE};
use crate::backends::{self, Backend};
use crate::gate::spin;
use crate::sys::{self, now_ns};

/// The consumer's running tallies, all phases.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    /// Events taken (spurious ones included).
    pub(super) events: u64,
    /// Events for an fd that was not fired.
    pub(super) spurious: u64,
    /// Handler `read` calls.
    pub(super) reads: u64,
    /// Bytes the handler got: read from the fds, or handed over by a
    /// data-path backend.
    pub(super) bytes: u64,
    /// The consumer's own system calls besides the backend's and the
    /// handler's: futex wakes of parked writers, CPU-time and rusage reads.
    pub(super) other_syscalls: u64,
    /// When an event last arrived (for the stall check).
    pub(super) last_progress: u64,
}

/// What the consuming threads of a multi-consumer run share.
#[derive(Debug, Default)]
pub(super) struct ConsumerPool {
    /// Fired fds seen, all phases; the coordinator waits for `target`.
    pub(super) got: AtomicU64,
    pub(super) target: AtomicU64,
    /// Bumped (and futex-woken) when `got` reaches `target`.
    pub(super) done: AtomicU32,
    pub(super) events: AtomicU64,
    pub(super) spurious: AtomicU64,
    pub(super) reads: AtomicU64,
    pub(super) bytes: AtomicU64,
    /// Consumer threads' wakes of the coordinator.
    pub(super) coordinator_wakes: AtomicU64,
    pub(super) last_progress: AtomicU64,
    pub(super) measuring: AtomicBool,
    pub(super) quit: AtomicBool,
    /// CPU-time clocks of the consuming threads.
    pub(super) clocks: Mutex<Vec<libc::clockid_t>>,
}

/// The multi-consumer side of a run, as the coordinator sees it.
#[derive(Clone, Copy)]
pub(super) struct ConsumerThreads<'a> {
    pub(super) pool: &'a ConsumerPool,
    /// CPU-time clocks of the consuming threads.
    pub(super) clocks: &'a [libc::clockid_t],
}

impl ConsumerThreads<'_> {
    pub(super) fn cpu_ns(&self) -> u64 {
        self.clocks.iter().map(|&c| sys::clock_ns(c)).sum()
    }
}

/// One of several consuming threads: takes, handles, and tells the
/// coordinator when a round's target is reached. Returns its latencies.
pub(super) fn consumer_thread(
    sh: &RunState<'_>,
    pool: &ConsumerPool,
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
        let before = tally;
        let measuring = pool.measuring.load(Ordering::Acquire);
        let got = handle_batch(
            sh,
            &mut *b,
            &buf,
            t,
            &mut tally,
            measuring.then_some(&mut hist),
        )?;
        pool.events
            .fetch_add(tally.events - before.events, Ordering::Relaxed);
        pool.spurious
            .fetch_add(tally.spurious - before.spurious, Ordering::Relaxed);
        pool.reads
            .fetch_add(tally.reads - before.reads, Ordering::Relaxed);
        pool.bytes
            .fetch_add(tally.bytes - before.bytes, Ordering::Relaxed);
        pool.last_progress.store(t, Ordering::Relaxed);
        let now = pool.got.fetch_add(got, Ordering::AcqRel) + got;
        if got > 0 && now >= pool.target.load(Ordering::Acquire) {
            pool.done.fetch_add(1, Ordering::SeqCst);
            pool.coordinator_wakes.fetch_add(1, Ordering::Relaxed);
            sys::futex_wake_all(&pool.done);
        }
    }
    Ok(hist)
}

/// The coordinator's wait for `want` more fired fds to be seen by the
/// consuming threads.
pub(super) fn await_consumers(
    sh: &RunState<'_>,
    pool: &ConsumerPool,
    want: u64,
    tally: &mut Tally,
) -> Result<(), String> {
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
        tally.other_syscalls += 1;
        sys::futex_wait(&pool.done, seq, WAIT_SLICE);
    }
}

/// Takes events until `want` fired fds were seen.
pub(super) fn take(
    sh: &RunState<'_>,
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
///
/// The handler drains the fd (`--handler read`), or, for a backend that
/// delivers the data itself (the data path), takes the bytes it was handed
/// and makes no `read`: the kernel already consumed them. A data-path
/// event of a fired fd must carry data.
#[inline]
pub(super) fn handle_batch(
    sh: &RunState<'_>,
    b: &mut dyn Backend,
    buf: &[u32],
    t: u64,
    tally: &mut Tally,
    mut hist: Option<&mut Histogram<u64>>,
) -> Result<u64, String> {
    let n = sh.w.fds;
    let read = sh.w.handler == Handler::Read;
    let data_path = sh.data_path;
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
        if data_path {
            let Some(d) = b.data(tok) else {
                return Err(format!(
                    "the backend delivers data, but handed none with the event of source {i}"
                ));
            };
            if d.is_empty() && stamp != 0 {
                return Err(format!(
                    "source {i} was fired, and its event came without data (end of file?)"
                ));
            }
            // Look at what was handed over, as a server parses what it got.
            tally.bytes += d.len() as u64;
            std::hint::black_box(d.iter().fold(0u8, |a, &x| a ^ x));
        } else if read {
            let (calls, bytes) = sh.fds.drain(i);
            tally.reads += calls;
            tally.bytes += bytes;
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
