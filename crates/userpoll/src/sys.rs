//! The one place where raw system-call results become `io::Result`, and the
//! constructors for the errors the contract names (S9).
//!
//! The calls every crate shares (eventfd, pipe, socketpair, futex, epoll
//! waits, the fd limit) go through rustix's safe wrappers;
//! [`syscall!`](crate::syscall!) is left for the few libc calls rustix
//! does not wrap.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::event::EventfdFlags;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::pipe::PipeFlags;
use rustix::process::{Resource, Rlimit};
use rustix::thread::futex;

/// Calls a libc function and turns `-1` into the thread's `errno` as an
/// `io::Error`, the way mio's `syscall!` does. For the calls rustix does
/// not wrap safely (`madvise`, `signalfd`, a `dup3` onto a closed number);
/// use rustix where it does.
///
/// It is as unsafe as the call it makes, so it may only be used inside an
/// `unsafe` block, under the caller's `// SAFETY:` comment:
/// `unsafe { syscall!(madvise(p, len, libc::MADV_DONTFORK)) }?;`. (It once
/// wrapped the call in `unsafe` itself, which let safe code make any libc
/// call.)
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
    rustix::io::fcntl_getfd(fd)
        .map(drop)
        .map_err(io::Error::from)
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

/// Slots for what one `epoll_wait` reports: see [`EpollBuffer::wait`].
pub struct EpollBuffer {
    slots: Vec<MaybeUninit<epoll::Event>>,
}

// SAFETY: rustix's `epoll::Event` is not `Send` only because its data union
// has a pointer variant. These slots hold plain bits (the event flags and
// the u64 data word every caller stores), nothing tied to a thread, and
// are reached only through `&mut self`.
unsafe impl Send for EpollBuffer {}

impl std::fmt::Debug for EpollBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpollBuffer")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl EpollBuffer {
    /// Room for `n` events per wait.
    pub fn new(n: usize) -> EpollBuffer {
        EpollBuffer {
            slots: std::iter::repeat_with(MaybeUninit::uninit)
                .take(n)
                .collect(),
        }
    }

    /// How many events one wait can report.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No room at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// One `epoll_wait` on `epfd` for at most `max` events (and at most
    /// [`len`](Self::len)) and `ms` milliseconds (negative: no limit; see
    /// [`timeout_ms`]): each event as (data word, event flags). An
    /// interrupted wait is the error EINTR, as from libc; callers decide
    /// whether to retry.
    ///
    /// rustix makes it an `epoll_pwait` with no signal mask, which the
    /// kernel serves exactly as `epoll_wait`; a whole number of
    /// milliseconds keeps it off `epoll_pwait2`.
    pub fn wait(
        &mut self,
        epfd: BorrowedFd<'_>,
        max: usize,
        ms: i32,
    ) -> io::Result<impl ExactSizeIterator<Item = (u64, u32)> + '_> {
        let timeout = (ms >= 0).then(|| rustix::event::Timespec {
            tv_sec: i64::from(ms / 1000),
            tv_nsec: i64::from(ms % 1000) * 1_000_000,
        });
        let max = max.min(self.slots.len());
        let (events, _) = epoll::wait(epfd, &mut self.slots[..max], timeout.as_ref())?;
        // By value: the kernel's epoll_event is packed on x86_64.
        Ok(events.iter().map(|ev| (ev.data.u64(), { ev.flags }.bits())))
    }
}

/// Blocks while `*word == expected`, for at most `timeout` (`None`: no
/// limit): one `futex(FUTEX_WAIT_PRIVATE)`. A changed value (EAGAIN), a
/// signal and the timeout all return `Ok`: callers re-check their
/// condition.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    match futex::wait(word, futex::Flags::PRIVATE, expected, ts.as_ref()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR | rustix::io::Errno::TIMEDOUT) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Wakes every thread blocked in [`futex_wait`] on `word`: one
/// `futex(FUTEX_WAKE_PRIVATE)`.
pub fn futex_wake_all(word: &AtomicU32) {
    // The count is i32::MAX, as the kernel's own "wake all" is.
    let _ = futex::wake(word, futex::Flags::PRIVATE, i32::MAX as u32);
}

/// A new non-blocking, close-on-exec eventfd with counter 0.
pub fn eventfd() -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(
        0,
        EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC,
    )?)
}

/// A new non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(
        PipeFlags::NONBLOCK | PipeFlags::CLOEXEC,
    )?)
}

/// A new connected, non-blocking, close-on-exec UNIX stream socket pair.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?)
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
    let rl = rustix::process::getrlimit(Resource::Nofile);
    let (soft, hard) = numbers(rl);
    if soft < hard {
        let raised = Rlimit {
            current: rl.maximum,
            ..rl
        };
        rustix::process::setrlimit(Resource::Nofile, raised)?;
        return Ok(hard);
    }
    Ok(soft)
}

/// `RLIMIT_NOFILE` as (soft, hard); `u64::MAX` (`RLIM_INFINITY`) for no
/// limit.
pub fn nofile_limit() -> (u64, u64) {
    numbers(rustix::process::getrlimit(Resource::Nofile))
}

/// A limit as libc gives it: `RLIM_INFINITY` (`u64::MAX`) for rustix's None.
fn numbers(rl: Rlimit) -> (u64, u64) {
    (
        rl.current.unwrap_or(u64::MAX),
        rl.maximum.unwrap_or(u64::MAX),
    )
}

/// Writes 1 to an eventfd the caller owns, to wake whoever polls it. A
/// counter at its maximum (EAGAIN) leaves it readable already, so that is
/// success too.
pub fn eventfd_signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    match rustix::io::write(fd, &1u64.to_ne_bytes()) {
        Err(e) if e != rustix::io::Errno::AGAIN => Err(e.into()),
        _ => Ok(()),
    }
}

/// Reads a non-blocking eventfd's counter to zero: `Ok(false)` when it
/// was zero already (EAGAIN), `Ok(true)` when it was readable.
pub fn eventfd_drain(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut buf = [0u8; 8];
    match rustix::io::read(fd, &mut buf) {
        Ok(_) => Ok(true),
        Err(rustix::io::Errno::AGAIN) => Ok(false),
        Err(e) => Err(e.into()),
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
