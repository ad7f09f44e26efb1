//! Every backend `compare` measures, behind one small interface
//! ([`Backend`]), and the catalogue of their stable ids.
//!
//! A backend lives on the consuming thread: it is made there (rings with
//! `SINGLE_ISSUER` belong to the thread that made them), registers the
//! run's fds there, and takes events there. Each one counts its own system
//! calls in a [`userpoll::Counters`], with the contract's counter names, so
//! the numbers of a raw epoll loop and of a library mean the same thing.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use userpoll::Stats;

mod epoll;
mod floor;
mod generic;
mod peers;
mod uring_raw;

pub use floor::FloorQueue;

/// One backend as the harness drives it.
pub trait Backend {
    /// Registers `fd` for readable events carrying `token`.
    fn add(&mut self, fd: RawFd, token: u32) -> io::Result<()>;
    /// Removes the registration of `fd` (registered with `token`).
    fn delete(&mut self, fd: RawFd, token: u32) -> io::Result<()>;
    /// Appends the tokens of ready fds to `out`, blocking up to `timeout`
    /// when none is ready. Returning with nothing appended is allowed.
    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()>;
    /// Called after the handler ran for an event: one-shot backends re-arm
    /// here, as their users do.
    fn handled(&mut self, _fd: RawFd, _token: u32) -> io::Result<()> {
        Ok(())
    }
    /// The backend's counters so far.
    fn stats(&self) -> Stats;
    /// Another consumer taking events from the same registrations, each
    /// event going to one of them, for backends that support several
    /// consuming threads; `None` otherwise.
    fn another_consumer(&self) -> Option<Box<dyn Backend + Send>> {
        None
    }
}

/// How a backend reports an fd that stays ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Once per fire; an fd left ready is not reported again. `--handler
    /// none` is meaningful.
    Edge,
    /// Again and again while ready (level-triggered).
    Level,
    /// Once, then re-armed after the handler; a re-arm of an fd still ready
    /// reports it again at once, so it behaves like level for `--handler none`.
    Oneshot,
}

/// A backend's entry in the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct BackendInfo {
    /// Stable id, as given to `--backends` and written in the JSON.
    pub id: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// How it delivers.
    pub delivery: Delivery,
    /// Whether several threads may consume (`--consumers`).
    pub multi_consumer: bool,
}

const CATALOGUE: &[BackendInfo] = &[
    BackendInfo {
        id: "floor",
        about: "same writers and handler, readiness passed through shared memory (an index ring, \
                futex when idle), no kernel: the lower bound",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "epoll-lt",
        about: "raw epoll, level-triggered: epoll_wait only",
        multi_consumer: false,
        delivery: Delivery::Level,
    },
    BackendInfo {
        id: "epoll-et",
        about: "raw epoll, edge-triggered (EPOLLET): epoll_wait only, never re-armed",
        multi_consumer: true,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "epoll-oneshot",
        about: "raw epoll, EPOLLONESHOT, re-armed with EPOLL_CTL_MOD after each event",
        multi_consumer: true,
        delivery: Delivery::Oneshot,
    },
    BackendInfo {
        id: "uring-raw",
        about: "hand-written multishot POLL_ADD loop on the io-uring crate (SINGLE_ISSUER + \
                DEFER_TASKRUN): the floor for uring-poll's own overhead",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "uring-poll",
        about: "uring-poll (multishot POLL_ADD behind the userpoll contract), default ring setup",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "uring-poll:coop",
        about: "uring-poll with COOP_TASKRUN | TASKRUN_FLAG (no interrupts; posted at the next \
                kernel entry)",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "uring-poll:defer",
        about: "uring-poll with SINGLE_ISSUER | DEFER_TASKRUN (posted only by the owner's enter)",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "uring-poll:sqpoll",
        about: "uring-poll with SQPOLL (a kernel thread submits and posts; its CPU counts)",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "uring-poll:rearm",
        about: "uring-poll re-arming a one-shot POLL_ADD after each event (as monoio, glommio do)",
        multi_consumer: false,
        delivery: Delivery::Oneshot,
    },
    BackendInfo {
        id: "epoll-ring",
        about: "the userpoll ring (EPOLL_USERPOLL layout) filled by a driver thread from epoll; \
                the consumer takes without a system call while events flow",
        multi_consumer: true,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "epoll-ring:inline",
        about: "the userpoll ring filled inline: wait on an empty ring runs one epoll_wait itself",
        multi_consumer: true,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "mio",
        about: "mio 1 Poll/Registry, edge-triggered, as its users use it",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
    BackendInfo {
        id: "polling",
        about: "polling 3 Poller in one-shot mode, modify() after each event, as async-io uses it",
        multi_consumer: false,
        delivery: Delivery::Oneshot,
    },
    BackendInfo {
        id: "reference",
        about: "userpoll::reference::Reference (epoll ET + generation table) through the generic \
                userpoll::Poller path",
        multi_consumer: false,
        delivery: Delivery::Edge,
    },
];

/// Ids of the workspace backends this build does not include, with why
/// (empty now that every crate builds; kept so a backend can be listed
/// before its crate lands).
const NOT_BUILT: &[(&str, &str)] = &[];

/// Every backend built into this binary, in the order runs interleave them.
pub fn catalogue() -> &'static [BackendInfo] {
    CATALOGUE
}

