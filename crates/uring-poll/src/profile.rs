//! Ring setup profiles: which `io_uring_setup` flags a poller uses, and so
//! when completions become visible, who may enter the ring, and what that
//! costs. Creating the ring, and naming the cause when that fails, is here
//! too.

use std::fmt;
use std::io;

use io_uring::IoUring;
use userpoll::sys::errno;

/// `IORING_SETUP_SQPOLL`.
pub const SETUP_SQPOLL: u32 = 1 << 1;
/// `IORING_SETUP_CQSIZE`.
pub const SETUP_CQSIZE: u32 = 1 << 3;
/// `IORING_SETUP_CLAMP`.
pub const SETUP_CLAMP: u32 = 1 << 4;
/// `IORING_SETUP_R_DISABLED`.
pub const SETUP_R_DISABLED: u32 = 1 << 6;
/// `IORING_SETUP_COOP_TASKRUN`.
pub const SETUP_COOP_TASKRUN: u32 = 1 << 8;
/// `IORING_SETUP_TASKRUN_FLAG`.
pub const SETUP_TASKRUN_FLAG: u32 = 1 << 9;
/// `IORING_SETUP_SINGLE_ISSUER`.
pub const SETUP_SINGLE_ISSUER: u32 = 1 << 12;
/// `IORING_SETUP_DEFER_TASKRUN`.
pub const SETUP_DEFER_TASKRUN: u32 = 1 << 13;

/// How long the SQPOLL kernel thread spins for new entries before it
/// sleeps (and needs `IORING_ENTER_SQ_WAKEUP`). Short, because on a small
/// shared machine a spinning kernel thread takes a core from everyone.
pub const SQPOLL_IDLE_MS: u32 = 2;

/// The ring setup of a poller, chosen at creation.
///
/// | profile | completions appear in the CQ without a system call of the owner? | who may enter the ring |
/// |---|---|---|
/// | `Default` | yes: the fd's wake-up runs the poll's task work on the owner by interrupt (IPI) | any thread; this crate enters only from the owner |
/// | `Coop` | no: task work waits for the owner's next kernel entry; the SQ flag TASKRUN says some is pending, and only then does `poll` enter | as `Default` |
/// | `Defer` | no: only `io_uring_enter(GETEVENTS)` by the owner posts them; TASKRUN says when one is worth making | the owner thread only |
/// | `Sqpoll` | yes: the kernel's SQ thread submits and posts | any thread pushes; the SQ thread submits |
///
/// In every profile control calls from other threads queue their work and
/// wake the owner through the poller's eventfd when it is blocked in
/// `wait`; the owner submits. See `docs/uring-poll.md`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// No setup flags. Cheapest to reason about; every completion costs an
    /// interrupt of the owner.
    #[default]
    Default,
    /// `COOP_TASKRUN | TASKRUN_FLAG`: no interrupts; completions are posted
    /// when the owner enters the kernel.
    Coop,
    /// `SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG`: completions are
    /// posted only by the owner's `io_uring_enter(GETEVENTS)`, in batches.
    /// The owner is the first thread that takes events; a poller moved to
    /// another thread rebuilds its ring there (see `docs/uring-poll.md`).
    Defer,
    /// `SQPOLL`: a kernel thread polls the SQ (idle after
    /// [`SQPOLL_IDLE_MS`]) and posts completions; it costs that thread's
    /// CPU time.
    Sqpoll,
}

