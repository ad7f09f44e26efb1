//! The userpoll ring itself: the memory layout of the EPOLL_USERPOLL series
//! (v4/v5), its multi-producer publish protocol, and a consumer protocol
//! extended to several consumers. Nothing here knows about epoll: a
//! [`Ring`] is fed slot numbers and ready bits by whoever produces them
//! (the driver in this crate, a benchmark, a model-checking test).
//!
//! # Layout (one shared mapping)
//!
//! | offset | size | contents |
//! |---|---|---|
//! | 0 | 128 | [`Header`]: magic, header_length, index_length, max_items_nr, head, tail |
//! | 128 | 16 × max_items_nr | [`Item`]s: ready_events, events, data |
//! | header_length | index_length | the index ring: `u32` slot numbers |
//!
//! `header_length` is `128 + 16 × max_items_nr` rounded up to the page size;
//! `index_length` is the next power of two of `4 × max_items_nr`, at least a
//! page. See [`Layout`].
//!
//! # Private state (not in the mapping)
//!
//! - The producers' 64-bit counter `monotonic:32 | advance:16 | refs:16`.
//! - One word per slot, `generation:32 | busy:32`: producers announce
//!   themselves in `busy` with the same read-modify-write that reads the
//!   generation, and [`Ring::retire`] bumps the generation and waits until
//!   no producer of the old one is inside [`Ring::publish`]. This is what the
//!   kernel's `ep->lock` did for the series; here it is lock-free for the
//!   producers.
//!
//! Everything a producer reads back from the mapping (`events`,
//! `ready_events`, `tail`) is treated as untrusted: it never decides an
//! address. Slot numbers and the index mask come from private state, so a
//! consumer that scribbles over the mapping can only make the ring report
//! garbage or an error (`EIO`), never make a producer go out of bounds.

use std::fmt;
use std::io;

use userpoll::bits::{ERR, HUP, IN, ONESHOT, OUT, PRI, RDHUP};
use userpoll::sys::errno;

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::spin_hint;

/// `header.magic`: 0xeb01eb01, as in the series.
pub const MAGIC: u32 = 0xeb01_eb01;
/// Size of the [`Header`] in bytes; items start at this offset.
pub const HEADER_SIZE: usize = 128;
/// Size of one [`Item`] in bytes.
pub const ITEM_SIZE: usize = 16;
/// The largest `max_items_nr` the series accepts.
pub const MAX_ITEMS: usize = 65536;
/// Written into `ready_events` by a delete that finds the item queued; a
/// consumer skips an entry whose `ready_events` holds only this bit.
pub const EPOLLREMOVED: u32 = 1 << 27;
/// The event bits a producer may OR into `ready_events` (everything else in
/// `Item::events` is a flag).
pub const PUBLIC_BITS: u32 = IN | PRI | OUT | ERR | HUP | RDHUP;

/// One producer reference: `monotonic += 1`, `advance += 1`, `refs += 1`.
const COUNTER_ONE: u64 = (1 << 32) | (1 << 16) | 1;
const REFS_MASK: u64 = 0xffff;
const LOW_HALF: u64 = 0xffff_ffff;

/// The 128-byte ring header, laid out exactly as the series' `struct
/// epoll_uheader`. Every field is a `u32`; they are atomics here because
/// the mapping is shared with whoever consumes it.
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: AtomicU32,
    /// Offset of the index ring = size of header plus items, page-rounded.
    pub header_length: AtomicU32,
    /// Size of the index ring in bytes.
    pub index_length: AtomicU32,
    /// Number of items (the capacity).
    pub max_items_nr: AtomicU32,
    /// Next index position to consume; written only by consumers.
    pub head: AtomicU32,
    /// One past the last published index position; written only by
    /// producers.
    pub tail: AtomicU32,
    _padding: [u32; 26],
}

