//! Defer: the ring's single issuer, and moving the poller to a new ring
//! when it is taken to another thread.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;

use userpoll::table::Key;
use userpoll::{bits, Counter};

use crate::control::UringShared;
use crate::owner::Owner;
use crate::sys::{self, files_update};

impl Owner {
    /// Defer: makes this thread the ring's single issuer, enabling the
    /// ring on first use, or moving the poller to a new ring when it was
    /// taken to another thread (only the enabling thread may enter).
    pub(crate) fn ensure_thread(&mut self, inner: &UringShared) -> io::Result<()> {
        if !self.ring.policy().single_issuer {
            return Ok(());
        }
        let me = thread::current().id();
        match self.thread {
            Some(t) if t == me => Ok(()),
            None => {
                let mut g = inner.lock();
                inner.counters.incr(Counter::OtherSyscall);
                sys::enable(self.ring.io_uring())?;
                g.enabled_on = Some(me);
                self.thread = Some(me);
                self.arm_wake();
                Ok(())
            }
            Some(_) => self.migrate(inner),
        }
    }

    /// Defer, on a new thread: handles the completions the old ring had
    /// posted, replaces it with a ring enabled on this thread and arms
    /// every armed registration there (arming finds ready fds, S4). Closing
    /// the old ring cancels its polls.
    pub(crate) fn migrate(&mut self, inner: &UringShared) -> io::Result<()> {
        let c = &inner.counters;
        let mut g = inner.lock();
        self.drain_cq(&mut g, c);
        let ring = self.ring.another()?;
        c.add(Counter::OtherSyscall, 2);
        sys::enable(&ring)?;
        self.ring.replace(ring);
        g.ring_fd = self.ring.fd();
        g.enabled_on = Some(thread::current().id());
        self.overflow_episode = false;
        self.overflow_rearm.clear();
        // The new ring's file table is empty: install every registration's
        // file again, from the duplicate a queued add still holds, else by
        // fd number (the one place that trusts the number to still name the
        // registered file; see docs/uring-poll.md). Queued ring work for the
        // old ring is void; every armed registration is armed afresh.
        let (queued, _) = g.pending.take();
        let mut dups: Vec<Option<OwnedFd>> = (0..self.capacity).map(|_| None).collect();
        for (slot, ops) in queued {
            dups[slot as usize] = ops.install.map(|(_, file)| file);
        }
        let keys: Vec<Key> = g.table.iter().map(|r| r.key).collect();
        let ring_fd = g.ring_fd;
        for key in keys {
            let Some(reg) = g.table.get_mut(key) else {
                continue;
            };
            reg.extra.ring_replaced();
            let dup = dups[key.slot()].take();
            let fd = dup.as_ref().map_or(reg.fd, |d| d.as_raw_fd());
            c.incr(Counter::OtherSyscall);
            if files_update(ring_fd, key.slot(), fd).is_err() {
                reg.extra.file_lost();
                self.merged.merge(key, bits::ERR | bits::HUP, c);
            } else if reg.extra.is_armed() {
                self.arm(reg);
            }
        }
        self.thread = Some(thread::current().id());
        self.arm_wake();
        Ok(())
    }
}
