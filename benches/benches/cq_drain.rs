//! One `poll` that drains a burst: K = 1024 registered eventfds, each fired
//! M = 1, 4 or 16 times, then one non-blocking `poll` that must report K
//! events.
//!
//! For `uring-poll` (default profile) the burst is K×M multishot
//! completions in the CQ, and the poll walks them all, checks each key's
//! generation and merges them per registration into K events: the drain
//! with coalescing. The fires run on the poller's own thread, so in the
//! default profile each completion is posted when its `write` returns, and
//! all K×M are in the CQ before the clock starts; the CQ is sized to hold
//! them (`Builder::cq_entries`), so the drain never meets an overflow.
//!
//! For comparison, on the same fires: the reference backend (edge-triggered
//! kernel epoll, which merges the fires in the kernel as they happen, so
//! the poll is one `epoll_wait` returning K entries), and `epoll-ring` with
//! its driver thread (which publishes into the ring as the fires happen;
//! the bench waits until the driver is idle, so the poll is a take of K
//! ring entries and no system call).
//!
//! The fires (K×M `write`s) are outside the clock; only the `poll` is timed.
//! Each iteration checks that the poll reported exactly K events. See
//! `docs/benchmarks.md`.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use epoll_ring::EpollRing;
use uring_poll::UringPoll;
use userpoll::reference::Reference;
use userpoll::{Counter, Events, Poller};
use userpoll_benches::{add_all, ensure_fd_room, eventfds, fire_rounds, settle_ring};

/// Registrations fired per burst.
const K: usize = 1024;
/// Fires per registration.
const FIRES: [usize; 3] = [1, 4, 16];

/// Fires every fd `m` times, then (after `settle`) times one poll; checks
/// that it reported every fd once. Returns the summed poll times of `iters`
/// bursts.
fn drain<P: Poller>(
    poller: &mut P,
    fds: &[OwnedFd],
    m: usize,
    iters: u64,
    settle: impl Fn(&P),
) -> Duration {
    let mut events = Events::with_capacity(K);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        fire_rounds(fds, m).expect("fire the eventfds");
        settle(poller);
        let start = Instant::now();
        let n = poller.poll(&mut events).expect("poll");
        total += start.elapsed();
        assert_eq!(n, K, "one event per fired registration");
    }
    total
}

fn cq_drain(c: &mut Criterion) {
    ensure_fd_room(K).expect("room for the eventfds");
    let fds = eventfds(K).expect("eventfds");
    let mut group = c.benchmark_group("cq_drain");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let max_cqes = K * FIRES.iter().max().expect("fire counts") + 64;
    let mut uring = UringPoll::builder()
        .cq_entries(max_cqes as u32)
        .build(K)
        .expect("an io_uring poller (default profile)");
    assert!(
        uring.cq_entries() as usize >= max_cqes,
        "{}",
        uring.describe()
    );
    add_all(uring.control(), &fds).expect("register the eventfds");
    let mut events = Events::with_capacity(K);
    uring.poll(&mut events).expect("submit the POLL_ADDs");
    for m in FIRES {
        group.throughput(Throughput::Elements((K * m) as u64));
        // Check once, outside the clock, that a burst really is K×M
        // completions (the kernel did not merge fires) and K events.
        let before = uring.stats();
        fire_rounds(&fds, m).expect("fire the eventfds");
        assert_eq!(uring.poll(&mut events).expect("poll"), K);
        let cqes = (uring.stats() - before).get(Counter::CqesSeen);
        eprintln!("cq_drain: uring-poll K={K} M={m}: {cqes} CQEs merged into {K} events");
        assert!(cqes >= (K * m) as u64, "{cqes} CQEs for {K}x{m} fires");
        group.bench_function(BenchmarkId::new("uring-poll", format!("M{m}")), |b| {
            b.iter_custom(|iters| drain(&mut uring, &fds, m, iters, |_| {}))
        });
    }
    drop(uring);

    let mut reference = Reference::new(K).expect("an epoll instance");
    add_all(reference.control(), &fds).expect("register the eventfds");
    for m in FIRES {
        group.throughput(Throughput::Elements((K * m) as u64));
        group.bench_function(BenchmarkId::new("reference", format!("M{m}")), |b| {
            b.iter_custom(|iters| drain(&mut reference, &fds, m, iters, |_| {}))
        });
    }
    drop(reference);

    let mut ring = EpollRing::new(K).expect("an epoll-ring poller (driver thread)");
    add_all(ring.control(), &fds).expect("register the eventfds");
    for m in FIRES {
        group.throughput(Throughput::Elements((K * m) as u64));
        group.bench_function(BenchmarkId::new("epoll-ring", format!("M{m}")), |b| {
            b.iter_custom(|iters| {
                drain(&mut ring, &fds, m, iters, |p| {
                    settle_ring(p, K as u32).expect("the driver settles")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cq_drain);
criterion_main!(benches);
