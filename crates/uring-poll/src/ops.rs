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
    dirty: bool,
}

impl SlotOps {
    fn count(&self) -> usize {
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
    slots: Vec<SlotOps>,
    /// Slots with work, each once, in the order they got it.
    dirty: Vec<u32>,
    /// Cancels that found another cancel of the slot queued: never
    /// expected (a cancel is queued only when the slot's registration
    /// leaves the ring, and none re-enters it before the owner drains),
    /// kept so that no request is forgotten if it happens.
    spill: Vec<Key>,
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
    fn slot(&mut self, slot: usize) -> &mut SlotOps {
        let ops = &mut self.slots[slot];
        if !ops.dirty {
            ops.dirty = true;
            self.dirty.push(slot as u32);
        }
        ops
    }

    fn cancel(&mut self, key: Key) {
        let ops = self.slot(key.slot());
        if let Some(earlier) = ops.cancel.replace(key) {
            debug_assert!(false, "two cancels queued for slot {}", key.slot());
            self.spill.push(earlier);
        }
    }

    /// `add` of `key`: its POLL_ADD, and `install` (the fd number and a
    /// duplicate of it) when the file waits for the owner to install it.
    pub(crate) fn add(&mut self, key: Key, install: Option<(RawFd, OwnedFd)>) {
        let ops = self.slot(key.slot());
        if install.is_some() {
            // The slot was free: no POLL_ADD or install of it is queued (a
            // delete drops them).
            debug_assert!(ops.arm.is_none() && ops.install.is_none());
            ops.install = install;
        }
        ops.arm = Some(ArmOp::Arm(key));
    }

    /// `modify` of the registration `old`, now `new`: `in_ring` says the
    /// owner has a request of `old` in the ring, `in_place` that it may be
    /// updated in place. Returns whether the registration's request is in
    /// the ring afterwards (an update of it is queued).
    pub(crate) fn modify(&mut self, old: Key, new: Key, in_ring: bool, in_place: bool) -> bool {
        let slot = new.slot();
        match self.slots[slot].arm {
            // The update has not left: cancel the request it would have
            // updated and arm afresh (two updates are not merged into one;
            // see `Ops`).
            Some(ArmOp::Update { old: armed, .. }) => {
                self.cancel(armed);
                self.slot(slot).arm = Some(ArmOp::Arm(new));
                false
            }
            // The POLL_ADD has not left: arm the new key instead.
            Some(ArmOp::Arm(_)) => {
                self.slot(slot).arm = Some(ArmOp::Arm(new));
                false
            }
            None if in_place => {
                self.slot(slot).arm = Some(ArmOp::Update { old, new });
                true
            }
            None => {
                if in_ring {
                    self.cancel(old);
                }
                self.slot(slot).arm = Some(ArmOp::Arm(new));
                false
            }
        }
    }

    /// `delete` of the registration `key` (`in_ring`: the owner has a
    /// request of it in the ring). Its queued work that has not left goes
    /// now: its POLL_ADD, and its install with the duplicate fd, which is
    /// closed here. Returns whether an install was dropped that way (its
    /// file never reached the fixed-file slot).
    pub(crate) fn delete(&mut self, key: Key, in_ring: bool) -> bool {
        let ops = &mut self.slots[key.slot()];
        let arm = ops.arm.take();
        let dropped_install = ops.install.take().is_some();
        match arm {
            Some(ArmOp::Update { old, .. }) => self.cancel(old),
            Some(ArmOp::Arm(_)) => {}
            None if in_ring => self.cancel(key),
            None => {}
        }
        dropped_install
    }

    /// Defer, from another thread: empty fixed-file `slot` unless a
    /// registration holds it by the time the owner gets to it.
    pub(crate) fn clear_file(&mut self, slot: usize) {
        self.slot(slot).clear = true;
    }

    /// Nothing queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.dirty.is_empty() && self.spill.is_empty()
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

    /// The owner's drain, first part: the cancels that spilled.
    pub(crate) fn drain_spill(&mut self) -> std::vec::Drain<'_, Key> {
        self.spill.drain(..)
    }

