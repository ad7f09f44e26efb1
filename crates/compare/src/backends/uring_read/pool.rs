//! The memory of the data path: the provided buffer ring and its buffers,
//! mapped here and registered with the ring, and per token the pieces of
//! buffer handed out with events and not yet handled ([`Pool`]).
//!
//! A buffer goes back to the ring once the kernel is done with it (a CQE
//! without `IORING_CQE_F_BUF_MORE`) and every piece in it was handled or
//! dropped. In incremental mode (`IOU_PBUF_RING_INC`) successive reads pack
//! into one buffer and the kernel says only which buffer and how many
//! bytes, so where a piece starts is tracked here, in CQE order (the order
//! the kernel consumed the buffer in).
//!
//! The kernel reads the ring and writes the buffers only inside the owner
//! thread's `io_uring_enter` (DEFER_TASKRUN runs the reads as the owner's
//! task work), and only this thread touches them otherwise: no access of
//! ours overlaps one of the kernel's.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The provided buffer group every read selects from.
pub(super) const BGID: u16 = 0;
/// `IOU_PBUF_RING_INC` (Linux 6.12): buffers consumed incrementally. The
/// io-uring crate has no name for it.
const IOU_PBUF_RING_INC: u16 = 2;
/// The kernel's limit on provided buffer ring entries.
pub(super) const MAX_RING_ENTRIES: usize = 32768;
/// End of a piece list.
const NONE: u32 = u32::MAX;
/// `bid` of a piece without a buffer: an end of file.
const NO_BUFFER: u16 = u16::MAX;
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
        // out borrows the pool, so none outlives it.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// One delivered event's data: `len` bytes at `off` in buffer `bid`, and
/// the next piece of the same token.
#[derive(Debug, Clone, Copy)]
struct Piece {
    bid: u16,
    off: u32,
    len: u32,
    next: u32,
}

/// The provided buffers and the pieces handed out.
pub(super) struct Pool {
    /// Ring entries of 16 bytes; entry 0's last field is the tail.
    ring: Mem,
    bufs: Mem,
    count: usize,
    buf_size: u32,
    incremental: bool,
    /// Our copy of the tail, published after each buffer given back.
    tail: u16,
    /// Per buffer: where the kernel's next read into it lands (incremental
    /// mode), pieces of it handed out and not yet handled, and whether the
    /// kernel may still read into it.
    next_off: Vec<u32>,
    busy: Vec<u32>,
    with_kernel: Vec<bool>,
    /// Pieces, in one slab shared by every token (an idle registration
    /// holds none): per token a list, oldest first, and a free list.
    pieces: Vec<Piece>,
    free: u32,
    first: Vec<u32>,
    last: Vec<u32>,
}

