//! Raw io_uring calls made outside the io-uring crate's queues.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{types, IoUring};
use userpoll::sys::error;

use crate::profile::Profile;

/// `io_uring_register(IORING_REGISTER_FILES_UPDATE)`: puts the file of `fd`
/// (or nothing, for -1) in fixed-file `slot` of `ring_fd`. The table then
/// holds its own reference to the file, so the fd may be closed.
pub(crate) fn files_update(ring_fd: RawFd, slot: usize, fd: RawFd) -> io::Result<()> {
    const IORING_REGISTER_FILES_UPDATE: libc::c_long = 6;
    #[repr(C)]
    struct FilesUpdate {
        offset: u32,
        resv: u32,
        fds: u64,
    }
    let fds = [fd];
    let up = FilesUpdate {
        offset: slot as u32,
        resv: 0,
        fds: fds.as_ptr() as u64,
    };
    // SAFETY: `up` and the one-element `fds` it points to are live for the
    // call; the kernel reads them and writes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            IORING_REGISTER_FILES_UPDATE,
            &up as *const FilesUpdate,
            1 as libc::c_long,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A ring of `profile` with a sparse fixed-file table of `capacity` slots,
/// one per registration slot.
pub(crate) fn new_ring(profile: Profile, sq: u32, cq: u32, capacity: usize) -> io::Result<IoUring> {
    let ring = profile.build(sq, cq)?;
    ring.submitter()
        .register_files_sparse(capacity as u32)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EMFILE) => error(
                libc::EMFILE,
                format_args!(
                    "a fixed-file table of {capacity} slots exceeds RLIMIT_NOFILE; raise the \
                     limit or create the poller with a smaller capacity"
                ),
            ),
            _ => e,
        })?;
    Ok(ring)
}

/// The timespec `io_uring_enter` waits for at most `d`: its seconds are a
/// signed 64-bit field, so a longer wait is clamped to `i64::MAX` seconds
/// (about 292 billion years). Unclamped, io-uring's `Timespec` cast
/// `u64::MAX` seconds to -1 and the kernel returned at once, so
/// `wait(Some(Duration::MAX))` spun.
pub(crate) fn kernel_timespec(d: Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(d.as_secs().min(i64::MAX as u64))
        .nsec(d.subsec_nanos())
}
