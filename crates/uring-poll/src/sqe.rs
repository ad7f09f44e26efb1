//! What this crate puts in a submission queue entry and reads back from a
//! completion: the `user_data` encoding and the four SQEs it submits
//! (multishot or one-shot POLL_ADD, in-place poll update, cancel).
//!
//! `user_data` is the table [`Key`] (`generation << 32 | slot`) with a
//! two-bit [`Kind`] in bits 30..32 of the slot half, so a slot is below
//! 2^30 ([`MAX_CAPACITY`]). A completion names its registration and
//! generation, so a stale one (deleted, modified, slot reused) is known by
//! a table lookup alone (S5).

use io_uring::{opcode, squeue, types};
use userpoll::table::Key;

/// The largest capacity a poller may have: slots must leave room for the
/// [`Kind`] bits of `user_data`.
pub const MAX_CAPACITY: usize = (1 << 30) - 1;

const KIND_SHIFT: u32 = 30;
const KIND_MASK: u64 = 0b11 << KIND_SHIFT;

/// What a completion answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A POLL_ADD of a registration: an event, or the end of the request.
    Poll = 0,
    /// The POLL_REMOVE that updated a registration in place.
    Update = 1,
    /// An ASYNC_CANCEL of a registration's old request: nothing to do.
    Cancel = 2,
    /// The multishot poll of the poller's own wake-up eventfd.
    Wake = 3,
}

/// `user_data` for `key` and `kind`.
pub fn encode(key: Key, kind: Kind) -> u64 {
    debug_assert!(key.slot() <= MAX_CAPACITY, "slot overlaps the kind bits");
    key.to_u64() | (kind as u64) << KIND_SHIFT
}

/// The inverse of [`encode`].
pub fn decode(user_data: u64) -> (Key, Kind) {
    let kind = match (user_data & KIND_MASK) >> KIND_SHIFT {
        0 => Kind::Poll,
        1 => Kind::Update,
        2 => Kind::Cancel,
        _ => Kind::Wake,
    };
    (Key::from_u64(user_data & !KIND_MASK), kind)
}

/// POLL_ADD of the file in the ring's fixed-file `slot` (where the
/// registration's file was installed at `add`) for `mask` (poll bits),
/// multishot or one-shot, answering with `key`. Polling the installed file,
/// not the fd number, makes every re-arm reach the same file even after the
/// caller closed the fd and the number was reused (S13).
pub fn poll_add(slot: u32, mask: u32, multishot: bool, key: Key) -> squeue::Entry {
    opcode::PollAdd::new(types::Fixed(slot), mask)
        .multi(multishot)
        .build()
        .user_data(encode(key, Kind::Poll))
}

/// Multishot POLL_ADD of the poller's own wake-up eventfd `fd` for `mask`.
pub fn poll_add_wake(fd: i32, mask: u32) -> squeue::Entry {
    opcode::PollAdd::new(types::Fd(fd), mask)
        .multi(true)
        .build()
        .user_data(encode(Key::from_u64(0), Kind::Wake))
}

/// ASYNC_CANCEL of the poll request whose `user_data` is that of `key`.
/// Its own completion is [`Kind::Cancel`].
pub fn cancel(key: Key) -> squeue::Entry {
    opcode::AsyncCancel::new(encode(key, Kind::Poll))
        .build()
        .user_data(encode(key, Kind::Cancel))
}

/// `IORING_POLL_ADD_MULTI`, in `len` of POLL_ADD and of an update.
const POLL_ADD_MULTI: u32 = 1 << 0;
/// `IORING_POLL_UPDATE_EVENTS`, in `len` of POLL_REMOVE.
const POLL_UPDATE_EVENTS: u32 = 1 << 1;
/// `IORING_POLL_UPDATE_USER_DATA`, in `len` of POLL_REMOVE.
const POLL_UPDATE_USER_DATA: u32 = 1 << 2;

/// The kernel's `struct io_uring_sqe`, with the fields a poll update uses
/// named at their kernel offsets (`include/uapi/linux/io_uring.h`). The
/// io-uring crate's [`squeue::Entry`] is `#[repr(C)]` around the same 64
/// bytes; a test pins both sizes and the offsets against a POLL_ADD the
/// crate built.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawSqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    /// `off`: the new user data of an update.
    off: u64,
    /// `addr`: the user data of the request to update.
    addr: u64,
    /// `len`: the update flags.
    len: u32,
    /// `poll32_events`: the new events.
    poll32_events: u32,
    user_data: u64,
    rest: [u64; 3],
}

const _: () = assert!(std::mem::size_of::<RawSqe>() == 64);
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);

