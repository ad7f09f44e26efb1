//! An io_uring provided buffer ring ([`BufRing`]): its memory (the ring of
//! entries and the buffers, mapped here), its registration with a ring as
//! one buffer group, giving buffers back, and, per buffer, the pieces the
//! kernel filled and the caller has not yet released.
//!
//! Requests that select a buffer from the group (`IOSQE_BUFFER_SELECT`:
//! multishot read, multishot recv) take one from the ring's head and
//! report in their CQE which buffer (`bid`) and how many bytes. A buffer
//! goes back to the ring once the kernel is done with it (a CQE without
//! `IORING_CQE_F_BUF_MORE`) and every piece of it was released. In
//! incremental mode (`IOU_PBUF_RING_INC`, Linux 6.12) successive
//! completions pack into one buffer and the kernel says only which buffer
//! and how many bytes, so where each piece starts is tracked here, in CQE
//! order (the order the kernel consumed the buffer in).
//!
//! Ownership rule the users keep: the kernel writes a buffer only while it
//! is in the ring, and only inside an `io_uring_enter` of the ring's owner
//! thread when the ring runs DEFER_TASKRUN (the data is copied by the
//! owner's task work); this type is used on that thread only (it is not
//! `Sync`). So no access of ours overlaps one of the kernel's.

#![deny(missing_docs)]

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// `IOU_PBUF_RING_INC` (Linux 6.12): buffers consumed incrementally. The
/// io-uring crate has no name for it.
const IOU_PBUF_RING_INC: u16 = 2;
/// The kernel's limit on provided buffer ring entries.
pub const MAX_RING_ENTRIES: usize = 32768;
const PAGE: usize = 4096;

/// Anonymous, page-aligned memory, populated at once (nothing faults in a
/// measured phase), unmapped on drop.
struct Mem {
    base: NonNull<u8>,
    len: usize,
}

