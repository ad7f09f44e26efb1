//! Submitting SQEs and entering the ring.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use io_uring::{squeue, EnterFlags};
use userpoll::{Counter, Counters};

use crate::owner::Owner;
use crate::sys;

pub(crate) fn is_errno(e: &io::Error, errnos: &[i32]) -> bool {
    e.raw_os_error().is_some_and(|n| errnos.contains(&n))
}

impl Owner {
    /// Puts `e` in the SQ, or in the backlog when the SQ is full.
    pub(crate) fn queue_sqe(&mut self, e: squeue::Entry) {
        self.queued_sqes += 1;
        if self.backlog.is_empty() {
            // Our SQEs (POLL_ADD, POLL_REMOVE, ASYNC_CANCEL) name fds checked
            // open at add, and the kernel takes its own file reference.
            // SAFETY: they carry no pointers to buffers that could dangle.
            if unsafe { self.ring.submission().push(&e) }.is_ok() {
                return;
            }
        }
        self.backlog.push_back(e);
    }

    /// Moves what fits of the backlog into the SQ; the number of SQEs the
    /// SQ then holds.
    pub(crate) fn fill_sq(&mut self) -> u32 {
        let mut sq = self.ring.submission();
        while let Some(e) = self.backlog.front() {
            // SAFETY: as in queue_sqe.
            if unsafe { sq.push(e) }.is_err() {
                break;
            }
            self.backlog.pop_front();
        }
        sq.sync();
        sq.len() as u32
    }

    /// `io_uring_enter` on this owner's ring ([`sys::enter`]).
    pub(crate) fn enter(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: EnterFlags,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        sys::enter(
            self.ring.as_raw_fd(),
            to_submit,
            min_complete,
            flags,
            timeout,
        )
    }

    /// SQPOLL: whether the SQ thread sleeps and needs SQ_WAKEUP.
    pub(crate) fn sq_needs_wakeup(&mut self) -> bool {
        // The kernel sets NEED_WAKEUP and then re-checks the tail; this
        // fence orders our tail store before our flag load (see
        // io_uring_enter(2), SQPOLL).
        fence(Ordering::SeqCst);
        self.ring.submission().need_wakeup()
    }

    /// `fill_sq` for an enter that submits: what it hands over includes
    /// any queued update.
    pub(crate) fn submitted(&mut self) -> u32 {
        let n = self.fill_sq();
        if self.backlog.is_empty() {
            self.update_queued = false;
        }
        n
    }

