//! The fds a run fires and watches: eventfds, pipes, UNIX socketpairs or real
//! TCP connections over loopback. Each source has a read end (registered
//! with the backend, drained by the handler) and a write end (fired by a
//! writer thread; the same fd for an eventfd).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// What kind of fd a run uses. Written by [`FdKind::name`] on the command
/// line, in the JSON and in the gate's suite file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdKind {
    /// `eventfd(2)`: one fd, a write adds 1, a read of 8 bytes drains it.
    Eventfd,
    /// `pipe2(2)`: a write of 1 byte, a read drains it.
    Pipe,
    /// `socketpair(AF_UNIX, SOCK_STREAM)`.
    Socketpair,
    /// A real TCP connection over 127.0.0.1 (`TCP_NODELAY` on the writer).
    Tcp,
}

impl FdKind {
    /// Every kind, in the order tests and docs list them.
    pub const ALL: [FdKind; 4] = [
        FdKind::Eventfd,
        FdKind::Pipe,
        FdKind::Socketpair,
        FdKind::Tcp,
    ];

    /// The name used on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            FdKind::Eventfd => "eventfd",
            FdKind::Pipe => "pipe",
            FdKind::Socketpair => "socketpair",
            FdKind::Tcp => "tcp",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Result<FdKind, String> {
        FdKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown fd kind {s:?}; use eventfd, pipe, socketpair or tcp"))
    }

    /// Process fds each source takes.
    pub fn fds_per_source(self) -> u64 {
        match self {
            FdKind::Eventfd => 1,
            _ => 2,
        }
    }

    /// Process fds taken besides the sources (the TCP listener).
    pub fn fixed_fds(self) -> u64 {
        match self {
            FdKind::Tcp => 1,
            _ => 0,
        }
    }
}

/// A set of `n` fd sources of one kind, open for the life of the value.
#[derive(Debug)]
pub struct FdSet {
    kind: FdKind,
    read: Vec<OwnedFd>,
    /// Write ends; empty for eventfds (the read end is also the write end).
    write: Vec<OwnedFd>,
    setup_syscalls: u64,
}

