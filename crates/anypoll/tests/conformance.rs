//! The contract suite (S1..S14, the hostile inputs, fork and the model
//! test) through `AnyPoller`, once per backend id: what a program that
//! picks its backend at run time gets is what each backend promises.

macro_rules! through_any {
    ($($module:ident => $id:literal),* $(,)?) => {$(
        mod $module {
            use anypoll::{AnyPoller, Backend};
            userpoll::conformance_tests!(|cap| {
                let backend: Backend = $id.parse().expect("a valid id");
                AnyPoller::new(backend, cap)
            });
        }
    )*};
}

through_any! {
    reference => "reference",
    epoll_ring => "epoll-ring",
    epoll_ring_inline => "epoll-ring:inline",
    uring_poll => "uring-poll",
    uring_poll_coop => "uring-poll:coop",
    uring_poll_defer => "uring-poll:defer",
    uring_poll_defer_batch => "uring-poll:defer+batch",
    uring_poll_sqpoll => "uring-poll:sqpoll",
    uring_poll_rearm => "uring-poll:rearm",
    uring_poll_rearm_defer => "uring-poll:rearm+defer",
}

#[test]
fn every_id_round_trips_and_unknown_ids_list_the_valid_ones() {
    use anypoll::Backend;
    for b in Backend::ALL {
        assert_eq!(b.to_string().parse::<Backend>().unwrap(), *b);
    }
    let e = "uring-pol".parse::<Backend>().unwrap_err().to_string();
    assert!(e.contains("unknown backend \"uring-pol\""), "{e}");
    assert!(
        e.contains("uring-poll:defer") && e.contains("epoll-ring:inline"),
        "{e}"
    );
}

#[test]
fn a_poller_reports_the_backend_it_was_made_as() {
    use anypoll::{AnyPoller, Backend};
    for b in Backend::ALL {
        match AnyPoller::new(*b, 4) {
            Ok(p) => assert_eq!(p.backend(), *b),
            Err(e) => eprintln!("SKIPPED {b}: {e}"),
        }
    }
}
