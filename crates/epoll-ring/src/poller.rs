//! [`EpollRing`]: a [`Poller`] whose events come out of a userpoll [`Ring`],
//! and [`RingControl`], its [`Control`]: the contract's side of the crate.
//!
//! The consumer takes from the ring without a system call; on an empty ring
//! it parks ([`DriverMode::Thread`]) or runs the driver itself
//! ([`DriverMode::Inline`]). What the consumers share with the driver is in
//! [`instance`](crate::instance); the driver thread is in
//! [`driver`](crate::driver).
//!
//! How each rule of the contract is kept:
//! - S1, S2, S4: `EPOLLET` registrations are never re-armed; epoll checks
//!   readiness on `add`/`modify`, and every epoll event is published.
//! - S3: an item is queued at most once until taken ([`Ring::publish`]),
//!   and one take stops at the tail it read first ([`Ring::take`]).
//! - S5, S6: `delete` and `modify` retire the slot ([`Ring::retire`]):
//!   the generation moves on, so an epoll event the driver fetched for the
//!   old registration is dropped as
//!   [`Publish::Stale`](crate::ring::Publish::Stale) even when the driver
//!   is mid-publish; a queued item is marked `EPOLLREMOVED` and skipped.
//! - S7: `EPOLLONESHOT` in epoll and in the ring item. S8, S9: the
//!   [`Table`] and the ring's capacity limit. S10: the index ring cannot
//!   overflow and epoll keeps each fd on its ready list at most once.
//! - S11: `epoll_ctl` from any thread wakes the driver's `epoll_wait`.
//!   [`Control::wake`] bumps the consumers' futex (driver thread mode) or
//!   writes an edge-triggered eventfd in the epoll set (inline mode).
//! - S13: closing a registered fd removes it from the kernel's epoll set
//!   (once the last descriptor of that file is closed); the table keeps the
//!   number until `delete`, so `add` of the number gives EEXIST until then.
//! - S14: dropping the last consumer stops and joins the driver thread and
//!   closes its eventfd; the epoll fd and the mapping go with the last
//!   handle.
//! - fork: the child has no driver thread and no ring (the mapping is
//!   `MADV_DONTFORK`), and shares the epoll instance: every call made in a
//!   child fails with EPERM ([`ForkCheck`]); a drop there closes the
//!   child's fds and neither signals nor joins the parent's driver.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::epoll;
use userpoll::fork::ForkCheck;
use userpoll::sys::{deadline, futex_wait, timeout_ms, EpollBuffer};
use userpoll::table::Table;
use userpoll::{Control, Counter, Counters, Events, Interest, Poller, Stats};

use crate::driver::{DriverMode, DriverThread};
use crate::instance::{events_word, key, Ctl, Park, RingInstance, DRIVER_BATCH, WAKE_KEY};
use crate::ring::Ring;

/// How many times a consumer checks an empty ring before it parks.
pub const SPINS_BEFORE_PARK: u64 = 256;

/// A poller built on the userpoll ring. See the [crate documentation](crate).
///
/// Several consumers may take from one ring: [`EpollRing::consumer`] makes
/// another one.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use epoll_ring::{DriverMode, EpollRing};
/// use userpoll::{sys, Control, Events, Interest, Poller};
///
/// # fn main() -> std::io::Result<()> {
/// // No driver thread: a wait on an empty ring runs epoll_wait itself.
/// let mut poller = EpollRing::with_mode(1024, DriverMode::Inline)?;
/// let (a, b) = sys::socketpair()?;
/// poller.control().add(a.as_fd(), Interest::READABLE, 1)?;
/// let mut other = poller.consumer(); // a second consumer of the same ring
/// std::io::Write::write_all(&mut std::fs::File::from(b), b"hi")?;
/// let mut events = Events::with_capacity(64);
/// let n = other.wait(&mut events, Some(Duration::from_secs(5)))?
///     + poller.poll(&mut events)?;
/// assert_eq!(n, 1, "one consumer took it, once");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EpollRing {
    control: RingControl,
    mode: DriverMode,
    driver: Option<Arc<DriverThread>>,
    /// Inline mode: the slots of the consumer's own `epoll_wait`.
    buf: EpollBuffer,
}

/// The control handle of an [`EpollRing`]: `add`, `modify`, `delete` from
/// any thread.
#[derive(Debug, Clone)]
pub struct RingControl {
    shared: Arc<RingInstance>,
}

impl EpollRing {
    /// A poller for `capacity` registrations (1 to 65536, else EINVAL)
    /// with a driver thread ([`DriverMode::Thread`]).
    pub fn new(capacity: usize) -> io::Result<EpollRing> {
        EpollRing::with_mode(capacity, DriverMode::Thread)
    }

