//! The owner's io_uring: SQEs in (with a backlog when the SQ is full), what
//! the ring's flags say (pending completion work, CQ overflow, CQ room),
//! and every `io_uring_enter` the poller makes, through one path with one
//! errno filter.
//!
//! The enters a take makes, each named by what it is for: [`Ring::submit`]
//! (hand queued SQEs over), [`Ring::wait`] (block for a completion),
//! [`Ring::submit_and_collect`] (an empty `poll` looks once more),
//! [`Ring::run_taskrun`] (Coop/Defer completion work), and, for overflow
//! recovery, [`Ring::flush_overflow`] and [`Ring::submit_rearms`]. What
//! each does differs by profile only through the [`Policy`].

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use io_uring::{cqueue, squeue, EnterFlags, IoUring, Parameters};
use userpoll::{Counter, Counters};

use crate::policy::Policy;
use crate::profile::Profile;
use crate::sys::{self, WaitArgs};

/// What an `io_uring_enter` came to when the poller does not count it as
/// failed.
enum Entered {
    /// The kernel's return value (SQEs consumed).
    Done(usize),
    /// `EINTR`: a signal came first.
    Interrupted,
    /// `ETIME`: the timeout (a zero one included) expired with fewer
    /// completions than asked for; `EBUSY`, `EAGAIN`: the CQ is
    /// overflowing or the kernel is short of requests, and SQEs not taken
    /// stay in the SQ for the next enter, after the flush.
    Later,
}

/// Deferred completions a GETEVENTS enter with `min_complete` 0 runs at
/// most (the kernel's `IO_LOCAL_TW_DEFAULT_MAX`).
const TASKRUN_MAX_PER_ENTER: usize = 20;

/// The owner's ring and what waits to go into it.
pub(crate) struct Ring {
    ring: IoUring,
    /// What the ring was made with, to make another like it.
    profile: Profile,
    sq_wanted: u32,
    cq_wanted: u32,
    files: usize,
    /// What a take must do under `profile`.
    policy: Policy,
    /// SQEs that did not fit in the SQ; they go at the next enter.
    backlog: VecDeque<squeue::Entry>,
    /// SQEs queued since the counters were last updated.
    queued_sqes: u64,
    /// The batched wait of [`Ring::wait`] (zero: none).
    min_wait: Duration,
    /// An in-place update waits in the SQ (or backlog).
    update_queued: bool,
}

impl Ring {
    /// A ring of `profile` asking for `sq_wanted` SQ and `cq_wanted` CQ
    /// entries, with a fixed-file table of `files` slots; its enter policy
    /// is derived here, once.
    pub(crate) fn new(
        profile: Profile,
        sq_wanted: u32,
        cq_wanted: u32,
        files: usize,
    ) -> io::Result<Ring> {
        Ok(Ring {
            ring: sys::new_ring(profile, sq_wanted, cq_wanted, files)?,
            profile,
            sq_wanted,
            cq_wanted,
            files,
            policy: Policy::of(profile),
            backlog: VecDeque::new(),
            queued_sqes: 0,
            min_wait: Duration::ZERO,
            update_queued: false,
        })
    }

    pub(crate) fn min_wait(&self) -> Duration {
        self.min_wait
    }

    /// Makes every blocking wait a batched one of at most `min_wait`
    /// ([`Ring::wait`]). EOPNOTSUPP when the kernel lacks
    /// IORING_FEAT_MIN_TIMEOUT (before 6.12).
    pub(crate) fn set_min_wait(&mut self, min_wait: Duration) -> io::Result<()> {
        if !min_wait.is_zero() && !self.ring.params().is_feature_min_timeout() {
            return Err(userpoll::sys::errno(libc::EOPNOTSUPP));
        }
        self.min_wait = min_wait;
        Ok(())
    }

    /// A new ring made as this one was (for [`Ring::replace`]).
    pub(crate) fn another(&self) -> io::Result<IoUring> {
        sys::new_ring(self.profile, self.sq_wanted, self.cq_wanted, self.files)
    }

    /// Puts `ring` in place of the current one, which closes (cancelling
    /// its polls); what waited for the old ring is dropped.
    pub(crate) fn replace(&mut self, ring: IoUring) {
        self.ring = ring;
        self.backlog.clear();
        self.update_queued = false;
    }

