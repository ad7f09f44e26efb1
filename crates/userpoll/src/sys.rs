//! The one place where raw system-call results become `io::Result`, and the
//! constructors for the errors the contract names (S9).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// Calls a libc function and turns `-1` into the thread's `errno` as an
/// `io::Error`, the way mio's `syscall!` does.
///
/// It is as unsafe as the call it makes, so it may only be used inside an
/// `unsafe` block, under the caller's `// SAFETY:` comment:
/// `let fd = unsafe { syscall!(eventfd(0, 0)) }?;`. (It once wrapped the
/// call in `unsafe` itself, which let safe code make any libc call.)
///
/// ```compile_fail
/// // Outside `unsafe` it does not compile.
/// let _ = userpoll::syscall!(close(-1));
/// ```
#[macro_export]
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)* ) ) => {{
        let res = libc::$fn($($arg, )*);
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// The error for `errno`, as a system call gives it: `raw_os_error()` is
/// `Some(errno)` and `kind()` follows from it, so a program matches the
/// library's errors as it matches epoll's, mio's or polling's. Errors carry
/// no message of their own: each method's documentation says, per errno,
/// the cause and what to do (the whole table: docs/semantics.md, "Errors").
pub fn errno(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// The old shape of [`errno`], kept only until
/// `crates/uring-poll/src/poller.rs` is split (issue 11); `_why` is
/// dropped.
#[doc(hidden)]
pub fn error(e: i32, _why: impl std::fmt::Display) -> io::Error {
    errno(e)
}

/// Short symbolic name of the errnos the contract uses, for messages.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EBADF => "EBADF",
        libc::EEXIST => "EEXIST",
        libc::ENOENT => "ENOENT",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::EPERM => "EPERM",
        libc::ENOMEM => "ENOMEM",
        libc::EMFILE => "EMFILE",
        _ => "errno",
    }
}

/// EBADF unless `fd` refers to an open file description, checked with one
/// `fcntl(F_GETFD)`. Backends whose kernel object reports a bad fd only
/// asynchronously (an io_uring CQE) call this before changing any state.
pub fn check_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw: RawFd = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: F_GETFD only reads the fd table.
    unsafe { syscall!(fcntl(raw, libc::F_GETFD)) }.map(drop)
}

/// The instant a `wait` with `timeout` ends: `None` for no limit, and also
/// for a timeout too far away to add to now (`Duration::MAX`), which waits
/// without limit rather than panicking or spinning.
pub fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Milliseconds for `epoll_wait` until `deadline` (`None`: -1, no limit),
/// rounded up so a short timeout still waits rather than spinning, and
/// capped at `i32::MAX` (a longer wait loops).
pub fn timeout_ms(deadline: Option<Instant>) -> i32 {
    match deadline {
        None => -1,
        Some(d) => duration_ms(d.saturating_duration_since(Instant::now())),
    }
}

/// `d` in milliseconds for `epoll_wait`, rounded up (a short timeout still
/// waits) and capped at `i32::MAX`.
pub fn duration_ms(d: Duration) -> i32 {
    d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
}

/// Blocks while `*word == expected`, for at most `timeout` (`None`: no
/// limit): one `futex(FUTEX_WAIT_PRIVATE)`. A changed value (EAGAIN), a
/// signal and the timeout all return `Ok`: callers re-check their
/// condition.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: word is a live, aligned u32 for the whole call (the caller
    // holds a reference); tsp is null or points to a live timespec.
    let r = unsafe {
        syscall!(syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            tsp
        ))
    };
    match r {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Wakes every thread blocked in [`futex_wait`] on `word`: one
/// `futex(FUTEX_WAKE_PRIVATE)`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: word is a live, aligned u32; FUTEX_WAKE only reads its address.
    let _ = unsafe {
        syscall!(syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX
        ))
    };
}

/// A new non-blocking, close-on-exec eventfd with counter 0.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with no pointers.
    let fd = unsafe { syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)) }?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a live array of two ints.
    unsafe { syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC)) }?;
    // SAFETY: two new fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A new connected, non-blocking, close-on-exec UNIX stream socket pair.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: fds is a live array of two ints.
    unsafe { syscall!(socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr())) }?;
    // SAFETY: two new fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The most fds any process on this kernel may hold (`fs.nr_open`, which
/// bounds every `RLIMIT_NOFILE`); the kernel's default, 2^20, when the file
/// cannot be read.
pub fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one (no privilege needed)
/// and returns the limit now in force: a program holding thousands of fds
/// (compare, the HTTP server, the benchmarks) calls it first.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a live rlimit the kernel fills.
    unsafe { syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut rl)) }?;
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max;
        // SAFETY: rl is a live rlimit the kernel only reads.
        unsafe { syscall!(setrlimit(libc::RLIMIT_NOFILE, &rl)) }?;
    }
    Ok(rl.rlim_cur)
}

/// Writes 1 to an eventfd the caller owns, to wake whoever polls it. A
/// counter at its maximum (EAGAIN) leaves it readable already, so that is
/// success too.
pub fn eventfd_signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to an open fd.
    match unsafe { syscall!(write(fd.as_raw_fd(), one.as_ptr().cast(), 8)) } {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(()),
    }
}

/// Reads a non-blocking eventfd's counter to zero: `Ok(false)` when it
/// was zero already (EAGAIN), `Ok(true)` when it was readable.
pub fn eventfd_drain(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut buf = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live 8-byte buffer.
    match unsafe { syscall!(read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8)) } {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Number of open file descriptors of this process (entries of
/// `/proc/self/fd`, less the one used to read it). Tests of S14 compare it
/// before and after a poller's life.
pub fn open_fd_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s09_errors_keep_their_errno_for_raw_os_error() {
        let e = errno(libc::ENOSPC);
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn s12_any_timeout_is_a_deadline_or_no_limit() {
        assert_eq!(deadline(None), None);
        assert_eq!(deadline(Some(Duration::MAX)), None, "too far: no limit");
        assert!(deadline(Some(Duration::from_secs(u64::MAX / 2))).is_none());
        assert!(deadline(Some(Duration::from_secs(1))).is_some());
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Instant::now())), 0);
        let far = Instant::now() + Duration::from_secs(1 << 40);
        assert_eq!(timeout_ms(Some(far)), i32::MAX);
        let soon = Instant::now() + Duration::from_micros(10);
        assert!(timeout_ms(Some(soon)) <= 1);
    }
}
