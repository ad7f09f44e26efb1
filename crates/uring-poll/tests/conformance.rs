//! The contract suite (rules S1..S14) for every setup profile and for
//! re-arm mode. A profile this kernel lacks makes its tests say SKIPPED
//! and why (see `userpoll::conformance::make`).

mod default {
    use uring_poll::UringPoll;
    userpoll::conformance_tests!(|cap| UringPoll::new(cap));
}

mod coop {
    use uring_poll::{Profile, UringPoll};
    userpoll::conformance_tests!(|cap| UringPoll::builder().profile(Profile::Coop).build(cap));
}

mod defer {
    use uring_poll::{Profile, UringPoll};
    userpoll::conformance_tests!(|cap| UringPoll::builder().profile(Profile::Defer).build(cap));
}

mod defer_batch {
    use std::time::Duration;
    use uring_poll::{Profile, UringPoll};
    userpoll::conformance_tests!(|cap| UringPoll::builder()
        .profile(Profile::Defer)
        .min_wait(Duration::from_micros(50))
        .build(cap));
}

mod default_batch {
    use std::time::Duration;
    use uring_poll::UringPoll;
    userpoll::conformance_tests!(|cap| UringPoll::builder()
        .min_wait(Duration::from_micros(50))
        .build(cap));
}

mod sqpoll {
    use uring_poll::{Profile, UringPoll};
    userpoll::conformance_tests!(|cap| UringPoll::builder().profile(Profile::Sqpoll).build(cap));
}

mod rearm {
    use uring_poll::UringPoll;
    userpoll::conformance_tests!(|cap| UringPoll::builder().rearm(true).build(cap));
}

mod rearm_defer {
    use uring_poll::{Profile, UringPoll};
    userpoll::conformance_tests!(|cap| UringPoll::builder()
        .profile(Profile::Defer)
        .rearm(true)
        .build(cap));
}
