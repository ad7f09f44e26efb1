//! The server's own system calls: the listening socket, `accept4`, `recv`,
//! `send` (through rustix) and the signalfd (libc: rustix has neither
//! `signalfd` nor a safe signal mask), each giving `io::Error` on failure.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use rustix::net::{RecvFlags, SendFlags, SocketFlags};
use userpoll::syscall;

/// A non-blocking listening socket on `addr` with a backlog of `backlog`
/// (the kernel caps it at `net.core.somaxconn`). std listens with 128,
/// which drops SYNs when a few hundred clients connect at once; a second
/// `listen` raises it.
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    rustix::net::listen(&listener, backlog)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// One `accept4`: a new non-blocking, close-on-exec connection, or the
/// error (`WouldBlock` when none is waiting).
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // accept4 with null address pointers: the peer is not asked for.
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    Ok(rustix::net::accept_with(listener, flags)?)
}

/// One `recv` into the spare capacity of `buf`, which grows by what was
/// read: bytes read (0 at end of stream). No zero-filling first.
pub fn recv_spare(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = rustix::buffer::spare_capacity(buf);
    let (n, _) = rustix::net::recv(fd, spare, RecvFlags::empty())?;
    Ok(n)
}

/// One `send` of `buf` without SIGPIPE (a peer that reset gives EPIPE).
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(rustix::net::send(fd, buf, SendFlags::NOSIGNAL)?)
}

/// The signals the server handles through its event loop.
pub const SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1];

/// Blocks [`SIGNALS`] in this thread (and every thread it starts later)
/// and returns a non-blocking signalfd that reports them. Call before any
/// thread is started, so no thread takes them the default way.
pub fn signalfd() -> io::Result<OwnedFd> {
    // SAFETY: an all-zero sigset_t is valid storage; sigemptyset fills it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is live; the calls only write it.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
    }
    // SAFETY: set is a live, initialised sigset_t.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: set is live; -1 asks for a new fd.
    let fd = unsafe { syscall!(signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)) }?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal from a signalfd: its number, or `None` when
/// none is pending.
pub fn read_signal(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    // One whole signalfd_siginfo, as bytes; its first field is the u32
    // ssi_signo.
    const _: () = assert!(std::mem::offset_of!(libc::signalfd_siginfo, ssi_signo) == 0);
    let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    match rustix::io::read(fd, &mut info) {
        Ok(_) => {
            let [a, b, c, d, ..] = info;
            Ok(Some(u32::from_ne_bytes([a, b, c, d]) as i32))
        }
        Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// CPU time (user + system) this process has used, every thread of it.
pub fn process_cpu() -> std::time::Duration {
    // SAFETY: an all-zero rusage is valid storage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is live; getrusage only writes it.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
