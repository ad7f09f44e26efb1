//! The control half: the registration table behind one mutex, and the
//! [`Control`] calls that change it from any thread.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use userpoll::fork::ForkCheck;
use userpoll::table::Table;
use userpoll::{Control, Counter, Counters, Interest};

use crate::check::check_file;
use crate::ops::Ops;
use crate::reg::Life;
use crate::sys::files_update;

#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) table: Table<Life>,
    pub(crate) pending: Ops,
    /// The owner is (about to be) blocked in `io_uring_enter`; the next
    /// control call must wake it.
    pub(crate) waiting: bool,
    /// A wake ([`Control::wake`]) not yet seen by a `wait`.
    pub(crate) woken: bool,
    /// The poller is gone; control calls only keep the table.
    pub(crate) closed: bool,
    /// The ring, for fixed-file updates from control calls. Valid while
    /// `!closed`; replaced under the lock when a Defer ring is rebuilt.
    pub(crate) ring_fd: RawFd,
    /// Defer: the thread the ring is enabled on. From then on only that
    /// thread may update the fixed-file table, so other threads queue it.
    pub(crate) enabled_on: Option<ThreadId>,
    /// Per slot: the serial of the registration that holds it, 0 if free.
    /// A serial names one `add` across its modifies (keys change on
    /// modify); a queued `Install` or `Clear` checks it.
    pub(crate) serial: Vec<u64>,
    /// The last serial given.
    pub(crate) last_serial: u64,
}

impl Registry {
    /// Whether this control call may update the fixed-file table itself:
    /// any profile but Defer, Defer before the ring is enabled, and Defer
    /// on the owner thread.
    fn files_inline(&self) -> bool {
        self.enabled_on
            .map_or(true, |t| t == thread::current().id())
    }
}

#[derive(Debug)]
pub(crate) struct UringShared {
    pub(crate) shared: Mutex<Registry>,
    pub(crate) counters: Counters,
    /// Polled by the ring; a write wakes the owner.
    pub(crate) wake: OwnedFd,
    /// One-shot POLL_ADD re-armed after every event, instead of multishot.
    pub(crate) rearm_mode: bool,
    /// The process the poller was made in: every entry point fails with
    /// EPERM in a forked child (one relaxed atomic load).
    pub(crate) process: ForkCheck,
    /// `st_dev` and `st_ino` of the anonymous inode eventfd, timerfd and
    /// the like share (that of `wake`): files on it are never io_urings.
    pub(crate) anon: (u64, u64),
}

impl UringShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every mutation under the lock is a single table call or push, so
        // a poisoned lock still guards a consistent state.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a successful control call: counts it and wakes the owner if it
    /// is blocked (once: the owner drains every queued op when it wakes).
    pub(crate) fn finish(&self, mut g: MutexGuard<'_, Registry>) {
        let wake = std::mem::replace(&mut g.waiting, false);
        drop(g);
        self.counters.incr(Counter::ControlOps);
        if wake {
            self.write_wake_fd();
        }
    }

    /// Wakes the owner blocked in `io_uring_enter`: one `write` to the
    /// eventfd the ring polls.
    fn write_wake_fd(&self) {
        self.counters.incr(Counter::OtherSyscall);
        // Cannot fail on our own open eventfd.
        let _ = userpoll::sys::eventfd_signal(self.wake.as_fd());
    }
}

/// The control handle of a [`UringPoll`](crate::UringPoll): `add`, `modify` and `delete`
/// from any thread (S11). Cheap to clone; clones share one poller.
///
/// A call changes the registration table at once (so S5 and S9 hold when
/// it returns) and leaves the ring work (POLL_ADD, update, cancel) to the
/// owner, waking it when it is blocked in `wait`.
#[derive(Clone)]
pub struct UringControl {
    pub(crate) inner: Arc<UringShared>,
}

impl fmt::Debug for UringControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.inner.lock();
        f.debug_struct("UringControl")
            .field("registrations", &g.table.len())
            .field("pending_ops", &g.pending.len())
            .finish()
    }
}

impl UringControl {
    /// Ring operations control calls have queued for the owner and it has
    /// not taken yet. Bounded by four per registration slot, whatever
    /// control threads do while the owner is away (tests check it).
    #[doc(hidden)]
    pub fn pending_ops(&self) -> usize {
        self.inner.lock().pending.len()
    }
}