    /// A poller for `capacity` registrations with the given driver mode.
    pub fn with_mode(capacity: usize, mode: DriverMode) -> io::Result<EpollRing> {
        let ring = Ring::new(capacity)?;
        let table = Table::with_capacity(capacity)?;
        let (wakefd, notifyfd) = match mode {
            DriverMode::Inline => (Some(userpoll::sys::eventfd()?), None),
            DriverMode::Thread => (None, Some(userpoll::sys::eventfd()?)),
        };
        let epfd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let shared = Arc::new(RingInstance {
            ring,
            epfd,
            table: Mutex::new(table),
            counters: Counters::new(),
            park: Park::default(),
            stopping: AtomicBool::new(false),
            failed: OnceLock::new(),
            process: ForkCheck::new(),
            woken: AtomicBool::new(false),
            wakefd,
            notifyfd,
            nested: AtomicBool::new(false),
        });
        if let Some(fd) = &shared.wakefd {
            shared.counters.incr(Counter::EpollCtl);
            epoll::add(
                &shared.epfd,
                fd,
                epoll::EventData::new_u64(WAKE_KEY),
                epoll::EventFlags::IN | epoll::EventFlags::ET,
            )?;
        }
        let driver = match mode {
            DriverMode::Thread => Some(Arc::new(DriverThread::start(shared.clone())?)),
            DriverMode::Inline => None,
        };
        Ok(EpollRing {
            buf: Self::buf_for(mode, capacity),
            control: RingControl { shared },
            mode,
            driver,
        })
    }

    fn buf_for(mode: DriverMode, capacity: usize) -> EpollBuffer {
        match mode {
            DriverMode::Thread => EpollBuffer::new(0),
            DriverMode::Inline => EpollBuffer::new(capacity.min(DRIVER_BATCH)),
        }
    }

    /// Another consumer of the same ring. Consumers claim ring positions
    /// with a compare-and-swap on `head`, so each event goes to exactly one
    /// of them. The driver thread (if any) stops when the last consumer
    /// drops.
    pub fn consumer(&self) -> EpollRing {
        EpollRing {
            control: self.control.clone(),
            mode: self.mode,
            driver: self.driver.clone(),
            buf: Self::buf_for(self.mode, self.capacity()),
        }
    }

    /// The driver mode.
    pub fn mode(&self) -> DriverMode {
        self.mode
    }

    /// The ring: its layout, header and items in the shared mapping, as a
    /// consumer sees them. For inspection (layout and hostile-memory tests,
    /// measurements); the poller's registrations belong to [`RingControl`],
    /// and calling [`Ring::set`], [`Ring::retire`] or [`Ring::publish`] on
    /// it directly confuses the poller (safely: no undefined behaviour).
    pub fn ring(&self) -> &Ring {
        &self.control.shared.ring
    }

