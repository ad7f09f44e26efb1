//! The conformance suite: one generic test function per rule S1..S14 of
//! `docs/semantics.md`, named after its rule. A backend runs all of them
//! from its own `tests/` with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! userpoll::conformance_tests!(|cap| my_backend::Poller::new(cap));
//! ```
//!
//! The tests use real eventfds, pipes and socketpairs and real threads. They
//! tolerate spurious events where the contract allows them (an event with no
//! new fire) and fail loudly where it does not. Every take made through
//! [`Harness`] also checks S3's one-call rule: no two events for the same
//! registration in one call.
//!
//! A factory that fails with ENOSYS, EPERM or EOPNOTSUPP (the backend is not
//! available on this kernel) makes each test print why and return; set
//! `USERPOLL_REQUIRE_BACKEND=1` to make that a failure instead.
//!
//! S14 counts the process's fds and threads, which other tests of the same
//! binary change; it re-runs itself alone in a child process
//! ([`child::alone`]).
//!
//! Files: [`fds`] (the fixtures, also used by benches and backend tests),
//! `harness` ([`Harness`]), the rules by theme (`delivery`: S1-S4, S10;
//! `registration`: S5-S9; `threads`: S11; `take`: S12; `lifetime`: S13,
//! S14), `hostile` (every `Duration`, capacity and fd kind, `Events` of
//! any capacity; issue 12's bugs, each named after the rule it broke),
//! `fork` (a poller inherited by a child), [`model`] (random sequences
//! from two threads checked against a model of the contract, and the
//! soak mode), [`child`] (the re-run).

use std::io;
use std::time::Duration;

use crate::Poller;

pub mod child;
mod delivery;
pub mod fds;
mod fork;
mod harness;
mod hostile;
mod lifetime;
pub mod model;
mod nesting;
mod registration;
mod take;
mod threads;

pub use delivery::{
    s01_persistent_registration, s02_edge_delivery_at_least_once, s03_coalescing,
    s04_readiness_at_arm_time, s10_no_loss_under_bursts,
};
pub use fork::fork_child_gets_eperm_parent_keeps_events;
pub use harness::Harness;
pub use hostile::{
    s08_capacity_edges_are_errors, s09_bad_interest_is_einval_before_any_fd_check,
    s09_every_fd_kind, s09_the_pollers_own_fds, s12_any_timeout_blocks_or_returns,
    s12_events_of_any_capacity, s12_wait_none_never_returns_zero,
};
pub use lifetime::{s13_closing_a_registered_fd, s14_clean_drop};
pub use model::s02_s05_s09_random_sequences_keep_the_contract;
pub use nesting::{s11_nested_in_another_epoll, Outer};
pub use registration::{
    s05_no_event_after_delete, s06_modify, s07_oneshot, s08_fixed_capacity,
    s09_errors_change_nothing,
};
pub use take::s12_non_blocking_take;
pub use threads::{s11_control_from_any_thread, s12_wake_ends_a_blocked_wait};

/// How long a test waits for an event the contract promises.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a test watches for an event the contract forbids.
pub const QUIET: Duration = Duration::from_millis(150);

/// Builds a poller, or returns `None` after saying why the backend is not
/// available here (see the module documentation).
pub fn make<P: Poller>(
    rule: &str,
    new: &dyn Fn(usize) -> io::Result<P>,
    capacity: usize,
) -> Option<P> {
    match new(capacity) {
        Ok(p) => Some(p),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)
            ) && std::env::var_os("USERPOLL_REQUIRE_BACKEND").is_none() =>
        {
            eprintln!("SKIPPED {rule}: the backend is not available on this kernel: {e}");
            None
        }
        Err(e) => panic!("{rule}: creating a poller of capacity {capacity} failed: {e}"),
    }
}

/// A [`Harness`] of 256 events on a poller of `$cap`, or `return` when the
/// backend is not available here.
macro_rules! setup {
    ($rule:expr, $new:expr, $cap:expr) => {
        match $crate::conformance::make($rule, $new, $cap) {
            Some(p) => $crate::conformance::Harness::new(p, 256),
            None => return,
        }
    };
}
pub(crate) use setup;

/// Runs every rule S1..S14 against a backend, then the hostile inputs and
/// the fork check: one `#[test]` per rule or hostile case, named after
/// the rule it checks. The argument is a closure from a capacity (`usize`) to
/// `io::Result<P>` where `P: Poller`. Use it once per backend mode, each in
/// its own module.
#[macro_export]
macro_rules! conformance_tests {
    ($new:expr) => {
        $crate::conformance_tests!(@each $new;
            s01_persistent_registration,
            s02_edge_delivery_at_least_once,
            s03_coalescing,
            s04_readiness_at_arm_time,
            s05_no_event_after_delete,
            s06_modify,
            s07_oneshot,
            s08_fixed_capacity,
            s09_errors_change_nothing,
            s10_no_loss_under_bursts,
            s11_control_from_any_thread,
            s11_nested_in_another_epoll,
            s12_non_blocking_take,
            s12_wake_ends_a_blocked_wait,
            s13_closing_a_registered_fd,
            s14_clean_drop,
            s08_capacity_edges_are_errors,
            s09_bad_interest_is_einval_before_any_fd_check,
            s09_every_fd_kind,
            s09_the_pollers_own_fds,
            s12_any_timeout_blocks_or_returns,
            s12_events_of_any_capacity,
            s12_wait_none_never_returns_zero,
            fork_child_gets_eperm_parent_keeps_events,
            s02_s05_s09_random_sequences_keep_the_contract
        );
    };
    (@each $new:expr; $($rule:ident),*) => {
        $(
            #[test]
            fn $rule() {
                $crate::conformance::$rule(&$new);
            }
        )*
    };
}