    pub(crate) fn profile(&self) -> Profile {
        self.profile
    }

    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }

    pub(crate) fn params(&self) -> &Parameters {
        self.ring.params()
    }

    pub(crate) fn io_uring(&self) -> &IoUring {
        &self.ring
    }

    /// SQEs waiting in the backlog (for `Debug`).
    pub(crate) fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// SQEs queued since the last call.
    pub(crate) fn take_queued_count(&mut self) -> u64 {
        std::mem::take(&mut self.queued_sqes)
    }

    /// Puts `e` in the SQ, or in the backlog when the SQ is full.
    pub(crate) fn push(&mut self, e: squeue::Entry) {
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

    /// [`Ring::push`] of an in-place update, which Defer submits only
    /// after pending completion work has run ([`Ring::run_taskrun`]).
    pub(crate) fn push_update(&mut self, e: squeue::Entry) {
        self.push(e);
        self.update_queued = true;
    }

    /// Moves what fits of the backlog into the SQ; the number of SQEs the
    /// SQ then holds.
    fn fill_sq(&mut self) -> u32 {
        let mut sq = self.ring.submission();
        while let Some(e) = self.backlog.front() {
            // SAFETY: as in push.
            if unsafe { sq.push(e) }.is_err() {
                break;
            }
            self.backlog.pop_front();
        }
        sq.sync();
        sq.len() as u32
    }

    /// `fill_sq` for an enter that submits: what it hands over includes
    /// any queued update.
    fn submitted(&mut self) -> u32 {
        let n = self.fill_sq();
        if self.backlog.is_empty() {
            self.update_queued = false;
        }
        n
    }

    /// Whether SQEs wait to be handed to the kernel.
    pub(crate) fn has_queued(&mut self) -> bool {
        !self.backlog.is_empty() || !self.ring.submission().is_empty()
    }

    /// SQPOLL: whether the SQ thread sleeps and needs SQ_WAKEUP.
    fn sq_needs_wakeup(&mut self) -> bool {
        // The kernel sets NEED_WAKEUP and then re-checks the tail; this
        // fence orders our tail store before our flag load (see
        // io_uring_enter(2), SQPOLL).
        fence(Ordering::SeqCst);
        self.ring.submission().need_wakeup()
    }

    /// Coop and Defer: whether completion work waits for an enter of ours.
    pub(crate) fn taskrun_pending(&mut self) -> bool {
        self.policy.enter_for_taskrun && self.ring.submission().taskrun()
    }

    /// Whether the kernel holds completions on its overflow list (only a
    /// GETEVENTS enter flushes them into the CQ).
    pub(crate) fn cq_overflow(&mut self) -> bool {
        self.ring.submission().cq_overflow()
    }

    /// Free CQ entries.
    fn cq_room(&mut self) -> usize {
        let cq = self.ring.completion();
        cq.capacity() - cq.len()
    }

    /// Copies every CQE out of the CQ into `batch` (appending), freeing
    /// their CQ entries; no system call.
    pub(crate) fn read_cq(&mut self, batch: &mut Vec<cqueue::Entry>) {
        batch.extend(self.ring.completion());
    }

    /// How many requests overflow recovery may re-arm at a time: as many
    /// as the CQ has room for (at least one), so their arm-time
    /// completions land in the CQ; everything at once when the kernel's
    /// SQ thread submits.
    pub(crate) fn rearm_batch(&mut self) -> usize {
        let room = self.cq_room();
        if self.policy.kernel_submits {
            usize::MAX
        } else {
            room.max(1)
        }
    }

    /// The one `io_uring_enter` path: counts the enter as `counter`, and
    /// holds the one errno filter. `ETIME`, `EINTR`, `EBUSY` and `EAGAIN`
    /// are not failures of the poller ([`Entered`]); any other errno is
    /// returned as the error.
    fn enter(
        &mut self,
        c: &Counters,
        counter: Counter,
        to_submit: u32,
        min_complete: u32,
        flags: EnterFlags,
        wait: WaitArgs,
    ) -> io::Result<Entered> {
        c.incr(counter);
        match sys::enter(self.fd(), to_submit, min_complete, flags, wait) {
            Ok(n) => Ok(Entered::Done(n)),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => Ok(Entered::Interrupted),
                Some(libc::ETIME | libc::EBUSY | libc::EAGAIN) => Ok(Entered::Later),
                _ => Err(e),
            },
        }
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
                    self.enter(
                        c,
                        Counter::EnterSubmit,
                        0,
                        0,
                        EnterFlags::SQ_WAKEUP,
                        WaitArgs::NONE,
                    )?;
                }
                if self.backlog.is_empty() {
                    return Ok(());
                }
                self.enter(
                    c,
                    Counter::EnterSubmit,
                    0,
                    0,
                    EnterFlags::SQ_WAIT,
                    WaitArgs::NONE,
                )?;
                continue;
            }
            match self.enter(
                c,
                Counter::EnterSubmit,
                n,
                0,
                EnterFlags::empty(),
                WaitArgs::NONE,
            )? {
                Entered::Done(0) => return Ok(()),
                Entered::Done(_) if self.backlog.is_empty() => return Ok(()),
                Entered::Done(_) | Entered::Interrupted => {}
                // The CQ is overflowing: the entries stay in the SQ and go
                // with the next enter, after the overflow is flushed.
                Entered::Later => return Ok(()),
            }
        }
    }

    /// Submits what is queued and blocks until a completion or `timeout`.
    ///
    /// With a min wait ([`Ring::set_min_wait`]) it blocks until `want`
    /// completions (no more than the CQ has room for) or the min wait has
    /// passed with at least one, then returns at the first: a burst is
    /// taken with one wake-up instead of one per completion, at the cost
    /// of up to the min wait of latency for the completions that come
    /// while it runs. Under Defer the kernel does not even wake this thread
    /// for each poll completion (multishot poll's task work is added with
    /// a lazy wake that counts against `want`).
    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        want: usize,
        c: &Counters,
    ) -> io::Result<()> {
        let n = self.submitted();
        let mut flags = EnterFlags::GETEVENTS;
        if self.policy.kernel_submits && self.sq_needs_wakeup() {
            flags |= EnterFlags::SQ_WAKEUP;
        }
        let min_complete = if self.min_wait.is_zero() {
            1
        } else {
            want.min(self.cq_room()).clamp(1, u32::MAX as usize) as u32
        };
        let wait = WaitArgs {
            timeout,
            min_wait: self.min_wait,
        };
        self.enter(c, Counter::EnterWait, n, min_complete, flags, wait)?;
        Ok(())
    }

    /// Submits what is queued and collects what that posts at once (the
    /// arm-time completions of ready fds) without waiting: under Coop and
    /// Default they run on this thread as the enter returns; under Defer
    /// they run as [`Ring::collect`] asks for them (after any pending work
    /// an in-place update must follow, as in [`Ring::run_taskrun`]); under
    /// SQPOLL they come when the kernel thread gets to them.
    pub(crate) fn submit_and_collect(&mut self, want: usize, c: &Counters) -> io::Result<()> {
        if self.policy.kernel_submits {
            return self.submit(c);
        }
        if self.policy.update_after_taskrun && self.update_queued && self.taskrun_pending() {
            self.collect(0, want, Counter::EnterWait, c)?;
        }
        let n = self.submitted();
        self.collect(n, want, Counter::EnterSubmit, c)
    }

    /// Runs pending completion work (and submits) without waiting.
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
        self.collect(n, want, Counter::EnterWait, c)
    }

    /// Submits `n` SQEs with a GETEVENTS enter that does not wait, counted
    /// as `counter`, and under Defer collects up to `want` pending
    /// completions.
    ///
    /// Defer: an enter runs at most `max(20, min_complete)` deferred
    /// completions (pitfall 13), but asking for more than are pending,
    /// even with a zero timeout, makes the enter wait: the kernel's wait
    /// loop checks the timer only when nothing is pending, so it collects
    /// fires while they keep coming, and sleeps on a timer when they pause
    /// (pitfall 16). So every enter here asks for none and gives no
    /// timeout (the kernel runs up to 20 pending and returns at once), and
    /// another follows while each runs a full 20, `want` is not reached and
    /// the CQ has room: a burst is taken 20 completions per enter, and
    /// nothing ever waits. This is every non-blocking Defer enter: a take's
    /// completion work, the arm-time completions of what it submits, and
    /// overflow recovery's re-arms.
    fn collect(
        &mut self,
        mut n: u32,
        want: usize,
        counter: Counter,
        c: &Counters,
    ) -> io::Result<()> {
        let mut ran = 0;
        loop {
            let before = self.ring.completion().len();
            self.enter(c, counter, n, 0, EnterFlags::GETEVENTS, WaitArgs::NONE)?;
            if !self.policy.getevents_counts {
                return Ok(());
            }
            n = 0;
            let posted = self.ring.completion().len().saturating_sub(before);
            ran += posted;
            if posted < TASKRUN_MAX_PER_ENTER
                || ran >= want
                || self.cq_room() < TASKRUN_MAX_PER_ENTER
                || !self.taskrun_pending()
            {
                return Ok(());
            }
        }
    }

    /// Flushes the kernel's CQ overflow list into the CQ: a GETEVENTS
    /// enter that submits nothing and does not wait.
    pub(crate) fn flush_overflow(&mut self, c: &Counters) -> io::Result<()> {
        self.enter(
            c,
            Counter::EnterFlush,
            0,
            0,
            EnterFlags::GETEVENTS,
            WaitArgs::NONE,
        )?;
        Ok(())
    }

    /// Hands `armed` re-arms of overflow recovery to the kernel at once and
    /// collects their arm-time completions ([`Ring::collect`]; `armed` is
    /// within the CQ's room, see `rearm_batch`). Nothing to do when none
    /// were armed, or when the kernel's SQ thread submits.
    pub(crate) fn submit_rearms(&mut self, armed: usize, c: &Counters) -> io::Result<()> {
        if armed == 0 || self.policy.kernel_submits {
            return Ok(());
        }
        let n = self.submitted();
        self.collect(n, armed, Counter::EnterFlush, c)
    }
}