    fn wait_thread(&mut self, events: &mut Events, deadline: Option<Instant>) -> io::Result<usize> {
        let shared = &*self.control.shared;
        shared.reset_notify();
        loop {
            shared.check_driver()?;
            let n = shared.take(events)?;
            if n > 0 {
                return Ok(n);
            }
            if shared.woken.swap(false, Ordering::AcqRel) {
                return Ok(0);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(0);
            }
            // Spin a little: an event is often a few hundred ns away.
            let mut spins = 0;
            let mut ready = false;
            while spins < SPINS_BEFORE_PARK {
                spins += 1;
                if shared.ring.pending()? != 0 {
                    ready = true;
                    break;
                }
                std::hint::spin_loop();
            }
            shared.counters.add(Counter::SpinsBeforePark, spins);
            if ready {
                continue;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(0);
            }
            // Park. See RingInstance::wake for the ordering argument.
            shared.park.waiters.fetch_add(1, Ordering::SeqCst);
            let seq = shared.park.seq.load(Ordering::SeqCst);
            let parked = match shared.ring.pending() {
                // A wake stores `woken` before it bumps `seq`: either it is
                // seen here, or the bump ends the futex wait.
                Ok(0) if shared.failed.get().is_none() && !shared.woken.load(Ordering::SeqCst) => {
                    shared.counters.incr(Counter::FutexWait);
                    futex_wait(&shared.park.seq, seq, left)
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            shared.park.waiters.fetch_sub(1, Ordering::SeqCst);
            parked?;
        }
    }

    fn wait_inline(&mut self, events: &mut Events, deadline: Option<Instant>) -> io::Result<usize> {
        let shared = &*self.control.shared;
        loop {
            let n = shared.take(events)?;
            if n > 0 {
                return Ok(n);
            }
            if shared.woken.swap(false, Ordering::AcqRel) {
                return Ok(0);
            }
            shared.drive(&mut self.buf, timeout_ms(deadline))?;
            let n = shared.take(events)?;
            if n > 0 {
                return Ok(n);
            }
            if shared.woken.swap(false, Ordering::AcqRel) {
                return Ok(0);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(0);
            }
        }
    }
}

impl Control for RingControl {
    fn add(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let s = &*self.shared;
        let mut table = s.table()?;
        let slot = table.insert(raw, interest, data, ())?.slot() as u32;
        let generation = s.ring.set(slot, events_word(interest), data)?;
        if let Err(e) = s.ctl(Ctl::Add, fd, Some(interest), key(generation, slot)) {
            let _ = s.ring.retire(slot);
            table
                .remove(raw)
                .expect("inserted above under the same lock");
            return Err(e);
        }
        s.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn modify(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let s = &*self.shared;
        let mut table = s.table()?;
        interest.validate()?;
        let (old_interest, old_data, slot) = {
            let reg = table.by_fd(raw)?;
            (reg.interest, reg.data, reg.key.slot() as u32)
        };
        // Retire first: from here on nothing of the old registration is
        // published or taken (S5), then arm the new one before epoll can
        // report it under its new key.
        s.ring.retire(slot)?;
        table.modify(raw, interest, data)?;
        let generation = s.ring.set(slot, events_word(interest), data)?;
        match s.ctl(Ctl::Mod, fd, Some(interest), key(generation, slot)) {
            Ok(()) => {}
            // Closed while registered (S13): the kernel dropped it already.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                // Put the old registration back (with a fresh generation).
                let _ = s.ring.retire(slot);
                table.modify(raw, old_interest, old_data)?;
                let g = s.ring.set(slot, events_word(old_interest), old_data)?;
                let _ = s.ctl(Ctl::Mod, fd, Some(old_interest), key(g, slot));
                return Err(e);
            }
        }
        s.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let s = &*self.shared;
        let mut table = s.table()?;
        let slot = table.by_fd(raw)?.key.slot() as u32;
        match s.ctl(Ctl::Del, fd, None, 0) {
            Ok(()) => {}
            // Closed while registered, or the number now names a file we
            // never added (S13): the kernel holds nothing under it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EBADF)) => {}
            Err(e) => return Err(e),
        }
        s.ring.retire(slot)?;
        table.remove(raw)?;
        s.counters.incr(Counter::ControlOps);
        Ok(())
    }
    fn wake(&self) -> io::Result<()> {
        let s = &*self.shared;
        s.process.check()?;
        s.woken.store(true, Ordering::SeqCst);
        // Parked consumers (driver thread mode): the futex.
        s.wake();
        // A consumer in epoll_wait (inline mode): one more edge.
        if let Some(fd) = &s.wakefd {
            s.counters.incr(Counter::OtherSyscall);
            userpoll::sys::eventfd_signal(fd.as_fd())?;
        }
        Ok(())
    }
}

impl Poller for EpollRing {
    type Control = RingControl;

    fn control(&self) -> &RingControl {
        &self.control
    }

    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        self.control.shared.process.check()?;
        let deadline = deadline(timeout);
        match self.mode {
            DriverMode::Thread => self.wait_thread(events, deadline),
            DriverMode::Inline => self.wait_inline(events, deadline),
        }
    }

    /// Inline mode: the epoll instance, readable while the kernel holds
    /// events for it, at no extra cost. Driver thread mode: an eventfd the
    /// driver writes after each batch that queued something, and on a
    /// wake; from the first call on that costs a `write` per such batch and
    /// a `read` per `wait` (the first call makes it readable once, for what
    /// was published before). EPERM in a forked child.
    fn pollable_fd(&self) -> io::Result<BorrowedFd<'_>> {
        let s = &*self.control.shared;
        s.process.check()?;
        if let Some(fd) = &s.notifyfd {
            if !s.nested.swap(true, Ordering::SeqCst) {
                // What the driver published before now signalled nothing:
                // one readiness covers it.
                s.counters.incr(Counter::OtherSyscall);
                userpoll::sys::eventfd_signal(fd.as_fd())?;
            }
        }
        Ok(s.notifyfd.as_ref().unwrap_or(&s.epfd).as_fd())
    }

    fn capacity(&self) -> usize {
        self.control.shared.ring.capacity()
    }

    fn stats(&self) -> Stats {
        self.control.shared.counters.snapshot()
    }
}
