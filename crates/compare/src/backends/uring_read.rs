//! The data path on io_uring: one multishot READ per registration
//! (`IORING_OP_READ_MULTISHOT`, Linux 6.7) into one provided buffer ring,
//! so the kernel reads each fd when it becomes ready and posts the data;
//! no `read` system call follows an event. It owns that loop and the
//! buffer memory. Not part of the userpoll contract (a readiness contract
//! has nowhere to put data): a `compare` backend only, measured against
//! `uring-raw` (multishot POLL_ADD, then the handler's `read`), whose
//! ring setup it shares.
//!
//! - Ring: `SINGLE_ISSUER | DEFER_TASKRUN`, CQ sized to twice the
//!   registrations, as `uring-raw`.
//! - Buffers: one provided buffer ring (group 0) in memory mapped here.
//!   Where the kernel has `IOU_PBUF_RING_INC` (6.12) buffers are consumed
//!   incrementally: successive reads pack into one 4 KiB buffer, so the
//!   pool is sized to the bytes in flight (16 per registration: two
//!   eventfd counters), not to registrations times a buffer. Without it
//!   every read takes a whole 64-byte buffer, one per registration.
//! - An event is one data CQE. Its bytes stay readable through
//!   [`Backend::data`] until [`Backend::handled`]; a buffer goes back to
//!   the ring once the kernel is done with it (a CQE without
//!   `IORING_CQE_F_BUF_MORE`) and every piece of it was handled.
//! - `user_data` = generation << 32 | token; a CQE of an older generation
//!   (deleted since) is dropped and counted stale, and its piece of buffer
//!   released at once.
//! - A CQE without `F_MORE` ends the read: CQ overflow (the CQE still
//!   carries its data, counted `rearm_overflow`), `-ENOBUFS` (the pool ran
//!   dry, `rearm_kernel_ended`). Either is re-armed before the next enter,
//!   after the handler gave the buffers back. End of file (a 0-byte read)
//!   is one event with no data, and the registration stays silent after
//!   it. Any other error fails the take with the source named.
//! - Overflow: `IORING_SQ_CQ_OVERFLOW` is counted as a recovery and the
//!   next enter carries GETEVENTS, which flushes the overflow list.
//!
//! With incremental buffers, an eventfd read needs 8 bytes of the current
//! buffer: the pool must not be shared with byte streams whose reads leave
//! a remainder that is not a multiple of 8 (compare never mixes kinds).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;
use std::time::Duration;

use io_uring::register::Probe;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use userpoll::{Counter, Counters, Stats};

use super::uring_loop::{enter_step, push, Slots};
use super::uring_raw::{build, cq_entries, Setup, SQ_ENTRIES};
use super::Backend;
use pool::{Pool, BGID, MAX_RING_ENTRIES};

mod pool;

/// `user_data` of ASYNC_CANCEL requests (never a registration's).
const CANCEL_TAG: u64 = u64::MAX;
/// Incremental mode: buffer size, and bytes of pool per registration.
const INC_BUF_SIZE: u32 = 4096;
const INC_BYTES_PER_REGISTRATION: usize = 16;
/// Whole-buffer mode (no IOU_PBUF_RING_INC): one buffer per read.
const WHOLE_BUF_SIZE: u32 = 64;

/// Whether the data path can run here, or why not: the ring profile
/// (as `uring-raw`) and `IORING_OP_READ_MULTISHOT` in the kernel's probe,
/// asked once per process.
pub fn probe() -> Result<(), String> {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    ANSWER.get_or_init(probe_kernel).clone()
}

fn probe_kernel() -> Result<(), String> {
    super::uring_raw::probe(Setup::Defer)?;
    let ring = build(Setup::Defer, 8, 16).map_err(|e| format!("io_uring_setup failed: {e}"))?;
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(|e| format!("IORING_REGISTER_PROBE failed: {e}"))?;
    if p.is_supported(opcode::ReadMulti::CODE) {
        Ok(())
    } else {
        Err("the kernel lacks IORING_OP_READ_MULTISHOT (needs Linux 6.7)".to_string())
    }
}