impl Mem {
    fn new(len: usize) -> io::Result<Mem> {
        let len = len.next_multiple_of(PAGE);
        // SAFETY: a new private anonymous mapping at an address the kernel
        // chooses: it aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).expect("mmap never returns null on success");
        Ok(Mem { base, len })
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; every slice handed
        // out borrows the BufRing, so none outlives it.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A provided buffer ring registered with one io_uring as one group.
pub struct BufRing {
    /// Ring entries of 16 bytes; entry 0's last field is the tail.
    ring: Mem,
    bufs: Mem,
    count: usize,
    buf_size: u32,
    incremental: bool,
    /// Our copy of the tail, published after each buffer given back.
    tail: u16,
    /// Per buffer: where the kernel's next completion into it lands
    /// (incremental mode), pieces of it taken and not yet released, and
    /// whether the kernel may still write into it.
    next_off: Vec<u32>,
    busy: Vec<u32>,
    with_kernel: Vec<bool>,
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("count", &self.count)
            .field("buf_size", &self.buf_size)
            .field("incremental", &self.incremental)
            .finish()
    }
}

impl BufRing {
    /// `count` buffers of `size` bytes (`count` a power of two, at most
    /// [`MAX_RING_ENTRIES`]), every one in the ring, registered with
    /// `ring` as group `bgid`, consumed incrementally if `incremental`.
    /// EINVAL from a kernel without `IOU_PBUF_RING_INC` when asked for it.
    ///
    /// # Safety
    /// The kernel writes into this memory for as long as `ring` lives with
    /// the group registered: drop the returned value only after `ring` is
    /// dropped (or the group unregistered), e.g. by declaring the ring
    /// before it in the owning struct.
    pub unsafe fn register(
        ring: &IoUring,
        bgid: u16,
        count: usize,
        size: u32,
        incremental: bool,
    ) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > MAX_RING_ENTRIES || size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a provided buffer ring of {count} x {size} B: the count must be a power of \
                     two up to {MAX_RING_ENTRIES}, the size above 0"
                ),
            ));
        }
        let mut b = BufRing {
            ring: Mem::new(count * std::mem::size_of::<BufRingEntry>())?,
            bufs: Mem::new(count * size as usize)?,
            count,
            buf_size: size,
            incremental,
            tail: 0,
            next_off: vec![0; count],
            busy: vec![0; count],
            with_kernel: vec![false; count],
        };
        for bid in 0..count {
            b.give(bid as u16);
        }
        let flags = if incremental { IOU_PBUF_RING_INC } else { 0 };
        let addr = b.ring.base.as_ptr() as u64;
        // SAFETY: page-aligned memory for `count` entries, owned by `b`,
        // which the caller drops after the ring (this function's contract).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(addr, count as u16, bgid, flags)
        }?;
        Ok(b)
    }

    /// Buffers, their size, incremental or not; bytes mapped in all.
    pub fn shape(&self) -> (usize, u32, bool, usize) {
        (
            self.count,
            self.buf_size,
            self.incremental,
            self.ring.len + self.bufs.len,
        )
    }

    /// Buffers now in the ring (given to the kernel and not wholly used).
    pub fn in_ring(&self) -> usize {
        self.with_kernel.iter().filter(|&&k| k).count()
    }

    /// Puts buffer `bid` at the tail of the ring, whole again (the setters
    /// leave each entry's last field, the tail in entry 0, alone).
    fn give(&mut self, bid: u16) {
        let b = bid as usize;
        let slot = self.tail as usize & (self.count - 1);
        let entries = self.ring.base.as_ptr().cast::<BufRingEntry>();
        // SAFETY: `slot` < `count`: inside the ring mapping; no kernel access
        // overlaps ours (module doc).
        let e = unsafe { &mut *entries.add(slot) };
        e.set_addr(self.bufs.base.as_ptr() as u64 + (b * self.buf_size as usize) as u64);
        e.set_len(self.buf_size);
        e.set_bid(bid);
        self.next_off[b] = 0;
        self.with_kernel[b] = true;
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: `entries` is the ring's first entry, initialised; its tail
        // field is a 2-aligned u16 inside the mapping.
        let tail = unsafe { &*BufRingEntry::tail(entries).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// A CQE says the kernel wrote `len` bytes into buffer `bid`;
    /// `kernel_keeps`: it will write more into it (`IORING_CQE_F_BUF_MORE`).
    /// Returns where the bytes start, having counted them as a piece taken
    /// (readable with [`BufRing::bytes`] until [`BufRing::release`]).
    /// InvalidData when the CQE names bytes outside the buffer.
    pub fn took(&mut self, bid: u16, len: u32, kernel_keeps: bool) -> io::Result<u32> {
        let b = bid as usize;
        let off = match (b < self.count, self.incremental) {
            (true, true) => self.next_off[b],
            (true, false) => 0,
            (false, _) => u32::MAX,
        };
        match off.checked_add(len) {
            Some(end) if end <= self.buf_size => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the kernel reported {len} bytes in buffer {bid}, beyond the pool"),
                ))
            }
        }
        self.next_off[b] = off + len;
        self.busy[b] += 1;
        if !kernel_keeps {
            self.with_kernel[b] = false;
        }
        Ok(off)
    }

    /// A piece of buffer `bid` taken by [`BufRing::took`] is done with: the
    /// buffer goes back to the ring when it was the last and the kernel is
    /// done with it.
    pub fn release(&mut self, bid: u16) {
        let b = bid as usize;
        debug_assert!(self.busy[b] > 0, "buffer {bid} released more than taken");
        self.busy[b] -= 1;
        if self.busy[b] == 0 && !self.with_kernel[b] {
            self.give(bid);
        }
    }

    /// The `len` bytes at `off` in buffer `bid`, a piece [`BufRing::took`]
    /// returned and not yet released. Panics for bytes the kernel may
    /// still write (a buffer with no piece taken, or beyond what it filled).
    pub fn bytes(&self, bid: u16, off: u32, len: u32) -> &[u8] {
        let b = bid as usize;
        assert!(
            b < self.count
                && self.busy[b] > 0
                && off as u64 + len as u64 <= self.next_off[b] as u64,
            "bytes {off}+{len} of buffer {bid}: not a piece taken and unreleased"
        );
        let start = b * self.buf_size as usize + off as usize;
        // A buffer with a piece taken is not given back until it is
        // released; the kernel writes only past `next_off` of a buffer it
        // keeps (incremental mode), never before. The assert keeps the
        // range inside buffer `b`, inside the mapping, which `self` keeps.
        let bytes = self.bufs.base.as_ptr().wrapping_add(start);
        // SAFETY: (above) in the mapping and not written by the kernel; the
        // slice borrows `self`, so no `release` can give the buffer back.
        unsafe { std::slice::from_raw_parts(bytes, len as usize) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_entry_layout_is_what_the_ring_assumes() {
        assert_eq!(std::mem::size_of::<BufRingEntry>(), 16);
    }

    #[test]
    fn a_bad_shape_is_refused_before_any_mapping() {
        let ring = match IoUring::new(8) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("SKIPPED: io_uring_setup failed here: {e}");
                return;
            }
        };
        // SAFETY: refused before anything is registered.
        let e = unsafe { BufRing::register(&ring, 0, 3, 64, false) }.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
