//! Helpers shared by the stress tests: the poller variants and a skip with
//! a stated reason when this kernel lacks one.
#![allow(dead_code)]

use std::io;

use uring_poll::{Profile, UringPoll};

/// Every variant the crate offers: each profile multishot, and re-arm mode.
pub fn variants() -> Vec<(String, Profile, bool)> {
    let mut v: Vec<_> = Profile::ALL
        .iter()
        .map(|&p| (p.name().to_owned(), p, false))
        .collect();
    v.push(("rearm".to_owned(), Profile::Default, true));
    v.push(("rearm-defer".to_owned(), Profile::Defer, true));
    v
}

/// A poller, or `None` after printing why this kernel cannot make it
/// (ENOSYS, EPERM: no io_uring; EOPNOTSUPP: setup flags it lacks).
pub fn make(what: &str, r: io::Result<UringPoll>) -> Option<UringPoll> {
    match r {
        Ok(p) => Some(p),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)
            ) =>
        {
            eprintln!("SKIPPED {what}: {e}");
            None
        }
        Err(e) => panic!("{what}: creating a poller failed: {e}"),
    }
}