impl Pool {
    /// `count` buffers of `size` bytes (`count` a power of two), every one
    /// in the ring, registered with `ring` as group [`BGID`], for tokens
    /// `0..tokens`.
    pub(super) fn new(
        ring: &IoUring,
        tokens: usize,
        count: usize,
        size: u32,
        incremental: bool,
    ) -> io::Result<Pool> {
        assert!(count.is_power_of_two() && count <= MAX_RING_ENTRIES);
        let mut pool = Pool {
            ring: Mem::new(count * std::mem::size_of::<BufRingEntry>())?,
            bufs: Mem::new(count * size as usize)?,
            count,
            buf_size: size,
            incremental,
            tail: 0,
            next_off: vec![0; count],
            busy: vec![0; count],
            with_kernel: vec![false; count],
            pieces: Vec::with_capacity(tokens),
            free: NONE,
            first: vec![NONE; tokens],
            last: vec![NONE; tokens],
        };
        for bid in 0..count {
            pool.give(bid as u16);
        }
        let flags = if incremental { IOU_PBUF_RING_INC } else { 0 };
        let addr = pool.ring.base.as_ptr() as u64;
        // SAFETY: page-aligned memory for `count` entries, owned by `pool`,
        // which its backend drops after the ring (field order of `UringRead`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(addr, count as u16, BGID, flags)
        }?;
        Ok(pool)
    }

    /// Buffers, their size, incremental or not; bytes mapped in all.
    pub(super) fn shape(&self) -> (usize, u32, bool, usize) {
        (
            self.count,
            self.buf_size,
            self.incremental,
            self.ring.len + self.bufs.len,
        )
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

    /// The kernel read `len` bytes into buffer `bid`; `kernel_keeps`: it
    /// will read more into it (`IORING_CQE_F_BUF_MORE`). Returns where the
    /// bytes start, having counted them as a piece handed out.
    fn took(&mut self, bid: u16, len: u32, kernel_keeps: bool) -> io::Result<u32> {
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

    /// A piece of buffer `bid` was handled or dropped: the buffer goes back
    /// to the ring when it was the last and the kernel is done with it.
    fn release(&mut self, bid: u16) {
        if bid == NO_BUFFER {
            return;
        }
        let b = bid as usize;
        self.busy[b] -= 1;
        if self.busy[b] == 0 && !self.with_kernel[b] {
            self.give(bid);
        }
    }

    /// The kernel read `len` bytes into buffer `bid` for token `t`: they
    /// are `t`'s newest piece, readable by [`Pool::data`] until handled.
    pub(super) fn deliver(
        &mut self,
        t: usize,
        bid: u16,
        len: u32,
        kernel_keeps: bool,
    ) -> io::Result<()> {
        let off = self.took(bid, len, kernel_keeps)?;
        self.push(t, bid, off, len);
        Ok(())
    }

    /// The kernel read `len` bytes into buffer `bid` for a registration
    /// that is gone: accounted and released at once.
    pub(super) fn discard(&mut self, bid: u16, len: u32, kernel_keeps: bool) -> io::Result<()> {
        self.took(bid, len, kernel_keeps)?;
        self.release(bid);
        Ok(())
    }

    /// Token `t` reached end of file: an event without data.
    pub(super) fn end_of_file(&mut self, t: usize) {
        self.push(t, NO_BUFFER, 0, 0);
    }

    /// The bytes of `t`'s oldest piece not yet handled (empty at end of
    /// file); `None` when it has none.
    pub(super) fn data(&self, t: usize) -> Option<&[u8]> {
        let i = *self.first.get(t)?;
        if i == NONE {
            return None;
        }
        let p = &self.pieces[i as usize];
        if p.bid == NO_BUFFER {
            return Some(&[]);
        }
        let start = p.bid as usize * self.buf_size as usize + p.off as usize;
        // The kernel writes none of the piece's bytes until its buffer is
        // given back, which takes `handled` or `forget` (`&mut self`).
        // SAFETY: `took` checked the piece lies in its buffer, so in the
        // mapping, which `self` keeps.
        let bytes = unsafe { self.bufs.base.as_ptr().add(start) };
        // SAFETY: as above; the slice borrows `self`.
        Some(unsafe { std::slice::from_raw_parts(bytes, p.len as usize) })
    }

    /// `t`'s oldest piece was handled: released.
    pub(super) fn handled(&mut self, t: usize) {
        if let Some(p) = self.pop(t) {
            self.release(p.bid);
        }
    }

    /// `t` was deleted: every piece it had is released.
    pub(super) fn forget(&mut self, t: usize) {
        while let Some(p) = self.pop(t) {
            self.release(p.bid);
        }
    }

    fn push(&mut self, t: usize, bid: u16, off: u32, len: u32) {
        let p = Piece {
            bid,
            off,
            len,
            next: NONE,
        };
        let i = if self.free == NONE {
            self.pieces.push(p);
            (self.pieces.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = self.pieces[i as usize].next;
            self.pieces[i as usize] = p;
            i
        };
        match self.last[t] {
            NONE => self.first[t] = i,
            l => self.pieces[l as usize].next = i,
        }
        self.last[t] = i;
    }

    fn pop(&mut self, t: usize) -> Option<Piece> {
        let i = *self.first.get(t)?;
        if i == NONE {
            return None;
        }
        let p = self.pieces[i as usize];
        self.first[t] = p.next;
        if p.next == NONE {
            self.last[t] = NONE;
        }
        self.pieces[i as usize].next = self.free;
        self.free = i;
        Some(p)
    }
}