impl Control for UringControl {
    fn add(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        self.inner.process.check()?;
        let raw = fd.as_raw_fd();
        let inner = &*self.inner;
        let c = &inner.counters;
        let mut g = inner.lock();
        g.table.check_insert(raw, interest)?;
        let inline = g.files_inline() && !g.closed;
        let dup = if inline || g.closed {
            None
        } else {
            // Defer, another thread: hold the file with a duplicate fd until
            // the owner installs it, so closing or reusing the number after
            // add returns cannot change what is polled (S13). The dup is
            // also the check for a closed fd (S9).
            c.incr(Counter::OtherSyscall);
            Some(fd.try_clone_to_owned()?)
        };
        // The same errors from every thread (S9), before anything changes:
        // what the install refuses, checked here when the install is not
        // made now, and what epoll refuses. A refused dup closes as it
        // drops.
        let checked = dup.as_ref().map_or(fd, |d| d.as_fd());
        if let Err(e) = check_file(checked, inline, inner.anon, c) {
            if dup.is_some() {
                c.incr(Counter::OtherSyscall); // its close
            }
            return Err(e);
        }
        let key = g.table.insert(raw, interest, data, Life::Queued)?;
        g.last_serial += 1;
        g.serial[key.slot()] = g.last_serial;
        if inline {
            // Install the file now, before add returns: whatever the caller
            // does with the fd number afterwards, the poll reaches this file
            // (S13). This is also the EBADF check (S9).
            c.incr(Counter::OtherSyscall);
            if let Err(e) = files_update(g.ring_fd, key.slot(), raw) {
                g.table.remove(raw).expect("just inserted");
                g.serial[key.slot()] = 0;
                return Err(e);
            }
            g.pending.add(key, None);
        } else if let Some(dup) = dup {
            g.pending.add(key, Some((raw, dup)));
        }
        self.inner.finish(g);
        Ok(())
    }

    fn modify(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        self.inner.process.check()?;
        interest.validate()?;
        let raw = fd.as_raw_fd();
        let mut g = self.inner.lock();
        let Registry {
            table,
            pending,
            closed,
            ..
        } = &mut *g;
        let old_interest = table.by_fd(raw)?.interest;
        let (old, reg) = table.modify(raw, interest, data)?;
        let new = reg.key;
        // An update refused with -EALREADY is answered by cancelling the
        // old request, found as generation - 1 of the new key.
        debug_assert_eq!(new.generation(), old.generation().wrapping_add(1));
        // In place only from multishot to multishot: an update cannot turn
        // a one-shot poll into a multishot one or back.
        // (A POLL_ADD still in the op queue is simply skipped as stale and
        // replaced by one for the new key.)
        let in_place = !self.inner.rearm_mode
            && !old_interest.is_oneshot()
            && !interest.is_oneshot()
            && reg.extra.in_ring();
        let in_ring = if *closed {
            in_place
        } else {
            pending.modify(old, new, reg.extra.in_ring(), in_place)
        };
        reg.extra = Life::modified(in_ring);
        self.inner.finish(g);
        Ok(())
    }

    fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.inner.process.check()?;
        let raw = fd.as_raw_fd();
        let mut g = self.inner.lock();
        let reg = g.table.remove(raw)?;
        g.serial[reg.key.slot()] = 0;
        if !g.closed {
            let slot = reg.key.slot();
            // Queued work of this registration that has not left goes now:
            // its POLL_ADD, and its install with the duplicate fd.
            let dropped_install = g.pending.delete(reg.key, reg.extra.in_ring());
            if dropped_install {
                self.inner.counters.incr(Counter::OtherSyscall); // its close
            }
            if g.files_inline() {
                // Releases the table's reference to the file. A poll still
                // running on it keeps the file until its cancel completes.
                self.inner.counters.incr(Counter::OtherSyscall);
                let _ = files_update(g.ring_fd, slot, -1);
            } else if !dropped_install {
                // An install dropped above never put its file there.
                g.pending.clear_file(slot);
            }
        }
        self.inner.finish(g);
        Ok(())
    }

    fn wake(&self) -> io::Result<()> {
        self.inner.process.check()?;
        let mut g = self.inner.lock();
        g.woken = true;
        // Writes the ring's wake-up eventfd only if the owner is blocked.
        let wake = std::mem::replace(&mut g.waiting, false);
        drop(g);
        if wake {
            self.inner.write_wake_fd();
        }
        Ok(())
    }
}