impl Profile {
    /// Every profile, in a stable order.
    pub const ALL: &'static [Profile] = &[
        Profile::Default,
        Profile::Coop,
        Profile::Defer,
        Profile::Sqpoll,
    ];

    /// A stable lower-case name (`default`, `coop`, `defer`, `sqpoll`).
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Coop => "coop",
            Profile::Defer => "defer",
            Profile::Sqpoll => "sqpoll",
        }
    }

    /// The profile named `name` (as [`Profile::name`] gives it).
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// The `io_uring_setup` flags of this profile, before the size flags
    /// (`CQSIZE | CLAMP`) every poller adds.
    pub const fn setup_flags(self) -> u32 {
        match self {
            Profile::Default => 0,
            Profile::Coop => SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG,
            Profile::Defer => {
                SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN | SETUP_TASKRUN_FLAG | SETUP_R_DISABLED
            }
            Profile::Sqpoll => SETUP_SQPOLL,
        }
    }

    /// Whether this kernel creates a ring of this profile: builds a
    /// two-entry ring and drops it.
    pub fn is_supported(self) -> bool {
        self.build(2, 4).is_ok()
    }

    /// Whether this kernel has batched waits (IORING_FEAT_MIN_TIMEOUT,
    /// Linux 6.12), which [`Builder::min_wait`](crate::Builder::min_wait)
    /// needs, for a ring of this profile.
    pub fn has_min_wait(self) -> bool {
        self.build(2, 4)
            .is_ok_and(|r| r.params().is_feature_min_timeout())
    }

    /// A ring of this profile with `sq` submission and `cq` completion
    /// entries (each rounded up to a power of two, clamped to the kernel's
    /// maximum). Errors name the cause and keep its errno: ENOSYS (no
    /// io_uring), EPERM (disabled), EOPNOTSUPP (flags this kernel lacks).
    pub(crate) fn build(self, sq: u32, cq: u32) -> io::Result<IoUring> {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq).setup_clamp();
        match self {
            Profile::Default => {}
            Profile::Coop => {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            Profile::Defer => {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag()
                    .setup_r_disabled();
            }
            Profile::Sqpoll => {
                b.setup_sqpoll(SQPOLL_IDLE_MS);
            }
        }
        b.build(sq).map_err(|e| self.setup_error(e))
    }

    /// `io_uring_setup`'s EINVAL for a profile's flags is EOPNOTSUPP here:
    /// the flags, not the caller's arguments, are what this kernel lacks.
    fn setup_error(self, e: io::Error) -> io::Error {
        match e.raw_os_error() {
            Some(libc::EINVAL) => errno(libc::EOPNOTSUPP),
            _ => e,
        }
    }

    /// For a person: why a ring of this profile could not be made, and what
    /// to do, from the error `UringPoll::new` or `Builder::build` returned;
    /// `None` for errors that are not about the kernel or the machine.
    /// (Errors themselves carry only their errno, as a system call's do.)
    pub fn explain(self, e: &io::Error) -> Option<String> {
        Some(match e.raw_os_error()? {
            libc::ENOSYS => "io_uring_setup is not implemented by this kernel (built without \
                 CONFIG_IO_URING, or filtered by seccomp); use the epoll-ring backend"
                .to_owned(),
            libc::EPERM => format!(
                "io_uring is disabled here (kernel.io_uring_disabled = {}), or SQPOLL is not \
                 allowed; set the sysctl to 0, or use the epoll-ring backend",
                std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "unreadable".into())
            ),
            libc::EOPNOTSUPP => format!(
                "this kernel rejects the setup flags {:#x} of profile `{self}` (COOP_TASKRUN \
                 needs Linux 5.19, DEFER_TASKRUN 6.1); choose Profile::Default",
                self.setup_flags()
            ),
            libc::ENOMEM => "no memory for the ring (or RLIMIT_MEMLOCK on kernels before 5.12); \
                 create the poller with a smaller capacity or cq_entries"
                .to_owned(),
            _ => return None,
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &p in Profile::ALL {
            assert_eq!(Profile::from_name(p.name()), Some(p));
        }
        assert_eq!(Profile::from_name("nope"), None);
    }

    #[test]
    fn every_profile_is_supported_on_this_kernel_or_says_why() {
        for &p in Profile::ALL {
            match p.build(2, 4) {
                Ok(ring) => {
                    assert!(p.is_supported());
                    // The kernel reports the flags it accepted.
                    assert_eq!(ring.params().is_setup_sqpoll(), p == Profile::Sqpoll);
                }
                Err(e) => {
                    let errno = e.raw_os_error();
                    assert!(
                        matches!(errno, Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)),
                        "{p}: unexpected error {e}"
                    );
                    eprintln!("SKIPPED {p}: {e}");
                }
            }
        }
    }
}
