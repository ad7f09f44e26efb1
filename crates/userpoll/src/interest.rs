//! What a registration asks for ([`Interest`]) and what an event reports
//! ([`Ready`]). Both use epoll's bit values, which are also `poll(2)`'s values
//! for the bits they share, so no backend translates on the hot path.

use std::fmt;
use std::io;

use crate::sys::errno;

/// `EPOLLIN` / `POLLIN`.
pub const IN: u32 = libc::EPOLLIN as u32;
/// `EPOLLPRI` / `POLLPRI`.
pub const PRI: u32 = libc::EPOLLPRI as u32;
/// `EPOLLOUT` / `POLLOUT`.
pub const OUT: u32 = libc::EPOLLOUT as u32;
/// `EPOLLERR` / `POLLERR`: always reported, never needs asking for.
pub const ERR: u32 = libc::EPOLLERR as u32;
/// `EPOLLHUP` / `POLLHUP`: always reported, never needs asking for.
pub const HUP: u32 = libc::EPOLLHUP as u32;
/// `EPOLLRDHUP` / `POLLRDHUP`: the peer shut down its writing half.
pub const RDHUP: u32 = libc::EPOLLRDHUP as u32;
/// `EPOLLEXCLUSIVE`: rejected with EINVAL by every backend (userpoll ABI).
pub const EXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;
/// `EPOLLWAKEUP`: accepted and ignored, as the userpoll series did.
pub const WAKEUP: u32 = libc::EPOLLWAKEUP as u32;
/// `EPOLLONESHOT`: the oneshot flag (S7).
pub const ONESHOT: u32 = libc::EPOLLONESHOT as u32;
/// `EPOLLET`: always in effect (S1, S2); accepted when given.
pub const ET: u32 = libc::EPOLLET as u32;

/// Readiness bits a caller may ask for.
const READINESS: u32 = IN | PRI | OUT | RDHUP;
/// Every bit a valid interest may carry.
const VALID: u32 = READINESS | ERR | HUP | WAKEUP | ONESHOT | ET;

/// What a registration waits for: readable, writable, priority and
/// read-hang-up readiness, plus the oneshot flag (S7). Error and hang-up are
/// always reported, as with epoll; edge delivery is always in effect.
///
/// ```
/// use userpoll::Interest;
/// let i = Interest::READABLE | Interest::WRITABLE;
/// assert!(i.is_readable() && i.is_writable() && !i.is_oneshot());
/// assert!(i.oneshot().is_oneshot());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u32);

impl Interest {
    /// Readable (`EPOLLIN`).
    pub const READABLE: Interest = Interest(IN);
    /// Writable (`EPOLLOUT`).
    pub const WRITABLE: Interest = Interest(OUT);
    /// Priority data (`EPOLLPRI`).
    pub const PRIORITY: Interest = Interest(PRI);
    /// The peer closed its writing half (`EPOLLRDHUP`).
    pub const READ_HANGUP: Interest = Interest(RDHUP);

    /// An interest from raw epoll bits, kept as given. Backends reject bits
    /// they cannot honour with EINVAL ([`Interest::validate`]); this exists
    /// for callers that hold epoll masks, and for tests of S9.
    pub const fn from_epoll_bits(bits: u32) -> Interest {
        Interest(bits)
    }

    /// The same interest with the oneshot flag set (S7).
    #[must_use]
    pub const fn oneshot(self) -> Interest {
        Interest(self.0 | ONESHOT)
    }

