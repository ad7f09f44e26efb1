//! Real file descriptors for the tests: non-blocking, close-on-exec.
use std::io;
use std::os::fd::BorrowedFd;

pub use crate::sys::{eventfd, pipe, socketpair};

/// Fires an eventfd: adds 1 to its counter.
pub fn fire(efd: BorrowedFd<'_>) -> io::Result<()> {
    write(efd, &1u64.to_ne_bytes())
}

/// Writes all of `buf` to `fd` with one `write`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<()> {
    let n = rustix::io::write(fd, buf)?;
    assert_eq!(n, buf.len(), "short write");
    Ok(())
}

/// Reads until the fd would block; returns the bytes read.
pub fn drain(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(rustix::io::Errno::AGAIN) => return Ok(total),
            Err(e) => return Err(e.into()),
        }
    }
}

/// `shutdown(fd, SHUT_WR)`: the peer sees read hang-up.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::net::shutdown(fd, rustix::net::Shutdown::Write)?)
}

/// An fd number that is not open, near the top of RLIMIT_NOFILE, so no
/// other test opens it meanwhile.
pub fn unused_fd_number() -> i32 {
    let (soft, _) = crate::sys::nofile_limit();
    let top = (soft.min(1 << 20) as i32) - 1;
    (top - 64..=top)
        .rev()
        // Stays on libc: rustix's fcntl takes a BorrowedFd, which a number
        // that may not be open cannot soundly be.
        // SAFETY: F_GETFD only reads the fd table; any number is allowed.
        .find(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1)
        .expect("a free fd number near RLIMIT_NOFILE")
}
