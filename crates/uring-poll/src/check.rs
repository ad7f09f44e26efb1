//! What `add` checks of a file before it changes any state (S9).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::event::epoll;
use rustix::fs::OFlags;
use userpoll::sys::errno;
use userpoll::{Counter, Counters};

/// `fstat` of `fd` (one system call): EBADF for a closed fd.
pub(crate) fn fstat(fd: BorrowedFd<'_>, c: &Counters) -> io::Result<rustix::fs::Stat> {
    c.incr(Counter::OtherSyscall);
    Ok(rustix::fs::fstat(fd)?)
}

/// Whether epoll accepts `fd`: EPERM for a file without poll support, as
/// epoll says, and EBADF for an `O_PATH` fd. An `epoll_ctl(ADD)` on a
/// scratch epoll instance, closed at once (three system calls). Made only
/// for regular files, directories and devices, where the file type does
/// not tell (procfs and sysfs files, terminals and some devices poll).
fn epoll_accepts(fd: BorrowedFd<'_>, c: &Counters) -> io::Result<()> {
    c.add(Counter::OtherSyscall, 3);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(&ep, fd, epoll::EventData::new_u64(0), epoll::EventFlags::IN)?;
    Ok(())
}

/// What `add` checks of the file behind `fd` before it changes any state,
/// the same from every thread (S9):
/// - EBADF for a closed fd, an `O_PATH` fd or an io_uring (what the
///   fixed-file install refuses; epoll refuses the first two as well);
/// - EPERM for a file the kernel cannot poll (what epoll refuses).
///
/// `fd` is the caller's, or a duplicate of it. `installs` says the caller
/// installs the file at once, which checks `O_PATH` and io_uring itself;
/// otherwise (a Defer add queued for the owner) they are checked here.
/// Sockets, FIFOs and anonymous-inode files (eventfd, timerfd, signalfd,
/// epoll, pidfd, ...) always poll: one `fstat`, plus one `fcntl` when
/// queued. Everything else gets an exact probe ([`epoll_accepts`]).
pub(crate) fn check_file(
    fd: BorrowedFd<'_>,
    installs: bool,
    anon: (u64, u64),
    c: &Counters,
) -> io::Result<()> {
    let st = fstat(fd, c)?;
    let kind = st.st_mode & libc::S_IFMT;
    if !matches!(kind, libc::S_IFSOCK | libc::S_IFIFO | 0) {
        return epoll_accepts(fd, c);
    }
    if installs {
        return Ok(());
    }
    c.incr(Counter::OtherSyscall);
    if rustix::fs::fcntl_getfl(fd)?.contains(OFlags::PATH) {
        return Err(errno(libc::EBADF));
    }
    // An anonymous-inode file with an inode of its own (not eventfd's
    // shared one) may be an io_uring: its /proc link names it.
    if kind == 0 && (st.st_dev as u64, st.st_ino as u64) != anon && is_io_uring(fd, c) {
        return Err(errno(libc::EBADF));
    }
    Ok(())
}

/// Whether `fd` is an io_uring, from its `/proc/self/fd` link (one
/// `readlink`; false when /proc is not there).
fn is_io_uring(fd: BorrowedFd<'_>, c: &Counters) -> bool {
    c.incr(Counter::OtherSyscall);
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|l| l.as_os_str() == "anon_inode:[io_uring]")
}
