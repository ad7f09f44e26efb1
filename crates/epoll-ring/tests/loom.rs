//! Model checks of the ring protocol with loom: the same `ring.rs` source,
//! compiled against loom's atomics, explored over thread interleavings.
//!
//! Run (bounded: about 20 s on 2 cores after the build; 2 s with
//! LOOM_MAX_PREEMPTIONS=2):
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test -p epoll-ring --release --test loom
//! ```
//!
//! What is checked, with 2 producers and 2 consumers (the main thread is
//! always one of the actors), on rings whose index ring has as many entries
//! as items, so that positions wrap:
//! - every publish that returned `Queued` made exactly one index entry, and
//!   every entry is taken exactly once (delivered, or skipped as removed);
//! - no fire is lost: once everyone is done, every item's `ready_events` is
//!   zero, i.e. a take after the fire swapped its bits out;
//! - one take never reports a registration twice (S3);
//! - a take that starts after `retire` returned never reports the retired
//!   registration's data, also when the slot is re-armed at once with new
//!   data (S5), and a producer holding the old generation is `Stale`;
//! - oneshot: of two racing fires at most one is delivered, and `set`
//!   re-arms (S7);
//! - when all is quiet, `head == tail == monotonic` and the counter's
//!   `advance` and `refs` are zero.
#![cfg(loom)]

use std::collections::HashMap;

use epoll_ring::ring::{Layout, Publish, Ring, EPOLLREMOVED};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;
const ONESHOT: u32 = libc::EPOLLONESHOT as u32;

/// A ring of `cap` items whose index ring has `cap` entries (page size 4).
fn ring(cap: usize) -> Ring {
    let layout = Layout::with_page_size(cap, 4).unwrap();
    assert_eq!(layout.index_entries(), cap.next_power_of_two());
    Ring::with_layout(layout).unwrap()
}

/// One take; checks S3 within the call; returns (data, bits) pairs and the
/// number of removed entries skipped.
fn take(ring: &Ring) -> (Vec<(u64, u32)>, usize) {
    let mut got = Vec::new();
    let t = ring
        .take(usize::MAX, |_, data, bits| got.push((data, bits)))
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    for (d, _) in &got {
        assert!(seen.insert(*d), "one take reported data {d} twice: {got:?}");
    }
    assert_eq!(t.events, got.len());
    (got, t.removed)
}

/// Everything is quiet: the ring is consistent and fully consumed.
fn check_quiet(ring: &Ring, queued: usize, delivered: usize, removed: usize) {
    let h = ring.header();
    let head = h.head.load(Ordering::SeqCst);
    let tail = h.tail.load(Ordering::SeqCst);
    let c = ring.counter();
    assert_eq!(c & 0xffff_ffff, 0, "advance/refs left behind: {c:#x}");
    assert_eq!((c >> 32) as u32, tail, "monotonic != tail");
    assert_eq!(head, tail, "entries left unconsumed");
    assert_eq!(tail as usize, queued, "one entry per Queued publish");
    assert_eq!(
        delivered + removed,
        queued,
        "every entry taken exactly once"
    );
    for (i, item) in ring.items().iter().enumerate() {
        let r = item.ready_events.load(Ordering::SeqCst);
        assert!(
            r == 0 || r == EPOLLREMOVED,
            "item {i} still holds fired bits {r:#x}: a fire was lost"
        );
    }
}

fn count(results: &[Publish], what: Publish) -> usize {
    results.iter().filter(|&&p| p == what).count()
}

/// Two producers on two slots, each firing twice (so an item is re-queued
/// after a consumer took it and positions wrap the 2-entry index ring),
/// two consumers.
#[test]
fn two_producers_two_consumers() {
    loom::model(|| {
        let ring = Arc::new(ring(2));
        let g0 = ring.set(0, IN | OUT, 10).unwrap();
        let g1 = ring.set(1, IN, 11).unwrap();
        let p1 = {
            let ring = ring.clone();
            thread::spawn(move || vec![ring.publish(0, g0, IN), ring.publish(0, g0, OUT)])
        };
        let p2 = {
            let ring = ring.clone();
            thread::spawn(move || vec![ring.publish(1, g1, IN), ring.publish(1, g1, IN)])
        };
        let c1 = {
            let ring = ring.clone();
            thread::spawn(move || take(&ring))
        };
        let (mut got, mut removed) = take(&ring);
        let mut results = p1.join().unwrap();
        results.extend(p2.join().unwrap());
        let (g, r) = c1.join().unwrap();
        got.extend(g);
        removed += r;
        let (g, r) = take(&ring);
        got.extend(g);
        removed += r;

        let queued = count(&results, Publish::Queued);
        check_quiet(&ring, queued, got.len(), removed);
        assert_eq!(removed, 0);
        // Both registrations delivered, with all their fired bits.
        let mut bits: HashMap<u64, u32> = HashMap::new();
        for (d, b) in &got {
            *bits.entry(*d).or_default() |= b;
        }
        assert_eq!(bits.get(&10), Some(&(IN | OUT)), "{got:?}");
        assert_eq!(bits.get(&11), Some(&IN), "{got:?}");
    });
}