/// One 16-byte item, laid out as the series' `struct epoll_uitem`.
#[repr(C)]
pub struct Item {
    /// Bits fired since the consumer last took the item; non-zero exactly
    /// while the item is queued in the index ring (or [`EPOLLREMOVED`]).
    pub ready_events: AtomicU32,
    /// The requested event bits and flags (`EPOLLONESHOT`, `EPOLLET`).
    pub events: AtomicU32,
    /// The caller's data.
    pub data: AtomicU64,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = Ordering::Relaxed;
        f.debug_struct("Header")
            .field("magic", &format_args!("{:#x}", self.magic.load(r)))
            .field("header_length", &self.header_length.load(r))
            .field("index_length", &self.index_length.load(r))
            .field("max_items_nr", &self.max_items_nr.load(r))
            .field("head", &self.head.load(r))
            .field("tail", &self.tail.load(r))
            .finish()
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = Ordering::Relaxed;
        f.debug_struct("Item")
            .field(
                "ready_events",
                &format_args!("{:#x}", self.ready_events.load(r)),
            )
            .field("events", &format_args!("{:#x}", self.events.load(r)))
            .field("data", &self.data.load(r))
            .finish()
    }
}

/// The sizes and offsets of a ring of a given capacity, by the series'
/// rules.
///
/// ```
/// use epoll_ring::ring::Layout;
/// let l = Layout::with_page_size(1000, 4096).unwrap();
/// assert_eq!(l.header_length(), 16384); // 128 + 16000, rounded up to pages
/// assert_eq!(l.index_length(), 4096); // next_power_of_two(4000)
/// assert_eq!(l.index_entries(), 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    max_items_nr: u32,
    page_size: usize,
    header_length: usize,
    index_length: usize,
}

impl Layout {
    /// The layout for `max_items` items with the system page size. EINVAL
    /// unless `1 <= max_items <= 65536`.
    pub fn new(max_items: usize) -> io::Result<Layout> {
        Layout::with_page_size(max_items, page_size())
    }

    /// The layout with a given page size (a power of two, at least 4). Small
    /// pages give small index rings, which the loom tests use to wrap the
    /// ring within a few steps.
    pub fn with_page_size(max_items: usize, page_size: usize) -> io::Result<Layout> {
        if !(1..=MAX_ITEMS).contains(&max_items) {
            return Err(errno(libc::EINVAL));
        }
        if !page_size.is_power_of_two() || page_size < 4 {
            return Err(errno(libc::EINVAL));
        }
        Ok(Layout {
            max_items_nr: max_items as u32,
            page_size,
            header_length: (HEADER_SIZE + max_items * ITEM_SIZE).next_multiple_of(page_size),
            index_length: (max_items * 4).next_power_of_two().max(page_size),
        })
    }

    /// `max_items_nr`: the capacity.
    pub fn max_items(&self) -> usize {
        self.max_items_nr as usize
    }
    /// The page size the lengths are rounded to.
    pub fn page_size(&self) -> usize {
        self.page_size
    }
    /// `header_length`: where the index ring starts.
    pub fn header_length(&self) -> usize {
        self.header_length
    }
    /// `index_length`: bytes in the index ring.
    pub fn index_length(&self) -> usize {
        self.index_length
    }
    /// Number of `u32` entries in the index ring (a power of two).
    pub fn index_entries(&self) -> usize {
        self.index_length / 4
    }
    /// Offset of item `slot`.
    pub fn item_offset(&self, slot: usize) -> usize {
        HEADER_SIZE + slot * ITEM_SIZE
    }
    /// Total bytes of the mapping: `header_length + index_length`.
    pub fn total_length(&self) -> usize {
        self.header_length + self.index_length
    }
}

/// The system page size (`AT_PAGESZ` from the auxiliary vector, what
/// `sysconf(_SC_PAGESIZE)` reads too).
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// What [`Ring::publish`] did with a fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// The item went from idle to queued: one new index entry.
    Queued,
    /// The item was queued already; the bits were merged into it (S3).
    Coalesced,
    /// The generation given is not the slot's current one (the
    /// registration was retired): nothing changed (S5).
    Stale,
    /// None of the fired bits is requested, or a oneshot item has fired
    /// already: nothing changed (S7).
    Masked,
}

/// What one [`Ring::take`] consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Entries reported to the callback.
    pub events: usize,
    /// Entries skipped because their item was deleted (only
    /// [`EPOLLREMOVED`], or nothing, in `ready_events`).
    pub removed: usize,
}

#[cfg_attr(not(loom), repr(align(64)))]
struct Padded<T>(T);

