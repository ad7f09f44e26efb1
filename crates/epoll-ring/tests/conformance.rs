//! The userpoll conformance suite (rules S1..S14) in both driver modes.
#![cfg(not(loom))] // Loom builds run only tests/loom.rs.

mod thread {
    use epoll_ring::{DriverMode, EpollRing};
    userpoll::conformance_tests!(|cap| EpollRing::with_mode(cap, DriverMode::Thread));
}

mod inline {
    use epoll_ring::{DriverMode, EpollRing};
    userpoll::conformance_tests!(|cap| EpollRing::with_mode(cap, DriverMode::Inline));
}
