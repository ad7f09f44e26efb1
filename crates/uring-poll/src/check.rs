//! What `add` checks of a file before it changes any state (S9).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use userpoll::sys::error;
use userpoll::{syscall, Counter, Counters};

/// The EBADF of an fd a fixed-file install refuses, saying which kind:
/// closed, `O_PATH`, or an io_uring.
pub(crate) fn refused_file(fd: RawFd, kind: Refused) -> io::Error {
    let msg = match kind {
        Refused::Closed => {
            format!("fd {fd} is not an open file descriptor; register an fd that is open")
        }
        Refused::Path => format!(
            "fd {fd} was opened with O_PATH, which cannot be polled (epoll refuses it too); \
             open the file without O_PATH"
        ),
        Refused::Uring => format!(
            "fd {fd} is an io_uring, which io_uring cannot poll through its fixed-file table; \
             wait on that ring itself, or use the epoll-ring backend for it"
        ),
    };
    error(libc::EBADF, msg)
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Refused {
    Closed,
    Path,
    Uring,
}

/// `fstat` of `fd`; EBADF (with what to do) for a closed fd, naming it
/// `name` (the caller's number for a duplicate we check).
pub(crate) fn fstat(fd: RawFd, name: RawFd, c: &Counters) -> io::Result<libc::stat> {
    c.incr(Counter::OtherSyscall);
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is live and large enough for the kernel's stat; on
    // success the kernel wrote all of it.
    match unsafe { syscall!(fstat(fd, st.as_mut_ptr())) } {
        // SAFETY: fstat succeeded, so `st` is initialised.
        Ok(_) => Ok(unsafe { st.assume_init() }),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Err(refused_file(name, Refused::Closed)),
        Err(e) => Err(e),
    }
}

/// Whether epoll accepts `fd` (it refuses a file without poll support
/// with EPERM, and an `O_PATH` fd with EBADF): an `epoll_ctl(ADD)` on a
/// scratch epoll instance, closed at once (three system calls). Made only
/// for regular files, directories and devices, where the file type does
/// not tell (procfs and sysfs files, terminals and some devices poll).
fn epoll_accepts(fd: RawFd, name: RawFd, c: &Counters) -> io::Result<()> {
    c.add(Counter::OtherSyscall, 3);
    // SAFETY: plain system call with no pointers.
    let ep = unsafe { syscall!(epoll_create1(libc::EPOLL_CLOEXEC)) }?;
    // SAFETY: epoll_create1 returned a new fd that nothing else owns; the
    // OwnedFd closes it (the third system call).
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY: `ev` is live for the call; the kernel only reads it.
    match unsafe { syscall!(epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev)) } {
        Ok(_) => Ok(()),
        Err(e) => match e.raw_os_error() {
            Some(libc::EPERM) => Err(error(
                libc::EPERM,
                format_args!(
                    "fd {name} is a file the kernel cannot poll (a regular file, directory or \
                     device without poll support; epoll refuses it with EPERM too): it never \
                     blocks, so read or write it directly; register sockets, pipes, eventfds, \
                     terminals and other pollable fds"
                ),
            )),
            Some(libc::EBADF) => Err(refused_file(name, Refused::Path)),
            _ => Err(e),
        },
    }
}

/// What `add` checks of the file behind `fd` before it changes any state,
/// the same from every thread (S9):
/// - EBADF for a closed fd, an `O_PATH` fd or an io_uring (what the
///   fixed-file install refuses; epoll refuses the first two as well);
/// - EPERM for a file the kernel cannot poll (what epoll refuses).
///
/// `fd` is checked, `name` is the caller's number for it (they differ for
/// a duplicate). `installs` says the caller installs the file at once, which checks
/// `O_PATH` and io_uring itself; otherwise (a Defer add queued for the
/// owner) they are checked here. Sockets, FIFOs and anonymous-inode files
/// (eventfd, timerfd, signalfd, epoll, pidfd, ...) always poll: one
/// `fstat`, plus one `fcntl` when queued. Everything else gets an exact
/// probe ([`epoll_accepts`]).
pub(crate) fn check_file(
    fd: RawFd,
    name: RawFd,
    installs: bool,
    anon: (u64, u64),
    c: &Counters,
) -> io::Result<()> {
    let st = fstat(fd, name, c)?;
    let kind = st.st_mode & libc::S_IFMT;
    if !matches!(kind, libc::S_IFSOCK | libc::S_IFIFO | 0) {
        return epoll_accepts(fd, name, c);
    }
    if installs {
        return Ok(());
    }
    c.incr(Counter::OtherSyscall);
    // SAFETY: plain system call with no pointers.
    let flags = unsafe { syscall!(fcntl(fd, libc::F_GETFL)) }?;
    if flags & libc::O_PATH != 0 {
        return Err(refused_file(name, Refused::Path));
    }
    // An anonymous-inode file with an inode of its own (not eventfd's
    // shared one) may be an io_uring: its /proc link names it.
    if kind == 0 && (st.st_dev as u64, st.st_ino as u64) != anon && is_io_uring(fd, c) {
        return Err(refused_file(name, Refused::Uring));
    }
    Ok(())
}

/// Whether `fd` is an io_uring, from its `/proc/self/fd` link (one
/// `readlink`; false when /proc is not there).
fn is_io_uring(fd: RawFd, c: &Counters) -> bool {
    c.incr(Counter::OtherSyscall);
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|l| l.as_os_str() == "anon_inode:[io_uring]")
}

/// The EBADF of a refused inline install, telling closed, `O_PATH` and
/// io_uring fds apart (one `fcntl`, on this error path only).
pub(crate) fn explain_refused(fd: RawFd, e: io::Error, c: &Counters) -> io::Error {
    if e.raw_os_error() != Some(libc::EBADF) {
        return e;
    }
    c.incr(Counter::OtherSyscall);
    // SAFETY: plain system call with no pointers.
    match unsafe { syscall!(fcntl(fd, libc::F_GETFL)) } {
        Err(_) => refused_file(fd, Refused::Closed),
        Ok(flags) if flags & libc::O_PATH != 0 => refused_file(fd, Refused::Path),
        Ok(_) => refused_file(fd, Refused::Uring),
    }
}
