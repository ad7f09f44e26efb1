//! The userpoll ring on its own, with no kernel and no poller around it:
//! [`Ring::publish`] from one and from two producer threads, and
//! [`Ring::take`] of batches of 1, 64 and 1024 queued items.
//!
//! Every timed region holds only publishes or only takes; the other half of
//! the protocol (taking what was published, publishing what is taken) runs
//! outside it, and is checked there: each round asserts that every publish
//! did what its benchmark says it measures. See `docs/benchmarks.md`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use epoll_ring::ring::{Publish, Ring};

/// Items in the ring: the largest batch a round publishes or takes.
const CAPACITY: usize = 1024;
const IN: u32 = libc::EPOLLIN as u32;

/// A ring of [`CAPACITY`] items, every one armed for `EPOLLIN` with its slot
/// number as data; returns the generation of each slot.
fn armed_ring() -> (Ring, Vec<u32>) {
    let ring = Ring::new(CAPACITY).expect("a ring of 1024 items");
    let generations = (0..CAPACITY as u32)
        .map(|slot| ring.set(slot, IN, slot as u64).expect("slot in range"))
        .collect();
    (ring, generations)
}

/// Takes everything queued (outside the timed region) and checks that it
/// was exactly `expected` events.
fn take_all(ring: &Ring, expected: usize) {
    let taken = ring.take(usize::MAX, |_, _, _| {}).expect("an intact ring");
    assert_eq!(taken.events, expected, "events queued by the round");
    assert_eq!(ring.pending().expect("an intact ring"), 0);
}

/// Splits `iters` into rounds of at most [`CAPACITY`].
fn rounds(iters: u64) -> impl Iterator<Item = usize> {
    let full = iters / CAPACITY as u64;
    let last = (iters % CAPACITY as u64) as usize;
    (0..full)
        .map(|_| CAPACITY)
        .chain((last > 0).then_some(last))
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn publish_one_producer(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_publish");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let (ring, generations) = armed_ring();

    // An idle item becomes queued: the ready_events CAS, the counter
    // fetch_add, the index store, the counter CAS and the tail update.
    group.bench_function("1_producer/queued", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for n in rounds(iters) {
                let start = Instant::now();
                for slot in 0..n as u32 {
                    black_box(ring.publish(
                        black_box(slot),
                        generations[slot as usize],
                        black_box(IN),
                    ));
                }
                total += start.elapsed();
                take_all(&ring, n);
            }
            total
        })
    });

    // The item is queued already: the bits are ORed in and nothing else
    // (S3), the path of every fire after the first before a take.
    for slot in 0..CAPACITY as u32 {
        assert_eq!(
            ring.publish(slot, generations[slot as usize], IN),
            Publish::Queued
        );
    }
    group.bench_function("1_producer/coalesced", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for n in rounds(iters) {
                let start = Instant::now();
                for slot in 0..n as u32 {
                    black_box(ring.publish(
                        black_box(slot),
                        generations[slot as usize],
                        black_box(IN),
                    ));
                }
                total += start.elapsed();
                assert_eq!(ring.pending().expect("an intact ring"), CAPACITY as u32);
            }
            total
        })
    });
    take_all(&ring, CAPACITY);
    group.finish();
}

/// The second producer: a thread that publishes its half of each round when
/// the main thread says go. A round is announced (`ready`), acknowledged
/// (`armed`, so the helper is known to be running and spinning before the
/// clock starts), started (`go`) and finished (`done`), each by storing the
/// round number.
struct Helper {
    ready: AtomicU64,
    armed: AtomicU64,
    go: AtomicU64,
    done: AtomicU64,
    /// The helper's slots this round: `[split, len)`.
    split: AtomicUsize,
    len: AtomicUsize,
    stop: AtomicBool,
}

