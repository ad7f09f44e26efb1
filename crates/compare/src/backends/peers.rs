//! The ecosystem's pollers, used exactly as their users use them: mio
//! (edge-triggered, never re-armed) and polling (one-shot, `modify` after
//! each event, as async-io does). Their system calls are counted from
//! their source: mio's `poll` is one `epoll_wait`; polling 3's `wait` on
//! Linux is `timerfd_settime`, `epoll_ctl` (timer), `epoll_wait`, a `read`
//! of its notifier eventfd and `epoll_ctl` (notifier): five calls.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use userpoll::{Counter, Counters, Stats};

use super::{Backend, BATCH};

/// mio 1: `Poll` + `Registry`, `Interest::READABLE` (always edge-triggered).
#[derive(Debug)]
pub struct Mio {
    poll: mio::Poll,
    events: mio::Events,
    counters: Counters,
}

impl Mio {
    /// A new `mio::Poll`.
    pub fn new() -> io::Result<Mio> {
        Ok(Mio {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(BATCH),
            counters: Counters::new(),
        })
    }
}

impl Backend for Mio {
    fn add(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        self.counters.incr(Counter::EpollCtl);
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd.as_raw_fd()),
            mio::Token(token as usize),
            mio::Interest::READABLE,
        )?;
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&mut self, fd: BorrowedFd<'_>, _token: u32) -> io::Result<()> {
        self.counters.incr(Counter::EpollCtl);
        self.poll
            .registry()
            .deregister(&mut mio::unix::SourceFd(&fd.as_raw_fd()))?;
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        self.counters.incr(Counter::EpollWait);
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let before = out.len();
        out.extend(self.events.iter().map(|e| e.token().0 as u32));
        self.counters
            .add(Counter::EventsDelivered, (out.len() - before) as u64);
        Ok(())
    }

    fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

/// polling 3: `Poller` with one-shot `Event::readable`, re-armed by `modify`.
#[derive(Debug)]
pub struct Polling {
    poller: polling::Poller,
    events: polling::Events,
    counters: Counters,
}

impl Polling {
    /// A new `polling::Poller` (an epoll fd, a notifier eventfd, a timerfd).
    pub fn new() -> io::Result<Polling> {
        Ok(Polling {
            poller: polling::Poller::new()?,
            events: polling::Events::with_capacity(NonZeroUsize::new(BATCH).expect("non-zero")),
            counters: Counters::new(),
        })
    }
}

impl Backend for Polling {
    fn add(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        self.counters.incr(Counter::EpollCtl);
        // The harness keeps every registered fd open for the life of the run
        // and drops the poller (closing its epoll set) before closing any fd.
        // SAFETY: so the fd stays open until deleted, as polling requires.
        unsafe {
            self.poller
                .add(&fd, polling::Event::readable(token as usize))?
        };
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&mut self, fd: BorrowedFd<'_>, _token: u32) -> io::Result<()> {
        self.counters.incr(Counter::EpollCtl);
        self.poller.delete(fd)?;
        self.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        self.events.clear();
        // timerfd_settime + epoll_ctl(timer) + epoll_wait + read(notifier) +
        // epoll_ctl(notifier): see the module documentation.
        self.counters.incr(Counter::EpollWait);
        self.counters.add(Counter::EpollCtl, 2);
        self.counters.add(Counter::OtherSyscall, 2);
        self.poller.wait(&mut self.events, Some(timeout))?;
        let before = out.len();
        out.extend(self.events.iter().map(|e| e.key as u32));
        self.counters
            .add(Counter::EventsDelivered, (out.len() - before) as u64);
        Ok(())
    }

    fn handled(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        self.counters.incr(Counter::EpollCtl);
        self.counters.incr(Counter::RearmMode);
        self.poller
            .modify(fd, polling::Event::readable(token as usize))
    }

    fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}
