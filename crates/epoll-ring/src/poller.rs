//! [`EpollRing`]: a [`Poller`] whose events come out of a userpoll [`Ring`],
//! and the driver that fills the ring from a kernel epoll instance.
//!
//! Every registration is added once to the driver's epoll instance with
//! `EPOLLET` and the epoll data `generation << 32 | slot`, and is never
//! re-armed. The driver takes what `epoll_wait` reports and publishes it
//! with [`Ring::publish`]; the consumer takes from the ring without a
//! system call. The driver runs on a thread of its own
//! ([`DriverMode::Thread`]) or inside `wait` ([`DriverMode::Inline`]).
//!
//! How each rule of the contract is kept:
//! - S1, S2, S4: `EPOLLET` registrations are never re-armed; epoll checks
//!   readiness on `add`/`modify`, and every epoll event is published.
//! - S3: an item is queued at most once until taken ([`Ring::publish`]),
//!   and one take stops at the tail it read first ([`Ring::take`]).
//! - S5, S6: `delete` and `modify` retire the slot ([`Ring::retire`]):
//!   the generation moves on, so an epoll event the driver fetched for the
//!   old registration is dropped as [`Publish::Stale`] even when the driver
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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use userpoll::bits::{ET, ONESHOT};
use userpoll::fork::ForkCheck;
use userpoll::sys::{
    deadline, errno, futex_wait, futex_wake_all as futex_wake, timeout_ms, EpollBuffer,
};
use userpoll::table::Table;
use userpoll::{Control, Counter, Counters, Event, Events, Interest, Poller, Ready, Stats};

use crate::ring::{Publish, Ring};

/// Epoll data of the driver's stop eventfd; never a registration key
/// (slots are below 65536).
const STOP_KEY: u64 = u64::MAX;
/// Epoll data of the inline mode's wake-up eventfd.
const WAKE_KEY: u64 = u64::MAX - 1;
/// How many times a consumer checks an empty ring before it parks.
pub const SPINS_BEFORE_PARK: u64 = 256;
/// Most events one `epoll_wait` of the driver returns.
const DRIVER_BATCH: usize = 1024;

/// Where the producer (the driver) runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverMode {
    /// A dedicated driver thread blocks in `epoll_wait` and publishes. While
    /// events flow the consumer makes no system call; on an empty ring it
    /// spins [`SPINS_BEFORE_PARK`] times, then parks on a futex that the
    /// driver wakes only when a consumer is parked.
    Thread,
    /// No extra thread: `wait` on an empty ring runs the driver itself (one
    /// `epoll_wait` with the caller's timeout), then takes.
    Inline,
}

/// What the consumers park on. The driver bumps `seq` after each batch
/// that queued something and calls `futex_wake` only if `waiters` is
/// non-zero.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Park {
    seq: AtomicU32,
    waiters: AtomicU32,
}

#[derive(Debug)]
struct RingInstance {
    ring: Ring,
    epfd: OwnedFd,
    table: Mutex<Table<()>>,
    counters: Counters,
    park: Park,
    stopping: AtomicBool,
    /// Set when the driver thread's `epoll_wait` fails for good.
    /// Its errno: every consumer's `wait` then fails with it.
    failed: OnceLock<i32>,
    process: ForkCheck,
    /// A wake ([`Control::wake`]) not yet seen by a `wait`.
    woken: AtomicBool,
    /// Inline mode: in the epoll set with [`WAKE_KEY`], edge-triggered, so
    /// a wake ends a consumer's `epoll_wait`. (A driver thread's consumers
    /// park on the futex, which a wake bumps instead.)
    wakefd: Option<OwnedFd>,
    /// Driver thread mode: the fd [`Poller::pollable_fd`] gives, written
    /// after every batch that queued something (and on a wake) once
    /// `nested`.
    notifyfd: Option<OwnedFd>,
    /// `pollable_fd` was called: keep `notifyfd` up to date.
    nested: AtomicBool,
}

impl RingInstance {
    /// The table, locked; EPERM in a forked child.
    fn table(&self) -> io::Result<MutexGuard<'_, Table<()>>> {
        self.process.check()?;
        // Every table mutation is a single call that leaves it consistent,
        // so a lock poisoned by a panic elsewhere is still usable.
        Ok(self.table.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One `epoll_ctl`: `Add` and `Mod` with the registration's event word
    /// ([`events_word`]) and `key` as data; `Del` (interest `None`) with
    /// neither.
    fn ctl(
        &self,
        op: Ctl,
        fd: BorrowedFd<'_>,
        interest: Option<Interest>,
        key: u64,
    ) -> io::Result<()> {
        let flags = epoll::EventFlags::from_bits_retain(interest.map_or(0, events_word));
        let data = epoll::EventData::new_u64(key);
        self.counters.incr(Counter::EpollCtl);
        Ok(match op {
            Ctl::Add => epoll::add(&self.epfd, fd, data, flags),
            Ctl::Mod => epoll::modify(&self.epfd, fd, data, flags),
            Ctl::Del => epoll::delete(&self.epfd, fd),
        }?)
    }

    /// One round of the driver: `epoll_wait` for up to `ms` milliseconds
    /// (-1: no limit), then publish what it reported. Returns whether the
    /// stop eventfd was among the events.
    fn drive(&self, buf: &mut EpollBuffer, ms: i32) -> io::Result<bool> {
        self.counters.incr(Counter::EpollWait);
        let got = match buf.wait(self.epfd.as_fd(), buf.len(), ms) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        };
        let (mut queued, mut coalesced, mut dropped, mut stop) = (0, 0, 0, false);
        for (key, bits) in got {
            if key == STOP_KEY {
                stop = true;
                continue;
            }
            if key == WAKE_KEY {
                continue;
            }
            match self.ring.publish(key as u32, (key >> 32) as u32, bits) {
                Publish::Queued => queued += 1,
                Publish::Coalesced => coalesced += 1,
                Publish::Stale | Publish::Masked => dropped += 1,
            }
        }
        self.counters.add(Counter::EventsPublished, queued);
        self.counters.add(Counter::FiresCoalesced, coalesced);
        self.counters.add(Counter::StaleDropped, dropped);
        if queued > 0 {
            self.wake();
        }
        Ok(stop)
    }

