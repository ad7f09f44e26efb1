//! The reference backend: one kernel epoll instance, every registration
//! edge-triggered (`EPOLLET`), a generation in each epoll data word.
//!
//! It is deliberately simple so that it is obviously correct, and it proves
//! the conformance suite before the two real backends exist. How it keeps
//! each rule:
//! - S1, S2, S4: `EPOLLET` registrations are never re-armed; epoll checks
//!   readiness when an fd is added or modified.
//! - S3: epoll queues an fd at most once on its ready list, so one
//!   `epoll_wait` returns it at most once with the OR of its bits.
//! - S5, S6: the epoll data is the table [`Key`]; an
//!   event whose key is no longer current (deleted, modified, slot reused)
//!   is dropped and counted in [`Counter::StaleDropped`].
//! - S7: `EPOLLONESHOT`. S8, S9: the [`Table`].
//! - S11: `epoll_ctl` works from any thread and wakes `epoll_wait`.
//!   [`Control::wake`] writes an eventfd kept in the epoll set
//!   (edge-triggered, never read: each write is one more edge).
//! - S13: closing a registered fd removes it from the kernel's epoll set;
//!   the table keeps the fd number until `delete` (which then succeeds),
//!   and `add` of that number fails with EEXIST until then.
//! - S14: the epoll fd is the only kernel object; it closes with the last
//!   of the poller and its control handles.
//! - fork: the child shares the epoll instance, so every call made in a
//!   child fails with EPERM ([`ForkCheck`]).
//!
//! Every `wait` is one `epoll_wait`; every control call one `epoll_ctl`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustix::event::epoll;

use crate::fork::ForkCheck;
use crate::sys::{deadline, timeout_ms, EpollBuffer};
use crate::table::{Key, Table};
use crate::{Control, Counter, Counters, Event, Events, Interest, Poller, Ready, Stats};

#[derive(Debug)]
struct EpollInstance {
    epfd: OwnedFd,
    table: Mutex<Table<()>>,
    counters: Counters,
    process: ForkCheck,
    /// In the epoll set with [`WAKE`] as data, edge-triggered: each write
    /// of [`Control::wake`] is one more edge, so a blocked `epoll_wait`
    /// returns.
    wakefd: OwnedFd,
    /// A wake not yet seen by a `wait`.
    woken: AtomicBool,
}

/// The epoll data of the wake-up eventfd; never a table key (slots are
/// below 2^32 - 1).
const WAKE: u64 = u64::MAX;

impl EpollInstance {
    /// The table, locked; EPERM in a forked child (the epoll instance is
    /// the parent's).
    fn table(&self) -> io::Result<MutexGuard<'_, Table<()>>> {
        self.process.check()?;
        // A panic while holding the lock leaves the table consistent (every
        // mutation is a single call), so a poisoned lock is still usable.
        Ok(self.table.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn ctl(&self, op: Ctl, fd: BorrowedFd<'_>, interest: Interest, key: Key) -> io::Result<()> {
        let flags = epoll::EventFlags::from_bits_retain(
            interest.mask() | crate::bits::ET | (interest.bits() & crate::bits::ONESHOT),
        );
        let data = epoll::EventData::new_u64(key.to_u64());
        self.counters.incr(Counter::EpollCtl);
        Ok(match op {
            Ctl::Add => epoll::add(&self.epfd, fd, data, flags),
            Ctl::Mod => epoll::modify(&self.epfd, fd, data, flags),
            Ctl::Del => epoll::delete(&self.epfd, fd),
        }?)
    }
}

/// The `epoll_ctl` operations.
#[derive(Debug, Clone, Copy)]
enum Ctl {
    Add,
    Mod,
    Del,
}

/// The reference poller. See the module documentation.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use userpoll::{reference::Reference, sys, Control, Events, Interest, Poller};
///
/// # fn main() -> std::io::Result<()> {
/// let mut poller = Reference::new(1024)?;
/// let (rd, wr) = sys::pipe()?;
/// poller.control().add(rd.as_fd(), Interest::READABLE, 7)?;
/// drop(wr); // closing the write end: the reader sees hang-up
/// let mut events = Events::with_capacity(64);
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
/// let ev = events.iter().next().unwrap();
/// assert_eq!(ev.data(), 7);
/// assert!(ev.is_hangup());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Reference {
    control: ReferenceControl,
    /// The slots one `epoll_wait` fills.
    buf: EpollBuffer,
}

/// The control handle of a [`Reference`] poller.
#[derive(Debug, Clone)]
pub struct ReferenceControl {
    inner: Arc<EpollInstance>,
}

