//! Raw epoll, three ways: level-triggered, edge-triggered, and one-shot
//! re-armed with `EPOLL_CTL_MOD` after each event. One `epoll_wait` per
//! wait, one `epoll_ctl` per control call and per re-arm.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use userpoll::{syscall, Counter, Counters, Stats};

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
    fn bits(self) -> u32 {
        let flag = match self {
            Mode::Level => 0,
            Mode::Edge => libc::EPOLLET,
            Mode::Oneshot => libc::EPOLLONESHOT,
        };
        (libc::EPOLLIN | flag) as u32
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
    buf: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new epoll instance; `capacity` only sizes nothing here (epoll grows).
    pub fn new(mode: Mode, _capacity: usize) -> io::Result<Epoll> {
        // SAFETY: plain system call with no pointers.
        let fd = unsafe { syscall!(epoll_create1(libc::EPOLL_CLOEXEC)) }?;
        Ok(Epoll {
            inner: Arc::new(EpollShared {
                // SAFETY: epoll_create1 returned a new fd that nothing else owns.
                epfd: unsafe { OwnedFd::from_raw_fd(fd) },
                counters: Counters::new(),
            }),
            mode,
            buf: Vec::with_capacity(BATCH),
        })
    }

    /// Another consumer of the same instance (its own event buffer).
    pub fn consumer(&self) -> Epoll {
        Epoll {
            inner: self.inner.clone(),
            mode: self.mode,
            buf: Vec::with_capacity(BATCH),
        }
    }

    fn ctl(&self, op: i32, fd: RawFd, token: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: self.mode.bits(),
            u64: u64::from(token),
        };
        self.inner.counters.incr(Counter::EpollCtl);
        // SAFETY: epfd is open for the life of self; ev is a live epoll_event.
        unsafe { syscall!(epoll_ctl(self.inner.epfd.as_raw_fd(), op, fd, &mut ev)) }.map(drop)
    }
}

impl Backend for Epoll {
    fn add(&mut self, fd: RawFd, token: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token)?;
        self.inner.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn delete(&mut self, fd: RawFd, token: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, token)?;
        self.inner.counters.incr(Counter::ControlOps);
        Ok(())
    }

    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()> {
        self.inner.counters.incr(Counter::EpollWait);
        // SAFETY: buf has capacity for BATCH entries; the kernel writes at
        // most BATCH and returns how many.
        let n = match unsafe {
            syscall!(epoll_wait(
                self.inner.epfd.as_raw_fd(),
                self.buf.as_mut_ptr(),
                BATCH as i32,
                timeout_ms(timeout)
            ))
        } {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        // SAFETY: the kernel initialised the first n entries.
        unsafe { self.buf.set_len(n) };
        out.extend(self.buf.iter().map(|ev| ev.u64 as u32));
        self.inner.counters.add(Counter::EventsDelivered, n as u64);
        Ok(())
    }

    fn handled(&mut self, fd: RawFd, token: u32) -> io::Result<()> {
        if self.mode == Mode::Oneshot {
            self.ctl(libc::EPOLL_CTL_MOD, fd, token)?;
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