    /// Wakes every parked consumer, with a system call only if one is
    /// parked.
    fn wake(&self) {
        // SeqCst on both sides (here: seq then waiters; the consumer:
        // waiters then seq, then the ring): either we see its waiters
        // increment and wake it, or it sees our seq bump, and with it the
        // tail we published before, and does not sleep.
        self.park.seq.fetch_add(1, Ordering::SeqCst);
        if self.park.waiters.load(Ordering::SeqCst) != 0 {
            self.counters.incr(Counter::FutexWake);
            futex_wake(&self.park.seq);
        }
        // Nested: an outer loop waits on the notify fd instead.
        if let Some(fd) = self
            .notifyfd
            .as_ref()
            .filter(|_| self.nested.load(Ordering::SeqCst))
        {
            self.counters.incr(Counter::OtherSyscall);
            // EAGAIN (the counter is full) leaves it readable, as wanted.
            let _ = userpoll::sys::eventfd_signal(fd.as_fd());
        }
    }

    /// Nested, driver thread mode: makes the notify fd unreadable before a
    /// take, so that what is published after the take signals it again.
    fn reset_notify(&self) {
        if let Some(fd) = self
            .notifyfd
            .as_ref()
            .filter(|_| self.nested.load(Ordering::SeqCst))
        {
            self.counters.incr(Counter::OtherSyscall);
            // EAGAIN: it was not readable.
            let _ = userpoll::sys::eventfd_drain(fd.as_fd());
        }
    }

    fn take(&self, events: &mut Events) -> io::Result<usize> {
        let room = events.remaining();
        let taken = self.ring.take(room, |_, data, bits| {
            events.push(Event::new(data, Ready::from_bits(bits)));
        })?;
        self.counters
            .add(Counter::EventsDelivered, taken.events as u64);
        self.counters
            .add(Counter::StaleDropped, taken.removed as u64);
        Ok(taken.events)
    }

    fn check_driver(&self) -> io::Result<()> {
        match self.failed.get() {
            Some(&e) => Err(errno(e)),
            None => Ok(()),
        }
    }
}

/// The `epoll_ctl` operations.
#[derive(Debug, Clone, Copy)]
enum Ctl {
    Add,
    Mod,
    Del,
}

/// The epoll event word of a registration: the readiness bits, `EPOLLET`
/// always, and `EPOLLONESHOT` when asked for. Also the ring item's `events`.
fn events_word(interest: Interest) -> u32 {
    interest.mask() | ET | (interest.bits() & ONESHOT)
}

fn key(generation: u32, slot: u32) -> u64 {
    userpoll::table::Key::new(slot, generation).to_u64()
}

/// The driver thread of [`DriverMode::Thread`]; stopped and joined when
/// the last consumer drops.
#[derive(Debug)]
struct DriverThread {
    shared: Arc<RingInstance>,
    stopfd: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl DriverThread {
    fn start(shared: Arc<RingInstance>) -> io::Result<DriverThread> {
        let stopfd = userpoll::sys::eventfd()?;
        shared.counters.incr(Counter::EpollCtl);
        epoll::add(
            &shared.epfd,
            &stopfd,
            epoll::EventData::new_u64(STOP_KEY),
            epoll::EventFlags::IN,
        )?;
        let batch = shared.ring.capacity().min(DRIVER_BATCH) + 1;
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("epoll-ring-driver".into())
            .spawn(move || run_driver(&for_thread, batch))?;
        Ok(DriverThread {
            shared,
            stopfd,
            thread: Some(thread),
        })
    }
}

fn run_driver(shared: &RingInstance, batch: usize) {
    let mut buf = EpollBuffer::new(batch);
    loop {
        match shared.drive(&mut buf, -1) {
            Ok(stop) => {
                if stop && shared.stopping.load(Ordering::Acquire) {
                    return;
                }
            }
            Err(e) => {
                // epoll_wait on our own epoll fd does not fail in normal
                // operation; report it to every consumer instead of
                // leaving them parked forever.
                let _ = shared.failed.set(e.raw_os_error().unwrap_or(libc::EIO));
                shared.park.seq.fetch_add(1, Ordering::SeqCst);
                futex_wake(&shared.park.seq);
                return;
            }
        }
    }
}

impl Drop for DriverThread {
    fn drop(&mut self) {
        if self.shared.process.is_child() {
            // Forked: the driver thread lives only in the parent, and the
            // stop eventfd is the parent's too. Signal nothing, join
            // nothing; the child's copy of the fd closes.
            std::mem::forget(self.thread.take());
            return;
        }
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.counters.incr(Counter::OtherSyscall);
        let _ = userpoll::sys::eventfd_signal(self.stopfd.as_fd());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

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
