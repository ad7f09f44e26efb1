//! Micro-benchmarks of the hot paths of the two userpoll backends, and the
//! setup they share.
//!
//! The package holds three criterion benchmarks (`benches/*.rs`, run with
//! `cargo bench -p userpoll-benches`; what each measures and the numbers
//! measured are in `docs/benchmarks.md`):
//!
//! - `ring`: [`epoll_ring::ring::Ring::publish`] from one and from two
//!   producer threads (a fresh item and a coalesced fire), and
//!   [`epoll_ring::ring::Ring::take`] of a batch of 1, 64 and 1024 items;
//! - `cq_drain`: one `poll` of `uring-poll` draining a CQ in which K
//!   registrations fired M times each (K×M completions merged into K
//!   events), beside the reference backend and `epoll-ring` fed the same
//!   fires;
//! - `control`: one `add` into and one `delete` out of a poller that holds
//!   10,000 registrations, for the reference backend, `epoll-ring` (driver
//!   thread) and `uring-poll` (default profile).
//!
//! The CI performance gate's suite (`benches/gate.json`) and baseline
//! (`benches/baseline.json`) live beside them in this folder; they are data
//! for `compare gate` (`docs/gate.md`), not code of this package.
//!
//! This library holds only what the benchmarks share: raising the fd limit,
//! making and firing eventfds, and waiting for the pollers to settle, so
//! that the timed regions contain nothing but the path measured.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use epoll_ring::EpollRing;
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

/// fds a benchmark keeps free for what the pollers open themselves (epoll
/// fds, wake-up eventfds, io_uring fds) and for criterion's own files.
pub const FD_HEADROOM: u64 = 64;

/// Raises the soft fd limit to the hard one; the limit now in force.
pub use userpoll::sys::raise_fd_limit as raise_nofile_limit;

/// Raises the fd limit (see [`raise_nofile_limit`]) and checks that `n`
/// fds plus [`FD_HEADROOM`] fit under it; an error with the numbers when they
/// do not.
///
/// `n` should count the fixed-file table of a `uring-poll` poller too: the
/// kernel refuses a table larger than `RLIMIT_NOFILE`, although its slots
/// are not fds.
pub fn ensure_fd_room(n: usize) -> io::Result<()> {
    let limit = raise_nofile_limit()?;
    let need = n as u64 + FD_HEADROOM;
    if limit < need {
        // A tool's error, for a person: the message, not only EMFILE.
        return Err(io::Error::other(format!(
            "this benchmark needs {need} fds but RLIMIT_NOFILE is {limit} (soft raised to \
             hard); raise the hard limit (ulimit -Hn) or run on a machine that allows it"
        )));
    }
    Ok(())
}

/// `n` new eventfds (non-blocking, close-on-exec, counter 0).
pub fn eventfds(n: usize) -> io::Result<Vec<OwnedFd>> {
    (0..n).map(|_| fds::eventfd()).collect()
}

/// Fires every fd of `fds` `times` times: `times` rounds, each writing 1 to
/// every fd in order, so that the fires of one fd are spread out as they
/// would be under real traffic. One `write` per fire.
pub fn fire_rounds(fds: &[OwnedFd], times: usize) -> io::Result<()> {
    for _ in 0..times {
        for fd in fds {
            fds::fire(fd.as_fd())?;
        }
    }
    Ok(())
}

/// Registers every fd of `fds` for `READABLE`, with its index as data.
pub fn add_all<C: Control>(control: &C, fds: &[OwnedFd]) -> io::Result<()> {
    for (i, fd) in fds.iter().enumerate() {
        control.add(fd.as_fd(), Interest::READABLE, i as u64)?;
    }
    Ok(())
}

/// Deletes the registration of every fd of `fds`.
pub fn delete_all<C: Control>(control: &C, fds: &[OwnedFd]) -> io::Result<()> {
    for fd in fds {
        control.delete(fd.as_fd())?;
    }
    Ok(())
}

/// Two non-blocking polls: the first hands the kernel whatever the control
/// calls left queued (`uring-poll` submits its POLL_ADD and ASYNC_CANCEL
/// SQEs here), the second collects the completions that work produced.
/// Returns the events the two polls reported (none, when no fd was fired).
pub fn flush<P: Poller>(poller: &mut P, events: &mut Events) -> io::Result<usize> {
    let a = poller.poll(events)?;
    let b = poller.poll(events)?;
    Ok(a + b)
}

/// Waits until the ring of an [`EpollRing`] in driver-thread mode holds
/// `expected` queued entries and its driver has gone back to sleep (its
/// count of `epoll_wait` calls stays put over a short pause), so that a
/// take timed afterwards does not share the ring with a running producer.
/// Gives up (`TimedOut`, saying what was queued) after 10 seconds.
pub fn settle_ring(poller: &EpollRing, expected: u32) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = poller.stats().get(Counter::EpollWait);
        std::thread::sleep(Duration::from_micros(50));
        let pending = poller.ring().pending()?;
        let after = poller.stats().get(Counter::EpollWait);
        if pending == expected && before == after {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the epoll-ring driver did not settle: {pending} entries queued, \
                     {expected} expected"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fired_fds_are_reported_once_each() -> io::Result<()> {
        ensure_fd_room(8)?;
        let fds = eventfds(4)?;
        let mut poller = EpollRing::new(4)?;
        add_all(poller.control(), &fds)?;
        fire_rounds(&fds, 3)?;
        settle_ring(&poller, 4)?;
        let mut events = Events::with_capacity(8);
        assert_eq!(poller.poll(&mut events)?, 4);
        delete_all(poller.control(), &fds)?;
        assert_eq!(flush(&mut poller, &mut events)?, 0);
        Ok(())
    }
}
