//! The ring is laid out byte for byte as the EPOLL_USERPOLL series defined
//! it: a consumer written against the series' ABI, reading raw bytes from
//! the mapping, reads this ring unchanged.
#![cfg(not(loom))] // Loom builds run only tests/loom.rs.

use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::Ordering;

use epoll_ring::ring::{self, Header, Item, Layout, Publish, Ring, EPOLLREMOVED, MAGIC};
use epoll_ring::EpollRing;

const IN: u32 = libc::EPOLLIN as u32;

/// Reads a native-endian u32 at `offset` of the mapping, as a foreign
/// consumer would.
fn raw_u32(ring: &Ring, offset: usize) -> u32 {
    assert!(offset + 4 <= ring.layout().total_length());
    // SAFETY: offset is inside the live mapping and 4-aligned; a volatile
    // read of a u32 the ring writes atomically.
    unsafe { ring.as_ptr().add(offset).cast::<u32>().read_volatile() }
}

fn raw_u64(ring: &Ring, offset: usize) -> u64 {
    assert!(offset + 8 <= ring.layout().total_length());
    // SAFETY: as raw_u32; offset is 8-aligned (checked by the caller's layout).
    unsafe { ring.as_ptr().add(offset).cast::<u64>().read_volatile() }
}

#[test]
fn header_and_item_structs_match_the_series() {
    assert_eq!(size_of::<Header>(), 128);
    assert_eq!(align_of::<Header>(), 4);
    assert_eq!(offset_of!(Header, magic), 0);
    assert_eq!(offset_of!(Header, header_length), 4);
    assert_eq!(offset_of!(Header, index_length), 8);
    assert_eq!(offset_of!(Header, max_items_nr), 12);
    assert_eq!(offset_of!(Header, head), 16);
    assert_eq!(offset_of!(Header, tail), 20);
    assert_eq!(size_of::<Item>(), 16);
    assert_eq!(align_of::<Item>(), 8);
    assert_eq!(offset_of!(Item, ready_events), 0);
    assert_eq!(offset_of!(Item, events), 4);
    assert_eq!(offset_of!(Item, data), 8);
    assert_eq!(MAGIC, 0xeb01_eb01);
    assert_eq!(EPOLLREMOVED, 1 << 27);
}