/// The ring setup, for the JSON's `env`.
pub fn setup_description(capacity: usize) -> String {
    UringRead::new(capacity).map_or_else(|e| format!("unavailable: {e}"), |r| r.describe())
}

/// Why a read request ended and is owed a re-arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Overflow,
    NoBuffers,
}

/// The data-path loop.
pub struct UringRead {
    // Declared first so it drops first: the ring (and every read it holds)
    // is gone before the buffer memory is unmapped.
    ring: IoUring,
    pool: Pool,
    slots: Slots,
    /// Re-arms owed (token, generation, why): made before the next enter,
    /// if still current.
    owed: Vec<(u32, u32, Ended)>,
    /// Reads that ran the pool dry (test visibility; also re-arms).
    no_buffers: u64,
    counters: Counters,
}

impl std::fmt::Debug for UringRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringRead")
            .field("registrations", &self.slots.registered())
            .field("setup", &self.describe())
            .field("counters", &self.counters)
            .finish()
    }
}

impl UringRead {
    /// A ring and a buffer pool for `capacity` registrations.
    pub fn new(capacity: usize) -> io::Result<UringRead> {
        UringRead::with_sizes(capacity, SQ_ENTRIES, cq_entries(capacity), None)
    }

    /// Sizes given (tests: a CQ smaller than the registrations to force
    /// overflow; a pool of `(count, size)` incremental buffers to run dry).
    fn with_sizes(
        capacity: usize,
        sq: u32,
        cq: u32,
        pool: Option<(usize, u32)>,
    ) -> io::Result<UringRead> {
        let ring = build(Setup::Defer, sq, cq)?;
        let inc_count = (capacity * INC_BYTES_PER_REGISTRATION).div_ceil(INC_BUF_SIZE as usize) + 2;
        let (count, size) = pool.unwrap_or((inc_count, INC_BUF_SIZE));
        let count = count.next_power_of_two().min(MAX_RING_ENTRIES);
        let pool = match Pool::new(&ring, capacity, count, size, true) {
            Ok(p) => p,
            // No IOU_PBUF_RING_INC (before 6.12): a whole buffer per read,
            // one per registration.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && pool.is_none() => {
                let whole = (capacity + 2).next_power_of_two().min(MAX_RING_ENTRIES);
                Pool::new(&ring, capacity, whole, WHOLE_BUF_SIZE, false)?
            }
            Err(e) => return Err(e),
        };
        Ok(UringRead {
            ring,
            pool,
            slots: Slots::new(capacity),
            owed: Vec::new(),
            no_buffers: 0,
            counters: Counters::new(),
        })
    }

    /// The ring and the pool, for the JSON's `env`.
    pub fn describe(&self) -> String {
        let (count, size, incremental, bytes) = self.pool.shape();
        format!(
            "SINGLE_ISSUER|DEFER_TASKRUN|CLAMP, sq {SQ_ENTRIES}, cq {}, multishot READ, provided \
             buffer ring of {count} x {size} B ({} KiB with its entries), {}",
            self.ring.params().cq_entries(),
            bytes / 1024,
            if incremental {
                "incremental (IOU_PBUF_RING_INC)"
            } else {
                "a whole buffer per read"
            }
        )
    }

    fn push(&mut self, sqe: squeue::Entry) -> io::Result<()> {
        // The fd stays open while registered (harness rule).
        // SAFETY: READ_MULTISHOT and ASYNC_CANCEL point at no user memory
        // but the registered pool, which outlives the ring.
        unsafe { push(&mut self.ring, &self.counters, &sqe) }
    }

    fn arm(&mut self, t: usize) -> io::Result<()> {
        let ud = self.slots.user_data(t);
        let sqe = opcode::ReadMulti::new(types::Fd(self.slots.fd(t)), 0, BGID)
            .build()
            .user_data(ud);
        self.push(sqe)
    }

    /// Re-arms the reads that ended and are still registered.
    fn rearm_owed(&mut self) -> io::Result<()> {
        let owed = std::mem::take(&mut self.owed);
        for &(t, gen, why) in &owed {
            let t = t as usize;
            if !self.slots.is_current(t, gen) {
                continue;
            }
            self.counters.incr(match why {
                Ended::Overflow => Counter::RearmOverflow,
                Ended::NoBuffers => Counter::RearmKernelEnded,
            });
            self.arm(t)?;
        }
        self.owed = owed;
        self.owed.clear();
        Ok(())
    }

    /// Reads every CQE: data to `out` (and to the token's pieces), stale
    /// ones dropped with their bytes, ended reads owed a re-arm.
    fn reap(&mut self, out: &mut Vec<u32>) -> io::Result<()> {
        let mut stale = 0;
        let mut failed = None;
        for cqe in &mut self.ring.completion() {
            self.counters.incr(Counter::CqesSeen);
            let ud = cqe.user_data();
            if ud == CANCEL_TAG {
                continue;
            }
            let (res, flags) = (cqe.result(), cqe.flags());
            let bid = cqueue::buffer_select(flags);
            let kernel_keeps = cqueue::buffer_more(flags);
            let Some((t, gen)) = self.slots.current(ud) else {
                stale += 1;
                if let Some(bid) = bid {
                    self.pool.discard(bid, res.max(0) as u32, kernel_keeps)?;
                }
                continue;
            };
            match (res, bid) {
                (n, Some(bid)) if n > 0 => {
                    self.pool.deliver(t, bid, n as u32, kernel_keeps)?;
                    out.push(t as u32);
                    if !cqueue::more(flags) {
                        // A read posts data without F_MORE when its CQE
                        // did not fit: the CQ overflowed. (A file without
                        // non-blocking reads would end every read so and
                        // be counted here too; compare's kinds all have
                        // them, and the tests see no re-arm without
                        // overflow.)
                        self.owed.push((t as u32, gen, Ended::Overflow));
                    }
                }
                (0, _) => {
                    // End of file: one event without data, then silence.
                    if let Some(bid) = bid {
                        self.pool.discard(bid, 0, kernel_keeps)?;
                    }
                    self.pool.end_of_file(t);
                    out.push(t as u32);
                }
                (e, _) if e == -libc::ENOBUFS => {
                    self.no_buffers += 1;
                    self.owed.push((t as u32, gen, Ended::NoBuffers));
                }
                // A positive result without a buffer cannot happen with
                // buffer select: reported as EIO.
                (e, _) => {
                    failed.get_or_insert((t, if e < 0 { -e } else { libc::EIO }));
                }
            }
        }
        self.counters.add(Counter::StaleDropped, stale);
        match failed {
            None => Ok(()),
            Some((t, errno)) => {
                let err = io::Error::from_raw_os_error(errno);
                Err(io::Error::new(
                    err.kind(),
                    format!(
                        "multishot read of source {t} (fd {}) failed: {err}; uring-read reads \
                         pollable fds that support non-blocking reads (eventfd, pipe, socket)",
                        self.slots.fd(t)
                    ),
                ))
            }
        }
    }
}

impl Backend for UringRead {
    fn add(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        let t = self.slots.slot(token)?;
        // The harness keeps it open while registered (Backend::add).
        self.slots.register(t, fd.as_raw_fd());
        self.arm(t)?;
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&mut self, _fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        let t = self.slots.slot(token)?;
        let ud = self.slots.unregister(t);
        // Data delivered and not handled goes with the registration.
        self.pool.forget(t);
        self.push(opcode::AsyncCancel::new(ud).build().user_data(CANCEL_TAG))?;
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        let before = out.len();
        let mut waited = false;
        loop {
            // Reads that ended are re-armed before the enter, once the
            // handler gave their buffers back.
            self.rearm_owed()?;
            enter_step(&mut self.ring, &self.counters, &mut waited, timeout)?;
            self.reap(out)?;
            if out.len() > before || waited {
                break;
            }
        }
        self.counters
            .add(Counter::EventsDelivered, (out.len() - before) as u64);
        Ok(())
    }

    fn data(&self, token: u32) -> Option<&[u8]> {
        self.pool.data(token as usize)
    }

    fn handled(&mut self, _fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        self.pool.handled(token as usize);
        Ok(())
    }

    fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests;
