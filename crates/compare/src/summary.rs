//! What a suite measured, per backend: the derived per-event numbers of one
//! run ([`PerEvent`]), each backend's medians over its repetitions
//! ([`BackendSummary`], [`summarize`]) and the within-repetition ratio of
//! two backends ([`ratio`]). The printed table, the JSON and the plots all
//! read these; none of them computes its own.

use hdrhistogram::Histogram;

use crate::backends::BackendId;
use crate::harness::{new_histogram, Outcome};
use crate::statistics::median_spread;
use crate::suite::{Results, RunResult};

/// `n` per event; 0 when there was no event.
pub(crate) fn per(n: u64, events: u64) -> f64 {
    if events == 0 {
        0.0
    } else {
        n as f64 / events as f64
    }
}

/// The derived per-event numbers of one run.
#[derive(Debug, Clone, Copy)]
pub struct PerEvent {
    /// Events per second of wall time.
    pub events_per_sec: f64,
    /// Whole-process CPU ns per event.
    pub cpu_ns: f64,
    /// Consuming-thread CPU ns per event.
    pub consumer_cpu_ns: f64,
    /// The backend side's CPU ns per event: the whole process less the
    /// writer threads (the load generator). The consumer plus any thread
    /// the backend runs (epoll-ring's driver, io_uring's kernel workers).
    pub backend_cpu_ns: f64,
    /// Consuming-side system calls per event.
    pub syscalls: f64,
    /// Re-arms per event.
    pub rearms: f64,
}

impl PerEvent {
    /// The per-event numbers of `o`.
    pub fn of(o: &Outcome) -> PerEvent {
        PerEvent {
            events_per_sec: if o.wall_ns == 0 {
                0.0
            } else {
                o.events as f64 * 1e9 / o.wall_ns as f64
            },
            cpu_ns: per(o.process_cpu_ns, o.events),
            consumer_cpu_ns: per(o.consumer_cpu_ns, o.events),
            backend_cpu_ns: per(o.process_cpu_ns.saturating_sub(o.writer_cpu_ns), o.events),
            syscalls: per(o.consumer_syscalls(), o.events),
            rearms: per(o.backend.rearms(), o.events),
        }
    }
}

/// Per-backend medians over the runs that did not fail.
#[derive(Debug, Clone)]
pub struct BackendSummary {
    /// The backend.
    pub id: BackendId,
    /// Runs, and runs that failed.
    pub runs: usize,
    /// Failed runs.
    pub failed: usize,
    /// Median events/s and spread.
    pub events_per_sec: (f64, f64),
    /// Median whole-process CPU ns/event and spread.
    pub cpu_ns: (f64, f64),
    /// Median consumer CPU ns/event and spread.
    pub consumer_cpu_ns: (f64, f64),
    /// Median consumer syscalls/event.
    pub syscalls: f64,
    /// Median re-arms/event.
    pub rearms: f64,
    /// Minimum and maximum CPU ns/event over the good runs.
    pub cpu_ns_range: (f64, f64),
    /// CPU ns/event of each good run, with its repetition.
    pub cpu_by_rep: Vec<(usize, f64)>,
    /// Latency of every good run merged (ns).
    pub latency: Histogram<u64>,
}

/// The summary of each backend, in the order the suite ran them.
pub fn summarize(results: &Results) -> Vec<BackendSummary> {
    let mut out = Vec::new();
    for &id in &results.config.backends {
        let runs: Vec<&RunResult> = results.runs.iter().filter(|r| r.backend == id).collect();
        let good: Vec<&RunResult> = runs
            .iter()
            .copied()
            .filter(|r| !r.outcome.failed())
            .collect();
        let pes: Vec<PerEvent> = good.iter().map(|r| PerEvent::of(&r.outcome)).collect();
        let col = |f: fn(&PerEvent) -> f64| median_spread(pes.iter().map(f).collect());
        let mut latency = new_histogram();
        for r in &good {
            let _ = latency.add(&r.outcome.latency);
        }
        let cpus: Vec<f64> = pes.iter().map(|p| p.cpu_ns).collect();
        out.push(BackendSummary {
            id,
            runs: runs.len(),
            failed: runs.len() - good.len(),
            events_per_sec: col(|p| p.events_per_sec).unwrap_or_default(),
            cpu_ns: col(|p| p.cpu_ns).unwrap_or_default(),
            consumer_cpu_ns: col(|p| p.consumer_cpu_ns).unwrap_or_default(),
            syscalls: col(|p| p.syscalls).unwrap_or_default().0,
            rearms: col(|p| p.rearms).unwrap_or_default().0,
            cpu_ns_range: (
                cpus.iter().copied().fold(f64::INFINITY, f64::min),
                cpus.iter().copied().fold(0.0, f64::max),
            ),
            cpu_by_rep: good.iter().zip(&cpus).map(|(r, &c)| (r.rep, c)).collect(),
            latency,
        });
    }
    out
}

/// CPU ns/event of `a` as a multiple of `b`'s: the median, over the
/// repetitions both completed, of the ratio within each repetition. The
/// two ran back to back there, so the machine's drift between repetitions
/// (which the absolute medians carry) cancels.
pub fn ratio(a: Option<&BackendSummary>, b: Option<&BackendSummary>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let pairs: Vec<f64> = a
        .cpu_by_rep
        .iter()
        .filter_map(|&(rep, x)| {
            let y = b.cpu_by_rep.iter().find(|(r, _)| *r == rep)?.1;
            (y > 0.0).then_some(x / y)
        })
        .collect();
    median_spread(pairs).map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: BackendId, cpu_by_rep: &[(usize, f64)]) -> BackendSummary {
        BackendSummary {
            id,
            runs: cpu_by_rep.len(),
            failed: 0,
            events_per_sec: (0.0, 0.0),
            cpu_ns: median_spread(cpu_by_rep.iter().map(|c| c.1).collect()).unwrap(),
            consumer_cpu_ns: (0.0, 0.0),
            syscalls: 0.0,
            rearms: 0.0,
            cpu_ns_range: (0.0, 0.0),
            cpu_by_rep: cpu_by_rep.to_vec(),
            latency: new_histogram(),
        }
    }

    #[test]
    fn ratios_pair_runs_of_the_same_repetition() {
        // The machine slowed down in rep 2 and sped up in rep 1: per-rep
        // ratios are 3, 0.5 and 2 (median 2) while the ratio of the medians
        // (10 / 20) would say 0.5.
        let a = summary(BackendId::Mio, &[(0, 3.0), (1, 10.0), (2, 100.0)]);
        let b = summary(BackendId::Polling, &[(0, 1.0), (1, 20.0), (2, 50.0)]);
        assert_eq!(ratio(Some(&a), Some(&b)), Some(2.0));
        // A repetition that failed for one of them is left out.
        let c = summary(BackendId::Reference, &[(0, 1.0), (2, 50.0)]);
        assert_eq!(ratio(Some(&a), Some(&c)), Some(2.5));
        assert_eq!(ratio(Some(&a), None), None);
    }
}
