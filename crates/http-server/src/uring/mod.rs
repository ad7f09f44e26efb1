//! The completion loop (`uring-recv`): the same server as the readiness
//! loop in `lib.rs`, on io_uring, where the kernel hands over the data
//! instead of saying "ready". No `recv` or `read` system call follows data.
//!
//! - Ring: `SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG` (uring-poll's
//!   `defer` profile), made on the serving thread; CQ of four entries per
//!   connection (at least 8,192; `Config::cq_entries` for tests) so a
//!   burst does not overflow it; if it does (`IORING_SQ_CQ_OVERFLOW`), the
//!   next turn enters with GETEVENTS only to flush the overflow list
//!   (`enter_flush`, `overflow_recoveries`), and every multishot the
//!   overflow ended is re-armed.
//! - Accept: one multishot `IORING_OP_ACCEPT`. At `max_connections` it is
//!   cancelled; connections the kernel accepted before the cancel took
//!   effect are parked, unread, until a connection closes; then accepting
//!   resumes (counted `accept_paused`). EMFILE and kin pause it too.
//! - Receive: one multishot `IORING_OP_RECV` per connection selecting from
//!   one provided buffer ring (`buf-ring`; incremental, `IOU_PBUF_RING_INC`,
//!   so a 40-byte request takes 40 bytes of a 4 KiB buffer, not the
//!   buffer). A request is parsed straight out of the buffer; only a
//!   partial request (or pipelined ones left while output is over
//!   `WRITE_HIGH`) is copied into the connection, and every buffer goes
//!   back to the ring before the next enter: an idle connection holds no
//!   buffer. `-ENOBUFS` (the ring ran dry) ends the recv; it is re-armed
//!   before the next enter, after the buffers were given back
//!   (`rearm_kernel_ended`). A data CQE without `IORING_CQE_F_MORE` is one
//!   the CQ overflow ended: re-armed the same way (`rearm_overflow`). The
//!   accept and the signalfd poll are re-armed when the kernel ends them.
//!   Ends that are ours (cancel), the end of the stream and errors are not.
//! - Send: a `send` SQE ([`SendWith::Sqe`], `uring-recv`), one in flight
//!   per connection, submitted by the enter that also waits for the next
//!   completions, so a response costs no system call of its own; a socket
//!   that is full makes the kernel wait for room (its internal poll), so
//!   the loop never switches interest. Short sends are re-submitted. With
//!   [`SendWith::Call`] (`uring-recv:direct-send`) a `send(2)` goes at
//!   once and a SQE only carries what the socket did not take: one system
//!   call per response, but the response leaves before the loop's next
//!   enter instead of with it. `compare http` measures both.
//! - Write stall: over `WRITE_HIGH` bytes queued, the recv is cancelled
//!   and re-armed once the output is sent (counted in `modify_calls`: it
//!   is the readiness loop's switch to writable and back).
//! - Close: `IORING_OP_CLOSE` after cancelling what the connection has in
//!   flight; its buffers stay until the last of its CQEs arrived, so the
//!   kernel never reads freed memory. Idle timeout as in the readiness
//!   loop (a sweep every quarter of it).
//! - Counts: `syscalls` = every `io_uring_enter` (submit, wait, flush)
//!   plus `send(2)` calls (direct-send only); `rearms` = multishots
//!   re-submitted after the kernel ended them plus write-stall re-arms.
//!
//! `user_data` is kind << 32 | slab key. A key is reused only after its
//! last CQE (send done, recv ended), so no CQE ever names a newer
//! connection; cancels and closes carry `Kind::Ignore`.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use buf_ring::{BufRing, MAX_RING_ENTRIES};
use io_uring::{cqueue, squeue, types, IoUring};
use slab::Slab;
use userpoll::{Counter, Counters};

use crate::backend::SendWith;
use crate::response::Responses;
use crate::stats::{Counts, Report};
use crate::{sys, Config};

mod accept;
mod conn;

use conn::Conn;

/// The buffer group every recv selects from.
const BGID: u16 = 0;
/// SQ entries; a full SQ is submitted and refilled.
const SQ_ENTRIES: u32 = 4096;

