//! The driver: the producer that fills the ring from a kernel epoll
//! instance. It runs on a thread of its own ([`DriverMode::Thread`]) or
//! inside `wait` ([`DriverMode::Inline`]); one round of it, in either mode,
//! is [`RingInstance::drive`]. This file holds the mode and the driver
//! thread ([`DriverThread`]): started with the poller, it runs until the
//! last consumer drops, which signals its stop eventfd and joins it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use rustix::event::epoll;
use userpoll::sys::{futex_wake_all as futex_wake, EpollBuffer};
use userpoll::Counter;

use crate::instance::{RingInstance, DRIVER_BATCH, STOP_KEY};

/// Where the producer (the driver) runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverMode {
    /// A dedicated driver thread blocks in `epoll_wait` and publishes. While
    /// events flow the consumer makes no system call; on an empty ring it
    /// spins [`SPINS_BEFORE_PARK`](crate::SPINS_BEFORE_PARK) times, then
    /// parks on a futex that the driver wakes only when a consumer is parked.
    Thread,
    /// No extra thread: `wait` on an empty ring runs the driver itself (one
    /// `epoll_wait` with the caller's timeout), then takes.
    Inline,
}

/// The driver thread of [`DriverMode::Thread`]; stopped and joined when
/// the last consumer drops.
#[derive(Debug)]
pub(crate) struct DriverThread {
    shared: Arc<RingInstance>,
    stopfd: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl DriverThread {
    pub(crate) fn start(shared: Arc<RingInstance>) -> io::Result<DriverThread> {
        let stopfd = userpoll::sys::eventfd()?;
        shared.counters.incr(Counter::EpollCtl);
        epoll::add(
            &shared.epfd,
            &stopfd,
            epoll::EventData::new_u64(STOP_KEY),
            epoll::EventFlags::IN,
        )?;
        let batch = shared.ring.capacity().min(DRIVER_BATCH) + 1;
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("epoll-ring-driver".into())
            .spawn(move || run_driver(&for_thread, batch))?;
        Ok(DriverThread {
            shared,
            stopfd,
            thread: Some(thread),
        })
    }
}

fn run_driver(shared: &RingInstance, batch: usize) {
    let mut buf = EpollBuffer::new(batch);
    loop {
        match shared.drive(&mut buf, -1) {
            Ok(stop) => {
                if stop && shared.stopping.load(Ordering::Acquire) {
                    return;
                }
            }
            Err(e) => {
                // epoll_wait on our own epoll fd does not fail in normal
                // operation; report it to every consumer instead of
                // leaving them parked forever.
                let _ = shared.failed.set(e.raw_os_error().unwrap_or(libc::EIO));
                shared.park.seq.fetch_add(1, Ordering::SeqCst);
                futex_wake(&shared.park.seq);
                return;
            }
        }
    }
}

impl Drop for DriverThread {
    fn drop(&mut self) {
        if self.shared.process.is_child() {
            // Forked: the driver thread lives only in the parent, and the
            // stop eventfd is the parent's too. Signal nothing, join
            // nothing; the child's copy of the fd closes.
            std::mem::forget(self.thread.take());
            return;
        }
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.counters.incr(Counter::OtherSyscall);
        let _ = userpoll::sys::eventfd_signal(self.stopfd.as_fd());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