impl Reference {
    /// A poller for at most `capacity` registrations: EINVAL for 0,
    /// EMFILE beyond the hard `RLIMIT_NOFILE`, ENOMEM when the table does
    /// not fit in memory (see [`Table::with_capacity`]).
    pub fn new(capacity: usize) -> io::Result<Reference> {
        let table = Table::with_capacity(capacity)?;
        let epfd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wakefd = crate::sys::eventfd()?;
        epoll::add(
            &epfd,
            &wakefd,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )?;
        Ok(Reference {
            control: ReferenceControl {
                inner: Arc::new(EpollInstance {
                    epfd,
                    table: Mutex::new(table),
                    counters: Counters::new(),
                    process: ForkCheck::new(),
                    wakefd,
                    woken: AtomicBool::new(false),
                }),
            },
            buf: EpollBuffer::new(capacity.min(1024)),
        })
    }
}

impl Control for ReferenceControl {
    fn add(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let mut table = self.inner.table()?;
        let key = table.insert(raw, interest, data, ())?;
        if let Err(e) = self.inner.ctl(Ctl::Add, fd, interest, key) {
            table.remove(raw).expect("just inserted");
            return Err(e);
        }
        self.inner.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn modify(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let mut table = self.inner.table()?;
        // S9: the interest is checked first, as every backend does.
        interest.validate()?;
        let (old_interest, old_data) = {
            let reg = table.by_fd(raw)?;
            (reg.interest, reg.data)
        };
        let (_, reg) = table.modify(raw, interest, data)?;
        let key = reg.key;
        match self.inner.ctl(Ctl::Mod, fd, interest, key) {
            Ok(()) => {}
            // The fd was closed while registered (S13): the kernel dropped
            // it; nothing to re-arm until the caller deletes it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                // Restore interest and data; the key stays new, which only
                // drops events of the old key, as a failed call must not
                // deliver new ones either.
                table
                    .modify(raw, old_interest, old_data)
                    .expect("registered");
                return Err(e);
            }
        }
        self.inner.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let mut table = self.inner.table()?;
        let interest = table.by_fd(raw)?.interest;
        match self.inner.ctl(Ctl::Del, fd, interest, Key::from_u64(0)) {
            Ok(()) => {}
            // Closed while registered (S13), or the number now names another
            // file: the kernel holds nothing for it under this number.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EBADF)) => {}
            Err(e) => return Err(e),
        }
        table.remove(raw)?;
        self.inner.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wake(&self) -> io::Result<()> {
        let inner = &*self.inner;
        inner.process.check()?;
        inner.woken.store(true, Ordering::Release);
        inner.counters.incr(Counter::OtherSyscall);
        crate::sys::eventfd_signal(inner.wakefd.as_fd())
    }
}

impl Poller for Reference {
    type Control = ReferenceControl;

    fn control(&self) -> &ReferenceControl {
        &self.control
    }

    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let inner = &*self.control.inner;
        inner.process.check()?;
        let max = events.capacity().min(self.buf.len()).max(1);
        let zero = timeout == Some(Duration::ZERO);
        let deadline = deadline(timeout);
        loop {
            // With no deadline (None, or too far to add to now) the first
            // value is -1; a long deadline loops in i32::MAX ms steps.
            let ms = if zero { 0 } else { timeout_ms(deadline) };
            inner.counters.incr(Counter::EpollWait);
            let got = match self.buf.wait(inner.epfd.as_fd(), max, ms) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let table = inner.table()?;
            let mut stale = 0;
            for (key, bits) in got {
                if key == WAKE {
                    continue;
                }
                match table.get(Key::from_u64(key)) {
                    Some(reg) => {
                        let ready = bits & reg.interest.mask();
                        events.push(Event::new(reg.data, Ready::from_bits(ready)));
                    }
                    None => stale += 1,
                }
            }
            drop(table);
            inner.counters.add(Counter::StaleDropped, stale);
            // Only stale events (deleted or modified meanwhile) are no
            // answer to a wait with time left (S12: `wait(None)` returns 0
            // only after a wake): wait again.
            // A load first: the read-modify-write only after a wake.
            let woken =
                inner.woken.load(Ordering::Acquire) && inner.woken.swap(false, Ordering::AcqRel);
            if !events.is_empty() || woken || zero || ms == 0 {
                break;
            }
        }
        inner
            .counters
            .add(Counter::EventsDelivered, events.len() as u64);
        Ok(events.len())
    }

    /// The epoll instance itself, readable while its ready list holds an
    /// event or a wake; nesting costs nothing extra. EPERM in a forked
    /// child.
    fn pollable_fd(&self) -> io::Result<BorrowedFd<'_>> {
        self.control.inner.process.check()?;
        Ok(self.control.inner.epfd.as_fd())
    }

    fn capacity(&self) -> usize {
        // The capacity is fixed at creation; read it past the fork check.
        let table = self.control.inner.table.lock();
        table.unwrap_or_else(|e| e.into_inner()).capacity()
    }

    fn stats(&self) -> Stats {
        self.control.inner.counters.snapshot()
    }
}
