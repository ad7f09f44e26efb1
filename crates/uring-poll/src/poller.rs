//! The poller: [`UringPoll`], its [`Builder`], and the take loop
//! ([`Poller::wait`]) that runs the owner's steps kept in the other files.
//!
//! Two halves, as the contract splits them:
//! - [`UringControl`] (any thread, `control.rs`): changes the table under
//!   one mutex and queues ring work for the owner (`ops.rs`). When the
//!   owner is blocked in `wait`, it wakes it with one `write` to the
//!   poller's eventfd, which the ring polls (multishot, `Kind::Wake`).
//!   Control threads never enter the ring: with DEFER_TASKRUN they may
//!   not, and in the other profiles a poll armed by a control thread would
//!   run its completion work on that thread forever after.
//! - [`UringPoll`] (the owner, `owner.rs`): submits queued ops
//!   (`ring.rs`), reads the CQ in its own memory, drops stale completions
//!   by generation, re-arms what the kernel ended (`complete.rs`), merges
//!   completions per registration (S3, `merge.rs`) and hands out events.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use userpoll::fork::ForkCheck;
use userpoll::sys::{deadline, errno};
use userpoll::table::Table;
use userpoll::{Counter, Counters, Events, Poller, Stats};

use crate::check::fstat;
use crate::control::{Registry, UringControl, UringShared};
use crate::merge::MergeQueue;
use crate::ops::Ops;
use crate::owner::Owner;
use crate::profile::{Profile, SETUP_CLAMP, SETUP_CQSIZE};
use crate::ring::Ring;
use crate::sqe::MAX_CAPACITY;

/// The largest SQ a poller asks for; a longer burst of submissions waits
/// in the owner's backlog for the next `io_uring_enter`.
const MAX_SQ_ENTRIES: u32 = 4096;

/// A userpoll poller on io_uring multishot poll: the owner of the ring.
///
/// `Send`, not `Sync`: one thread takes events at a time. Control calls go
/// through [`UringControl`] (from [`Poller::control`]) from any thread. With
/// [`Profile::Defer`] the first thread that takes events becomes the ring's
/// single issuer; taking events on another thread later rebuilds the ring
/// there (every registration is kept and re-armed).
///
/// Dropping it closes the ring, which cancels every poll and releases every
/// file it held; control handles that outlive it keep only the table.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use uring_poll::UringPoll;
/// use userpoll::{sys, Control, Events, Interest, Poller};
///
/// # fn main() -> std::io::Result<()> {
/// let Ok(mut poller) = UringPoll::new(1024) else { return Ok(()) }; // no io_uring here
/// let efd = sys::eventfd()?;
/// poller.control().add(efd.as_fd(), Interest::READABLE, 3)?;
/// // From another thread: end a blocked wait.
/// let control = poller.control().clone();
/// std::thread::spawn(move || control.wake());
/// let mut events = Events::with_capacity(64);
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?; // woken: returns
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct UringPoll {
    owner: Owner,
    control: UringControl,
    /// `pollable_fd` was called: the owner waits in another loop between
    /// takes, so each take ends by marking it as waiting (see there).
    nested: AtomicBool,
}

/// Options for a [`UringPoll`]: profile, re-arm mode, CQ size.
///
/// ```
/// use uring_poll::{Profile, UringPoll};
/// use userpoll::Poller;
///
/// # fn main() -> std::io::Result<()> {
/// let built = UringPoll::builder()
///     .profile(Profile::Coop)   // 5.19+; Profile::Defer needs 6.1
///     .cq_entries(4096)         // else 2 x capacity + 64
///     .build(1024);
/// match built {
///     Ok(p) => assert_eq!(p.capacity(), 1024),
///     Err(e) => eprintln!("no coop ring here: {e}"), // says which flags
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    profile: Profile,
    rearm: bool,
    cq_entries: Option<u32>,
    min_wait: Duration,
}

impl Builder {
    /// The default: [`Profile::Default`], multishot, CQ sized from the
    /// capacity.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The ring setup profile.
    pub fn profile(mut self, profile: Profile) -> Builder {
        self.profile = profile;
        self
    }

    /// Re-arm mode: every registration is a one-shot POLL_ADD that the
    /// poller submits again after each event it hands out (what monoio,
    /// glommio and compio do), instead of one multishot POLL_ADD armed once.
    /// Same contract; it exists to measure the cost of re-arming.
    pub fn rearm(mut self, rearm: bool) -> Builder {
        self.rearm = rearm;
        self
    }

    /// CQ entries (rounded up to a power of two, clamped by the kernel).
    /// The default, twice the capacity plus 64, keeps a steady state of up
    /// to two completions per registration per take out of overflow; a
    /// smaller CQ overflows sooner, which the poller recovers from (S10).
    pub fn cq_entries(mut self, entries: u32) -> Builder {
        self.cq_entries = Some(entries);
        self
    }

