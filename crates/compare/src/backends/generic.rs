//! Any `userpoll::Poller` as a backend: the path `reference`, `epoll-ring`
//! and `uring-poll` take. The poller counts its own system calls.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use userpoll::{Control, Events, Interest, Poller, Stats};

use super::{Backend, BATCH};

/// A `userpoll::Poller` driven by the harness.
#[derive(Debug)]
pub struct Generic<P> {
    poller: P,
    events: Events,
    /// Makes another consumer of the same poller, for pollers that have one.
    split: Option<fn(&P) -> P>,
}

impl<P: Poller> Generic<P> {
    /// Wraps `poller`; takes up to `capacity` (at most 1024) events per wait.
    pub fn new(poller: P, capacity: usize) -> Generic<P> {
        Generic {
            poller,
            events: Events::with_capacity(capacity.clamp(1, BATCH)),
            split: None,
        }
    }

    /// Wraps a poller that can hand out more consumers with `split`.
    pub fn with_consumers(poller: P, capacity: usize, split: fn(&P) -> P) -> Generic<P> {
        Generic {
            split: Some(split),
            ..Generic::new(poller, capacity)
        }
    }
}

impl<P: Poller + 'static> Backend for Generic<P> {
    fn add(&mut self, fd: RawFd, token: u32) -> io::Result<()> {
        // SAFETY: the harness keeps every registered fd open until the
        // backend is dropped or the fd deleted.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        self.poller
            .control()
            .add(fd, Interest::READABLE, u64::from(token))
    }

    fn delete(&mut self, fd: RawFd, _token: u32) -> io::Result<()> {
        // SAFETY: as in add.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        self.poller.control().delete(fd)
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        match self.poller.wait(&mut self.events, Some(timeout)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        out.extend(self.events.iter().map(|e| e.data() as u32));
        Ok(())
    }

    fn stats(&self) -> Stats {
        self.poller.stats()
    }

    fn another_consumer(&self) -> Option<Box<dyn Backend + Send>> {
        let split = self.split?;
        Some(Box::new(Generic {
            poller: split(&self.poller),
            events: Events::with_capacity(self.events.capacity()),
            split: self.split,
        }))
    }
}
