//! Counters every backend fills in, so that system calls, re-arms and
//! recoveries are reported exactly rather than inferred from timings.
//!
//! [`Counters`] is the live, shared set (one cache line per counter, relaxed
//! atomics, safe to bump from the consumer, a driver thread and control
//! threads at once); [`Stats`] is a plain snapshot that subtracts and prints.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident = $key:literal, $syscall:literal; )*) => {
        /// One counter. System-call counters (see [`Counter::is_syscall`])
        /// count calls made by the backend itself, on any thread it runs.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Counter {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Counter {
            /// Every counter, in a stable order.
            pub const ALL: &'static [Counter] = &[$(Counter::$name),*];

            /// A stable snake_case name, used as a JSON key.
            pub const fn name(self) -> &'static str {
                match self { $(Counter::$name => $key,)* }
            }

            /// Whether this counter counts system calls.
            pub const fn is_syscall(self) -> bool {
                match self { $(Counter::$name => $syscall,)* }
            }
        }
    };
}

counters! {
    /// `epoll_wait` calls.
    EpollWait = "epoll_wait", true;
    /// `epoll_ctl` calls.
    EpollCtl = "epoll_ctl", true;
    /// `io_uring_enter` calls made to submit SQEs without waiting.
    EnterSubmit = "enter_submit", true;
    /// `io_uring_enter` calls with GETEVENTS to wait for or run completions.
    EnterWait = "enter_wait", true;
    /// `io_uring_enter` calls made to flush the CQ overflow list.
    EnterFlush = "enter_flush", true;
    /// `futex` wait calls (a consumer parking).
    FutexWait = "futex_wait", true;
    /// `futex` wake calls (waking a parked consumer).
    FutexWake = "futex_wake", true;
    /// `read`/`write` on an eventfd used for wake-ups, `fcntl` fd checks and
    /// any other call a backend makes.
    OtherSyscall = "other_syscalls", true;
    /// `add`, `modify` and `delete` calls that succeeded.
    ControlOps = "control_ops", false;
    /// SQEs handed to the kernel.
    SqesSubmitted = "sqes_submitted", false;
    /// CQEs read from the completion queue.
    CqesSeen = "cqes_seen", false;
    /// Completions or ring entries dropped because their registration was
    /// deleted or modified (S5).
    StaleDropped = "stale_dropped", false;
    /// Requests re-armed because the kernel ended them (no F_MORE, not a
    /// cancellation, not overflow).
    RearmKernelEnded = "rearm_kernel_ended", false;
    /// Requests re-armed because a CQ overflow ended them.
    RearmOverflow = "rearm_overflow", false;
    /// Re-arms made by design after each event (one-shot re-arm mode).
    RearmMode = "rearm_mode", false;
    /// CQ overflow recoveries (flush and re-arm).
    OverflowRecoveries = "overflow_recoveries", false;
    /// Events returned to the caller.
    EventsDelivered = "events_delivered", false;
    /// Items queued into a userpoll ring by a producer.
    EventsPublished = "events_published", false;
    /// Fires merged into an already queued registration (S3).
    FiresCoalesced = "fires_coalesced", false;
    /// Spin iterations a consumer made on an empty ring before parking.
    SpinsBeforePark = "spins_before_park", false;
}

const N: usize = Counter::ALL.len();

#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// The live counters of one poller, shared by all its threads.
pub struct Counters {
    slots: [Padded; N],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            slots: std::array::from_fn(|_| Padded::default()),
        }
    }
}

impl Counters {
    /// All zero.
    pub fn new() -> Counters {
        Counters::default()
    }

    /// Adds `n` to `counter`.
    #[inline]
    pub fn add(&self, counter: Counter, n: u64) {
        if n != 0 {
            self.slots[counter as usize]
                .0
                .fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds one to `counter`.
    #[inline]
    pub fn incr(&self, counter: Counter) {
        self.slots[counter as usize]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of every counter.
    pub fn snapshot(&self) -> Stats {
        Stats {
            values: std::array::from_fn(|i| self.slots[i].0.load(Ordering::Relaxed)),
        }
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// A snapshot of a poller's counters.
///
/// ```
/// use userpoll::{Counter, Counters};
/// let c = Counters::new();
/// let before = c.snapshot();
/// c.incr(Counter::EpollWait);
/// c.add(Counter::EventsDelivered, 3);
/// let d = c.snapshot() - before;
/// assert_eq!(d.get(Counter::EventsDelivered), 3);
/// assert_eq!(d.syscalls(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    values: [u64; N],
}

impl Stats {
    /// One counter's value.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize]
    }
    /// Every counter with its value, in [`Counter::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().map(|&c| (c, self.get(c)))
    }
    /// All system calls, of every kind.
    pub fn syscalls(&self) -> u64 {
        self.iter()
            .filter(|(c, _)| c.is_syscall())
            .map(|(_, v)| v)
            .sum()
    }
    /// All re-arms, of every cause.
    pub fn rearms(&self) -> u64 {
        self.get(Counter::RearmKernelEnded)
            + self.get(Counter::RearmOverflow)
            + self.get(Counter::RearmMode)
    }
}

impl std::ops::Sub for Stats {
    type Output = Stats;
    /// The change from `rhs` (earlier) to `self` (later).
    fn sub(self, rhs: Stats) -> Stats {
        Stats {
            values: std::array::from_fn(|i| self.values[i].wrapping_sub(rhs.values[i])),
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (c, v) in self.iter().filter(|(_, v)| *v != 0) {
            m.entry(&c.name(), &v);
        }
        m.finish()
    }
}
