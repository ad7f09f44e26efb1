//! A poller after `fork(2)`: the child gets EPERM from every call and its
//! drop changes nothing for the parent, which keeps every event.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use super::fds;
use super::{child, make, Harness};
use crate::{Control, Events, Interest, Poller};

/// Exit codes of the forked child, one per check, so the parent can say
/// which failed.
const CHILD_OK: i32 = 0;
const CHILD_WAIT_NOT_EPERM: i32 = 10;
const CHILD_POLL_NOT_EPERM: i32 = 11;
const CHILD_ADD_NOT_EPERM: i32 = 12;
const CHILD_MODIFY_NOT_EPERM: i32 = 13;
const CHILD_DELETE_NOT_EPERM: i32 = 14;

/// S2, S5, S14 across `fork`: a poller with a pending event is inherited by
/// a child. In the child, `wait`, `poll`, `add`, `modify` and `delete` fail
/// with EPERM (and take nothing), and the child drops the poller and its
/// control handle. The parent then still gets the pending event, later
/// fires, and control calls work. Runs alone in a child process of its own
/// (the test process forks, which is only sound with few threads).
pub fn fork_child_gets_eperm_parent_keeps_events<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    child::alone(|| fork_in_this_process(new));
}

fn fork_in_this_process<P: Poller>(new: &dyn Fn(usize) -> io::Result<P>) {
    let Some(p) = make("fork", new, 8) else {
        return;
    };
    let mut h = Harness::new(p, 16);
    let efd = fds::eventfd().unwrap();
    let other = fds::eventfd().unwrap();
    h.control().add(efd.as_fd(), Interest::READABLE, 1).unwrap();
    fds::fire(efd.as_fd()).unwrap();
    h.expect(1, "before fork");
    fds::fire(efd.as_fd()).unwrap();
    // Let an asynchronous producer (a driver thread, io_uring task work)
    // get the fire into the poller's queue before the fork: the child must
    // not take it even then. A zero-timeout take would take it here.
    std::thread::sleep(Duration::from_millis(20));

    // The child runs only the checks below (no locks are held by other
    // threads of this single-test process across the fork: the backends'
    // own threads take no lock the checks need) and ends with _exit,
    // running no destructors of the parent's state but the poller's.
    // SAFETY: as above, the child touches nothing another thread may hold.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let eperm =
            |r: io::Result<()>| matches!(r, Err(ref e) if e.raw_os_error() == Some(libc::EPERM));
        let mut events = Events::with_capacity(16);
        let code = if !eperm(
            h.poller
                .wait(&mut events, Some(Duration::from_millis(50)))
                .map(drop),
        ) {
            CHILD_WAIT_NOT_EPERM
        } else if !eperm(h.poller.poll(&mut events).map(drop)) {
            CHILD_POLL_NOT_EPERM
        } else if !eperm(h.control().add(other.as_fd(), Interest::READABLE, 2)) {
            CHILD_ADD_NOT_EPERM
        } else if !eperm(h.control().modify(efd.as_fd(), Interest::READABLE, 3)) {
            CHILD_MODIFY_NOT_EPERM
        } else if !eperm(h.control().delete(efd.as_fd())) {
            CHILD_DELETE_NOT_EPERM
        } else {
            CHILD_OK
        };
        let ctl = h.control().clone();
        drop(h);
        drop(ctl);
        // SAFETY: ends the child at once, as a forked child should.
        unsafe { libc::_exit(code) };
    }
    let child = rustix::process::Pid::from_raw(pid).expect("fork gave the parent a pid");
    let (_, status) = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty())
        .expect("waitpid")
        .expect("waitpid without WNOHANG waits for a status");
    let code = status.exit_status().unwrap_or_else(|| {
        panic!(
            "the child did not exit normally (status {:#x}; a signal such as SIGSEGV?)",
            status.as_raw()
        )
    });
    let what = match code {
        CHILD_OK => "",
        CHILD_WAIT_NOT_EPERM => "wait in the child did not fail with EPERM",
        CHILD_POLL_NOT_EPERM => "poll in the child did not fail with EPERM",
        CHILD_ADD_NOT_EPERM => "add in the child did not fail with EPERM",
        CHILD_MODIFY_NOT_EPERM => "modify in the child did not fail with EPERM",
        CHILD_DELETE_NOT_EPERM => "delete in the child did not fail with EPERM",
        _ => "the child failed (panicked?)",
    };
    assert_eq!(code, CHILD_OK, "{what}");

    // The parent: its pending event is still there, and everything works.
    h.expect(1, "the event pending at fork (the child must not take it)");
    fds::drain(efd.as_fd()).unwrap();
    fds::fire(efd.as_fd()).unwrap();
    h.expect(1, "a fire after the child dropped its copy");
    h.control()
        .add(other.as_fd(), Interest::READABLE, 2)
        .expect("add in the parent after fork");
    fds::fire(other.as_fd()).unwrap();
    h.expect(2, "a registration added after fork");
    h.control()
        .modify(efd.as_fd(), Interest::READABLE, 3)
        .expect("modify in the parent after fork");
    fds::fire(efd.as_fd()).unwrap();
    h.expect(3, "modified after fork");
}
