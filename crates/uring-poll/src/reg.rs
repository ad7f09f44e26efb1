//! A registration's life as the owner sees it: where its poll request is
//! (queued, in the ring, ended), and what brings it back (a re-arm at the
//! next take, after an overflow, or nothing any more). The table keeps one
//! [`Life`] per registration besides fd, interest and data; control calls
//! start it (`add`, `modify`), the owner moves it on as it arms requests
//! and reads their completions.

/// Error completions in a row after which a registration is no longer
/// re-armed: the caller gets one event with `EPOLLERR` and should delete it.
const ERRORS_BEFORE_GIVING_UP: u8 = 3;

/// Where a registration's poll request is, and what re-arms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    /// Its POLL_ADD waits in the op queue (after `add`, or a `modify` that
    /// is not made in place): a modify replaces it, a delete drops it.
    Queued,
    /// The owner has put a POLL_ADD (or in-place update) in the ring whose
    /// request has not ended as far as it knows: a delete cancels it, a
    /// modify may update it in place. `errors`: error completions in a row.
    InRing { errors: u8 },
    /// A one-shot request fired: silent until `modify` (S7).
    Ended,
    /// Re-arm mode: the one-shot request ended with an event still to hand
    /// out; it is re-armed at the take after the caller got that event
    /// (counted as `rearm_mode`).
    RearmOnTake,
    /// A CQ overflow ended the request: re-armed once the kernel's overflow
    /// list is flushed (re-arming earlier would only end again).
    OverflowRearm { errors: u8 },
    /// Never re-armed again: errors in a row (the caller got `EPOLLERR`), or
    /// its file could not be installed (`EPOLLERR | EPOLLHUP`); the caller
    /// should delete it. `in_ring`: the file was lost while a request was in
    /// the ring (a move to a new ring, `migrate.rs`), and a delete or modify
    /// still treats that request as there.
    GivenUp { in_ring: bool },
}

/// What the owner does about a request that ended (a completion without
/// `F_MORE`), as [`Life::end`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Nothing: a one-shot request that fired, or re-arm mode, which
    /// re-arms at the take after the event is handed out.
    Wait,
    /// Errors in a row: deliver `EPOLLERR` once, never re-arm.
    GiveUp,
    /// Re-arm once the CQ overflow is flushed.
    AfterOverflow,
    /// Re-arm now (counted as `rearm_kernel_ended`).
    Rearm,
}

impl Life {
    /// After `modify`: the request is updated in place (`in_place`, still in
    /// the ring), or a POLL_ADD for the new key waits in the op queue. The
    /// error count starts again.
    pub(crate) fn modified(in_place: bool) -> Life {
        if in_place {
            Life::InRing { errors: 0 }
        } else {
            Life::Queued
        }
    }

    /// The registration should have a request in the kernel: one is there,
    /// or an op or overflow re-arm will put it there.
    pub(crate) fn is_armed(self) -> bool {
        matches!(
            self,
            Life::Queued | Life::InRing { .. } | Life::OverflowRearm { .. }
        )
    }

    /// A request of this registration may be in the ring: a delete must
    /// cancel it, and a modify may update it in place.
    pub(crate) fn in_ring(self) -> bool {
        matches!(self, Life::InRing { .. } | Life::GivenUp { in_ring: true })
    }

    /// Armed, with no request in the ring yet.
    pub(crate) fn awaits_arm(self) -> bool {
        self.is_armed() && !self.in_ring()
    }

    /// Error completions in a row.
    fn errors(self) -> u8 {
        match self {
            Life::InRing { errors } | Life::OverflowRearm { errors } => errors,
            _ => 0,
        }
    }

    /// A POLL_ADD for it has been put in the ring.
    pub(crate) fn armed(&mut self) {
        *self = Life::InRing {
            errors: self.errors(),
        };
    }

    /// A completion reported readiness: the error count starts again.
    pub(crate) fn fired(&mut self) {
        if let Life::InRing { errors } | Life::OverflowRearm { errors } = self {
            *errors = 0;
        }
    }

    /// Its request ended with result `res` (a completion without `F_MORE`):
    /// what comes next. A one-shot request that fired stays silent (S7);
    /// re-arm mode waits for the take; `ERRORS_BEFORE_GIVING_UP` error
    /// results in a row (a cancellation is not an error) give up; during a
    /// CQ overflow the re-arm waits for the flush; otherwise the request is
    /// re-armed at once (the life is then as after [`Life::armed`]).
    pub(crate) fn end(
        &mut self,
        res: i32,
        oneshot: bool,
        rearm_mode: bool,
        overflow: bool,
    ) -> Ending {
        let mut errors = self.errors();
        if res > 0 && oneshot {
            *self = Life::Ended;
            return Ending::Wait;
        }
        if res > 0 && rearm_mode {
            *self = Life::RearmOnTake;
            return Ending::Wait;
        }
        if res < 0 && res != -libc::ECANCELED {
            errors += 1;
            if errors >= ERRORS_BEFORE_GIVING_UP {
                *self = Life::GivenUp { in_ring: false };
                return Ending::GiveUp;
            }
        }
        if overflow {
            *self = Life::OverflowRearm { errors };
            return Ending::AfterOverflow;
        }
        *self = Life::InRing { errors };
        Ending::Rearm
    }

    /// The ring its request was in is gone (a move to a new ring,
    /// `migrate.rs`): no request of it is in the new one. An armed life
    /// awaits its POLL_ADD there; a given-up one no longer has a request
    /// for a delete or modify to find.
    pub(crate) fn ring_replaced(&mut self) {
        match *self {
            Life::InRing { .. } | Life::OverflowRearm { .. } => *self = Life::Queued,
            Life::GivenUp { .. } => *self = Life::GivenUp { in_ring: false },
            Life::Queued | Life::Ended | Life::RearmOnTake => {}
        }
    }

