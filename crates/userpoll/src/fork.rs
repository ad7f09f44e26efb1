//! Refusing a poller inherited across `fork(2)`.
//!
//! A forked child gets copies of the parent's fds, and with them the
//! parent's epoll instance or io_uring: the same kernel object. A child that
//! waited on it would take events the parent is owed, and a control call
//! would change the parent's registrations; a ring mapped with
//! `MADV_DONTFORK` is not even there. So every backend remembers the
//! process it was made in ([`ForkCheck`]) and answers EPERM to any `poll`,
//! `wait`, `add`, `modify` or `delete` made in a child. Dropping a poller in
//! a child closes the child's copies of its fds and touches nothing the
//! parent uses.
//!
//! The check costs one relaxed atomic load, no system call: a
//! `pthread_atfork` child handler counts forks. A child made by a raw
//! `clone`/`vfork` system call (not through libc's `fork`) is not seen;
//! such a child must not touch its parent's pollers.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use crate::sys::errno;

/// How many times this process is a fork of the process its pollers were
/// made in, counted by the `pthread_atfork` child handler.
static FORKS: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

extern "C" fn in_child() {
    // Async-signal-safe: one atomic add, nothing else.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The process a poller was made in. Copy it into every handle that may be
/// used after a fork; [`ForkCheck::check`] fails in a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkCheck {
    forks: u64,
}

impl ForkCheck {
    /// Remembers the current process (installs the fork counter once per
    /// process).
    pub fn new() -> ForkCheck {
        INSTALL.call_once(|| {
            // A failure (ENOMEM) leaves forks undetected, which is the
            // state before this module existed.
            // SAFETY: registers a handler that only adds to an atomic.
            let r = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
            debug_assert_eq!(r, 0, "pthread_atfork");
        });
        ForkCheck {
            forks: FORKS.load(Ordering::Relaxed),
        }
    }

    /// Whether this is a forked child of the process that made the poller.
    #[inline]
    pub fn is_child(&self) -> bool {
        FORKS.load(Ordering::Relaxed) != self.forks
    }

    /// EPERM in a forked child, with a message that says what to do.
    #[inline]
    pub fn check(&self) -> io::Result<()> {
        if self.is_child() {
            return Err(forked());
        }
        Ok(())
    }
}

impl Default for ForkCheck {
    fn default() -> ForkCheck {
        ForkCheck::new()
    }
}

#[cold]
fn forked() -> io::Error {
    errno(libc::EPERM)
}
