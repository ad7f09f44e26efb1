//! Every io_uring system call the poller makes outside the io-uring crate's
//! queues, each in one place, each turning a failure into an `io::Error`
//! that keeps the kernel's errno: the ring's creation with its fixed-file
//! table, enabling a ring created disabled, fixed-file updates, and
//! `io_uring_enter`. What the poller makes of an errno is decided by the
//! callers (the enter path in `ring.rs` has the one filter).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{types, EnterFlags, IoUring};
use userpoll::syscall;

use crate::profile::Profile;

/// A ring of `profile` with a sparse fixed-file table of `capacity` slots,
/// one per registration slot.
pub(crate) fn new_ring(profile: Profile, sq: u32, cq: u32, capacity: usize) -> io::Result<IoUring> {
    let ring = profile.build(sq, cq)?;
    // EMFILE: a fixed-file table larger than RLIMIT_NOFILE.
    ring.submitter().register_files_sparse(capacity as u32)?;
    Ok(ring)
}

/// `io_uring_register(IORING_REGISTER_ENABLE_RINGS)`: enables a ring
/// created with `R_DISABLED` (Defer); the calling thread becomes its single
/// issuer.
pub(crate) fn enable(ring: &IoUring) -> io::Result<()> {
    ring.submitter().register_enable_rings()
}

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
    unsafe {
        syscall!(syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            IORING_REGISTER_FILES_UPDATE,
            &up as *const FilesUpdate,
            1 as libc::c_long,
        ))
    }?;
    Ok(())
}

/// How long a GETEVENTS enter may wait: `timeout` bounds it (none: no
/// bound); `min_wait`, when not zero, is the kernel's batched wait
/// (IORING_FEAT_MIN_TIMEOUT, 6.12): for that long from the start of the
/// wait the enter returns only once `min_complete` completions are posted,
/// after it returns at the first one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WaitArgs {
    pub(crate) timeout: Option<Duration>,
    pub(crate) min_wait: Duration,
}

impl WaitArgs {
    /// No bound: the enter returns once its condition is met.
    pub(crate) const NONE: WaitArgs = WaitArgs {
        timeout: None,
        min_wait: Duration::ZERO,
    };
}

/// The longest wait an enter with a min wait is given when the caller
/// sets none: with no timeout, or one the kernel reads as none (its
/// `KTIME_MAX`), the min wait itself ends the wait with `ETIME` and no
/// completion (pitfall 17), so the poller would wake every `min_wait` at
/// idle. A day, after which the take simply waits again.
const MIN_WAIT_CEILING: Duration = Duration::from_secs(24 * 3600);

/// `io_uring_enter(ring_fd, to_submit, min_complete, flags)`, with
/// `EXT_ARG` and an `io_uring_getevents_arg` when `wait` has a timeout or
/// a min wait; the kernel's return value (SQEs consumed).
///
/// Always the plain ring fd, never one registered with the owner thread
/// (IORING_REGISTER_RING_FDS): a registration holds the ring, and every
/// file its polls hold, until the thread that made it unregisters it or
/// exits, so a poller dropped or moved away from that thread kept the
/// caller's files open (pitfall 8).
pub(crate) fn enter(
    ring_fd: RawFd,
    to_submit: u32,
    min_complete: u32,
    flags: EnterFlags,
    wait: WaitArgs,
) -> io::Result<usize> {
    let min_wait_usec = wait.min_wait.as_micros().min(u32::MAX as u128) as u32;
    let timeout = match (wait.timeout, min_wait_usec) {
        (t, 0) => t,
        (None, _) => Some(MIN_WAIT_CEILING),
        (Some(t), _) => Some(t.min(MIN_WAIT_CEILING)),
    };
    let ts = timeout.map(kernel_timespec);
    let args = match (&ts, min_wait_usec) {
        (None, 0) => None,
        (None, m) => Some(types::SubmitArgs::new().min_wait_usec(m)),
        (Some(ts), m) => Some(types::SubmitArgs::new().timespec(ts).min_wait_usec(m)),
    };
    let (flags, arg, size) = match &args {
        Some(a) => (
            flags | EnterFlags::EXT_ARG,
            a as *const types::SubmitArgs<'_, '_> as *const libc::c_void,
            std::mem::size_of::<types::SubmitArgs<'_, '_>>(),
        ),
        None => (flags, std::ptr::null(), 0),
    };
    // The SQ entries up to its tail are initialised SQEs pushed through
    // SubmissionQueue::push; EXT_ARG is set exactly when `arg` is.
    // SAFETY: `arg` points to a live io_uring_getevents_arg (SubmitArgs)
    // whose timespec outlives the call.
    let r = unsafe {
        syscall!(syscall(
            libc::SYS_io_uring_enter,
            ring_fd as libc::c_long,
            to_submit as libc::c_long,
            min_complete as libc::c_long,
            flags.bits() as libc::c_long,
            arg,
            size as libc::c_long,
        ))
    }?;
    Ok(r as usize)
}

/// The timespec `io_uring_enter` waits for at most `d`: its seconds are a
/// signed 64-bit field, so a longer wait is clamped to `i64::MAX` seconds
/// (about 292 billion years). Unclamped, io-uring's `Timespec` cast
/// `u64::MAX` seconds to -1 and the kernel returned at once, so
/// `wait(Some(Duration::MAX))` spun.
fn kernel_timespec(d: Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(d.as_secs().min(i64::MAX as u64))
        .nsec(d.subsec_nanos())
}