/// A userpoll ring: the shared mapping plus the producers' private state.
/// `Sync`: any number of threads may publish, take and retire at once.
///
/// ```
/// use epoll_ring::ring::{Publish, Ring};
/// let ring = Ring::new(4).unwrap();
/// let gen = ring.set(2, libc::EPOLLIN as u32, 42).unwrap();
/// assert_eq!(ring.publish(2, gen, libc::EPOLLIN as u32), Publish::Queued);
/// assert_eq!(ring.publish(2, gen, libc::EPOLLIN as u32), Publish::Coalesced);
/// let mut got = Vec::new();
/// ring.take(16, |slot, data, bits| got.push((slot, data, bits))).unwrap();
/// assert_eq!(got, [(2, 42, libc::EPOLLIN as u32)]);
/// ```
pub struct Ring {
    mem: Mem,
    layout: Layout,
    /// `index_entries - 1`, private: the producer never reads it back.
    mask: u32,
    /// `generation:32 | busy:32` per slot.
    state: Box<[AtomicU64]>,
    /// `monotonic:32 | advance:16 | refs:16`.
    counter: Padded<AtomicU64>,
}

impl Ring {
    /// A ring of `capacity` items (1 to 65536, else EINVAL) with the system
    /// page size.
    pub fn new(capacity: usize) -> io::Result<Ring> {
        Ring::with_layout(Layout::new(capacity)?)
    }

    /// A ring with the given layout.
    pub fn with_layout(layout: Layout) -> io::Result<Ring> {
        let mem = Mem::new(&layout)?;
        let ring = Ring {
            mem,
            layout,
            mask: (layout.index_entries() - 1) as u32,
            state: (0..layout.max_items()).map(|_| AtomicU64::new(0)).collect(),
            counter: Padded(AtomicU64::new(0)),
        };
        let h = ring.header();
        let r = Ordering::Relaxed;
        h.magic.store(MAGIC, r);
        h.header_length.store(layout.header_length() as u32, r);
        h.index_length.store(layout.index_length() as u32, r);
        h.max_items_nr.store(layout.max_items() as u32, r);
        Ok(ring)
    }

    /// The layout this ring was made with.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The number of items.
    pub fn capacity(&self) -> usize {
        self.layout.max_items()
    }

    /// The header in the shared mapping.
    pub fn header(&self) -> &Header {
        self.mem.header()
    }

    /// The items in the shared mapping (`max_items_nr` of them).
    pub fn items(&self) -> &[Item] {
        self.mem.items()
    }

    /// The index ring in the shared mapping.
    pub fn index(&self) -> &[AtomicU32] {
        self.mem.index()
    }

    /// Start of the shared mapping (`layout().total_length()` bytes), for a
    /// consumer that reads the ring by the series' ABI.
    #[cfg(not(loom))]
    pub fn as_ptr(&self) -> *const u8 {
        self.mem.base.as_ptr()
    }

    fn slot(&self, slot: u32) -> io::Result<(&Item, &AtomicU64)> {
        match (
            self.items().get(slot as usize),
            self.state.get(slot as usize),
        ) {
            (Some(item), Some(state)) => Ok((item, state)),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// The current generation of `slot`: what [`Ring::publish`] must be
    /// given for its fires to count.
    pub fn generation(&self, slot: u32) -> io::Result<u32> {
        let (_, state) = self.slot(slot)?;
        Ok((state.load(Ordering::Acquire) >> 32) as u32)
    }

    /// Arms `slot` with `events` (requested bits and flags, e.g.
    /// `EPOLLIN | EPOLLONESHOT`) and `data`; returns the slot's current
    /// generation. A slot that was in use must be [retired](Ring::retire)
    /// first. EINVAL for a slot outside the ring.
    pub fn set(&self, slot: u32, events: u32, data: u64) -> io::Result<u32> {
        let (item, state) = self.slot(slot)?;
        // Relaxed: the release store of `events` below publishes it; a
        // producer reads `events` with acquire before it can queue the
        // item, and the consumer reads `data` after an acquire swap of
        // `ready_events` that reads from that producer.
        item.data.store(data, Ordering::Relaxed);
        item.events.store(events, Ordering::Release);
        Ok((state.load(Ordering::Acquire) >> 32) as u32)
    }

    /// Ends the registration in `slot` (delete, or the first half of
    /// modify): stops further fires, bumps the generation, waits until no
    /// producer of the old generation is inside [`Ring::publish`] (a bounded
    /// wait: one publish), then marks a queued item [`EPOLLREMOVED`] so the
    /// consumer skips its index entry. Returns the new generation. After it
    /// returns, no take that starts later reports the old registration.
    pub fn retire(&self, slot: u32) -> io::Result<u32> {
        let (item, state) = self.slot(slot)?;
        item.events.store(0, Ordering::Release);
        // AcqRel: the increment is ordered after the store above and, by
        // being a read-modify-write of `state`, totally ordered with every
        // producer's entry: a producer either read the old generation and
        // is counted in `busy`, or reads the new one and drops its fire.
        let old = state.fetch_add(1 << 32, Ordering::AcqRel);
        let mut busy = old & LOW_HALF;
        while busy != 0 {
            spin_hint();
            // Acquire: reads from the producers' release decrements, so
            // their OR into ready_events is visible below.
            busy = state.load(Ordering::Acquire) & LOW_HALF;
        }
        // Only if queued: an idle item (0) stays idle, so no index entry is
        // ever owed for it. AcqRel: ordered against the consumer's swap.
        let _ = item
            .ready_events
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                (r != 0).then_some(EPOLLREMOVED)
            });
        Ok(((old >> 32) as u32).wrapping_add(1))
    }

