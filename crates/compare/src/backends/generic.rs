//! The library's backends (`reference`, `epoll-ring`, `uring-poll` in every
//! profile) as the harness drives them: through the contract, chosen at run
//! time by id ([`anypoll::AnyPoller`]), as a program that uses them would.
//! The poller counts its own system calls.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use anypoll::AnyPoller;
use userpoll::{Control, Events, Interest, Poller, Stats};

use super::{Backend, BATCH};

/// A library poller driven by the harness.
#[derive(Debug)]
pub struct Generic {
    poller: AnyPoller,
    events: Events,
}

impl Generic {
    /// Wraps `poller`; takes up to `capacity` (at most 1024) events per wait.
    pub fn new(poller: AnyPoller, capacity: usize) -> Generic {
        Generic {
            poller,
            events: Events::with_capacity(capacity.clamp(1, BATCH)),
        }
    }
}

impl Backend for Generic {
    fn add(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        self.poller
            .control()
            .add(fd, Interest::READABLE, u64::from(token))
    }

    fn delete(&mut self, fd: BorrowedFd<'_>, _token: u32) -> io::Result<()> {
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
        Some(Box::new(Generic {
            poller: self.poller.consumer()?,
            events: Events::with_capacity(self.events.capacity()),
        }))
    }
}
