//! What a take must do in each setup [`Profile`], derived once from the
//! profile's setup flags when the poller is built, so the owner's code
//! asks what to do ("does the kernel submit for us?") instead of which
//! profile it runs under.
//!
//! | | `Default` | `Coop` | `Defer` | `Sqpoll` |
//! |---|---|---|---|---|
//! | `kernel_submits` | | | | yes |
//! | `enter_for_taskrun` | | yes | yes | |
//! | `getevents_counts` | | | yes | |
//! | `update_after_taskrun` | | | yes | |
//! | `single_issuer` | | | yes | |
//! | `nestable` | yes | yes | | yes |
//!
//! The kernel behaviour behind each is in `docs/uring-poll.md` (profiles,
//! pitfalls 3, 6, 7, 12, 13 and 15).

use crate::profile::{
    Profile, SETUP_COOP_TASKRUN, SETUP_DEFER_TASKRUN, SETUP_R_DISABLED, SETUP_SINGLE_ISSUER,
    SETUP_SQPOLL,
};

/// The enter policy of one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// SQPOLL: the kernel's SQ thread submits and posts. Submitting is
    /// waking it when it sleeps (`SQ_WAKEUP`) and waiting for SQ room
    /// (`SQ_WAIT`), a wait wakes it too, and re-arms after a CQ overflow
    /// all go at once with no enter of ours (pitfalls 4 and 12).
    pub(crate) kernel_submits: bool,
    /// COOP_TASKRUN or DEFER_TASKRUN: completion work waits for an enter
    /// of ours; the SQ flag TASKRUN says when one is worth making, and a
    /// take makes it before it reads the CQ (pitfall 7).
    pub(crate) enter_for_taskrun: bool,
    /// DEFER_TASKRUN: a GETEVENTS enter posts at most
    /// `max(20, min_complete)` deferred completions, and one that asks for
    /// more than are pending waits (pitfalls 13 and 16), so an enter that
    /// must not wait asks for none and another follows while each posts a
    /// full 20 (`Ring::collect`).
    pub(crate) getevents_counts: bool,
    /// DEFER_TASKRUN: with an in-place update queued, pending completion
    /// work runs before the update is submitted, which the kernel would
    /// otherwise refuse with `-EALREADY` (pitfall 3).
    pub(crate) update_after_taskrun: bool,
    /// SINGLE_ISSUER with R_DISABLED: the ring is enabled by the first
    /// take, whose thread alone may enter it from then on (the wake-up
    /// poll is armed then); a take on another thread moves the poller to
    /// a new ring (pitfall 6, `migrate.rs`).
    pub(crate) single_issuer: bool,
    /// Not DEFER_TASKRUN: the ring fd becomes readable when completions
    /// are posted, so an outer loop can wait on it (`pollable_fd`). Under
    /// DEFER_TASKRUN completion work waits for the owner without waking
    /// pollers of the ring fd, and the kernel's registered-eventfd
    /// alternative drops signals (pitfall 15).
    pub(crate) nestable: bool,
}

impl Policy {
    /// The policy of `profile`, from its setup flags.
    pub(crate) fn of(profile: Profile) -> Policy {
        let flags = profile.setup_flags();
        let has = |f: u32| flags & f != 0;
        Policy {
            kernel_submits: has(SETUP_SQPOLL),
            enter_for_taskrun: has(SETUP_COOP_TASKRUN | SETUP_DEFER_TASKRUN),
            getevents_counts: has(SETUP_DEFER_TASKRUN),
            update_after_taskrun: has(SETUP_DEFER_TASKRUN),
            single_issuer: has(SETUP_SINGLE_ISSUER) && has(SETUP_R_DISABLED),
            nestable: !has(SETUP_DEFER_TASKRUN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in the module doc, as the profiles' flags give it.
    #[test]
    fn each_profile_has_the_policy_the_table_says() {
        let row = |p: Profile| {
            let x = Policy::of(p);
            [
                x.kernel_submits,
                x.enter_for_taskrun,
                x.getevents_counts,
                x.update_after_taskrun,
                x.single_issuer,
                x.nestable,
            ]
        };
        assert_eq!(
            row(Profile::Default),
            [false, false, false, false, false, true]
        );
        assert_eq!(row(Profile::Coop), [false, true, false, false, false, true]);
        assert_eq!(row(Profile::Defer), [false, true, true, true, true, false]);
        assert_eq!(
            row(Profile::Sqpoll),
            [true, false, false, false, false, true]
        );
    }
}