/// Delete while producers publish and consumers take: after `retire`
/// returns, no take that starts later reports the deleted data, and the
/// other registration is unaffected.
#[test]
fn delete_during_publish_and_take() {
    loom::model(|| {
        let ring = Arc::new(ring(2));
        let g0 = ring.set(0, IN, 10).unwrap();
        let g1 = ring.set(1, IN, 11).unwrap();
        let deleted = Arc::new(AtomicBool::new(false));
        let p1 = {
            let ring = ring.clone();
            thread::spawn(move || ring.publish(0, g0, IN))
        };
        let p2 = {
            let ring = ring.clone();
            thread::spawn(move || ring.publish(1, g1, IN))
        };
        let c1 = {
            let (ring, deleted) = (ring.clone(), deleted.clone());
            thread::spawn(move || {
                let after = deleted.load(Ordering::Acquire);
                let (got, removed) = take(&ring);
                if after {
                    assert!(
                        got.iter().all(|&(d, _)| d != 10),
                        "deleted data after retire: {got:?}"
                    );
                }
                (got, removed)
            })
        };
        // Main: delete slot 0, then take.
        let g0_new = ring.retire(0).unwrap();
        assert_ne!(g0_new, g0);
        deleted.store(true, Ordering::Release);
        let (mut got, mut removed) = take(&ring);
        assert!(
            got.iter().all(|&(d, _)| d != 10),
            "deleted data after retire: {got:?}"
        );

        let results = [p1.join().unwrap(), p2.join().unwrap()];
        let (g, r) = c1.join().unwrap();
        got.extend(g);
        removed += r;
        let (g, r) = take(&ring);
        assert!(g.iter().all(|&(d, _)| d != 10));
        got.extend(g);
        removed += r;
        check_quiet(&ring, count(&results, Publish::Queued), got.len(), removed);
        assert_eq!(got.iter().filter(|&&(d, _)| d == 11).count(), 1, "{got:?}");
        assert!(
            got.iter().filter(|&&(d, _)| d == 10).count() <= 1,
            "{got:?}"
        );
        // A producer that still holds the old generation is refused.
        assert_eq!(ring.publish(0, g0, IN), Publish::Stale);
    });
}

/// Delete and immediate reuse of the slot (modify, or delete then add),
/// racing a consumer and a producer of the old generation: the old data is
/// never reported by a take that starts after the retire, and the new
/// registration's fire is delivered.
#[test]
fn delete_and_reuse_while_queued() {
    loom::model(|| {
        let ring = Arc::new(ring(2));
        let g0 = ring.set(0, IN, 10).unwrap();
        assert_eq!(ring.publish(0, g0, IN), Publish::Queued);
        let deleted = Arc::new(AtomicBool::new(false));
        let old_producer = {
            let ring = ring.clone();
            thread::spawn(move || ring.publish(0, g0, IN))
        };
        let c1 = {
            let (ring, deleted) = (ring.clone(), deleted.clone());
            thread::spawn(move || {
                let after = deleted.load(Ordering::Acquire);
                let (got, removed) = take(&ring);
                if after {
                    assert!(
                        got.iter().all(|&(d, _)| d != 10),
                        "old data after retire: {got:?}"
                    );
                }
                (got, removed)
            })
        };
        ring.retire(0).unwrap();
        deleted.store(true, Ordering::Release);
        let g0_new = ring.set(0, IN, 20).unwrap();
        let new = ring.publish(0, g0_new, IN);
        let (mut got, mut removed) = take(&ring);
        assert!(
            got.iter().all(|&(d, _)| d != 10),
            "old data after retire: {got:?}"
        );

        let mut results = vec![Publish::Queued, new, old_producer.join().unwrap()];
        let (g, r) = c1.join().unwrap();
        got.extend(g);
        removed += r;
        let (g, r) = take(&ring);
        got.extend(g);
        removed += r;
        results.retain(|p| *p == Publish::Queued);
        check_quiet(&ring, results.len(), got.len(), removed);
        assert!(
            got.iter().any(|&(d, _)| d == 20),
            "the new registration's fire was lost: {got:?}"
        );
        assert!(
            got.iter().filter(|&&(d, _)| d == 10).count() <= 1,
            "{got:?}"
        );
    });
}

/// Oneshot: two producers fire the same oneshot item at once; two
/// consumers take. Exactly one event is delivered; after a re-arm (`set`
/// again, as modify does) the next fire is delivered again.
#[test]
fn oneshot_two_producers_two_consumers() {
    loom::model(|| {
        let ring = Arc::new(ring(1));
        let g = ring.set(0, IN | ONESHOT, 10).unwrap();
        let p1 = {
            let ring = ring.clone();
            thread::spawn(move || ring.publish(0, g, IN))
        };
        let p2 = {
            let ring = ring.clone();
            thread::spawn(move || ring.publish(0, g, IN))
        };
        let c1 = {
            let ring = ring.clone();
            thread::spawn(move || take(&ring))
        };
        let (mut got, mut removed) = take(&ring);
        let results = [p1.join().unwrap(), p2.join().unwrap()];
        let (g2, r) = c1.join().unwrap();
        got.extend(g2);
        removed += r;
        let (g2, r) = take(&ring);
        got.extend(g2);
        removed += r;
        assert_eq!(count(&results, Publish::Queued), 1, "{results:?}");
        assert_eq!(count(&results, Publish::Masked), 1, "{results:?}");
        check_quiet(&ring, 1, got.len(), removed);
        assert_eq!(got, [(10, IN)]);
        // Re-arm (modify): retire, set, fire: delivered once more.
        ring.retire(0).unwrap();
        let g = ring.set(0, IN | ONESHOT, 11).unwrap();
        assert_eq!(ring.publish(0, g, IN), Publish::Queued);
        assert_eq!(ring.publish(0, g, IN), Publish::Masked);
        assert_eq!(take(&ring).0, [(11, IN)]);
    });
}
