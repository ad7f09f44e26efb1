//! Any backend of the userpoll contract, chosen at run time.
//!
//! [`Backend`] names one backend and its options with the ids `compare`
//! uses (`"uring-poll:defer"`, `"epoll-ring:inline"`, ...), parsed once;
//! [`AnyPoller`] holds a poller of any of them and implements the contract's
//! [`Poller`], with [`AnyControl`] as its [`Control`]. Calls go to the
//! backend through one `match`, no allocation and no dynamic dispatch.
//!
//! ```
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//! use anypoll::{AnyPoller, Backend};
//! use userpoll::{sys, Control, Events, Interest, Poller};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // From a flag or a config file: any id of `Backend::ALL`.
//! let backend: Backend = "epoll-ring:inline".parse()?;
//! let mut poller = AnyPoller::new(backend, 64)?;
//! let efd = sys::eventfd()?; // non-blocking, close-on-exec
//! sys::eventfd_signal(efd.as_fd())?; // readable from the start
//! poller.control().add(efd.as_fd(), Interest::READABLE, 7)?;
//! let mut events = Events::with_capacity(16);
//! poller.wait(&mut events, Some(Duration::from_secs(5)))?;
//! assert_eq!(events.iter().next().map(|e| e.data()), Some(7));
//! assert_eq!(poller.backend(), backend);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::str::FromStr;
use std::time::Duration;

use epoll_ring::{DriverMode, EpollRing, RingControl};
use uring_poll::{Profile, UringControl, UringPoll};
use userpoll::reference::{Reference, ReferenceControl};
use userpoll::{Control, Events, Interest, Poller, Stats};

/// One backend of the contract with its options. `Display` gives its id,
/// `FromStr` parses one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// [`Reference`]: one kernel epoll instance, edge-triggered.
    Reference,
    /// [`EpollRing`]: the userpoll ring, filled by a driver thread or inline.
    EpollRing(DriverMode),
    /// [`UringPoll`]: io_uring multishot poll in a setup profile; `rearm`
    /// re-arms a one-shot poll after every event instead.
    UringPoll {
        /// The ring setup.
        profile: Profile,
        /// One-shot polls re-armed after each event.
        rearm: bool,
        /// Batched waits of [`BATCH_MIN_WAIT`] ([`uring_poll::Builder::min_wait`]).
        batch: bool,
    },
}

/// The min wait of the `+batch` io_uring backends
/// ([`uring_poll::Builder::min_wait`]): the most latency a batched wait
/// adds, chosen by measurement (docs/results.md, "Batched waits").
pub const BATCH_MIN_WAIT: Duration = Duration::from_micros(50);

impl Backend {
    /// Every backend, in a stable order.
    pub const ALL: &'static [Backend] = &[
        Backend::Reference,
        Backend::EpollRing(DriverMode::Thread),
        Backend::EpollRing(DriverMode::Inline),
        Backend::uring(Profile::Default),
        Backend::uring(Profile::Coop),
        Backend::uring(Profile::Defer),
        Backend::uring(Profile::Sqpoll),
        Backend::UringPoll {
            profile: Profile::Default,
            rearm: true,
            batch: false,
        },
        Backend::UringPoll {
            profile: Profile::Defer,
            rearm: true,
            batch: false,
        },
        Backend::UringPoll {
            profile: Profile::Defer,
            rearm: false,
            batch: true,
        },
    ];

    const fn uring(profile: Profile) -> Backend {
        Backend::UringPoll {
            profile,
            rearm: false,
            batch: false,
        }
    }

    /// Whether this kernel can make a poller of this backend (io_uring
    /// enabled, the profile's setup flags known); [`AnyPoller::new`] says
    /// which errno, and [`Backend::explain`] why.
    pub fn is_supported(self) -> bool {
        match self {
            Backend::UringPoll { profile, batch, .. } => {
                profile.is_supported() && (!batch || profile.has_min_wait())
            }
            _ => true,
        }
    }

    /// For a person: the cause of an error [`AnyPoller::new`] returned for
    /// this backend and what to do, when it is about the kernel or the
    /// machine (io_uring disabled or missing, setup flags this kernel
    /// lacks, no memory for the ring); `None` otherwise. The error itself carries
    /// only its errno, as a system call's does.
    pub fn explain(self, e: &io::Error) -> Option<String> {
        match self {
            Backend::UringPoll { profile, batch, .. } => {
                if batch && e.kind() == io::ErrorKind::Unsupported && profile.is_supported() {
                    return Some(
                        "batched waits (`+batch`, IORING_FEAT_MIN_TIMEOUT) need Linux 6.12; \
                         drop `+batch` from the id"
                            .to_owned(),
                    );
                }
                profile.explain(e)
            }
            _ => None,
        }
    }
}

