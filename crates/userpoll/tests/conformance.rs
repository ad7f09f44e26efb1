//! The conformance suite against the reference backend (epoll, edge-triggered).
userpoll::conformance_tests!(userpoll::reference::Reference::new);
