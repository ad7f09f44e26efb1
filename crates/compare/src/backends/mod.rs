//! Every backend `compare` measures, behind one small interface
//! ([`Backend`]), made by id ([`make`]); the catalogue of ids is in
//! `catalogue.rs`.
//!
//! A backend lives on the consuming thread: it is made there (rings with
//! `SINGLE_ISSUER` belong to the thread that made them), registers the
//! run's fds there, and takes events there. Each one counts its own system
//! calls in a [`userpoll::Counters`], with the contract's counter names, so
//! the numbers of a raw epoll loop and of a library mean the same thing.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use userpoll::Stats;

mod catalogue;
mod epoll;
mod floor;
mod generic;
mod peers;
mod uring_loop;
mod uring_raw;
mod uring_read;

pub use catalogue::{catalogue, not_built, BackendId, BackendInfo, Delivery, Family};

/// One backend as the harness drives it.
pub trait Backend {
    /// Registers `fd` for readable events carrying `token`. The harness
    /// keeps `fd` open until it is deleted or the backend dropped, so a
    /// backend may keep its number (a raw io_uring loop does).
    fn add(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()>;
    /// Removes the registration of `fd` (registered with `token`).
    fn delete(&mut self, fd: BorrowedFd<'_>, token: u32) -> io::Result<()>;
    /// Appends the tokens of ready fds to `out`, blocking up to `timeout`
    /// when none is ready. Returning with nothing appended is allowed.
    fn wait(&mut self, out: &mut Vec<u32>, timeout: Duration) -> io::Result<()>;
    /// Called after the handler ran for an event: one-shot backends re-arm
    /// here, as their users do.
    fn handled(&mut self, _fd: BorrowedFd<'_>, _token: u32) -> io::Result<()> {
        Ok(())
    }
    /// The data path: the bytes read for the oldest event of `token` not
    /// yet [`handled`](Backend::handled), for a backend that reads each
    /// ready fd itself and hands the data over with the event (the
    /// catalogue's [`BackendInfo::delivers_data`]). The harness then does
    /// not `read` the fd. Empty for an end of file; `None` for backends
    /// that report readiness only.
    fn data(&self, _token: u32) -> Option<&[u8]> {
        None
    }
    /// The backend's counters so far.
    fn stats(&self) -> Stats;
    /// Another consumer taking events from the same registrations, each
    /// event going to one of them, for backends that support several
    /// consuming threads; `None` otherwise.
    fn another_consumer(&self) -> Option<Box<dyn Backend + Send>> {
        None
    }
    /// What the writers must tell about each fire, for a backend whose
    /// readiness does not come from the kernel (the floor: its shared
    /// queue); `None` for every backend that learns of fires from the fds.
    fn fire_listener(&self) -> Option<Arc<dyn FireListener>> {
        None
    }
}

/// Told by the writers of each fire, right after its `write`.
pub trait FireListener: Send + Sync {
    /// Source `token` was just fired.
    fn fired(&self, token: u32);
}

/// `Ok` when `id` can run on this kernel, or why it cannot.
pub fn availability(id: BackendId) -> Result<(), String> {
    if let Some(setup) = raw_setup(id) {
        return uring_raw::probe(setup);
    }
    if id == BackendId::UringRead {
        return uring_read::probe();
    }
    match id.library() {
        Some(b) if !b.is_supported() => match anypoll::AnyPoller::new(b, 2) {
            // Built once more to get the errno and its explanation.
            Ok(_) => Ok(()),
            Err(e) => Err(match b.explain(&e) {
                Some(why) => format!("{b} cannot run here: {e}: {why}"),
                None => format!("{b} cannot run here: {e}"),
            }),
        },
        _ => Ok(()),
    }
}

/// The ring setup of a hand-written multishot poll loop; `None` for the
/// other backends.
fn raw_setup(id: BackendId) -> Option<uring_raw::Setup> {
    match id {
        BackendId::UringRaw => Some(uring_raw::Setup::Defer),
        BackendId::UringRawCoop => Some(uring_raw::Setup::Coop),
        _ => None,
    }
}

/// The io_uring setup a backend uses, for the JSON's `env`; `None` for
/// backends without a ring.
pub fn ring_setup(id: BackendId, capacity: usize) -> Option<String> {
    if let Some(setup) = raw_setup(id) {
        return Some(uring_raw::setup_description(setup, capacity));
    }
    if id == BackendId::UringRead {
        return Some(uring_read::setup_description(capacity));
    }
    let b = id.library()?;
    matches!(b, anypoll::Backend::UringPoll { .. }).then(|| {
        anypoll::AnyPoller::new(b, capacity)
            .map_or_else(|e| format!("unavailable: {e}"), |p| p.describe())
    })
}

/// Makes backend `id` on the calling thread (which then consumes), able to
/// hold `capacity` registrations. The library's backends go through the
/// contract ([`anypoll::AnyPoller`]), as a program that uses them would.
pub fn make(id: BackendId, capacity: usize) -> io::Result<Box<dyn Backend>> {
    if let Some(b) = id.library() {
        let poller = anypoll::AnyPoller::new(b, capacity)?;
        return Ok(Box::new(generic::Generic::new(poller, capacity)));
    }
    Ok(match id {
        BackendId::Floor => Box::new(floor::Floor::new(capacity)),
        BackendId::EpollLt => Box::new(epoll::Epoll::new(epoll::Mode::Level, capacity)?),
        BackendId::EpollEt => Box::new(epoll::Epoll::new(epoll::Mode::Edge, capacity)?),
        BackendId::EpollOneshot => Box::new(epoll::Epoll::new(epoll::Mode::Oneshot, capacity)?),
        BackendId::UringRaw => {
            Box::new(uring_raw::UringRaw::new(uring_raw::Setup::Defer, capacity)?)
        }
        BackendId::UringRawCoop => {
            Box::new(uring_raw::UringRaw::new(uring_raw::Setup::Coop, capacity)?)
        }
        BackendId::UringRead => Box::new(uring_read::UringRead::new(capacity)?),
        BackendId::Mio => Box::new(peers::Mio::new()?),
        BackendId::Polling => Box::new(peers::Polling::new()?),
        _ => unreachable!("{id} is a library backend, made above"),
    })
}

/// Events taken per wait, at most.
pub(crate) const BATCH: usize = 1024;

pub(crate) use userpoll::sys::duration_ms as timeout_ms;