/// What a CQE is about, from its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
enum Kind {
    /// A cancel or a close: nothing to do with its CQE.
    Ignore = 0,
    Recv = 1,
    Send = 2,
    Accept = 3,
    Signals = 4,
}

fn user_data(kind: Kind, key: usize) -> u64 {
    (kind as u64) << 32 | key as u64
}

fn kind_of(ud: u64) -> (Kind, usize) {
    let key = (ud & 0xffff_ffff) as usize;
    let kind = match ud >> 32 {
        1 => Kind::Recv,
        2 => Kind::Send,
        3 => Kind::Accept,
        4 => Kind::Signals,
        _ => Kind::Ignore,
    };
    (kind, key)
}

/// Whether the loop can run here, or why not (asked once per process):
/// the ring setup needs Linux 6.1, which also has multishot accept (5.19),
/// multishot recv (6.0) and provided buffer rings (5.19).
pub fn probe() -> Result<(), String> {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| match build(8, 16) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "io_uring with SINGLE_ISSUER | DEFER_TASKRUN (Linux 6.1) is not available: {e}"
            )),
        })
        .clone()
}

fn build(sq: u32, cq: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .setup_cqsize(cq)
        .setup_clamp()
        .build(sq)
}

/// Whether the accept runs, is being cancelled, or is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepting {
    Armed,
    /// Cancelled by us (at the limit); its last CQE is still to come.
    Cancelling,
    Off,
}

/// The completion loop's server.
pub struct UringServer {
    /// Closed first by `Drop`.
    ring: ManuallyDrop<IoUring>,
    /// Freed by `Drop` only once no recv can still write into it.
    bufs: ManuallyDrop<BufRing>,
    listener: TcpListener,
    signals: Option<OwnedFd>,
    /// Freed by `Drop` only once no send can still read a connection's
    /// buffer.
    conns: ManuallyDrop<Slab<Conn>>,
    /// Connections open and not closing (the limit counts these).
    live: usize,
    /// Accepted beyond the limit before the accept's cancel took effect.
    parked: VecDeque<OwnedFd>,
    accepting: Accepting,
    /// Accepting paused (limit, or out of fds) until a connection closes.
    accept_paused: bool,
    /// Shutting down: closes do not resume accepting.
    stopping: bool,
    /// Connections whose recv the kernel ended, to re-arm before the
    /// enter, and the counter of the cause.
    owed: Vec<(usize, Counter)>,
    batch: Vec<cqueue::Entry>,
    responses: Responses,
    config: Config,
    send_with: SendWith,
    counts: Counts,
    counters: Counters,
    name: String,
}

impl std::fmt::Debug for UringServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringServer")
            .field("setup", &self.describe())
            .field("live", &self.live)
            .field("counts", &self.counts)
            .finish()
    }
}

impl UringServer {
    /// A server on `listener` (non-blocking), stopped by the signals of
    /// `signals` if given; build it on the thread that runs it (the ring
    /// is SINGLE_ISSUER). `name` is the backend id, for the report.
    pub fn new(
        listener: TcpListener,
        signals: Option<OwnedFd>,
        config: Config,
        send_with: SendWith,
        name: String,
    ) -> io::Result<UringServer> {
        let conns = config.max_connections + 2;
        let cq = match config.cq_entries {
            0 => (conns * 4).max(8192).next_power_of_two().min(1 << 20) as u32,
            n => n,
        };
        // The kernel wants a CQ at least as large as the SQ.
        let ring = build(SQ_ENTRIES.min(cq), cq)?;
        let bufs = register_buffers(&ring, &config)?;
        Ok(UringServer {
            ring: ManuallyDrop::new(ring),
            bufs: ManuallyDrop::new(bufs),
            listener,
            signals,
            conns: ManuallyDrop::new(Slab::with_capacity(config.max_connections)),
            live: 0,
            parked: VecDeque::new(),
            accepting: Accepting::Off,
            accept_paused: false,
            stopping: false,
            owed: Vec::new(),
            batch: Vec::new(),
            responses: Responses::new(config.body_len),
            config,
            send_with,
            counts: Counts::default(),
            counters: Counters::new(),
            name,
        })
    }