    /// The owner's drain, second part: each slot's work, in the order the
    /// slots got it; leaves the queue empty. Allocates nothing, unlike
    /// [`Ops::take`].
    pub(crate) fn drain(&mut self, mut work: impl FnMut(u32, SlotOps)) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            work(slot, std::mem::take(&mut self.slots[slot as usize]));
        }
        dirty.clear();
        self.dirty = dirty;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn key(generation: u32) -> Key {
        Key::new(3, generation)
    }

    /// A file for a queued install, standing in for `add`'s duplicate.
    fn dup() -> (RawFd, OwnedFd) {
        let file = std::fs::File::open("/dev/null").expect("open /dev/null");
        (file.as_raw_fd(), OwnedFd::from(file))
    }

    /// The one slot's work, as the owner would take it.
    fn work(ops: &mut Ops) -> SlotOps {
        let (mut slots, spill) = ops.take();
        assert!(spill.is_empty());
        assert!(slots.len() <= 1);
        slots.pop().map(|(_, w)| w).unwrap_or_default()
    }

    fn is_arm(w: &SlotOps, k: Key) -> bool {
        matches!(w.arm, Some(ArmOp::Arm(a)) if a == k)
    }

    #[test]
    fn s06_modify_in_place_queues_one_update() {
        let mut ops = Ops::new(4);
        assert!(ops.modify(key(0), key(1), true, true));
        let w = work(&mut ops);
        assert!(
            matches!(w.arm, Some(ArmOp::Update { old, new }) if old == key(0) && new == key(1))
        );
        assert_eq!(w.cancel, None);
    }

    #[test]
    fn s06_modify_not_in_place_cancels_the_request_in_the_ring_and_arms_afresh() {
        let mut ops = Ops::new(4);
        assert!(!ops.modify(key(0), key(1), true, false));
        let w = work(&mut ops);
        assert_eq!(w.cancel, Some(key(0)));
        assert!(is_arm(&w, key(1)));
    }

    #[test]
    fn s05_modify_replaces_a_poll_add_that_has_not_left() {
        let mut ops = Ops::new(4);
        ops.add(key(0), None);
        assert!(!ops.modify(key(0), key(1), false, false));
        let w = work(&mut ops);
        assert_eq!(w.cancel, None);
        assert!(is_arm(&w, key(1)));
    }

    #[test]
    fn s05_two_updates_are_never_merged() {
        // The refusal recovery cancels the update's generation - 1, so a
        // second modify cancels the request the first would have updated.
        let mut ops = Ops::new(4);
        assert!(ops.modify(key(0), key(1), true, true));
        assert!(!ops.modify(key(1), key(2), true, true));
        let w = work(&mut ops);
        assert_eq!(w.cancel, Some(key(0)));
        assert!(is_arm(&w, key(2)));
    }

    #[test]
    fn s05_delete_drops_what_has_not_left_and_cancels_what_has() {
        let mut ops = Ops::new(4);
        ops.add(key(0), Some(dup()));
        assert!(ops.delete(key(0), false), "the install is dropped");
        assert_eq!(ops.len(), 0);

        assert!(ops.modify(key(0), key(1), true, true));
        assert!(!ops.delete(key(1), true));
        let w = work(&mut ops);
        assert_eq!(w.cancel, Some(key(0)), "the request the update was for");
        assert!(w.arm.is_none());

        assert!(!ops.delete(key(5), true));
        assert_eq!(work(&mut ops).cancel, Some(key(5)));
    }

    #[test]
    fn s11_control_loops_while_the_owner_is_away_stay_bounded() {
        let mut ops = Ops::new(4);
        let (mut k, mut in_ring) = (key(0), true);
        for i in 0..1000u32 {
            let next = Key::new(3, k.generation() + 1);
            if i % 3 == 2 {
                ops.delete(k, in_ring);
                ops.add(next, Some(dup()));
                in_ring = false;
            } else {
                in_ring = ops.modify(k, next, in_ring, in_ring && i % 2 == 0);
            }
            k = next;
            assert!(ops.len() <= 4, "{} ops queued for one slot", ops.len());
            assert_eq!(ops.dirty.len(), 1);
        }
        let w = work(&mut ops);
        assert!(is_arm(&w, k));
        assert!(w.install.is_some());
    }
}
