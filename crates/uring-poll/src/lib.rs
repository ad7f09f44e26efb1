//! The userpoll contract on io_uring multishot poll.
//!
//! Every registration is one multishot `IORING_OP_POLL_ADD`, armed once;
//! the caller takes events from the completion queue, which lives in its
//! own memory. What the kernel leaves to the caller is done here: merging
//! completions per registration (S3), dropping completions of deleted or
//! modified registrations by the generation in `user_data` (S5), re-arming
//! requests the kernel ended and recovering from CQ overflow (S10), and
//! control from other threads in every setup [`Profile`] (S11).
//!
//! ```
//! use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
//! use std::time::Duration;
//! use uring_poll::{Profile, UringPoll};
//! use userpoll::{Control, Events, Interest, Poller};
//!
//! # fn main() -> std::io::Result<()> {
//! let mut poller = match UringPoll::builder().profile(Profile::Defer).build(16) {
//!     Ok(p) => p,
//!     // No io_uring here (ENOSYS, EPERM) or no DEFER_TASKRUN (EOPNOTSUPP).
//!     Err(e) => { eprintln!("skipped: {e}"); return Ok(()) }
//! };
//! // SAFETY: eventfd returns a new fd that nothing else owns, or -1.
//! let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
//! assert!(efd >= 0);
//! // SAFETY: efd is a fresh, open fd owned by nobody else.
//! let efd = unsafe { OwnedFd::from_raw_fd(efd) };
//! poller.control().add(efd.as_fd(), Interest::READABLE, 42)?;
//!
//! let mut events = Events::with_capacity(64);
//! for round in 0..3 {
//!     // SAFETY: writes 8 bytes from a live buffer to an open eventfd.
//!     unsafe { libc::write(efd.as_raw_fd(), 1u64.to_ne_bytes().as_ptr().cast(), 8) };
//!     // Armed once, never re-armed by the caller (S1).
//!     let n = poller.wait(&mut events, Some(Duration::from_secs(5)))?;
//!     assert_eq!(n, 1, "round {round}");
//!     assert_eq!(events.iter().next().unwrap().data(), 42);
//! }
//! assert_eq!(poller.stats().rearms(), 0);
//! poller.control().delete(efd.as_fd())?;
//! # Ok(())
//! # }
//! ```
//!
//! How each contract rule is met, the profiles, and the kernel's pitfalls
//! are in `docs/uring-poll.md` at the root of the repository.

// One job per file:
mod check; // what `add` checks of a file before anything changes (S9)
mod complete; // each completion, the harvest of the CQ, overflow recovery (S10)
mod control; // UringControl: the table under one mutex, the Control calls
mod merge; // completions merged per registration until taken (S3)
mod migrate; // Defer: the ring's single issuer, moving to a new ring
mod ops; // the ring work control calls queue for the owner, per slot
mod owner; // the owner's state: arming, running queued ops, handing out
mod policy; // what a take does under each profile, derived once
mod poller; // UringPoll, Builder, and the take loop (the Poller impl)
mod profile; // setup profiles: flags, ring creation, errors
mod reg; // a registration's life: queued, in the ring, ended, ...
mod ring; // the owner's ring: SQ backlog, flags, the one enter path
mod sqe; // user_data and the SQEs this crate submits
mod sys; // raw io_uring calls, each keeping the errno

pub use control::UringControl;
pub use poller::{Builder, UringPoll};
pub use profile::{Profile, SQPOLL_IDLE_MS};

/// The largest capacity a poller may have (slots share `user_data` with a
/// two-bit completion kind).
pub const MAX_CAPACITY: usize = sqe::MAX_CAPACITY;
