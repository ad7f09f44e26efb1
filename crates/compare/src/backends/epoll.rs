//! Raw epoll, three ways: level-triggered, edge-triggered, and one-shot
//! re-armed with `EPOLL_CTL_MOD` after each event. One `epoll_wait` per
//! wait, one `epoll_ctl` per control call and per re-arm.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::epoll;
use userpoll::sys::EpollBuffer;
use userpoll::{Counter, Counters, Stats};

use super::{timeout_ms, Backend, BATCH};

/// Which epoll flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `EPOLLIN`.
    Level,
    /// `EPOLLIN | EPOLLET`.
    Edge,
    /// `EPOLLIN | EPOLLONESHOT`, re-armed after each event.
    Oneshot,
}

impl Mode {
    fn flags(self) -> epoll::EventFlags {
        let flag = match self {
            Mode::Level => epoll::EventFlags::empty(),
            Mode::Edge => epoll::EventFlags::ET,
            Mode::Oneshot => epoll::EventFlags::ONESHOT,
        };
        epoll::EventFlags::IN | flag
    }
}

/// What the consumers of one epoll instance share.
#[derive(Debug)]
struct EpollShared {
    epfd: OwnedFd,
    counters: Counters,
}

/// A raw epoll instance, or one of several consumers of it (edge-triggered
/// and one-shot deliver each readiness change to one `epoll_wait` caller).
#[derive(Debug)]
pub struct Epoll {
    inner: Arc<EpollShared>,
    mode: Mode,
    buf: EpollBuffer,
}

/// The `epoll_ctl` operations.
#[derive(Debug, Clone, Copy)]
enum Ctl {
    Add,
    Mod,
    Del,
}

impl Epoll {
    /// A new epoll instance; `capacity` only sizes nothing here (epoll grows).
    pub fn new(mode: Mode, _capacity: usize) -> io::Result<Epoll> {
        Ok(Epoll {
            inner: Arc::new(EpollShared {
                epfd: epoll::create(epoll::CreateFlags::CLOEXEC)?,
                counters: Counters::new(),
            }),
            mode,
            buf: EpollBuffer::new(BATCH),
        })
    }

    /// Another consumer of the same instance (its own event buffer).
    pub fn consumer(&self) -> Epoll {
        Epoll {
            inner: self.inner.clone(),
            mode: self.mode,
            buf: EpollBuffer::new(BATCH),
        }
    }

    fn ctl(&self, op: Ctl, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        let (epfd, flags) = (&self.inner.epfd, self.mode.flags());
        let data = epoll::EventData::new_u64(u64::from(token));
        self.inner.counters.incr(Counter::EpollCtl);
        Ok(match op {
            Ctl::Add => epoll::add(epfd, fd, data, flags),
            Ctl::Mod => epoll::modify(epfd, fd, data, flags),
            Ctl::Del => epoll::delete(epfd, fd),
        }?)
    }
}

impl Backend for Epoll {
    fn add(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        self.ctl(Ctl::Add, fd, token)?;
        self.inner.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        self.ctl(Ctl::Del, fd, token)?;
        self.inner.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        self.inner.counters.incr(Counter::EpollWait);
        let epfd = self.inner.epfd.as_fd();
        let n = match self.buf.wait(epfd, BATCH, timeout_ms(timeout)) {
            Ok(got) => {
                let n = got.len();
                out.extend(got.map(|(data, _)| data as u32));
                n
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        self.inner.counters.add(Counter::EventsDelivered, n as u64);
        Ok(())
    }

    fn handled(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()> {
        if self.mode == Mode::Oneshot {
            self.ctl(Ctl::Mod, fd, token)?;
            self.inner.counters.incr(Counter::RearmMode);
        }
        Ok(())
    }

    fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    fn another_consumer(&self) -> Option<Box<dyn Backend + Send>> {
        (self.mode != Mode::Level).then(|| Box::new(self.consumer()) as Box<dyn Backend + Send>)
    }
}
