//! A hand-written multishot POLL_ADD loop straight on the io-uring crate:
//! what a careful user writes without a library. It is the yardstick for
//! `uring-poll`'s own overhead: same kernel mechanism, no contract.
//!
//! - Ring ([`Setup`]): `SINGLE_ISSUER | DEFER_TASKRUN` for `uring-raw`
//!   (the profile that came within 15% of epoll here, see
//!   `spec/io_uring-poll.md`), or `COOP_TASKRUN | TASKRUN_FLAG` for
//!   `uring-raw:coop`, the same flags as `uring-poll:coop`, its yardstick.
//!   The CQ is sized to twice the registrations so a round never overflows
//!   it.
//! - `user_data` = generation << 32 | token; a CQE whose generation is not
//!   the token's current one (deleted since) is dropped and counted stale.
//! - A CQE without `F_MORE` ends the request; it is re-armed after the
//!   handler ran (re-arming an fd still ready would post a CQE at once, a
//!   duplicate event).
//! - `IORING_SQ_CQ_OVERFLOW` is counted as a recovery; the next enter with
//!   GETEVENTS flushes the overflow list, and the ended polls re-arm.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use userpoll::{Counter, Counters, Stats};

use super::uring_loop::{enter_step, push, Slots};
use super::Backend;

/// SQ entries: registrations are submitted in batches of this size.
pub(super) const SQ_ENTRIES: u32 = 4096;
/// `user_data` of POLL_REMOVE requests (never a registration's).
const REMOVE_TAG: u64 = u64::MAX;

pub(super) fn cq_entries(capacity: usize) -> u32 {
    ((capacity * 2).max(SQ_ENTRIES as usize * 2)).next_power_of_two() as u32
}

/// The ring setup of a hand-written loop: which task-work mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `SINGLE_ISSUER | DEFER_TASKRUN`: completions are posted only while
    /// the loop is in `io_uring_enter` (`uring-raw`, `uring-read`).
    Defer,
    /// `COOP_TASKRUN | TASKRUN_FLAG`: completions are posted on the loop's
    /// next entry into the kernel, whatever the call (`uring-raw:coop`).
    Coop,
}

impl Setup {
    fn builder(self) -> io_uring::Builder {
        let mut b = IoUring::builder();
        match self {
            Setup::Defer => b.setup_single_issuer().setup_defer_taskrun(),
            Setup::Coop => b.setup_coop_taskrun().setup_taskrun_flag(),
        };
        b
    }

    fn flags(self) -> &'static str {
        match self {
            Setup::Defer => "SINGLE_ISSUER|DEFER_TASKRUN",
            Setup::Coop => "COOP_TASKRUN|TASKRUN_FLAG",
        }
    }
}

pub(super) fn build(setup: Setup, sq: u32, cq: u32) -> io::Result<IoUring> {
    setup.builder().setup_cqsize(cq).setup_clamp().build(sq)
}

/// Whether the ring can be made here, or why not.
pub fn probe(setup: Setup) -> Result<(), String> {
    match setup.builder().build(8) {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => "io_uring is not built into this kernel (ENOSYS)".to_string(),
            Some(libc::EPERM) => {
                "io_uring is disabled for this process (EPERM; see sysctl kernel.io_uring_disabled)"
                    .to_string()
            }
            Some(libc::EINVAL) => format!(
                "the kernel rejects {} (EINVAL; DEFER_TASKRUN needs Linux 6.1, COOP_TASKRUN 5.19)",
                setup.flags()
            ),
            _ => format!("io_uring_setup failed: {e}"),
        }),
    }
}

/// The ring setup, for the JSON's `env`.
pub fn setup_description(setup: Setup, capacity: usize) -> String {
    format!(
        "{}|CLAMP, sq {SQ_ENTRIES}, cq {}, multishot POLL_ADD",
        setup.flags(),
        cq_entries(capacity)
    )
}