#[test]
fn lengths_offsets_and_magic_for_several_capacities() {
    let page = ring::page_size();
    for cap in [
        1usize, 2, 3, 7, 100, 255, 256, 257, 1000, 1024, 4095, 4096, 65535, 65536,
    ] {
        // The series' rules, computed independently of Layout.
        let header_length = (128 + cap * 16).div_ceil(page) * page;
        let index_length = (cap * 4).next_power_of_two().max(page);

        let ring = Ring::new(cap).unwrap();
        let l = ring.layout();
        assert_eq!(l.header_length(), header_length, "cap {cap}");
        assert_eq!(l.index_length(), index_length, "cap {cap}");
        assert_eq!(l.total_length(), header_length + index_length, "cap {cap}");
        assert!(
            l.index_entries().is_power_of_two() && l.index_entries() >= cap,
            "cap {cap}"
        );
        assert_eq!(ring.as_ptr() as usize % page, 0, "mapping is page-aligned");

        // The header as raw bytes.
        assert_eq!(raw_u32(&ring, 0), 0xeb01_eb01, "magic, cap {cap}");
        assert_eq!(
            raw_u32(&ring, 4) as usize,
            header_length,
            "header_length, cap {cap}"
        );
        assert_eq!(
            raw_u32(&ring, 8) as usize,
            index_length,
            "index_length, cap {cap}"
        );
        assert_eq!(raw_u32(&ring, 12) as usize, cap, "max_items_nr, cap {cap}");
        assert_eq!(
            (raw_u32(&ring, 16), raw_u32(&ring, 20)),
            (0, 0),
            "head, tail"
        );

        // The last item sits at 128 + 16 * slot and ends before the index.
        let slot = cap - 1;
        let at = 128 + 16 * slot;
        assert!(at + 16 <= header_length);
        let gen = ring.set(slot as u32, IN, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(raw_u32(&ring, at + 4), IN, "events, cap {cap}");
        assert_eq!(
            raw_u64(&ring, at + 8),
            0x1122_3344_5566_7788,
            "data, cap {cap}"
        );
        assert_eq!(raw_u32(&ring, at), 0, "ready_events idle");

        // Publish: ready_events, the index entry at header_length, tail.
        assert_eq!(ring.publish(slot as u32, gen, IN), Publish::Queued);
        assert_eq!(raw_u32(&ring, at), IN, "ready_events queued");
        assert_eq!(
            raw_u32(&ring, header_length) as usize,
            slot,
            "index[0], cap {cap}"
        );
        assert_eq!(raw_u32(&ring, 20), 1, "tail");

        // Take: head moves, ready_events is cleared.
        let mut got = Vec::new();
        ring.take(8, |s, d, b| got.push((s, d, b))).unwrap();
        assert_eq!(got, [(slot as u32, 0x1122_3344_5566_7788, IN)]);
        assert_eq!(raw_u32(&ring, 16), 1, "head");
        assert_eq!(raw_u32(&ring, at), 0);

        // Delete while queued writes EPOLLREMOVED into ready_events.
        assert_eq!(ring.publish(slot as u32, gen, IN), Publish::Queued);
        ring.retire(slot as u32).unwrap();
        assert_eq!(raw_u32(&ring, at), EPOLLREMOVED);
        assert_eq!(raw_u32(&ring, header_length + 4) as usize, slot, "index[1]");
        let t = ring
            .take(8, |_, _, _| panic!("a removed item was reported"))
            .unwrap();
        assert_eq!((t.events, t.removed), (0, 1));
    }
}

#[test]
fn index_ring_wraps_at_its_length() {
    let ring = Ring::new(4).unwrap();
    let entries = ring.layout().index_entries();
    let gen = ring.set(3, IN, 9).unwrap();
    for round in 0..(entries * 2 + 3) {
        assert_eq!(ring.publish(3, gen, IN), Publish::Queued);
        let pos = round % entries;
        assert_eq!(ring.index()[pos].load(Ordering::Relaxed), 3);
        let mut n = 0;
        ring.take(8, |_, d, _| {
            assert_eq!(d, 9);
            n += 1
        })
        .unwrap();
        assert_eq!(n, 1);
    }
    assert_eq!(
        ring.header().tail.load(Ordering::Relaxed) as usize,
        entries * 2 + 3
    );
}

#[test]
fn s08_s09_capacity_limits_are_einval() {
    for cap in [0usize, 65537, 1 << 20] {
        assert_eq!(
            Ring::new(cap).unwrap_err().raw_os_error(),
            Some(libc::EINVAL),
            "cap {cap}"
        );
        assert_eq!(
            EpollRing::new(cap).unwrap_err().raw_os_error(),
            Some(libc::EINVAL),
            "cap {cap}"
        );
        assert!(Layout::new(cap).is_err());
    }
    let big = EpollRing::new(65536).unwrap();
    assert_eq!(userpoll::Poller::capacity(&big), 65536);
}

#[test]
fn s08_s09_capacity_one_gives_enospc_and_exclusive_is_einval() {
    use std::os::fd::AsFd;
    use userpoll::{Control, Interest};
    for mode in [
        epoll_ring::DriverMode::Thread,
        epoll_ring::DriverMode::Inline,
    ] {
        let p = EpollRing::with_mode(1, mode).unwrap();
        let a = userpoll::conformance::fds::eventfd().unwrap();
        let b = userpoll::conformance::fds::eventfd().unwrap();
        let ex = Interest::from_epoll_bits(userpoll::bits::EXCLUSIVE | userpoll::bits::IN);
        let e = userpoll::Poller::control(&p)
            .add(a.as_fd(), ex, 1)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{mode:?}: {e}");
        userpoll::Poller::control(&p)
            .add(a.as_fd(), Interest::READABLE, 1)
            .unwrap();
        let e = userpoll::Poller::control(&p)
            .add(b.as_fd(), Interest::READABLE, 2)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{mode:?}: {e}");
    }
}
