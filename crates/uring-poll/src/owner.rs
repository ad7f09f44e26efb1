//! Everything only the owner touches, and the steps of a take that are
//! not completion handling.

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::thread::ThreadId;

use io_uring::cqueue;
use userpoll::table::Key;
use userpoll::{bits, Counter, Counters, Event, Events, Ready};

use crate::control::Registry;
use crate::merge::MergeQueue;
use crate::ops::ArmOp;
use crate::reg::Life;
use crate::ring::Ring;
use crate::sqe;
use crate::sys::files_update;

/// Everything only the owner touches: the ring, the merge buffer and the
/// queue of registrations with an event to hand out.
pub(crate) struct Owner {
    /// The ring, its SQ backlog and every enter.
    pub(crate) ring: Ring,
    /// One-shot POLL_ADD re-armed after every event, instead of multishot.
    pub(crate) rearm_mode: bool,
    /// Registrations at most (slots of the table and the fixed-file table).
    pub(crate) capacity: usize,
    /// Completions merged per registration, not yet handed out (S3).
    pub(crate) merged: MergeQueue,
    /// CQEs copied out of the CQ, so the CQ is free while they are handled.
    pub(crate) batch: Vec<cqueue::Entry>,
    /// Defer: the thread the ring is enabled on (its single issuer).
    pub(crate) thread: Option<ThreadId>,
    /// Re-arm mode: registrations whose event was handed out; re-armed at
    /// the start of the next take, after the caller has handled it.
    pub(crate) rearm_next: Vec<Key>,
    /// Requests a CQ overflow ended, re-armed once the overflow is flushed.
    pub(crate) overflow_rearm: Vec<Key>,
    /// A CQ overflow is being recovered: ended polls count as overflow
    /// re-arms.
    pub(crate) overflow_episode: bool,
    /// The wake-up eventfd the ring polls (owned by `UringShared`).
    pub(crate) wake_fd: RawFd,
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owner")
            .field("profile", &self.ring.profile())
            .field("rearm_mode", &self.rearm_mode)
            .field("params", self.ring.params())
            .field("queued_events", &self.merged.len())
            .field("backlog", &self.ring.backlog_len())
            .field("thread", &self.thread)
            .finish()
    }
}

impl Owner {
    /// POLL_ADD for `reg`'s current key and interest.
    pub(crate) fn arm(&mut self, reg: &mut userpoll::table::Registration<Life>) {
        let multishot = !self.rearm_mode && !reg.interest.is_oneshot();
        self.ring.push(sqe::poll_add(
            reg.key.slot() as u32,
            reg.interest.mask(),
            multishot,
            reg.key,
        ));
        reg.extra.armed();
    }

    /// Multishot POLL_ADD of the wake-up eventfd.
    pub(crate) fn arm_wake(&mut self) {
        self.ring.push(sqe::poll_add_wake(self.wake_fd, bits::IN));
    }

    /// Turns the ops control calls queued into SQEs and fixed-file
    /// updates (see `Ops` for the order).
    pub(crate) fn drain_pending(&mut self, g: &mut Registry, c: &Counters) {
        if g.pending.is_empty() {
            return;
        }
        let Registry {
            table,
            ring_fd,
            serial: holder,
            pending,
            ..
        } = g;
        for key in pending.drain_spill() {
            self.ring.push(sqe::cancel(key));
        }
        pending.drain(|slot, ops| {
            if let Some(key) = ops.cancel {
                self.ring.push(sqe::cancel(key));
            }
            if ops.clear && holder[slot as usize] == 0 {
                c.incr(Counter::OtherSyscall);
                let _ = files_update(*ring_fd, slot as usize, -1);
            }
            if let Some((fd, file)) = ops.install {
                // The registration holding the slot (a delete drops its
                // install), whatever its key is after modifies.
                c.incr(Counter::OtherSyscall);
                if files_update(*ring_fd, slot as usize, file.as_raw_fd()).is_err() {
                    // Cannot happen for a file `add` accepted, short of
                    // ENOMEM; tell the caller once, it should delete.
                    if let Ok(reg) = table.by_fd_mut(fd) {
                        let key = reg.key;
                        reg.extra.file_lost();
                        self.merged.merge(key, bits::ERR | bits::HUP, c);
                    }
                }
                // Closing the duplicate; the table holds the file now.
                c.incr(Counter::OtherSyscall);
                drop(file);
            }
            match ops.arm {
                // A key no longer current was deleted or modified before
                // its POLL_ADD left (coalescing replaces such ops; kept as
                // a guard).
                Some(ArmOp::Arm(key)) => {
                    if let Some(reg) = table.get_mut(key) {
                        if reg.extra.is_armed() {
                            self.arm(reg);
                        }
                    }
                }
                Some(ArmOp::Update { old, new }) => {
                    let mask = table.get(new).map_or(bits::IN, |r| r.interest.mask());
                    self.ring.push_update(sqe::poll_update(old, new, mask));
                }
                None => {}
            }
        });
    }

    /// Re-arm mode: arms again every registration whose event the caller
    /// has taken since the last call.
    pub(crate) fn rearm_taken(&mut self, g: &mut Registry, c: &Counters) {
        let mut keys = std::mem::take(&mut self.rearm_next);
        for key in keys.drain(..) {
            if let Some(reg) = g.table.get_mut(key) {
                if reg.extra == Life::RearmOnTake {
                    self.arm(reg);
                    c.incr(Counter::RearmMode);
                }
            }
        }
        self.rearm_next = keys;
    }

    /// Moves merged events into `events`, dropping those whose
    /// registration was deleted or modified since (S5).
    pub(crate) fn emit(&mut self, g: &mut Registry, events: &mut Events, c: &Counters) {
        while !events.is_full() {
            let Some((key, mask)) = self.merged.pop() else {
                break;
            };
            match g.table.get_mut(key) {
                None => c.incr(Counter::StaleDropped),
                Some(reg) => {
                    events.push(Event::new(reg.data, Ready::from_bits(mask)));
                    if reg.extra == Life::RearmOnTake {
                        self.rearm_next.push(reg.key);
                    }
                }
            }
        }
    }
}