    /// The union of two interests.
    #[must_use]
    pub const fn union(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// The raw epoll bits, flags included.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The readiness bits to ask the kernel for: the requested bits plus
    /// error and hang-up, without flags. Valid as an epoll event mask and
    /// as a `poll(2)` mask.
    pub const fn mask(self) -> u32 {
        (self.0 & READINESS) | ERR | HUP
    }

    /// Asks for readable readiness.
    pub const fn is_readable(self) -> bool {
        self.0 & IN != 0
    }

    /// Asks for writable readiness.
    pub const fn is_writable(self) -> bool {
        self.0 & OUT != 0
    }

    /// Asks for priority readiness.
    pub const fn is_priority(self) -> bool {
        self.0 & PRI != 0
    }

    /// Asks for read hang-up.
    pub const fn is_read_hangup(self) -> bool {
        self.0 & RDHUP != 0
    }

    /// Carries the oneshot flag.
    pub const fn is_oneshot(self) -> bool {
        self.0 & ONESHOT != 0
    }

    /// EINVAL unless the interest asks for at least one readiness bit and
    /// carries no bit a backend cannot honour (`EPOLLEXCLUSIVE`, unknown
    /// bits). Every backend calls this before changing any state (S9).
    pub fn validate(self) -> io::Result<()> {
        // EPOLLEXCLUSIVE: every registration here is edge-triggered and
        // delivered once, so the flag means nothing; unknown bits; or no
        // readiness at all (to stop events, delete the registration).
        if self.0 & EXCLUSIVE != 0 || self.0 & !VALID != 0 || self.0 & READINESS == 0 {
            return Err(errno(libc::EINVAL));
        }
        Ok(())
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Interest({})", MaskNames(self.0))
    }
}

/// A ready mask as delivered with an event: epoll bit values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ready(u32);

impl Ready {
    /// A mask from raw epoll/poll bits.
    pub const fn from_bits(bits: u32) -> Ready {
        Ready(bits)
    }
    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Readable: `EPOLLIN` (or `EPOLLPRI`).
    pub const fn is_readable(self) -> bool {
        self.0 & (IN | PRI) != 0
    }
    /// Writable: `EPOLLOUT`.
    pub const fn is_writable(self) -> bool {
        self.0 & OUT != 0
    }
    /// Priority data: `EPOLLPRI`.
    pub const fn is_priority(self) -> bool {
        self.0 & PRI != 0
    }
    /// An error condition: `EPOLLERR`.
    pub const fn is_error(self) -> bool {
        self.0 & ERR != 0
    }
    /// Hang-up: `EPOLLHUP`.
    pub const fn is_hangup(self) -> bool {
        self.0 & HUP != 0
    }
    /// The read side is closed: `EPOLLRDHUP` or `EPOLLHUP`.
    pub const fn is_read_closed(self) -> bool {
        self.0 & (RDHUP | HUP) != 0
    }
    /// Whether every bit of `bits` is set.
    pub const fn contains(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ready({})", MaskNames(self.0))
    }
}

struct MaskNames(u32);

impl fmt::Display for MaskNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 10] = [
            (IN, "IN"),
            (PRI, "PRI"),
            (OUT, "OUT"),
            (ERR, "ERR"),
            (HUP, "HUP"),
            (RDHUP, "RDHUP"),
            (EXCLUSIVE, "EXCLUSIVE"),
            (WAKEUP, "WAKEUP"),
            (ONESHOT, "ONESHOT"),
            (ET, "ET"),
        ];
        let mut rest = self.0;
        let mut first = true;
        for (bit, name) in NAMES {
            if rest & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !bit;
            }
        }
        if rest != 0 || first {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoll_and_poll_bits_agree() {
        assert_eq!(IN, libc::POLLIN as u32);
        assert_eq!(PRI, libc::POLLPRI as u32);
        assert_eq!(OUT, libc::POLLOUT as u32);
        assert_eq!(ERR, libc::POLLERR as u32);
        assert_eq!(HUP, libc::POLLHUP as u32);
        assert_eq!(RDHUP, libc::POLLRDHUP as u32);
    }

    #[test]
    fn s09_validate_rejects_bad_interest_with_einval() {
        for bad in [0, EXCLUSIVE | IN, 1 << 20 | IN, ERR | HUP, ONESHOT] {
            let e = Interest::from_epoll_bits(bad).validate().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:#x}: {e}");
        }
        for good in [IN, OUT | ET, IN | ONESHOT | WAKEUP, RDHUP, PRI | ERR | HUP] {
            Interest::from_epoll_bits(good).validate().unwrap();
        }
    }

    #[test]
    fn mask_adds_error_and_hangup_and_drops_flags() {
        let i = (Interest::READABLE | Interest::READ_HANGUP).oneshot();
        assert_eq!(i.mask(), IN | RDHUP | ERR | HUP);
        assert!(i.is_oneshot());
        assert_eq!(format!("{i:?}"), "Interest(IN|RDHUP|ONESHOT)");
        assert_eq!(format!("{:?}", Ready::from_bits(0)), "Ready(0x0)");
    }
}
