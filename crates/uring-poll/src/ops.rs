//! The ring work control calls queue for the owner, per registration slot.

use std::os::fd::{OwnedFd, RawFd};

use userpoll::table::Key;

/// The POLL_ADD or in-place update a slot's registration waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ArmOp {
    /// POLL_ADD for this key, if it is still current when submitted.
    Arm(Key),
    /// In-place update of the multishot poll of `old` to the interest and
    /// user data of `new` (always `old`'s generation + 1: an update the
    /// kernel refuses is answered by cancelling generation - 1).
    Update { old: Key, new: Key },
}

/// Ring work control calls left for one slot since the owner last drained
/// the queue. At most one of each kind, whatever control threads do while
/// the owner is away: later calls replace or cancel earlier ones (below).
#[derive(Debug, Default)]
pub(crate) struct SlotOps {
    /// ASYNC_CANCEL of a request the owner put in the ring for this slot,
    /// under this key, whose registration was deleted or modified since.
    pub(crate) cancel: Option<Key>,
    /// POLL_ADD or update for the registration holding the slot.
    pub(crate) arm: Option<ArmOp>,
    /// Defer, from a thread that may not touch the ring: the file of the
    /// registration holding the slot, as a duplicate of its fd number `.0`
    /// made in `add` and closed once the owner installed it (or at once,
    /// if the registration is deleted first).
    pub(crate) install: Option<(RawFd, OwnedFd)>,
    /// Defer: empty the fixed-file slot, unless a registration holds it
    /// by then (its own install replaces the file).
    pub(crate) clear: bool,
    /// The slot is listed in `Ops::dirty`.
    pub(crate) dirty: bool,
}

impl SlotOps {
    pub(crate) fn count(&self) -> usize {
        self.cancel.is_some() as usize
            + self.arm.is_some() as usize
            + self.install.is_some() as usize
            + self.clear as usize
    }
}

/// The ring work control calls leave for the owner, per slot: bounded by
/// the capacity (at most four ops and one duplicate fd per slot), however
/// many `add`/`modify`/`delete` calls come while the owner does not take.
///
/// Coalescing, when a control call finds work of the same slot queued:
/// - delete: drops the queued POLL_ADD and install (closing the duplicate
///   fd at once); a queued in-place update becomes a cancel of the request
///   it would have updated; an armed request gets a cancel.
/// - modify: a queued POLL_ADD is replaced by one for the new key; a
///   queued in-place update becomes a cancel of the old request plus a
///   POLL_ADD for the new key (two updates are never merged into one: the
///   refusal recovery cancels the update's generation - 1).
///
/// Across slots nothing depends on order. Within a slot the owner does
/// the cancel, then the file (clear, install), then the POLL_ADD or update.
#[derive(Debug)]
pub(crate) struct Ops {
    pub(crate) slots: Vec<SlotOps>,
    /// Slots with work, each once, in the order they got it.
    pub(crate) dirty: Vec<u32>,
    /// Cancels that found another cancel of the slot queued: never
    /// expected (a cancel is queued only when the slot's registration
    /// leaves the ring, and none re-enters it before the owner drains),
    /// kept so that no request is forgotten if it happens.
    pub(crate) spill: Vec<Key>,
}

impl Ops {
    pub(crate) fn new(capacity: usize) -> Ops {
        Ops {
            slots: (0..capacity).map(|_| SlotOps::default()).collect(),
            dirty: Vec::new(),
            spill: Vec::new(),
        }
    }

    /// The work of `slot`, listed for the owner.
    pub(crate) fn slot(&mut self, slot: usize) -> &mut SlotOps {
        let ops = &mut self.slots[slot];
        if !ops.dirty {
            ops.dirty = true;
            self.dirty.push(slot as u32);
        }
        ops
    }

    /// The work of `slot` as it stands, without listing it.
    pub(crate) fn peek(&mut self, slot: usize) -> &mut SlotOps {
        &mut self.slots[slot]
    }

    pub(crate) fn cancel(&mut self, key: Key) {
        let ops = self.slot(key.slot());
        if let Some(earlier) = ops.cancel.replace(key) {
            debug_assert!(false, "two cancels queued for slot {}", key.slot());
            self.spill.push(earlier);
        }
    }

    /// Ops queued (for tests and `Debug`).
    pub(crate) fn len(&self) -> usize {
        self.spill.len()
            + self
                .dirty
                .iter()
                .map(|&s| self.slots[s as usize].count())
                .sum::<usize>()
    }

    /// Every slot's work, in the order the slots got it; leaves the queue
    /// empty.
    pub(crate) fn take(&mut self) -> (Vec<(u32, SlotOps)>, Vec<Key>) {
        let mut out = Vec::with_capacity(self.dirty.len());
        for slot in self.dirty.drain(..) {
            let ops = std::mem::take(&mut self.slots[slot as usize]);
            out.push((slot, ops));
        }
        (out, std::mem::take(&mut self.spill))
    }

    /// Drops all work (closing every queued duplicate fd).
    pub(crate) fn clear(&mut self) {
        drop(self.take());
    }
}
