//! The interface both backends implement, split the way mio splits
//! `Registry` from `Poll`: a shareable [`Control`] handle for `add`,
//! `modify` and `delete` from any thread (S11), and a [`Poller`] that takes
//! events on one thread at a time.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use crate::{Events, Interest, Stats};

/// Registration control: callable from any thread, also while another
/// thread is blocked in [`Poller::wait`] (S11). Clones share one poller.
pub trait Control: Clone + Send + Sync + 'static {
    /// Registers `fd` with `interest`; events carry `data`.
    ///
    /// Errors (S9, each leaving the poller unchanged): EBADF for an fd that
    /// is not open, EEXIST when `fd` is registered already, ENOSPC when the
    /// poller holds `capacity` registrations (S8), EINVAL for a bad
    /// interest. When the fd is ready already, an event follows (S4).
    fn add(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()>;

    /// Replaces the interest and data of the registration of `fd` and
    /// re-arms it (also a oneshot registration that has fired, S7). No event
    /// carries the old data once this returns (S5, S6). ENOENT when `fd` is
    /// not registered, EINVAL for a bad interest.
    fn modify(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()>;

    /// Removes the registration of `fd`. No event carrying its data is
    /// returned once this returns, even one the kernel had queued (S5).
    /// ENOENT when `fd` is not registered.
    fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()>;

    /// Wakes the poller: a [`Poller::wait`] blocked now returns, with the
    /// events ready by then or with none (`Ok(0)`); if none is blocked, the
    /// next `wait` returns at once. Several wakes before a `wait` make one
    /// return. A wake is never an event: it carries no data and is not
    /// counted in events delivered. Like `mio::Waker::wake` and
    /// `polling::Poller::notify`; callable from any thread.
    fn wake(&self) -> io::Result<()>;
}

/// The consuming side of a poller: takes events. `Send`, not `Sync`: one
/// thread takes at a time, and it may be a different thread each time.
pub trait Poller: Send {
    /// The control handle of this poller.
    type Control: Control;

    /// The control handle; clone it to control from other threads.
    fn control(&self) -> &Self::Control;

    /// Takes the events that are ready now into `events` (cleared first)
    /// and returns how many; never blocks (S12).
    fn poll(&mut self, events: &mut Events) -> io::Result<usize> {
        self.wait(events, Some(Duration::ZERO))
    }

    /// Like [`Poller::poll`], but when nothing is ready blocks until an
    /// event arrives, [`Control::wake`] is called, or `timeout` passes
    /// (`None`: no limit). Returns at once when events are pending, and
    /// `Ok(0)` on timeout or wake (S12).
    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize>;

    /// The maximum number of registrations, fixed at creation (S8).
    fn capacity(&self) -> usize;

    /// An fd that becomes readable when a take may return events or a
    /// wake is pending, to nest the poller in another event loop: a plain
    /// epoll set, mio's `Poll` (through `mio::unix::SourceFd`), tokio's
    /// `AsyncFd`. Its readiness is edge-like: when it reports readable,
    /// take with [`Poller::poll`] until a take returns fewer events than
    /// the buffer holds; events left in the poller do not make it readable
    /// again. Control calls and wakes from other threads reach the owner
    /// while it waits in the outer loop (S11, S12).
    ///
    /// The first call switches the poller to nested use, which may cost a
    /// system call per take or per control call; each backend says which.
    /// EOPNOTSUPP where the backend cannot give such an fd (the default
    /// for a backend that does not say).
    fn pollable_fd(&self) -> io::Result<BorrowedFd<'_>> {
        Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }

    /// A snapshot of the poller's counters.
    fn stats(&self) -> Stats;
}
