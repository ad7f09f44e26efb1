//! `add` and `delete` at 10,000 registrations: the cost of one `add` into
//! a poller that holds 10,000 registrations, and of one `delete` out of it,
//! for the reference backend, `epoll-ring` (driver thread) and
//! `uring-poll` (default profile).
//!
//! Each poller holds 10,000 registered eventfds for the whole benchmark,
//! plus a block of [`BLOCK`] more that the benchmark adds and deletes: an
//! `add` iteration is one `add` of a block fd into a poller holding 10,000
//! to 10,099 registrations, a `delete` iteration one `delete` of a block fd
//! out of one holding 10,001 to 10,100. The opposite operation, restoring
//! the block, runs outside the clock.
//!
//! Two timings per operation:
//! - `call`: the `Control` call alone;
//! - `call+flush`: the calls of a block and then two non-blocking polls,
//!   divided by the block size. `uring-poll` only queues its ring work in
//!   the call (a POLL_ADD, or an ASYNC_CANCEL); the first poll submits it
//!   and the second collects the completions a cancel produces, so this is
//!   the whole cost of the operation. For the other backends the polls
//!   add one `epoll_wait` (reference) or two empty ring takes (epoll-ring)
//!   per block.
//!
//! See `docs/benchmarks.md`.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use epoll_ring::EpollRing;
use uring_poll::UringPoll;
use userpoll::reference::Reference;
use userpoll::{Control, Events, Interest, Poller};
use userpoll_benches::{add_all, delete_all, ensure_fd_room, eventfds, flush};

/// Registrations the poller holds throughout.
const BASE: usize = 10_000;
/// fds added and deleted by the benchmark, one block per round.
const BLOCK: usize = 100;

#[derive(Clone, Copy)]
enum Op {
    Add,
    Delete,
}

/// Times `iters` operations `op` on block fds, in rounds of at most
/// [`BLOCK`]; with `flush`, two polls after each round's calls are inside
/// the clock. The block is registered when a `Delete` round starts and not
/// registered when an `Add` round starts, and is left that way.
fn time_ops<P: Poller>(
    poller: &mut P,
    block: &[OwnedFd],
    op: Op,
    with_flush: bool,
    iters: u64,
) -> Duration {
    let mut events = Events::with_capacity(64);
    let control = poller.control().clone();
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        let fds = &block[..n];
        let start = Instant::now();
        for (i, fd) in fds.iter().enumerate() {
            match op {
                Op::Add => control.add(fd.as_fd(), Interest::READABLE, (BASE + i) as u64),
                Op::Delete => control.delete(fd.as_fd()),
            }
            .expect("control call");
        }
        if with_flush {
            flush(poller, &mut events).expect("poll");
        }
        total += start.elapsed();
        if !with_flush {
            flush(poller, &mut events).expect("poll");
        }
        // Put the block back as it was, outside the clock.
        match op {
            Op::Add => delete_all(&control, fds),
            Op::Delete => add_all(&control, fds),
        }
        .expect("restore the block");
        flush(poller, &mut events).expect("poll");
        left -= n as u64;
    }
    total
}

/// The four benchmarks of one backend: add and delete, each as `call` and
/// `call+flush`.
fn bench_backend<P: Poller>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut poller: P,
    base: &[OwnedFd],
    block: &[OwnedFd],
) {
    let mut events = Events::with_capacity(64);
    add_all(poller.control(), base).expect("register 10,000 eventfds");
    flush(&mut poller, &mut events).expect("poll");
    for with_flush in [false, true] {
        let how = if with_flush { "call+flush" } else { "call" };
        group.bench_function(BenchmarkId::new(format!("add/{how}"), name), |b| {
            b.iter_custom(|iters| time_ops(&mut poller, block, Op::Add, with_flush, iters))
        });
        add_all(poller.control(), block).expect("register the block");
        flush(&mut poller, &mut events).expect("poll");
        group.bench_function(BenchmarkId::new(format!("delete/{how}"), name), |b| {
            b.iter_custom(|iters| time_ops(&mut poller, block, Op::Delete, with_flush, iters))
        });
        delete_all(poller.control(), block).expect("delete the block");
        flush(&mut poller, &mut events).expect("poll");
    }
    // Leave the fds unregistered for the next backend.
    delete_all(poller.control(), base).expect("delete 10,000 registrations");
    flush(&mut poller, &mut events).expect("poll");
}

fn control(c: &mut Criterion) {
    // The eventfds, and uring-poll's fixed-file table of as many slots
    // (which the kernel bounds by RLIMIT_NOFILE too); one backend at a time.
    ensure_fd_room(BASE + BLOCK).expect("room for the eventfds");
    let base = eventfds(BASE).expect("eventfds");
    let block = eventfds(BLOCK).expect("eventfds");
    let capacity = BASE + BLOCK;

    let mut group = c.benchmark_group("control");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let reference = Reference::new(capacity).expect("an epoll instance");
    bench_backend(&mut group, "reference", reference, &base, &block);

    let ring = EpollRing::new(capacity).expect("an epoll-ring poller (driver thread)");
    bench_backend(&mut group, "epoll-ring", ring, &base, &block);

    let uring = UringPoll::new(capacity).expect("an io_uring poller (default profile)");
    bench_backend(&mut group, "uring-poll", uring, &base, &block);

    group.finish();
}

criterion_group!(benches, control);
criterion_main!(benches);
