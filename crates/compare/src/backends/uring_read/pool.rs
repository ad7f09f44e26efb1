//! The memory of the data path: the provided buffer ring (the `buf-ring`
//! crate: its memory, registration, giving buffers back, incremental
//! offsets) and per token the pieces of buffer handed out with events and
//! not yet handled ([`Pool`]). A buffer goes back to the ring once the
//! kernel is done with it and every piece in it was handled or dropped.
//!
//! The kernel reads the ring and writes the buffers only inside the owner
//! thread's `io_uring_enter` (DEFER_TASKRUN runs the reads as the owner's
//! task work), and only this thread touches them otherwise: no access of
//! ours overlaps one of the kernel's.

use std::io;

use buf_ring::BufRing;
use io_uring::IoUring;

pub(super) use buf_ring::MAX_RING_ENTRIES;

/// The provided buffer group every read selects from.
pub(super) const BGID: u16 = 0;
/// End of a piece list.
const NONE: u32 = u32::MAX;
/// `bid` of a piece without a buffer: an end of file.
const NO_BUFFER: u16 = u16::MAX;

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
    bufs: BufRing,
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
        // SAFETY: the pool's backend drops it after the ring (field order
        // of `UringRead`), so the memory outlives the kernel's use of it.
        let bufs = unsafe { BufRing::register(ring, BGID, count, size, incremental) }?;
        Ok(Pool {
            bufs,
            pieces: Vec::with_capacity(tokens),
            free: NONE,
            first: vec![NONE; tokens],
            last: vec![NONE; tokens],
        })
    }

    /// Buffers, their size, incremental or not; bytes mapped in all.
    pub(super) fn shape(&self) -> (usize, u32, bool, usize) {
        self.bufs.shape()
    }

    /// A piece of buffer `bid` was handled or dropped.
    fn release(&mut self, bid: u16) {
        if bid != NO_BUFFER {
            self.bufs.release(bid);
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
        let off = self.bufs.took(bid, len, kernel_keeps)?;
        self.push(t, bid, off, len);
        Ok(())
    }

    /// The kernel read `len` bytes into buffer `bid` for a registration
    /// that is gone: accounted and released at once.
    pub(super) fn discard(&mut self, bid: u16, len: u32, kernel_keeps: bool) -> io::Result<()> {
        self.bufs.took(bid, len, kernel_keeps)?;
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
        Some(self.bufs.bytes(p.bid, p.off, p.len))
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