/// The hand-written loop.
pub struct UringRaw {
    ring: IoUring,
    slots: Slots,
    /// Per token: a re-arm owed after the handler.
    rearm_owed: Vec<bool>,
    overflowed: bool,
    counters: Counters,
}

impl std::fmt::Debug for UringRaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringRaw")
            .field("registrations", &self.slots.registered())
            .field("counters", &self.counters)
            .finish()
    }
}

impl UringRaw {
    /// A ring of `setup` for `capacity` registrations.
    pub fn new(setup: Setup, capacity: usize) -> io::Result<UringRaw> {
        UringRaw::with_sizes(setup, capacity, SQ_ENTRIES, cq_entries(capacity))
    }

    /// A ring with the given SQ and CQ sizes (tests use a CQ smaller than
    /// the registrations to force overflow).
    fn with_sizes(setup: Setup, capacity: usize, sq: u32, cq: u32) -> io::Result<UringRaw> {
        Ok(UringRaw {
            ring: build(setup, sq, cq)?,
            slots: Slots::new(capacity),
            rearm_owed: vec![false; capacity],
            overflowed: false,
            counters: Counters::new(),
        })
    }

    fn push(&mut self, sqe: squeue::Entry) -> io::Result<()> {
        // SAFETY: POLL_ADD and POLL_REMOVE entries reference no user
        // memory; the fd stays open while registered (harness rule).
        unsafe { push(&mut self.ring, &self.counters, &sqe) }
    }

    fn arm(&mut self, t: usize) -> io::Result<()> {
        let ud = self.slots.user_data(t);
        let sqe = opcode::PollAdd::new(types::Fd(self.slots.fd(t)), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(ud);
        self.push(sqe)
    }
}

impl Backend for UringRaw {
    fn add(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        let t = self.slots.slot(token)?;
        // The harness keeps it open while registered (Backend::add).
        self.slots.register(t, fd.as_raw_fd());
        self.rearm_owed[t] = false;
        self.arm(t)?;
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&mut self, _fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        let t = self.slots.slot(token)?;
        let ud = self.slots.unregister(t);
        self.rearm_owed[t] = false;
        self.push(opcode::PollRemove::new(ud).build().user_data(REMOVE_TAG))?;
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        let before = out.len();
        self.overflowed = false;
        let mut waited = false;
        loop {
            if enter_step(&mut self.ring, &self.counters, &mut waited, timeout)? {
                self.overflowed = true;
            }
            let mut cq = self.ring.completion();
            let mut stale = 0;
            let mut ended = Vec::new();
            for cqe in &mut cq {
                self.counters.incr(Counter::CqesSeen);
                let ud = cqe.user_data();
                if ud == REMOVE_TAG {
                    continue;
                }
                let Some((t, _)) = self.slots.current(ud) else {
                    stale += 1;
                    continue;
                };
                let more = cqueue::more(cqe.flags());
                let res = cqe.result();
                if res > 0 {
                    out.push(t as u32);
                    if !more {
                        self.rearm_owed[t] = true;
                    }
                } else if !more {
                    // Ended without readiness (an error): re-arm now.
                    ended.push(t);
                }
            }
            drop(cq);
            self.counters.add(Counter::StaleDropped, stale);
            for t in ended {
                self.count_rearm();
                self.arm(t)?;
            }
            if out.len() > before || waited {
                break;
            }
        }
        self.counters
            .add(Counter::EventsDelivered, (out.len() - before) as u64);
        Ok(())
    }

    fn handled(&mut self, _fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        let t = token as usize;
        if t < self.rearm_owed.len() && self.rearm_owed[t] {
            self.rearm_owed[t] = false;
            self.count_rearm();
            self.arm(t)?;
        }
        Ok(())
    }

    fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

impl UringRaw {
    fn count_rearm(&mut self) {
        if self.overflowed {
            self.counters.incr(Counter::RearmOverflow);
        } else {
            self.counters.incr(Counter::RearmKernelEnded);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::fds::{FdKind, FdSet};

    /// Takes until every token of `want` was seen once, running the handler
    /// (drain) and `handled` for each, as the harness does.
    fn take_all(r: &mut UringRaw, fds: &FdSet, want: usize) -> Vec<u32> {
        let mut seen = Vec::new();
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < want && std::time::Instant::now() < deadline {
            buf.clear();
            r.wait(&mut buf, Duration::from_millis(100)).unwrap();
            for &t in &buf {
                fds.drain(t as usize);
                r.handled(fds.read_fd(t as usize), t).unwrap();
            }
            seen.extend_from_slice(&buf);
        }
        seen
    }

    /// Both setups, or none with the reason where the kernel lacks them.
    fn setups() -> Vec<Setup> {
        [Setup::Defer, Setup::Coop]
            .into_iter()
            .filter(|&s| match probe(s) {
                Ok(()) => true,
                Err(why) => {
                    eprintln!("{s:?} skipped: {why}");
                    false
                }
            })
            .collect()
    }

    #[test]
    fn overflow_loses_no_event_and_re_arms_what_the_kernel_ended() {
        for setup in setups() {
            overflow_on(setup);
        }
    }

    fn overflow_on(setup: Setup) {
        // 64 registrations, a CQ of 16: firing all at once overflows it.
        let fds = FdSet::open(FdKind::Eventfd, 64).unwrap();
        let mut r = UringRaw::with_sizes(setup, 64, 8, 16).unwrap();
        for t in 0..64 {
            r.add(fds.read_fd(t), t as u32).unwrap();
        }
        let mut buf = Vec::new();
        r.wait(&mut buf, Duration::from_millis(10)).unwrap();
        assert!(buf.is_empty(), "nothing fired yet: {buf:?}");
        for round in 0..3 {
            for t in 0..64 {
                fds.fire(t).unwrap();
            }
            let seen = take_all(&mut r, &fds, 64);
            let set: BTreeSet<u32> = seen.iter().copied().collect();
            assert_eq!(
                set,
                (0..64).collect(),
                "{setup:?} round {round}: every fired fd"
            );
            assert_eq!(seen.len(), 64, "{setup:?} round {round}: each exactly once");
        }
        let s = r.stats();
        assert!(s.get(Counter::OverflowRecoveries) >= 1, "{setup:?} {s:?}");
        assert!(
            s.rearms() >= 1,
            "{setup:?}: the kernel ended polls on overflow: {s:?}"
        );
        assert_eq!(s.get(Counter::EventsDelivered), 192, "{setup:?}");
        // Nothing more is pending once everything was drained.
        buf.clear();
        r.wait(&mut buf, Duration::from_millis(20)).unwrap();
        assert!(buf.is_empty(), "{setup:?}: {buf:?}");
    }

    #[test]
    fn a_deleted_registration_delivers_nothing_even_when_fired_before_the_delete() {
        for setup in setups() {
            deleted_on(setup);
        }
    }

    fn deleted_on(setup: Setup) {
        let fds = FdSet::open(FdKind::Eventfd, 4).unwrap();
        let mut r = UringRaw::new(setup, 4).unwrap();
        for t in 0..4 {
            r.add(fds.read_fd(t), t as u32).unwrap();
        }
        // Fire 2 and 3, delete 2 before taking: only 3 is delivered (a CQE
        // the kernel posted for 2 anyway is dropped by its generation).
        fds.fire(2).unwrap();
        fds.fire(3).unwrap();
        r.delete(fds.read_fd(2), 2).unwrap();
        let seen = take_all(&mut r, &fds, 1);
        assert_eq!(seen, [3], "{setup:?}");
        fds.fire(2).unwrap();
        let mut buf = Vec::new();
        r.wait(&mut buf, Duration::from_millis(50)).unwrap();
        assert!(buf.is_empty(), "{setup:?}: deleted fd 2 delivered: {buf:?}");
    }
}