    /// Publishes a fire of `bits` for the registration (`slot`,
    /// `generation`): the series' v4/v5 producer protocol. Safe for any
    /// number of concurrent producers, consumers and retirers.
    ///
    /// A slot outside the ring is [`Publish::Stale`] (there is no such
    /// registration).
    pub fn publish(&self, slot: u32, generation: u32, bits: u32) -> Publish {
        let Ok((item, state)) = self.slot(slot) else {
            return Publish::Stale;
        };
        // No relaxed pre-check of the generation: a plain load could return
        // an older generation than the caller's and drop a current fire.
        // The read-modify-write always reads the latest value.
        // Acquire: pairs with `set`'s release (via retire's AcqRel bump).
        let entered = state.fetch_add(1, Ordering::Acquire);
        let out = if (entered >> 32) as u32 == generation {
            self.publish_current(slot, item, bits)
        } else {
            Publish::Stale
        };
        // Release: a retirer that sees busy == 0 sees everything we did.
        state.fetch_sub(1, Ordering::Release);
        out
    }

    fn publish_current(&self, slot: u32, item: &Item, fired: u32) -> Publish {
        // The requested bits; oneshot items give up their public bits with
        // a CAS, so of two racing fires exactly one proceeds (S7).
        let mut events = item.events.load(Ordering::Acquire);
        let bits = loop {
            let bits = fired & events & PUBLIC_BITS;
            if bits == 0 {
                return Publish::Masked;
            }
            if events & ONESHOT == 0 {
                break bits;
            }
            match item.events.compare_exchange_weak(
                events,
                events & !PUBLIC_BITS,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break bits,
                Err(now) => events = now,
            }
        };

        // 1. OR the bits in, clearing EPOLLREMOVED. AcqRel: acquire pairs
        // with the consumer's release swap (its read of the old index
        // entry happens before our write of a new one); release publishes
        // `data` and our bits to the consumer's acquire swap.
        let mut old = item.ready_events.load(Ordering::Relaxed);
        loop {
            let new = (old & !EPOLLREMOVED) | bits;
            match item.ready_events.compare_exchange_weak(
                old,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => old = now,
            }
        }
        if old != 0 {
            // Queued already (or EPOLLREMOVED: the old entry serves).
            return Publish::Coalesced;
        }

        // 2. Take a position and a reference. Acquire: pairs with the
        // release of the producer that last closed a batch, so positions
        // it published happen before ours.
        let now = self
            .counter
            .0
            .fetch_add(COUNTER_ONE, Ordering::Acquire)
            .wrapping_add(COUNTER_ONE);
        let position = ((now >> 32) as u32).wrapping_sub(1);

        // 3. The slot number goes into the index ring. The mask is private,
        // so the address never depends on the shared mapping.
        self.index()[(position & self.mask) as usize].store(slot, Ordering::Release);

        // 4. Drop the reference; the last one out takes `advance` and
        // zeroes the low half. AcqRel: release publishes our index store
        // to the last producer; acquire lets the last producer carry every
        // other producer's index store into its tail update.
        let mut cur = now;
        let advance = loop {
            let (next, advance) = if cur & REFS_MASK == 1 {
                (cur & !LOW_HALF, ((cur >> 16) & 0xffff) as u32)
            } else {
                (cur - 1, 0)
            };
            match self.counter.0.compare_exchange_weak(
                cur,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break advance,
                Err(now) => cur = now,
            }
        };

        // 5. The last producer moves the tail for everyone. Release: a
        // consumer that acquires `tail` sees every index entry below it.
        if advance != 0 {
            self.header().tail.fetch_add(advance, Ordering::Release);
        }
        Publish::Queued
    }