/// POLL_REMOVE with `IORING_POLL_UPDATE_EVENTS | IORING_POLL_UPDATE_USER_DATA`:
/// the multishot poll answering with `old` now waits for `mask` and answers
/// with `new`, and is re-armed (a ready fd fires at once, S4). Its own
/// completion is [`Kind::Update`] with `new`: 0 when done, `-ENOENT` when
/// the request had ended, `-EALREADY` when its completion work was pending
/// (the request then goes on unchanged, with the old user data).
///
/// The io-uring crate (0.7) has no builder for this SQE, so it is built
/// here: POLL_REMOVE from the crate (opcode, `fd = -1`, `addr`), then the
/// three fields the update adds.
pub fn poll_update(old: Key, new: Key, mask: u32) -> squeue::Entry {
    let base = opcode::PollRemove::new(encode(old, Kind::Poll)).build();
    // squeue::Entry is #[repr(C)] around the kernel's 64-byte io_uring_sqe;
    // RawSqe is a #[repr(C)] plain-data view of the same 64 bytes (sizes
    // asserted above, offsets tested).
    // SAFETY: same size, and every bit pattern is valid for both types.
    let mut raw: RawSqe = unsafe { std::mem::transmute::<squeue::Entry, RawSqe>(base) };
    raw.off = encode(new, Kind::Poll);
    raw.len = POLL_UPDATE_EVENTS | POLL_UPDATE_USER_DATA | POLL_ADD_MULTI;
    raw.poll32_events = poll32(mask);
    raw.user_data = encode(new, Kind::Update);
    // SAFETY: as above, the inverse view of the same 64 bytes.
    unsafe { std::mem::transmute::<RawSqe, squeue::Entry>(raw) }
}

/// The kernel reads `poll32_events` as a little-endian-ordered pair of
/// 16-bit halves; on big-endian machines the halves are swapped (as the
/// io-uring crate's PollAdd does).
const fn poll32(mask: u32) -> u32 {
    if cfg!(target_endian = "big") {
        mask.rotate_left(16)
    } else {
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(e: &squeue::Entry) -> RawSqe {
        // SAFETY: see poll_update: same 64 bytes, plain data.
        unsafe { std::mem::transmute_copy::<squeue::Entry, RawSqe>(e) }
    }

    fn key(slot: u32, generation: u32) -> Key {
        Key::new(slot, generation)
    }

    #[test]
    fn user_data_round_trips_every_kind() {
        for kind in [Kind::Poll, Kind::Update, Kind::Cancel, Kind::Wake] {
            for k in [key(0, 0), key(MAX_CAPACITY as u32, u32::MAX), key(7, 3)] {
                assert_eq!(decode(encode(k, kind)), (k, kind));
            }
        }
    }

    #[test]
    fn raw_sqe_offsets_match_the_crate_poll_add() {
        // The crate fills fd, len (multishot), poll32_events and user_data
        // of a POLL_ADD; our view must read them back at the same places.
        let e = poll_add(42, 0x2019, true, key(5, 9));
        let r = raw(&e);
        assert_eq!(r.opcode, opcode::PollAdd::CODE);
        assert_eq!(r.fd, 42);
        assert_eq!(r.flags, squeue::Flags::FIXED_FILE.bits());
        let w = raw(&poll_add_wake(7, 1));
        assert_eq!((w.fd, w.flags, w.len), (7, 0, POLL_ADD_MULTI));
        assert_eq!(r.len, POLL_ADD_MULTI);
        assert_eq!(r.poll32_events, poll32(0x2019));
        assert_eq!(r.user_data, encode(key(5, 9), Kind::Poll));
        assert_eq!(e.get_user_data(), r.user_data);
        // And a cancel's target lands in addr.
        let c = raw(&cancel(key(5, 9)));
        assert_eq!(c.addr, encode(key(5, 9), Kind::Poll));
    }

    #[test]
    fn poll_update_sets_exactly_the_update_fields() {
        let e = poll_update(key(3, 1), key(3, 2), 0x1);
        let r = raw(&e);
        assert_eq!(r.opcode, opcode::PollRemove::CODE);
        assert_eq!(r.fd, -1);
        assert_eq!(r.addr, encode(key(3, 1), Kind::Poll));
        assert_eq!(r.off, encode(key(3, 2), Kind::Poll));
        assert_eq!(
            r.len,
            POLL_UPDATE_EVENTS | POLL_UPDATE_USER_DATA | POLL_ADD_MULTI
        );
        assert_eq!(r.poll32_events, poll32(0x1));
        assert_eq!(e.get_user_data(), encode(key(3, 2), Kind::Update));
        assert_eq!((r.flags, r.ioprio, r.rest), (0, 0, [0; 3]));
    }
}