    /// The ring and the buffers, for the start-up line.
    pub fn describe(&self) -> String {
        let (count, size, inc, bytes) = self.bufs.shape();
        format!(
            "io_uring SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG, sq {}, cq {}, multishot accept and \
             recv, provided buffer ring of {count} x {size} B ({} KiB){}, send {}",
            self.ring.params().sq_entries(),
            self.ring.params().cq_entries(),
            bytes / 1024,
            if inc { " incremental" } else { "" },
            match self.send_with {
                SendWith::Sqe => "SQEs",
                SendWith::Call => "calls",
            }
        )
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The report as of now.
    pub fn report(&self) -> Report {
        Report::new(
            self.name.clone(),
            self.counts,
            self.live,
            self.counters.snapshot(),
            sys::process_cpu(),
        )
    }

    /// Serves until SIGINT/SIGTERM (or forever without a signalfd); prints
    /// a report to `out` on SIGUSR1 and at the end, and closes every
    /// connection (waiting for their requests to end) before returning.
    pub fn run(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.arm_accept()?;
        self.arm_signals()?;
        let sweep_every = (self.config.idle_timeout / 4).max(Duration::from_millis(10));
        let mut next_sweep = Instant::now() + sweep_every;
        loop {
            let left = next_sweep.saturating_duration_since(Instant::now());
            if self.turn(left, out)? {
                break;
            }
            if Instant::now() >= next_sweep {
                self.close_idle();
                next_sweep = Instant::now() + sweep_every;
            }
        }
        self.shut_down(out)
    }

    /// One turn: re-arm what the kernel ended, enter (submitting, and
    /// waiting up to `wait` unless completion work is already pending),
    /// handle every CQE. True when a signal asks to stop.
    fn turn(&mut self, wait: Duration, out: &mut dyn Write) -> io::Result<bool> {
        self.rearm_owed()?;
        self.enter(wait)?;
        self.batch.clear();
        self.batch.extend(self.ring.completion());
        self.counters
            .add(Counter::CqesSeen, self.batch.len() as u64);
        let mut stop = false;
        for i in 0..self.batch.len() {
            let cqe = self.batch[i].clone();
            let (res, flags) = (cqe.result(), cqe.flags());
            let (kind, key) = kind_of(cqe.user_data());
            match kind {
                Kind::Ignore => {}
                Kind::Recv => self.on_recv(key, res, flags)?,
                Kind::Send => self.on_send(key, res)?,
                Kind::Accept => self.on_accept(res, flags)?,
                Kind::Signals => stop |= self.on_signals(flags, out)?,
            }
        }
        Ok(stop)
    }

    /// One `io_uring_enter`: waits for a completion up to `wait` when none
    /// is pending, else only submits and runs pending completion work (the
    /// io-uring crate adds GETEVENTS when the SQ flags show deferred work
    /// or an overflowed CQ); skipped when there is nothing to do at all.
    /// Under DEFER_TASKRUN one enter runs at most 20 pieces of completion
    /// work (uring-poll pitfall 13): the flag stays set and the next turn
    /// enters again without waiting (pitfall 16: never ask for more than
    /// is pending).
    fn enter(&mut self, wait: Duration) -> io::Result<()> {
        let (taskrun, overflow, queued) = {
            let sq = self.ring.submission();
            (sq.taskrun(), sq.cq_overflow(), !sq.is_empty())
        };
        let r = if overflow {
            self.counters.incr(Counter::OverflowRecoveries);
            self.counters.incr(Counter::EnterFlush);
            self.ring.submitter().submit()
        } else if taskrun {
            self.counters.incr(Counter::EnterWait);
            self.ring.submitter().submit()
        } else if !self.ring.completion().is_empty() {
            // Posted by a submit of `push` in the last turn: no waiting.
            if !queued {
                return Ok(());
            }
            self.counters.incr(Counter::EnterSubmit);
            self.ring.submitter().submit()
        } else {
            self.counters.incr(Counter::EnterWait);
            let ts = types::Timespec::from(wait);
            let args = types::SubmitArgs::new().timespec(&ts);
            self.ring.submitter().submit_with_args(1, &args)
        };
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Queues `sqe`, submitting what is queued when the SQ is full.
    fn push(&mut self, sqe: squeue::Entry) -> io::Result<()> {
        loop {
            // Every SQE of this loop points at memory that outlives its
            // request: a connection's `sending` buffer, untouched and kept
            // (the connection stays in the slab) until the send's CQE; the
            // buffer ring, which outlives the ring (`Drop`); or nothing.
            // SAFETY: as just said, what `sqe` points to outlives it.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                self.counters.incr(Counter::SqesSubmitted);
                return Ok(());
            }
            self.counters.incr(Counter::EnterSubmit);
            match self.ring.submitter().submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // The CQ is overflowing: flush it (the CQEs stay
                    // there for the next turn) and try again.
                    self.counters.incr(Counter::EnterFlush);
                    let _ = self.ring.submitter().submit_and_wait(0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes every connection with no progress within the idle timeout.
    fn close_idle(&mut self) {
        let now = Instant::now();
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !c.closing() && now.duration_since(c.last_active) >= self.config.idle_timeout
            })
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.counts.idle_closed += 1;
            self.close(key);
        }
    }

    /// Closes everything, waits (up to 5 s) until every request of the
    /// connections has ended, prints the last report.
    fn shut_down(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.stopping = true;
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing())
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.close(key);
        }
        self.parked.clear();
        // Paused already, so the stop is not counted as a pause.
        self.accept_paused = true;
        self.pause_accepting();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut sink = io::sink();
        while !self.conns.is_empty() && Instant::now() < deadline {
            self.turn(Duration::from_millis(100), &mut sink)?;
        }
        writeln!(out, "{}", serde_json::to_string(&self.report())?)?;
        Ok(())
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.live
    }
}