    /// Its file could not be installed in the fixed-file table: nothing
    /// armed is re-armed any more (a request in the ring keeps counting as
    /// there; see [`Life::GivenUp`]). A life that was not armed is kept.
    pub(crate) fn file_lost(&mut self) {
        if self.is_armed() {
            *self = Life::GivenUp {
                in_ring: self.in_ring(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: i32 = libc::POLLIN as i32;
    const EBADF: i32 = -libc::EBADF;

    /// A multishot registration armed once, with its first POLL_ADD sent.
    fn in_ring() -> Life {
        let mut life = Life::Queued;
        life.armed();
        life
    }

    #[test]
    fn s01_a_queued_registration_is_armed_and_then_in_the_ring() {
        let mut life = Life::Queued;
        assert!(life.is_armed() && !life.in_ring() && life.awaits_arm());
        life.armed();
        assert_eq!(life, Life::InRing { errors: 0 });
        assert!(life.is_armed() && life.in_ring() && !life.awaits_arm());
    }

    #[test]
    fn s02_a_request_the_kernel_ended_is_rearmed_at_once() {
        let mut life = in_ring();
        assert_eq!(life.end(READY, false, false, false), Ending::Rearm);
        assert_eq!(life, Life::InRing { errors: 0 });
        // A cancelled request is not an error.
        assert_eq!(
            life.end(-libc::ECANCELED, false, false, false),
            Ending::Rearm
        );
        assert_eq!(life, Life::InRing { errors: 0 });
    }

    #[test]
    fn s07_a_oneshot_that_fired_stays_silent_until_modify() {
        let mut life = in_ring();
        assert_eq!(life.end(READY, true, false, false), Ending::Wait);
        assert_eq!(life, Life::Ended);
        assert!(!life.is_armed() && !life.in_ring());
        assert_eq!(Life::modified(false), Life::Queued);
    }

    #[test]
    fn rearm_mode_waits_for_the_take() {
        let mut life = in_ring();
        assert_eq!(life.end(READY, false, true, false), Ending::Wait);
        assert_eq!(life, Life::RearmOnTake);
        assert!(!life.is_armed() && !life.in_ring());
        life.armed();
        assert_eq!(life, Life::InRing { errors: 0 });
    }

    #[test]
    fn three_errors_in_a_row_give_up_and_readiness_starts_the_count_again() {
        let mut life = in_ring();
        assert_eq!(life.end(EBADF, false, false, false), Ending::Rearm);
        assert_eq!(life.end(EBADF, false, false, false), Ending::Rearm);
        assert_eq!(life, Life::InRing { errors: 2 });
        life.fired();
        assert_eq!(life.end(EBADF, false, false, false), Ending::Rearm);
        assert_eq!(life.end(EBADF, false, false, false), Ending::Rearm);
        assert_eq!(life.end(EBADF, false, false, false), Ending::GiveUp);
        assert_eq!(life, Life::GivenUp { in_ring: false });
        assert!(!life.is_armed() && !life.in_ring());
    }

    #[test]
    fn s10_a_request_the_overflow_ended_waits_for_the_flush_with_its_errors() {
        let mut life = in_ring();
        assert_eq!(life.end(EBADF, false, false, true), Ending::AfterOverflow);
        assert_eq!(life, Life::OverflowRearm { errors: 1 });
        assert!(life.is_armed() && life.awaits_arm());
        life.armed();
        assert_eq!(life, Life::InRing { errors: 1 });
        // Readiness during the overflow is not an error.
        let mut life = in_ring();
        assert_eq!(life.end(READY, false, false, true), Ending::AfterOverflow);
        assert_eq!(life, Life::OverflowRearm { errors: 0 });
    }

    #[test]
    fn s06_modify_in_place_stays_in_the_ring_with_no_errors() {
        assert_eq!(Life::modified(true), Life::InRing { errors: 0 });
        assert_eq!(Life::modified(false), Life::Queued);
    }

    #[test]
    fn a_lost_file_is_never_rearmed_and_a_request_in_the_ring_still_counts() {
        let mut life = Life::Queued;
        life.file_lost();
        assert_eq!(life, Life::GivenUp { in_ring: false });
        assert!(!life.is_armed() && !life.in_ring());

        let mut life = in_ring();
        life.file_lost();
        assert_eq!(life, Life::GivenUp { in_ring: true });
        assert!(!life.is_armed() && life.in_ring() && !life.awaits_arm());

        // Not armed: kept (re-arm mode still re-arms at the take).
        let mut life = Life::RearmOnTake;
        life.ring_replaced();
        life.file_lost();
        assert_eq!(life, Life::RearmOnTake);
    }

    /// A file lost while moving to a new ring: no request of it is in the
    /// new ring, so a delete or modify must not treat one as there (it
    /// was `GivenUp { in_ring: true }`, and a modify updated a request that
    /// did not exist).
    #[test]
    fn a_file_lost_on_a_new_ring_has_no_request_there() {
        for before in [in_ring(), Life::OverflowRearm { errors: 1 }, Life::Queued] {
            let mut life = before;
            life.ring_replaced();
            assert!(life.awaits_arm(), "{before:?}");
            life.file_lost();
            assert_eq!(life, Life::GivenUp { in_ring: false }, "{before:?}");
            assert!(!life.in_ring());
        }
        let mut life = Life::GivenUp { in_ring: true };
        life.ring_replaced();
        assert_eq!(life, Life::GivenUp { in_ring: false });
        let mut life = Life::Ended;
        life.ring_replaced();
        assert_eq!(life, Life::Ended);
        let mut life = Life::RearmOnTake;
        life.file_lost();
        assert_eq!(life, Life::RearmOnTake);
    }
}
