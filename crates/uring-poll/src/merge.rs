//! Completions merged per registration until its event is handed out (S3).

use userpoll::table::Key;
use userpoll::{Counter, Counters};

use crate::owner::Owner;

/// A registration's completions merged since its event was last taken.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Merged {
    pub(crate) generation: u32,
    pub(crate) mask: u32,
    pub(crate) queued: bool,
}

impl Owner {
    /// Adds `mask` to the merged event of `key`'s slot (S3).
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
}