impl FdSet {
    /// Opens `n` sources of `kind`, all non-blocking and close-on-exec.
    pub fn open(kind: FdKind, n: usize) -> io::Result<FdSet> {
        let mut set = FdSet {
            kind,
            read: Vec::with_capacity(n),
            write: Vec::with_capacity(if kind == FdKind::Eventfd { 0 } else { n }),
            setup_syscalls: 0,
        };
        let listener = if kind == FdKind::Tcp {
            // socket, setsockopt(SO_REUSEADDR), bind, listen, getsockname.
            set.setup_syscalls += 5;
            let l = TcpListener::bind("127.0.0.1:0").map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on 127.0.0.1 for --fd-kind tcp: {e}"),
                )
            })?;
            let addr = l.local_addr()?;
            Some((l, addr))
        } else {
            None
        };
        for _ in 0..n {
            let (r, w) = match (&listener, kind) {
                (_, FdKind::Eventfd) => (eventfd()?, None),
                (_, FdKind::Pipe) => {
                    let (r, w) = pipe()?;
                    (r, Some(w))
                }
                (_, FdKind::Socketpair) => {
                    let (r, w) = socketpair()?;
                    (r, Some(w))
                }
                (Some((l, addr)), FdKind::Tcp) => {
                    // socket, connect, accept4, two FIONBIO ioctls, one setsockopt.
                    set.setup_syscalls += 6;
                    let w = TcpStream::connect(addr)?;
                    let (r, _) = l.accept()?;
                    r.set_nonblocking(true)?;
                    w.set_nonblocking(true)?;
                    w.set_nodelay(true)?;
                    (OwnedFd::from(r), Some(OwnedFd::from(w)))
                }
                (None, FdKind::Tcp) => unreachable!("a tcp set always has a listener"),
            };
            if kind != FdKind::Tcp {
                set.setup_syscalls += 1;
            }
            set.read.push(r);
            if let Some(w) = w {
                set.write.push(w);
            }
        }
        if listener.is_some() {
            // The listener closes here.
            set.setup_syscalls += 1;
        }
        Ok(set)
    }

    /// The kind of every source.
    pub fn kind(&self) -> FdKind {
        self.kind
    }

    /// Number of sources.
    pub fn len(&self) -> usize {
        self.read.len()
    }

    /// No sources.
    pub fn is_empty(&self) -> bool {
        self.read.is_empty()
    }

    /// System calls made to open the set.
    pub fn setup_syscalls(&self) -> u64 {
        self.setup_syscalls
    }

    /// System calls that closing the set makes (one `close` per fd).
    pub fn close_syscalls(&self) -> u64 {
        (self.read.len() + self.write.len()) as u64
    }

    /// The read end of source `i`: what backends register.
    #[inline]
    pub fn read_fd(&self, i: usize) -> BorrowedFd<'_> {
        self.read[i].as_fd()
    }

    /// The write end of source `i`: what writers fire (the read end for
    /// an eventfd).
    #[inline]
    pub(crate) fn write_end(&self, i: usize) -> BorrowedFd<'_> {
        match self.kind {
            FdKind::Eventfd => self.read[i].as_fd(),
            _ => self.write[i].as_fd(),
        }
    }

    /// Fires source `i`: one `write` (8 bytes to an eventfd, 1 byte otherwise).
    #[inline]
    pub fn fire(&self, i: usize) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        let len = if self.kind == FdKind::Eventfd { 8 } else { 1 };
        match rustix::io::write(self.write_end(i), &one[..len]) {
            Ok(_) => Ok(()),
            Err(rustix::io::Errno::AGAIN) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "the {} write end of source {i} is full: the run fires faster than it \
                     drains; use --handler read",
                    self.kind.name()
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Drains source `i` the way a server handler does: reads until a read
    /// returns less than a full buffer. Returns (read calls, bytes read);
    /// 0 bytes means the event was spurious (`EAGAIN` at once).
    #[inline]
    pub fn drain(&self, i: usize) -> (u64, u64) {
        drain_fd(self.read[i].as_fd(), self.kind)
    }

    /// Drains every source until `EAGAIN`, so a run starts with nothing
    /// ready. Returns the system calls made.
    pub fn drain_all(&self) -> u64 {
        let mut calls = 0;
        for r in &self.read {
            let mut buf = [0u8; 4096];
            loop {
                calls += 1;
                match rustix::io::read(r, &mut buf) {
                    Ok(n) if n > 0 => continue,
                    _ => break,
                }
            }
        }
        calls
    }
}

#[inline]
fn drain_fd(fd: BorrowedFd<'_>, kind: FdKind) -> (u64, u64) {
    let mut buf = [0u8; 256];
    let want = if kind == FdKind::Eventfd {
        8
    } else {
        buf.len()
    };
    let (mut calls, mut bytes) = (0, 0);
    loop {
        calls += 1;
        match rustix::io::read(fd, &mut buf[..want]) {
            Ok(n) => {
                bytes += n as u64;
                if n < want || kind == FdKind::Eventfd {
                    return (calls, bytes);
                }
            }
            Err(_) => return (calls, bytes),
        }
    }
}

fn eventfd() -> io::Result<OwnedFd> {
    userpoll::sys::eventfd().map_err(fd_error)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    userpoll::sys::pipe().map_err(fd_error)
}

fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    userpoll::sys::socketpair().map_err(fd_error)
}

fn fd_error(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EMFILE) {
        io::Error::new(
            e.kind(),
            format!("{e}: out of fds (RLIMIT_NOFILE); ask for fewer with --fds"),
        )
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_fires_and_drains() {
        for kind in FdKind::ALL {
            let set = FdSet::open(kind, 3).unwrap();
            assert_eq!(set.len(), 3);
            assert_eq!(set.drain(1).1, 0, "{kind:?}: nothing before a fire");
            set.fire(1).unwrap();
            // TCP over loopback delivers before write returns.
            let (_, bytes) = set.drain(1);
            assert_eq!(
                bytes,
                if kind == FdKind::Eventfd { 8 } else { 1 },
                "{kind:?}"
            );
            assert_eq!(set.drain(1).1, 0, "{kind:?}: drained");
            set.fire(2).unwrap();
            set.fire(2).unwrap();
            assert!(set.drain_all() >= 4);
            assert_eq!(set.drain(2).1, 0);
            assert_eq!(FdKind::parse(kind.name()), Ok(kind));
        }
        assert!(FdKind::parse("fifo").unwrap_err().contains("eventfd, pipe"));
    }
}
