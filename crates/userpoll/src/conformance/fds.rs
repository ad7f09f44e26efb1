//! Real file descriptors for the tests: non-blocking, close-on-exec.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::syscall;

pub use crate::sys::{eventfd, pipe, socketpair};

/// Fires an eventfd: adds 1 to its counter.
pub fn fire(efd: BorrowedFd<'_>) -> io::Result<()> {
    write(efd, &1u64.to_ne_bytes())
}

/// Writes all of `buf` to `fd` with one `write`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<()> {
    // SAFETY: buf is live for its length.
    let n = unsafe { syscall!(write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len())) }?;
    assert_eq!(n as usize, buf.len(), "short write");
    Ok(())
}

/// Reads until the fd would block; returns the bytes read.
pub fn drain(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        // SAFETY: buf is live and writable for its length.
        match unsafe { syscall!(read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())) } {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as usize,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
            Err(e) => return Err(e),
        }
    }
}

/// `shutdown(fd, SHUT_WR)`: the peer sees read hang-up.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call with no pointers.
    unsafe { syscall!(shutdown(fd.as_raw_fd(), libc::SHUT_WR)) }.map(drop)
}

/// An fd number that is not open, near the top of RLIMIT_NOFILE, so no
/// other test opens it meanwhile.
pub fn unused_fd_number() -> i32 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a live rlimit.
    unsafe { crate::syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut rl)) }.expect("getrlimit");
    let top = (rl.rlim_cur.min(1 << 20) as i32) - 1;
    (top - 64..=top)
        .rev()
        // SAFETY: F_GETFD only reads the fd table.
        .find(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1)
        .expect("a free fd number near RLIMIT_NOFILE")
}
