//! What the two hand-written io_uring loops (`uring-raw`, `uring-read`)
//! share: the per-token registrations with their generations, pushing an
//! SQE, and the one enter step of their `wait`.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{squeue, types, IoUring};
use userpoll::{Counter, Counters};

/// Per token: the registration's generation and fd (-1: none). A
/// request's `user_data` is generation << 32 | token, so a CQE of a
/// registration deleted since is told apart (stale).
#[derive(Debug)]
pub(super) struct Slots {
    gens: Vec<u32>,
    fds: Vec<RawFd>,
}

impl Slots {
    /// Room for tokens `0..capacity`, none registered.
    pub(super) fn new(capacity: usize) -> Slots {
        Slots {
            gens: vec![0; capacity],
            fds: vec![-1; capacity],
        }
    }

    /// `token` as an index, or InvalidInput beyond the capacity.
    pub(super) fn slot(&self, token: u32) -> io::Result<usize> {
        let t = token as usize;
        if t >= self.gens.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "token {token} beyond the ring's capacity {}",
                    self.gens.len()
                ),
            ));
        }
        Ok(t)
    }

    /// Registers `fd` under token `t` with a new generation.
    pub(super) fn register(&mut self, t: usize, fd: RawFd) {
        self.gens[t] = self.gens[t].wrapping_add(1);
        self.fds[t] = fd;
    }

    /// Ends the registration of token `t`; returns the `user_data` its
    /// requests carried (to cancel them).
    pub(super) fn unregister(&mut self, t: usize) -> u64 {
        let ud = self.user_data(t);
        self.gens[t] = self.gens[t].wrapping_add(1);
        self.fds[t] = -1;
        ud
    }

    /// The `user_data` of token `t`'s requests now.
    pub(super) fn user_data(&self, t: usize) -> u64 {
        (u64::from(self.gens[t]) << 32) | t as u64
    }

    /// The token and generation of `ud`, when it is the current
    /// registration of its token; `None` for a stale one.
    pub(super) fn current(&self, ud: u64) -> Option<(usize, u32)> {
        let (t, gen) = ((ud & 0xffff_ffff) as usize, (ud >> 32) as u32);
        (t < self.gens.len() && gen == self.gens[t] && self.fds[t] >= 0).then_some((t, gen))
    }

    /// Whether token `t` is still registered under `gen`.
    pub(super) fn is_current(&self, t: usize, gen: u32) -> bool {
        self.gens[t] == gen && self.fds[t] >= 0
    }

    /// The fd registered under token `t` (-1: none).
    pub(super) fn fd(&self, t: usize) -> RawFd {
        self.fds[t]
    }

    /// How many tokens hold a registration.
    pub(super) fn registered(&self) -> usize {
        self.fds.iter().filter(|&&fd| fd >= 0).count()
    }
}

/// Queues `sqe`, submitting what is queued when the SQ is full; counts
/// the SQE and those submits.
///
/// # Safety
/// Whatever `sqe` points to (buffers, the fd) stays valid until the
/// request completes.
pub(super) unsafe fn push(ring: &mut IoUring, c: &Counters, sqe: &squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: the caller keeps what `sqe` points to valid.
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            c.incr(Counter::SqesSubmitted);
            return Ok(());
        }
        c.incr(Counter::EnterSubmit);
        ring.submitter().submit()?;
    }
}

/// One enter of a loop's `wait`, made when the CQ is empty or SQEs wait:
/// the first time (`*waited` false) with an empty CQ it waits for one
/// completion up to `timeout`; otherwise it only submits. Both carry
/// GETEVENTS while the CQ overflow flag is set, which flushes the
/// overflow list. Returns whether the CQ was overflowing (counted as a
/// recovery). ETIME, EINTR and EBUSY are not errors.
pub(super) fn enter_step(
    ring: &mut IoUring,
    c: &Counters,
    waited: &mut bool,
    timeout: Duration,
) -> io::Result<bool> {
    if !ring.completion().is_empty() && ring.submission().is_empty() {
        return Ok(false);
    }
    let overflowed = ring.submission().cq_overflow();
    if overflowed {
        c.incr(Counter::OverflowRecoveries);
    }
    let r = if *waited || !ring.completion().is_empty() {
        c.incr(Counter::EnterSubmit);
        ring.submitter().submit()
    } else {
        *waited = true;
        c.incr(Counter::EnterWait);
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        ring.submitter().submit_with_args(1, &args)
    };
    match r {
        Ok(_) => Ok(overflowed),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY)
            ) =>
        {
            Ok(overflowed)
        }
        Err(e) => Err(e),
    }
}