/// Backends the project defines that this build does not include, each
/// with one line on what it is.
pub fn not_built() -> &'static [(&'static str, &'static str)] {
    NOT_BUILT
}

/// The catalogue entry of `id`, or a message listing the valid ids.
pub fn info(id: &str) -> Result<&'static BackendInfo, String> {
    if let Some(i) = CATALOGUE.iter().find(|b| b.id == id) {
        return Ok(i);
    }
    let valid: Vec<_> = CATALOGUE.iter().map(|b| b.id).collect();
    if NOT_BUILT.iter().any(|(n, _)| *n == id) {
        return Err(format!(
            "backend {id:?} is not built into this compare binary yet (its crate is not part of \
             the build); available: {}",
            valid.join(", ")
        ));
    }
    Err(format!(
        "unknown backend {id:?}; valid ids: {}",
        valid.join(", ")
    ))
}

/// `Ok` when `id` can run on this kernel, or why it cannot.
pub fn availability(id: &str) -> Result<(), String> {
    match id {
        "uring-raw" => uring_raw::probe(),
        _ if id.starts_with("uring-poll") => {
            let p = uring_profile(id).profile;
            if p.is_supported() {
                Ok(())
            } else {
                // Build once more to get the cause the crate names.
                match uring_profile(id).build(2) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!(
                        "uring-poll cannot make a {} ring here: {e}",
                        p.name()
                    )),
                }
            }
        }
        _ => Ok(()),
    }
}

/// The io_uring setup a backend uses, for the JSON's `env`; `None` for
/// backends without a ring.
pub fn ring_setup(id: &str, capacity: usize) -> Option<String> {
    match id {
        "uring-raw" => Some(uring_raw::setup_description(capacity)),
        _ if id.starts_with("uring-poll") => Some(
            uring_profile(id)
                .build(capacity)
                .map_or_else(|e| format!("unavailable: {e}"), |p| p.describe()),
        ),
        _ => None,
    }
}

/// The uring-poll options behind a `uring-poll[:variant]` id.
#[derive(Debug, Clone, Copy)]
struct UringOptions {
    profile: uring_poll::Profile,
    rearm: bool,
}

impl UringOptions {
    fn build(self, capacity: usize) -> io::Result<uring_poll::UringPoll> {
        uring_poll::UringPoll::builder()
            .profile(self.profile)
            .rearm(self.rearm)
            .build(capacity)
    }
}

fn uring_profile(id: &str) -> UringOptions {
    use uring_poll::Profile;
    let (profile, rearm) = match id {
        "uring-poll:coop" => (Profile::Coop, false),
        "uring-poll:defer" => (Profile::Defer, false),
        "uring-poll:sqpoll" => (Profile::Sqpoll, false),
        "uring-poll:rearm" => (Profile::Default, true),
        _ => (Profile::Default, false),
    };
    UringOptions { profile, rearm }
}

/// What a backend is made with.
#[derive(Debug, Clone)]
pub struct MakeCtx {
    /// Registrations it must hold (fds plus any churn pool).
    pub capacity: usize,
    /// The floor's shared queue, for `floor`.
    pub floor: Option<Arc<FloorQueue>>,
}

/// Makes backend `id` on the calling thread (which then consumes).
pub fn make(id: &str, ctx: &MakeCtx) -> io::Result<Box<dyn Backend>> {
    Ok(match id {
        "floor" => Box::new(floor::Floor::new(ctx.floor.clone().ok_or_else(|| {
            io::Error::other("the floor backend needs the run's floor queue")
        })?)),
        "epoll-lt" => Box::new(epoll::Epoll::new(epoll::Mode::Level, ctx.capacity)?),
        "epoll-et" => Box::new(epoll::Epoll::new(epoll::Mode::Edge, ctx.capacity)?),
        "epoll-oneshot" => Box::new(epoll::Epoll::new(epoll::Mode::Oneshot, ctx.capacity)?),
        "uring-raw" => Box::new(uring_raw::UringRaw::new(ctx.capacity)?),
        "mio" => Box::new(peers::Mio::new()?),
        "polling" => Box::new(peers::Polling::new()?),
        "uring-poll" | "uring-poll:coop" | "uring-poll:defer" | "uring-poll:sqpoll"
        | "uring-poll:rearm" => Box::new(generic::Generic::new(
            uring_profile(id).build(ctx.capacity)?,
            ctx.capacity,
        )),
        "epoll-ring" => Box::new(generic::Generic::with_consumers(
            epoll_ring::EpollRing::with_mode(ctx.capacity, epoll_ring::DriverMode::Thread)?,
            ctx.capacity,
            epoll_ring::EpollRing::consumer,
        )),
        "epoll-ring:inline" => Box::new(generic::Generic::with_consumers(
            epoll_ring::EpollRing::with_mode(ctx.capacity, epoll_ring::DriverMode::Inline)?,
            ctx.capacity,
            epoll_ring::EpollRing::consumer,
        )),
        "reference" => Box::new(generic::Generic::new(
            userpoll::reference::Reference::new(ctx.capacity)?,
            ctx.capacity,
        )),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                info(other).err().unwrap_or_default(),
            ))
        }
    })
}

/// Events taken per wait, at most.
pub(crate) const BATCH: usize = 1024;

/// Milliseconds for `epoll_wait`, rounded up so a short timeout still waits.
pub(crate) fn timeout_ms(d: Duration) -> i32 {
    d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
}