    /// Hands every queued SQE to the kernel without waiting.
    pub(crate) fn submit(&mut self, c: &Counters) -> io::Result<()> {
        loop {
            let n = self.submitted();
            if n == 0 {
                return Ok(());
            }
            if self.policy.kernel_submits {
                if self.sq_needs_wakeup() {
                    c.incr(Counter::EnterSubmit);
                    self.enter(0, 0, EnterFlags::SQ_WAKEUP, None)?;
                }
                if self.backlog.is_empty() {
                    return Ok(());
                }
                c.incr(Counter::EnterSubmit);
                self.enter(0, 0, EnterFlags::SQ_WAIT, None)?;
                continue;
            }
            c.incr(Counter::EnterSubmit);
            match self.enter(n, 0, EnterFlags::empty(), None) {
                Ok(0) => return Ok(()),
                Ok(_) if self.backlog.is_empty() => return Ok(()),
                Ok(_) => {}
                Err(e) if is_errno(&e, &[libc::EINTR]) => {}
                // The CQ is overflowing: the entries stay in the SQ and go
                // with the next enter, after the overflow is flushed.
                Err(e) if is_errno(&e, &[libc::EBUSY, libc::EAGAIN]) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Submits what is queued and blocks until a completion or `timeout`.
    pub(crate) fn enter_wait(&mut self, timeout: Option<Duration>, c: &Counters) -> io::Result<()> {
        let n = self.submitted();
        let mut flags = EnterFlags::GETEVENTS;
        if self.policy.kernel_submits && self.sq_needs_wakeup() {
            flags |= EnterFlags::SQ_WAKEUP;
        }
        c.incr(Counter::EnterWait);
        match self.enter(n, 1, flags, timeout) {
            Ok(_) => Ok(()),
            Err(e) if is_errno(&e, &[libc::ETIME, libc::EINTR, libc::EBUSY, libc::EAGAIN]) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether SQEs wait to be handed to the kernel.
    pub(crate) fn has_queued_sqes(&mut self) -> bool {
        !self.backlog.is_empty() || !self.ring.submission().is_empty()
    }

    /// Submits what is queued and collects what that posts at once (the
    /// arm-time completions of ready fds) without waiting: under Coop and
    /// Default they run on this thread as the enter returns; under Defer
    /// they run when asked for (as many as the take and the CQ can hold,
    /// zero timeout); under SQPOLL they come when the kernel thread gets to
    /// them.
    pub(crate) fn submit_and_collect(&mut self, want: usize, c: &Counters) -> io::Result<()> {
        if self.policy.kernel_submits {
            return self.submit(c);
        }
        let n = self.submitted();
        let (min_complete, timeout) = self.getevents_args(want);
        c.incr(Counter::EnterSubmit);
        self.enter_getevents(n, min_complete, timeout)
    }

    /// `min_complete` and timeout of a non-blocking GETEVENTS enter. Defer:
    /// ask for `want` completions, but no more than the CQ has room for
    /// (more would overflow it), with a zero timeout; others: 0 and none.
    pub(crate) fn getevents_args(&mut self, want: usize) -> (u32, Option<Duration>) {
        if !self.policy.getevents_counts {
            return (0, None);
        }
        let cq = self.ring.completion();
        let room = cq.capacity() - cq.len();
        drop(cq);
        (
            want.min(room).clamp(1, u32::MAX as usize) as u32,
            Some(Duration::ZERO),
        )
    }

    /// Coop and Defer: whether completion work waits for an enter of ours.
    pub(crate) fn taskrun_pending(&mut self) -> bool {
        self.policy.enter_for_taskrun && self.ring.submission().taskrun()
    }

    /// Runs pending completion work (and submits) without waiting.
    ///
    /// Defer: the kernel runs at most `max(20, min_complete)` deferred
    /// completions per enter, so asking for `want` completions (capped by
    /// the CQ's free room) with a zero timeout runs up to that many in one
    /// call (and returns -ETIME when fewer were pending) instead of one call
    /// per 20.
    ///
    /// Defer with an in-place update queued: run the pending completion
    /// work *without* submitting. Submitted first, the update would find
    /// the poll's completion work pending and be refused (-EALREADY), and
    /// cost a cancel and a new POLL_ADD; the SQ goes with the next enter.
    pub(crate) fn run_taskrun(&mut self, want: usize, c: &Counters) -> io::Result<()> {
        let n = if self.policy.update_after_taskrun && self.update_queued {
            0
        } else {
            self.submitted()
        };
        let (min_complete, timeout) = self.getevents_args(want);
        c.incr(Counter::EnterWait);
        match self.enter(n, min_complete, EnterFlags::GETEVENTS, timeout) {
            Ok(_) => Ok(()),
            Err(e) if is_errno(&e, &[libc::ETIME, libc::EINTR, libc::EBUSY, libc::EAGAIN]) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `io_uring_enter(GETEVENTS)` that does not wait beyond `timeout`;
    /// interruptions, a zero timeout expiring and a busy CQ are not errors.
    pub(crate) fn enter_getevents(
        &mut self,
        to_submit: u32,
        min_complete: u32,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        match self.enter(to_submit, min_complete, EnterFlags::GETEVENTS, timeout) {
            Ok(_) => Ok(()),
            Err(e) if is_errno(&e, &[libc::ETIME, libc::EINTR, libc::EBUSY, libc::EAGAIN]) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
