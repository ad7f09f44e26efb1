//! What the driver and the consumers share: [`RingInstance`], one per
//! [`EpollRing`](crate::EpollRing) and all its consumers. It holds the
//! ring, the driver's epoll instance, the registration table, the counters,
//! the futex the consumers park on ([`Park`]) and the wake-up eventfds.
//!
//! Every registration is added once to the driver's epoll instance with
//! `EPOLLET` and the epoll data `generation << 32 | slot`, and is never
//! re-armed ([`RingInstance::ctl`], [`events_word`], [`key`]). The driver
//! takes what `epoll_wait` reports and publishes it with [`Ring::publish`]
//! ([`RingInstance::drive`], one round of the driver in either mode); the
//! consumer takes from the ring without a system call
//! ([`RingInstance::take`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rustix::event::epoll;
use userpoll::bits::{ET, ONESHOT};
use userpoll::fork::ForkCheck;
use userpoll::sys::{errno, futex_wake_all as futex_wake, EpollBuffer};
use userpoll::table::Table;
use userpoll::{Counter, Counters, Event, Events, Interest, Ready};

use crate::ring::{Publish, Ring};

/// Epoll data of the driver's stop eventfd; never a registration key
/// (slots are below 65536).
pub(crate) const STOP_KEY: u64 = u64::MAX;
/// Epoll data of the inline mode's wake-up eventfd.
pub(crate) const WAKE_KEY: u64 = u64::MAX - 1;
/// Most events one `epoll_wait` of the driver returns.
pub(crate) const DRIVER_BATCH: usize = 1024;

/// What the consumers park on. The driver bumps `seq` after each batch
/// that queued something and calls `futex_wake` only if `waiters` is
/// non-zero.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Park {
    pub(crate) seq: AtomicU32,
    pub(crate) waiters: AtomicU32,
}

#[derive(Debug)]
pub(crate) struct RingInstance {
    pub(crate) ring: Ring,
    pub(crate) epfd: OwnedFd,
    pub(crate) table: Mutex<Table<()>>,
    pub(crate) counters: Counters,
    pub(crate) park: Park,
    pub(crate) stopping: AtomicBool,
    /// Set when the driver thread's `epoll_wait` fails for good.
    /// Its errno: every consumer's `wait` then fails with it.
    pub(crate) failed: OnceLock<i32>,
    pub(crate) process: ForkCheck,
    /// A wake ([`Control::wake`](userpoll::Control::wake)) not yet seen by
    /// a `wait`.
    pub(crate) woken: AtomicBool,
    /// Inline mode: in the epoll set with [`WAKE_KEY`], edge-triggered, so
    /// a wake ends a consumer's `epoll_wait`. (A driver thread's consumers
    /// park on the futex, which a wake bumps instead.)
    pub(crate) wakefd: Option<OwnedFd>,
    /// Driver thread mode: the fd
    /// [`Poller::pollable_fd`](userpoll::Poller::pollable_fd) gives, written
    /// after every batch that queued something (and on a wake) once
    /// `nested`.
    pub(crate) notifyfd: Option<OwnedFd>,
    /// `pollable_fd` was called: keep `notifyfd` up to date.
    pub(crate) nested: AtomicBool,
}

impl RingInstance {
    /// The table, locked; EPERM in a forked child.
    pub(crate) fn table(&self) -> io::Result<MutexGuard<'_, Table<()>>> {
        self.process.check()?;
        // Every table mutation is a single call that leaves it consistent,
        // so a lock poisoned by a panic elsewhere is still usable.
        Ok(self.table.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One `epoll_ctl`: `Add` and `Mod` with the registration's event word
    /// ([`events_word`]) and `key` as data; `Del` (interest `None`) with
    /// neither.
    pub(crate) fn ctl(
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
    pub(crate) fn drive(&self, buf: &mut EpollBuffer, ms: i32) -> io::Result<bool> {
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
    pub(crate) fn wake(&self) {
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
    pub(crate) fn reset_notify(&self) {
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

    pub(crate) fn take(&self, events: &mut Events) -> io::Result<usize> {
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

    pub(crate) fn check_driver(&self) -> io::Result<()> {
        match self.failed.get() {
            Some(&e) => Err(errno(e)),
            None => Ok(()),
        }
    }
}

/// The `epoll_ctl` operations.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ctl {
    Add,
    Mod,
    Del,
}

/// The epoll event word of a registration: the readiness bits, `EPOLLET`
/// always, and `EPOLLONESHOT` when asked for. Also the ring item's `events`.
pub(crate) fn events_word(interest: Interest) -> u32 {
    interest.mask() | ET | (interest.bits() & ONESHOT)
}

pub(crate) fn key(generation: u32, slot: u32) -> u64 {
    userpoll::table::Key::new(slot, generation).to_u64()
}