    /// A consistent (head, tail) pair: `tail - head` entries published and
    /// not yet claimed, never more than the index ring holds.
    ///
    /// Head is read before tail (a head we read was claimed by a consumer
    /// that had read a tail at least that far, so `tail >= head`), and
    /// again after it: if head moved meanwhile, other consumers and
    /// producers may have moved both ends, and the distance means nothing,
    /// so read again. Only a distance larger than the index ring over a
    /// head that did not move is damage: every unclaimed entry owns a
    /// distinct queued item, so a true distance never exceeds the items.
    fn snapshot(&self) -> io::Result<(u32, u32)> {
        let h = self.header();
        let entries = self.mask + 1;
        let mut head = h.head.load(Ordering::Acquire);
        loop {
            // Acquire: every index entry below `tail` is visible.
            let tail = h.tail.load(Ordering::Acquire);
            if tail.wrapping_sub(head) <= entries {
                return Ok((head, tail));
            }
            let again = h.head.load(Ordering::Acquire);
            if again == head {
                // The shared ring memory was overwritten: the caller must
                // create a new poller.
                return Err(errno(libc::EIO));
            }
            head = again;
        }
    }

    /// Number of index entries published and not yet claimed by a
    /// consumer. EIO when `head` and `tail` are further apart than the
    /// index ring (the shared memory was overwritten).
    pub fn pending(&self) -> io::Result<u32> {
        let (head, tail) = self.snapshot()?;
        Ok(tail.wrapping_sub(head))
    }

    /// Takes up to `max` events, calling `f(slot, data, bits)` for each:
    /// the series' consumer protocol, with positions claimed by a
    /// compare-and-swap on `head` so that several consumers may take at
    /// once. Only entries published before the call started are taken, so
    /// one call reports a registration at most once (S3).
    ///
    /// EIO when the shared memory was overwritten (a head/tail distance
    /// larger than the index ring, a slot number outside the items).
    pub fn take(&self, max: usize, mut f: impl FnMut(u32, u64, u32)) -> io::Result<Taken> {
        let h = self.header();
        let entries = self.mask + 1;
        let (mut head, tail) = self.snapshot()?;
        let mut taken = Taken::default();
        while taken.events < max {
            let d = tail.wrapping_sub(head);
            // Empty up to our snapshot, or another consumer took past it.
            if d == 0 || d > entries {
                break;
            }
            // Read the entry before claiming it: while `head` still equals
            // this position, no producer can overwrite the entry (every
            // entry from `head` on owns a distinct queued item, and there
            // are at least as many entries as items).
            let slot = self.index()[(head & self.mask) as usize].load(Ordering::Acquire);
            if let Err(now) = h.head.compare_exchange(
                head,
                head.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                head = now;
                continue;
            }
            head = head.wrapping_add(1);
            let Some(item) = self.items().get(slot as usize) else {
                return Err(errno(libc::EIO));
            };
            // AcqRel: acquire sees the producer's bits and the data it
            // published; release orders our read of the entry before any
            // producer's re-queue of this item.
            let ready = item.ready_events.swap(0, Ordering::AcqRel);
            let bits = ready & !EPOLLREMOVED;
            if bits == 0 {
                taken.removed += 1;
                continue;
            }
            // Data after the swap (the series read it before): a slot
            // reused after a delete carries the new registration's data by
            // the time its bits can be swapped out, never the old data.
            let data = item.data.load(Ordering::Acquire);
            f(slot, data, bits);
            taken.events += 1;
        }
        Ok(taken)
    }

    /// The producers' counter, `monotonic:32 | advance:16 | refs:16` (for
    /// tests: with no producer inside `publish`, the low half is zero and
    /// `monotonic` equals `tail`).
    pub fn counter(&self) -> u64 {
        self.counter.0.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("layout", &self.layout)
            .field("header", self.header())
            .field("counter", &format_args!("{:#x}", self.counter()))
            .finish()
    }
}

#[cfg(not(loom))]
use mmap::Mem;

#[cfg(not(loom))]
mod mmap {
    //! The real memory: one anonymous shared mapping.
    use std::io;
    use std::ptr::NonNull;