/// The stable id, as `compare` writes it: `reference`, `epoll-ring`,
/// `epoll-ring:inline`, `uring-poll`, `uring-poll:PROFILE` (`coop`, `defer`,
/// `sqpoll`), `uring-poll:rearm` and `uring-poll:rearm+PROFILE`.
impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Backend::Reference => f.write_str("reference"),
            Backend::EpollRing(DriverMode::Inline) => f.write_str("epoll-ring:inline"),
            Backend::EpollRing(_) => f.write_str("epoll-ring"),
            Backend::UringPoll {
                profile,
                rearm,
                batch,
            } => {
                f.write_str("uring-poll")?;
                let options = [
                    rearm.then_some("rearm"),
                    (profile != Profile::Default).then_some(profile.name()),
                    batch.then_some("batch"),
                ];
                let mut sep = ':';
                for o in options.into_iter().flatten() {
                    write!(f, "{sep}{o}")?;
                    sep = '+';
                }
                Ok(())
            }
        }
    }
}

/// An id that names no backend; its message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend(String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<_> = Backend::ALL.iter().map(|b| b.to_string()).collect();
        write!(
            f,
            "unknown backend {:?}; valid ids: {}",
            self.0,
            valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        let uring = Profile::ALL.iter().flat_map(|&profile| {
            [(false, false), (true, false), (false, true), (true, true)].map(|(rearm, batch)| {
                Backend::UringPoll {
                    profile,
                    rearm,
                    batch,
                }
            })
        });
        Backend::ALL
            .iter()
            .copied()
            .chain(uring)
            .find(|b| b.to_string() == s)
            .ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}

/// A poller of any [`Backend`]. See the crate documentation.
#[derive(Debug)]
pub struct AnyPoller {
    poller: Which,
    /// A clone of the backend's own control handle, so that
    /// [`Poller::control`] can lend it.
    control: AnyControl,
}

#[derive(Debug)]
enum Which {
    Reference(Reference),
    EpollRing(EpollRing),
    /// Boxed: the owner's state is several hundred bytes, the others a few
    /// dozen.
    UringPoll(Box<UringPoll>),
}

/// The control handle of an [`AnyPoller`].
#[derive(Debug, Clone)]
pub enum AnyControl {
    /// Of a [`Reference`] poller.
    Reference(ReferenceControl),
    /// Of an [`EpollRing`] poller.
    EpollRing(RingControl),
    /// Of a [`UringPoll`] poller.
    UringPoll(UringControl),
}

impl AnyPoller {
    /// A poller of `backend` for at most `capacity` registrations. Errors
    /// are the backend's: EINVAL or EMFILE for a capacity out of range;
    /// ENOSYS, EPERM or EOPNOTSUPP when this kernel cannot make it.
    pub fn new(backend: Backend, capacity: usize) -> io::Result<AnyPoller> {
        let poller = match backend {
            Backend::Reference => Which::Reference(Reference::new(capacity)?),
            Backend::EpollRing(mode) => Which::EpollRing(EpollRing::with_mode(capacity, mode)?),
            Backend::UringPoll {
                profile,
                rearm,
                batch,
            } => Which::UringPoll(Box::new(
                UringPoll::builder()
                    .profile(profile)
                    .rearm(rearm)
                    .min_wait(if batch {
                        BATCH_MIN_WAIT
                    } else {
                        Duration::ZERO
                    })
                    .build(capacity)?,
            )),
        };
        let control = match &poller {
            Which::Reference(p) => AnyControl::Reference(p.control().clone()),
            Which::EpollRing(p) => AnyControl::EpollRing(p.control().clone()),
            Which::UringPoll(p) => AnyControl::UringPoll(p.control().clone()),
        };
        Ok(AnyPoller { poller, control })
    }

