//! S3 coalescing: the kernel posts a multishot CQE per wake-up of the fd,
//! not per registration, so the owner merges every completion of a
//! registration into one event (the OR of the masks) until that event is
//! handed out, and hands out each registration at most once per take,
//! oldest first. Generations tell a registration from an earlier one of
//! the same slot (S5).

use std::collections::VecDeque;

use userpoll::table::Key;
use userpoll::{Counter, Counters};

/// A slot's completions merged since its event was last taken.
#[derive(Debug, Clone, Copy, Default)]
struct Merged {
    generation: u32,
    mask: u32,
    queued: bool,
}

/// The merged events not yet handed out: one per slot, queued in the order
/// the slots got their first completion. Sized at creation (S8): the queue
/// never holds more slots than the capacity.
#[derive(Debug)]
pub(crate) struct MergeQueue {
    /// Per slot: the OR of the masks of completions not yet taken (S3).
    merged: Vec<Merged>,
    /// Slots with a merged event, each at most once, oldest first.
    queue: VecDeque<u32>,
}

impl MergeQueue {
    /// Room for `capacity` slots.
    pub(crate) fn new(capacity: usize) -> MergeQueue {
        MergeQueue {
            merged: vec![Merged::default(); capacity],
            queue: VecDeque::with_capacity(capacity),
        }
    }

    /// Adds `mask` to the merged event of `key`'s slot (S3). A queued
    /// event of another generation (a deleted or modified registration) is
    /// replaced in its place in the queue and counted as stale; a merge
    /// into a queued event of the same generation counts as coalesced.
    pub(crate) fn merge(&mut self, key: Key, mask: u32, c: &Counters) {
        let slot = key.slot();
        let m = &mut self.merged[slot];
        if m.queued && m.generation == key.generation() {
            m.mask |= mask;
            c.incr(Counter::FiresCoalesced);
        } else if m.queued {
            // The queued one belongs to a deleted or modified registration.
            c.incr(Counter::StaleDropped);
            m.generation = key.generation();
            m.mask = mask;
        } else {
            *m = Merged {
                generation: key.generation(),
                mask,
                queued: true,
            };
            self.queue.push_back(slot as u32);
        }
    }

    /// The oldest merged event: the key it was made for and its mask. The
    /// slot's next completion starts a new event.
    pub(crate) fn pop(&mut self) -> Option<(Key, u32)> {
        let slot = self.queue.pop_front()?;
        let m = &mut self.merged[slot as usize];
        m.queued = false;
        Some((Key::new(slot, m.generation), m.mask))
    }

    /// Merged events waiting to be handed out.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use userpoll::bits;

    fn key(slot: u32, generation: u32) -> Key {
        Key::new(slot, generation)
    }

    fn drain(q: &mut MergeQueue) -> Vec<(Key, u32)> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn s03_completions_of_one_registration_are_one_event_with_every_mask() {
        let (mut q, c) = (MergeQueue::new(4), Counters::new());
        q.merge(key(1, 7), bits::IN, &c);
        q.merge(key(1, 7), bits::OUT, &c);
        q.merge(key(1, 7), bits::IN, &c);
        assert_eq!(drain(&mut q), [(key(1, 7), bits::IN | bits::OUT)]);
        let s = c.snapshot();
        assert_eq!(s.get(Counter::FiresCoalesced), 2);
        assert_eq!(s.get(Counter::StaleDropped), 0);
    }

    #[test]
    fn s03_each_registration_once_oldest_first() {
        let (mut q, c) = (MergeQueue::new(4), Counters::new());
        for slot in [2, 0, 2, 3, 0, 2] {
            q.merge(key(slot, 1), bits::IN, &c);
        }
        assert_eq!(q.len(), 3);
        let slots: Vec<usize> = drain(&mut q).iter().map(|(k, _)| k.slot()).collect();
        assert_eq!(slots, [2, 0, 3]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn s03_a_completion_after_the_event_was_taken_starts_a_new_one() {
        let (mut q, c) = (MergeQueue::new(2), Counters::new());
        q.merge(key(0, 1), bits::IN | bits::HUP, &c);
        assert_eq!(q.pop(), Some((key(0, 1), bits::IN | bits::HUP)));
        assert_eq!(q.pop(), None);
        q.merge(key(0, 1), bits::OUT, &c);
        assert_eq!(drain(&mut q), [(key(0, 1), bits::OUT)]);
        assert_eq!(c.snapshot().get(Counter::FiresCoalesced), 0);
    }

    #[test]
    fn s05_a_new_generation_replaces_the_queued_event_in_its_place() {
        let (mut q, c) = (MergeQueue::new(3), Counters::new());
        q.merge(key(1, 4), bits::IN, &c);
        q.merge(key(2, 9), bits::IN, &c);
        // Slot 1 deleted or modified, then fired under its new generation:
        // the old mask must not leak into the new registration's event.
        q.merge(key(1, 5), bits::OUT, &c);
        assert_eq!(
            drain(&mut q),
            [(key(1, 5), bits::OUT), (key(2, 9), bits::IN)]
        );
        assert_eq!(c.snapshot().get(Counter::StaleDropped), 1);
    }

    #[test]
    fn s08_the_queue_never_outgrows_the_capacity() {
        let cap = 64;
        let (mut q, c) = (MergeQueue::new(cap), Counters::new());
        let room = q.queue.capacity();
        for round in 0..10 {
            for slot in 0..cap as u32 {
                q.merge(key(slot, round), bits::IN, &c);
            }
        }
        assert_eq!(q.len(), cap);
        assert_eq!(q.queue.capacity(), room, "the queue reallocated");
        assert_eq!(drain(&mut q).len(), cap);
    }
}