    /// Batched waits: a take that blocks waits until it can fill its
    /// `Events` or `min_wait` has passed with at least one event, and from
    /// then on returns at the first, so a burst costs one wake-up instead
    /// of one per event. Up to `min_wait` of latency is added to events
    /// (and to a [`Control::wake`](userpoll::Control::wake)) that come
    /// while a wait is younger than that; an idle poller's first event is
    /// not delayed. Zero (the default) turns it off. Needs
    /// IORING_FEAT_MIN_TIMEOUT (Linux 6.12): `build` fails with EOPNOTSUPP
    /// without it. Rounded down to microseconds.
    ///
    /// Under [`Profile::Defer`] the kernel does not wake the owner for each
    /// completion until `min_wait` has passed, which is where it saves CPU
    /// (docs/uring-poll.md, "Batched waits").
    pub fn min_wait(mut self, min_wait: Duration) -> Builder {
        self.min_wait = min_wait;
        self
    }

    /// A poller for at most `capacity` registrations (1 to 2^30 - 1).
    /// Fails with EINVAL for a capacity out of range, and with the cause
    /// (ENOSYS, EPERM, EOPNOTSUPP, ENOMEM) when the ring cannot be made.
    pub fn build(self, capacity: usize) -> io::Result<UringPoll> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(errno(libc::EINVAL));
        }
        let cq_wanted = self
            .cq_entries
            .unwrap_or_else(|| (capacity as u64 * 2 + 64).min(u32::MAX as u64) as u32)
            .max(2);
        let sq_wanted = (capacity as u32 + 1)
            .clamp(2, MAX_SQ_ENTRIES)
            .min(cq_wanted);
        let mut ring = Ring::new(self.profile, sq_wanted, cq_wanted, capacity)?;
        ring.set_min_wait(self.min_wait)?;
        let wake = userpoll::sys::eventfd()?;
        let counters = Counters::new();
        let st = fstat(wake.as_fd(), &counters)?;
        let inner = Arc::new(UringShared {
            shared: Mutex::new(Registry {
                table: Table::with_capacity(capacity)?,
                pending: Ops::new(capacity),
                waiting: false,
                woken: false,
                closed: false,
                ring_fd: ring.fd(),
                enabled_on: None,
                serial: vec![0; capacity],
                last_serial: 0,
            }),
            counters,
            wake,
            rearm_mode: self.rearm,
            anon: (st.st_dev as u64, st.st_ino as u64),
            process: ForkCheck::new(),
        });
        let cq_len = ring.params().cq_entries() as usize;
        let single_issuer = ring.policy().single_issuer;
        let mut owner = Owner {
            ring,
            rearm_mode: self.rearm,
            capacity,
            merged: MergeQueue::new(capacity),
            batch: Vec::with_capacity(cq_len),
            thread: None,
            rearm_next: Vec::new(),
            overflow_rearm: Vec::new(),
            overflow_episode: false,
            wake_fd: inner.wake.as_raw_fd(),
        };
        if !single_issuer {
            owner.arm_wake();
        }
        Ok(UringPoll {
            owner,
            control: UringControl { inner },
            nested: AtomicBool::new(false),
        })
    }
}

impl UringPoll {
    /// A poller for at most `capacity` registrations with the default
    /// options ([`Profile::Default`], multishot).
    pub fn new(capacity: usize) -> io::Result<UringPoll> {
        Builder::new().build(capacity)
    }

    /// Options for a poller.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The setup profile.
    pub fn profile(&self) -> Profile {
        self.owner.ring.profile()
    }

    /// Whether this poller re-arms a one-shot poll after every event.
    pub fn is_rearm_mode(&self) -> bool {
        self.owner.rearm_mode
    }

    /// The batched wait of every blocking take (zero: none), as
    /// [`Builder::min_wait`] set it.
    pub fn min_wait(&self) -> Duration {
        self.owner.ring.min_wait()
    }

    /// The flags given to `io_uring_setup` (profile flags plus
    /// `CQSIZE | CLAMP`), for environment reports.
    pub fn setup_flags(&self) -> u32 {
        self.profile().setup_flags() | SETUP_CQSIZE | SETUP_CLAMP
    }

    /// SQ entries of the ring, as the kernel made it.
    pub fn sq_entries(&self) -> u32 {
        self.owner.ring.params().sq_entries()
    }

    /// CQ entries of the ring, as the kernel made it.
    pub fn cq_entries(&self) -> u32 {
        self.owner.ring.params().cq_entries()
    }

    /// One line for environment reports: profile, mode, flags, sizes,
    /// batched wait.
    pub fn describe(&self) -> String {
        format!(
            "uring-poll profile={} mode={} setup_flags={:#x} sq={} cq={} min_wait_us={}",
            self.profile(),
            if self.is_rearm_mode() {
                "rearm"
            } else {
                "multishot"
            },
            self.setup_flags(),
            self.sq_entries(),
            self.cq_entries(),
            self.min_wait().as_micros()
        )
    }
}