    use super::{Header, Item, Layout, HEADER_SIZE};
    use crate::sync::atomic::AtomicU32;

    pub(super) struct Mem {
        pub(super) base: NonNull<u8>,
        len: usize,
        items: usize,
        index_offset: usize,
        index_entries: usize,
    }

    // SAFETY: the mapping is only accessed through atomics (Header, Item,
    // AtomicU32), and it lives until Mem drops; sharing the pointer across
    // threads is as safe as sharing `&[AtomicU32]`.
    unsafe impl Send for Mem {}
    // SAFETY: as above: every access is atomic.
    unsafe impl Sync for Mem {}

    impl Mem {
        pub(super) fn new(layout: &Layout) -> io::Result<Mem> {
            let len = layout.total_length();
            // Stays on libc: rustix's mmap is just as unsafe (the mapping is
            // raw memory either way), so it would remove no unsafe block.
            // SAFETY: a new anonymous shared mapping with no address hint;
            // the kernel chooses where and zero-fills it.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let base = NonNull::new(p.cast::<u8>()).expect("mmap never returns null on success");
            let mem = Mem {
                base,
                len,
                items: layout.max_items(),
                index_offset: layout.header_length(),
                index_entries: layout.index_entries(),
            };
            // As in the series: the mapping is not inherited by fork.
            // (libc, like mmap: rustix's madvise is unsafe as well.)
            // SAFETY: the range is exactly the mapping made above.
            unsafe { userpoll::syscall!(madvise(p, len, libc::MADV_DONTFORK)) }?;
            Ok(mem)
        }

        pub(super) fn header(&self) -> &Header {
            // The mapping is page-aligned, at least HEADER_SIZE bytes and
            // zero-initialised; a Header (atomics, u32s) is valid for any bits.
            // SAFETY: so the reference is valid while the mapping (self) lives.
            unsafe { &*self.base.as_ptr().cast::<Header>() }
        }

        pub(super) fn items(&self) -> &[Item] {
            // `items` Items of 16 bytes start at offset 128 (aligned to 16)
            // and end before `header_length`, inside the mapping.
            // SAFETY: any bits are a valid Item; the mapping lives with self.
            unsafe {
                std::slice::from_raw_parts(
                    self.base.as_ptr().add(HEADER_SIZE).cast::<Item>(),
                    self.items,
                )
            }
        }

        pub(super) fn index(&self) -> &[AtomicU32] {
            // `index_entries` u32s start at the page-aligned offset
            // `header_length` and end at the end of the mapping.
            // SAFETY: any bits are a valid AtomicU32; the mapping lives with self.
            unsafe {
                std::slice::from_raw_parts(
                    self.base
                        .as_ptr()
                        .add(self.index_offset)
                        .cast::<AtomicU32>(),
                    self.index_entries,
                )
            }
        }
    }

    impl Drop for Mem {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the mapping made in `new`; no reference
            // into it outlives self (every accessor borrows self).
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
        }
    }
}

#[cfg(loom)]
use model::Mem;

#[cfg(loom)]
mod model {
    //! Under loom: the same structures as ordinary heap objects built from
    //! loom's atomics (which are not laid out like u32s).
    use std::io;

    use super::{Header, Item, Layout};
    use crate::sync::atomic::{AtomicU32, AtomicU64};

    pub(super) struct Mem {
        header: Box<Header>,
        items: Box<[Item]>,
        index: Box<[AtomicU32]>,
    }

    impl Mem {
        pub(super) fn new(layout: &Layout) -> io::Result<Mem> {
            let u = || AtomicU32::new(0);
            Ok(Mem {
                header: Box::new(Header {
                    magic: u(),
                    header_length: u(),
                    index_length: u(),
                    max_items_nr: u(),
                    head: u(),
                    tail: u(),
                    _padding: [0; 26],
                }),
                items: (0..layout.max_items())
                    .map(|_| Item {
                        ready_events: u(),
                        events: u(),
                        data: AtomicU64::new(0),
                    })
                    .collect(),
                index: (0..layout.index_entries()).map(|_| u()).collect(),
            })
        }
        pub(super) fn header(&self) -> &Header {
            &self.header
        }
        pub(super) fn items(&self) -> &[Item] {
            &self.items
        }
        pub(super) fn index(&self) -> &[AtomicU32] {
            &self.index
        }
    }
}
