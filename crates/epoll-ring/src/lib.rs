//! The EPOLL_USERPOLL ring in user space, byte for byte, with a real
//! producer.
//!
//! The EPOLL_USERPOLL patch series (2019, v1..v5) made an epoll instance
//! fill a ring in the caller's memory so that events could be taken without
//! a system call. It was never merged, so no kernel fills that ring. This
//! crate builds the ring exactly as the series laid it out ([`ring`]) and
//! runs its producer in user space on a stock kernel: a driver takes
//! readiness from a kernel epoll instance (edge-triggered registrations,
//! registered once, never re-armed) and publishes it with the series'
//! multi-producer protocol. The consumer side is a [`userpoll::Poller`]:
//! [`EpollRing`].
//!
//! - [`ring`]: the layout (128-byte header, 16-byte items, a power-of-two
//!   index ring of `u32` slot numbers), the v4/v5 producer protocol, the
//!   consumer protocol extended to several consumers, generations for
//!   delete while a producer is mid-publish. Usable on its own.
//! - [`EpollRing`] / [`RingControl`]: the poller, with the driver on its
//!   own thread ([`DriverMode::Thread`], the default) or run inside `wait`
//!   ([`DriverMode::Inline`]).
//!
//! The design, every memory ordering and its reason, and the costs of each
//! mode are in `docs/epoll-ring.md` at the root of the repository.
//!
//! ```
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//! use epoll_ring::{DriverMode, EpollRing};
//! use userpoll::{sys, Control, Events, Interest, Poller};
//!
//! # fn main() -> std::io::Result<()> {
//! for mode in [DriverMode::Thread, DriverMode::Inline] {
//!     let mut poller = EpollRing::with_mode(16, mode)?;
//!     let efd = sys::eventfd()?; // non-blocking, close-on-exec
//!     poller.control().add(efd.as_fd(), Interest::READABLE, 42)?;
//!
//!     sys::eventfd_signal(efd.as_fd())?;
//!
//!     let mut events = Events::with_capacity(64);
//!     let n = poller.wait(&mut events, Some(Duration::from_secs(5)))?;
//!     assert_eq!(n, 1);
//!     let ev = events.iter().next().unwrap();
//!     assert_eq!(ev.data(), 42);
//!     assert!(ev.is_readable());
//!
//!     // The ring is in the series' layout.
//!     assert_eq!(poller.ring().header().magic.load(std::sync::atomic::Ordering::Relaxed), 0xeb01eb01);
//!     poller.control().delete(efd.as_fd())?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod ring;
mod sync;

#[cfg(not(loom))]
mod driver;
#[cfg(not(loom))]
mod instance;
#[cfg(not(loom))]
mod poller;

#[cfg(not(loom))]
pub use driver::DriverMode;
#[cfg(not(loom))]
pub use poller::{EpollRing, RingControl, SPINS_BEFORE_PARK};