impl Drop for UringPoll {
    fn drop(&mut self) {
        if self.control.inner.process.is_child() {
            // Forked: the ring, its polls and the wake-up eventfd are the
            // parent's too. Touch nothing they share (no cancel, no files
            // update, no wake-up write; not even the lock, which a parent
            // thread may have held at the fork): dropping the fields only
            // unmaps the child's copy of the ring and closes the child's
            // copies of the fds, which leaves the parent's polls running.
            return;
        }
        // Control handles may outlive the poller: stop queueing ring work
        // nobody will submit. Closing the ring (dropping `owner`) cancels
        // every poll and releases the files they hold.
        let mut g = self.control.inner.lock();
        g.closed = true;
        g.pending.clear();
    }
}

impl Poller for UringPoll {
    type Control = UringControl;

    fn control(&self) -> &UringControl {
        &self.control
    }

    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let inner = &*self.control.inner;
        inner.process.check()?;
        let c = &inner.counters;
        let owner = &mut self.owner;
        owner.ensure_thread(inner)?;
        // A timeout too far away to add to now has no limit, as
        // `wait(None)` (userpoll::sys::deadline).
        let deadline = deadline(timeout);
        let mut ran_taskrun = false;
        let mut ran_submit = false;
        loop {
            {
                let mut g = inner.lock();
                g.waiting = false;
                owner.rearm_taken(&mut g, c);
                owner.drain_pending(&mut g, c);
                // Coop and Defer: completion work waits for an enter of
                // ours. Run it before reading the CQ, every time it is
                // pending, or completions posted inline at submission
                // could keep the CQ busy and starve it.
                if owner.ring.taskrun_pending() {
                    owner.ring.run_taskrun(events.remaining(), c)?;
                }
                owner.harvest(&mut g, c)?;
                owner.emit(&mut g, events, c);
                // A wake ends this wait, with or without events.
                if std::mem::replace(&mut g.woken, false) {
                    break;
                }
            }
            if !events.is_empty() {
                break;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                // Nothing ready and no time to wait. POLL_ADDs (and updates)
                // queued by this take's control ops or re-arms have not
                // reached the kernel yet: submit them and look once more, so
                // that an fd ready when `add` or `modify` returned is
                // reported by the very next `poll` (S4), as epoll would.
                if !ran_submit && owner.ring.has_queued() {
                    ran_submit = true;
                    owner.ring.submit_and_collect(events.remaining(), c)?;
                    continue;
                }
                // Coop and Defer: completions may be waiting for an enter.
                if !ran_taskrun && owner.ring.taskrun_pending() {
                    ran_taskrun = true;
                    continue;
                }
                break;
            }
            {
                let mut g = inner.lock();
                owner.drain_pending(&mut g, c);
                if std::mem::replace(&mut g.woken, false) {
                    break;
                }
                g.waiting = true;
            }
            if let Err(e) = owner.ring.wait(left, events.remaining(), c) {
                inner.lock().waiting = false;
                return Err(e);
            }
        }
        // Re-arms and control ops queued meanwhile go to the kernel now.
        // Events already taken out of the queue are not thrown away for a
        // failed submit: the SQEs stay queued, and the next call retries
        // (and reports the error if it persists).
        if let Err(e) = owner.ring.submit(c) {
            if events.is_empty() {
                return Err(e);
            }
        }
        c.add(Counter::SqesSubmitted, owner.ring.take_queued_count());
        c.add(Counter::EventsDelivered, events.len() as u64);
        if self.nested.load(Ordering::Relaxed) {
            // Back to the outer loop: a control call or wake from now on
            // must post a completion to make the ring fd readable.
            inner.lock().waiting = true;
        }
        Ok(events.len())
    }

    /// The ring fd, readable while the CQ holds completions (default,
    /// `coop` and `sqpoll` profiles). From the first call on, each take
    /// ends by marking the owner as waiting, so the first control call or
    /// wake after it writes the ring's wake-up eventfd (one `write`, as
    /// when the owner is blocked in `wait`), whose completion makes the fd
    /// readable (S11, S12). Under the default and `coop` profiles the
    /// kernel runs completion work on the owner thread: a fire while it
    /// waits in the outer loop interrupts that wait (EINTR) and posts the
    /// completion as the call returns, so retry an interrupted outer wait,
    /// as mio users do. EOPNOTSUPP under `defer` (docs/uring-poll.md,
    /// pitfall 15); EPERM in a forked child.
    fn pollable_fd(&self) -> io::Result<BorrowedFd<'_>> {
        let inner = &*self.control.inner;
        inner.process.check()?;
        if !self.owner.ring.policy().nestable {
            return Err(errno(libc::EOPNOTSUPP));
        }
        self.nested.store(true, Ordering::Relaxed);
        inner.lock().waiting = true;
        Ok(self.owner.ring.as_fd())
    }

    fn capacity(&self) -> usize {
        self.owner.capacity
    }

    fn stats(&self) -> Stats {
        self.control.inner.counters.snapshot()
    }
}