impl Drop for UringServer {
    /// A connection leaves the slab only after its last completion, so an
    /// empty slab (every clean `run` ends so) means no request reads or
    /// writes our memory any more: the buffers and connections are freed.
    /// Otherwise (`run` failed, or a shutdown outlived its 5 s) requests
    /// may still be in flight, and closing the ring cancels them
    /// asynchronously in the kernel: the buffer pool and the send buffers
    /// are leaked rather than freed under them. The ring closes first in
    /// either case (`BufRing::register`'s contract).
    fn drop(&mut self) {
        let idle = self.conns.is_empty();
        // SAFETY: the ring is not used again.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        if idle {
            // The ring that had the buffer group registered is closed.
            // SAFETY: neither field is used again; nothing in flight
            // points into them (above).
            unsafe {
                ManuallyDrop::drop(&mut self.conns);
                ManuallyDrop::drop(&mut self.bufs);
            }
        }
    }
}

/// The provided buffers: `recv_buffers` x `recv_buffer_size` from the
/// config (0 buffers: sized to the connections, 64 bytes of pool each,
/// for a burst of a request from every connection between two turns),
/// consumed incrementally; on a kernel without `IOU_PBUF_RING_INC`
/// (before 6.12) one buffer per connection, each taken whole by a recv.
fn register_buffers(ring: &IoUring, config: &Config) -> io::Result<BufRing> {
    let size = config.recv_buffer_size;
    let count = match config.recv_buffers {
        0 => (config.max_connections * 64).div_ceil(size as usize) + 2,
        n => n,
    };
    let count = count.next_power_of_two().clamp(1, MAX_RING_ENTRIES);
    // SAFETY: the BufRing is kept by the UringServer, whose Drop closes the
    // ring first.
    match unsafe { BufRing::register(ring, BGID, count, size, true) } {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && config.recv_buffers == 0 => {
            let whole = (config.max_connections + 2)
                .next_power_of_two()
                .min(MAX_RING_ENTRIES);
            // SAFETY: as above.
            unsafe { BufRing::register(ring, BGID, whole, size.min(2048), false) }
        }
        r => r,
    }
}