    /// The backend this poller is.
    pub fn backend(&self) -> Backend {
        match &self.poller {
            Which::Reference(_) => Backend::Reference,
            Which::EpollRing(p) => Backend::EpollRing(p.mode()),
            Which::UringPoll(p) => Backend::UringPoll {
                profile: p.profile(),
                rearm: p.is_rearm_mode(),
                batch: !p.min_wait().is_zero(),
            },
        }
    }

    /// Another consumer taking from the same registrations, each event
    /// going to one consumer, for the backends that have several
    /// (`epoll-ring`, [`EpollRing::consumer`]); `None` for the others.
    pub fn consumer(&self) -> Option<AnyPoller> {
        match &self.poller {
            Which::EpollRing(p) => Some(AnyPoller {
                poller: Which::EpollRing(p.consumer()),
                control: self.control.clone(),
            }),
            _ => None,
        }
    }

    /// One line for environment reports: the backend, and for io_uring
    /// the ring as the kernel made it.
    pub fn describe(&self) -> String {
        match &self.poller {
            Which::UringPoll(p) => p.describe(),
            _ => self.backend().to_string(),
        }
    }
}

impl Control for AnyControl {
    fn add(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        match self {
            AnyControl::Reference(c) => c.add(fd, interest, data),
            AnyControl::EpollRing(c) => c.add(fd, interest, data),
            AnyControl::UringPoll(c) => c.add(fd, interest, data),
        }
    }

    fn modify(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        match self {
            AnyControl::Reference(c) => c.modify(fd, interest, data),
            AnyControl::EpollRing(c) => c.modify(fd, interest, data),
            AnyControl::UringPoll(c) => c.modify(fd, interest, data),
        }
    }

    fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        match self {
            AnyControl::Reference(c) => c.delete(fd),
            AnyControl::EpollRing(c) => c.delete(fd),
            AnyControl::UringPoll(c) => c.delete(fd),
        }
    }

    fn wake(&self) -> io::Result<()> {
        match self {
            AnyControl::Reference(c) => c.wake(),
            AnyControl::EpollRing(c) => c.wake(),
            AnyControl::UringPoll(c) => c.wake(),
        }
    }
}

impl Poller for AnyPoller {
    type Control = AnyControl;

    fn control(&self) -> &AnyControl {
        &self.control
    }

    fn poll(&mut self, events: &mut Events) -> io::Result<usize> {
        match &mut self.poller {
            Which::Reference(p) => p.poll(events),
            Which::EpollRing(p) => p.poll(events),
            Which::UringPoll(p) => p.poll(events),
        }
    }

    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        match &mut self.poller {
            Which::Reference(p) => p.wait(events, timeout),
            Which::EpollRing(p) => p.wait(events, timeout),
            Which::UringPoll(p) => p.wait(events, timeout),
        }
    }

    fn pollable_fd(&self) -> io::Result<BorrowedFd<'_>> {
        match &self.poller {
            Which::Reference(p) => p.pollable_fd(),
            Which::EpollRing(p) => p.pollable_fd(),
            Which::UringPoll(p) => p.pollable_fd(),
        }
    }

    fn capacity(&self) -> usize {
        match &self.poller {
            Which::Reference(p) => p.capacity(),
            Which::EpollRing(p) => p.capacity(),
            Which::UringPoll(p) => p.capacity(),
        }
    }

    fn stats(&self) -> Stats {
        match &self.poller {
            Which::Reference(p) => p.stats(),
            Which::EpollRing(p) => p.stats(),
            Which::UringPoll(p) => p.stats(),
        }
    }
}
