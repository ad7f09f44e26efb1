//! The userpoll contract: what both backends (`epoll-ring`, `uring-poll`)
//! share and nothing else.
//!
//! - [`Interest`], [`Ready`], [`Event`] and [`Events`]: the vocabulary.
//! - [`Control`] and [`Poller`]: the interface, split so that control calls
//!   come from any thread while one thread takes events (rule S11).
//! - [`Counters`] and [`Stats`]: system calls, re-arms and recoveries,
//!   counted exactly by each backend.
//! - [`table::Table`]: the fixed-capacity registration table with
//!   generations that every backend keeps (S5, S8, S9).
//! - [`reference::Reference`]: a deliberately simple backend (kernel epoll,
//!   edge-triggered) that the others are compared with.
//! - `conformance` (feature `conformance`): rules S1..S14 as generic test
//!   functions; [`conformance_tests!`] runs them all against a backend.
//!
//! The rules are in `docs/semantics.md` at the root of the repository.
//!
//! ```
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//! use userpoll::{reference::Reference, sys, Control, Events, Interest, Poller};
//!
//! # fn main() -> std::io::Result<()> {
//! let mut poller = Reference::new(16)?;
//! let efd = sys::eventfd()?; // non-blocking, close-on-exec
//! poller.control().add(efd.as_fd(), Interest::READABLE, 42)?;
//!
//! // Another thread may fire, add, modify or delete; here we fire inline.
//! sys::eventfd_signal(efd.as_fd())?;
//!
//! let mut events = Events::with_capacity(64);
//! let n = poller.wait(&mut events, Some(Duration::from_secs(5)))?;
//! assert_eq!(n, 1);
//! let ev = events.iter().next().unwrap();
//! assert_eq!(ev.data(), 42);
//! assert!(ev.is_readable());
//! poller.control().delete(efd.as_fd())?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod counters;
mod event;
pub mod fork;
mod interest;
mod poller;
pub mod reference;
pub mod sys;
pub mod table;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use counters::{Counter, Counters, Stats};
pub use event::{Event, Events};
pub use interest::{Interest, Ready};
pub use poller::{Control, Poller};

/// Raw epoll bit values used by [`Interest`] and [`Ready`].
pub mod bits {
    pub use crate::interest::{ERR, ET, EXCLUSIVE, HUP, IN, ONESHOT, OUT, PRI, RDHUP, WAKEUP};
}
