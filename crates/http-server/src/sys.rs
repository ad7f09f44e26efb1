//! The server's own system calls: the listening socket, `accept4`, `recv`,
//! `send` and the signalfd, each turning -1 into `io::Error`.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use userpoll::syscall;

/// A non-blocking listening socket on `addr` with a backlog of `backlog`
/// (the kernel caps it at `net.core.somaxconn`). std listens with 128,
/// which drops SYNs when a few hundred clients connect at once; a second
/// `listen` raises it.
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // SAFETY: plain system call on an open socket.
    unsafe { syscall!(listen(listener.as_raw_fd(), backlog)) }?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// One `accept4`: a new non-blocking, close-on-exec connection, or the
/// error (`WouldBlock` when none is waiting).
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: null address pointers are allowed: the peer is not asked for.
    let fd = unsafe {
        syscall!(accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            flags
        ))
    }?;
    // SAFETY: accept4 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One `recv` into the spare capacity of `buf`, which grows by what was
/// read: bytes read (0 at end of stream). No zero-filling first.
pub fn recv_spare(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: spare is live and writable for its length; the kernel writes
    // at most that many bytes.
    let n = unsafe {
        syscall!(recv(
            fd.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            spare.len(),
            0
        ))
    }? as usize;
    // SAFETY: the kernel initialised the first n bytes of the spare room.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One `send` of `buf` without SIGPIPE (a peer that reset gives EPIPE).
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is live for its length.
    let n = unsafe {
        syscall!(send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL
        ))
    }?;
    Ok(n as usize)
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
    // SAFETY: an all-zero signalfd_siginfo is valid storage.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let len = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: info is live and writable for len bytes.
    match unsafe {
        syscall!(read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            len
        ))
    } {
        Ok(_) => Ok(Some(info.ssi_signo as i32)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
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