impl Helper {
    fn new() -> Helper {
        Helper {
            ready: AtomicU64::new(0),
            armed: AtomicU64::new(0),
            go: AtomicU64::new(0),
            done: AtomicU64::new(0),
            split: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// The helper thread's loop: between rounds it spins briefly, then
    /// parks (criterion analyses between benchmarks, and this machine's two
    /// cores are shared), so the main thread unparks it for each round.
    fn run(&self, ring: &Ring, generations: &[u32]) {
        let mut round = 0;
        loop {
            let mut spins = 0u32;
            loop {
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                if self.ready.load(Ordering::Acquire) > round {
                    break;
                }
                spins += 1;
                if spins < 10_000 {
                    std::hint::spin_loop();
                } else {
                    thread::park_timeout(Duration::from_millis(10));
                }
            }
            round += 1;
            let (from, to) = (
                self.split.load(Ordering::Relaxed),
                self.len.load(Ordering::Relaxed),
            );
            self.armed.store(round, Ordering::Release);
            while self.go.load(Ordering::Acquire) < round {
                std::hint::spin_loop();
            }
            for slot in from as u32..to as u32 {
                black_box(ring.publish(black_box(slot), generations[slot as usize], black_box(IN)));
            }
            self.done.store(round, Ordering::Release);
        }
    }
}

/// Spins until `flag` reaches `round`, yielding now and then so that a
/// descheduled partner can run.
fn wait_for(flag: &AtomicU64, round: u64) {
    let mut spins = 0u32;
    while flag.load(Ordering::Acquire) < round {
        spins = spins.wrapping_add(1);
        if spins % 256 == 0 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

fn publish_two_producers(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_publish");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let (ring, generations) = armed_ring();
    let helper = Helper::new();

    // Each round the main thread publishes slots [0, n/2) and the helper
    // [n/2, n) at the same time. The clock runs from the go signal until
    // both are done, so one iteration is the wall time per publish of the
    // pair (the inverse of their combined throughput).
    //
    // `queued`: every item is idle, so the two contend on the producers'
    // counter and on `tail`. `coalesced`: every item is queued already, so
    // they share nothing but the cache line at the boundary of their
    // halves; it shows what the harness itself costs and how two producers
    // scale when they do not contend.
    thread::scope(|s| {
        let worker = s.spawn(|| helper.run(&ring, &generations));
        let mut round = 0u64;
        for queued in [true, false] {
            if !queued {
                for slot in 0..CAPACITY as u32 {
                    let p = ring.publish(slot, generations[slot as usize], IN);
                    assert_eq!(p, Publish::Queued);
                }
            }
            let name = if queued { "queued" } else { "coalesced" };
            group.bench_function(format!("2_producers/{name}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for n in rounds(iters) {
                        round += 1;
                        let split = n / 2;
                        helper.split.store(split, Ordering::Relaxed);
                        helper.len.store(n, Ordering::Relaxed);
                        helper.ready.store(round, Ordering::Release);
                        worker.thread().unpark();
                        wait_for(&helper.armed, round);

                        let start = Instant::now();
                        helper.go.store(round, Ordering::Release);
                        for slot in 0..split as u32 {
                            black_box(ring.publish(
                                black_box(slot),
                                generations[slot as usize],
                                black_box(IN),
                            ));
                        }
                        wait_for(&helper.done, round);
                        total += start.elapsed();

                        if queued {
                            take_all(&ring, n);
                        } else {
                            let pending = ring.pending().expect("an intact ring");
                            assert_eq!(pending, CAPACITY as u32);
                        }
                    }
                    total
                })
            });
        }
        take_all(&ring, CAPACITY);
        helper.stop.store(true, Ordering::Release);
        worker.thread().unpark();
    });
    group.finish();
}

fn take(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_take");
    configure(&mut group);
    let (ring, generations) = armed_ring();

    // The ring holds CAPACITY queued items (published outside the clock);
    // each iteration is one take of at most `batch` of them, which the
    // callback only passes to black_box. A round is CAPACITY / batch takes.
    for batch in [1usize, 64, 1024] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    for slot in 0..CAPACITY as u32 {
                        ring.publish(slot, generations[slot as usize], IN);
                    }
                    let takes = left.min((CAPACITY / batch) as u64);
                    let mut got = 0;
                    let start = Instant::now();
                    for _ in 0..takes {
                        let t = ring
                            .take(black_box(batch), |slot, data, bits| {
                                black_box((slot, data, bits));
                            })
                            .expect("an intact ring");
                        got += t.events;
                    }
                    total += start.elapsed();
                    assert_eq!(got, takes as usize * batch, "every take got its batch");
                    left -= takes;
                    take_all(&ring, CAPACITY - got);
                }
                total
            })
        });
    }

    // Nothing queued: what a consumer pays to learn the ring is empty (a
    // head and tail read), the step it repeats while it spins.
    group.throughput(Throughput::Elements(1));
    group.bench_function("empty", |b| {
        b.iter(|| {
            ring.take(black_box(64), |slot, data, bits| {
                black_box((slot, data, bits));
            })
            .expect("an intact ring")
        })
    });
    group.finish();
}

criterion_group!(benches, publish_one_producer, publish_two_producers, take);
criterion_main!(benches);
