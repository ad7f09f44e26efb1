//! What the gate measures: the [`Metric`]s, one suite run's per-backend
//! values ([`BackendRun`], [`SuiteRun`]), running the suite
//! ([`run_once`]), turning a scenario's results into metrics
//! ([`measure`]), and pooling the repetitions of a confirming run
//! ([`pooled`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use userpoll::Counter;

use super::{cannot, CannotRun, GateSuite, Rule, Spin, Tolerances};
use crate::backends::BackendId;
use crate::statistics::median_spread;
use crate::suite::{self, Results};
use crate::summary::PerEvent;

/// A gated metric. Higher is worse for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The backend side's CPU ns/event (the process less the writer
    /// threads) over the reference's, same repetition; median.
    CpuRatio,
    /// Whole-process CPU ns/event (writers included) over the reference's,
    /// same repetition; median. Reported, not gated: half of it is the
    /// load generator's (docs/gate.md).
    ProcessCpuRatio,
    /// Consumer system calls per event other than waits (control, re-arm,
    /// submit, handler reads); median over repetitions.
    OpSyscallsPerEvent,
    /// Consumer waits per event (`epoll_wait`, waiting `io_uring_enter`,
    /// futex wait and wake); median over repetitions.
    WaitSyscallsPerEvent,
    /// Re-arms per event; median over repetitions.
    RearmsPerEvent,
    /// p99 latency over the reference's, same repetition; median.
    P99Ratio,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 6] = [
        Metric::CpuRatio,
        Metric::ProcessCpuRatio,
        Metric::OpSyscallsPerEvent,
        Metric::WaitSyscallsPerEvent,
        Metric::RearmsPerEvent,
        Metric::P99Ratio,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::CpuRatio => "cpu_ratio",
            Metric::ProcessCpuRatio => "process_cpu_ratio",
            Metric::OpSyscallsPerEvent => "op_syscalls_per_event",
            Metric::WaitSyscallsPerEvent => "wait_syscalls_per_event",
            Metric::RearmsPerEvent => "rearms_per_event",
            Metric::P99Ratio => "p99_ratio",
        }
    }

    pub(super) fn is_counter(self) -> bool {
        !matches!(
            self,
            Metric::CpuRatio | Metric::ProcessCpuRatio | Metric::P99Ratio
        )
    }

    /// Whether a change of this metric can fail the gate.
    pub(super) fn is_gated(self) -> bool {
        self != Metric::ProcessCpuRatio
    }

    pub(super) fn rule(self, t: &Tolerances) -> Rule {
        match self {
            Metric::CpuRatio | Metric::ProcessCpuRatio => t.cpu,
            Metric::P99Ratio => t.latency,
            Metric::OpSyscallsPerEvent | Metric::RearmsPerEvent => t.exact,
            Metric::WaitSyscallsPerEvent => t.timing,
        }
    }
}

/// What one suite run measured for one backend of one scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackendRun {
    /// Each metric's median over the repetitions that did not fail.
    pub metrics: BTreeMap<Metric, f64>,
    /// The per-repetition values behind each median.
    pub per_rep: BTreeMap<Metric, Vec<f64>>,
    /// Runs (repetitions) made, and how many failed.
    pub runs: usize,
    /// Failed runs: wrong event count or an error, each described.
    pub failures: Vec<String>,
    /// Events delivered for fds that were not fired (stale or spurious),
    /// over all repetitions.
    pub stale_or_spurious: u64,
}

impl BackendRun {
    /// Sets each metric to the median of its per-repetition values.
    pub(super) fn set_medians(&mut self) {
        self.metrics = self
            .per_rep
            .iter()
            .filter_map(|(m, vs)| median_spread(vs.clone()).map(|(med, _)| (*m, med)))
            .collect();
    }
}

/// One whole run of the gate suite: scenario -> backend -> measurements.
pub type SuiteRun = BTreeMap<String, BTreeMap<String, BackendRun>>;

/// The backends a confirming run measured, each with the repetitions of
/// every run so far pooled: the medians are taken over all of them, so the
/// confirmation judges twice the data rather than asking a second, equally
/// noisy run to cross the line on its own.
pub fn pooled(earlier: &[&SuiteRun], again: &SuiteRun) -> SuiteRun {
    let mut out = again.clone();
    for (sc, backends) in out.iter_mut() {
        for (b, m) in backends.iter_mut() {
            for e in earlier {
                let Some(old) = e.get(sc).and_then(|x| x.get(b)) else {
                    continue;
                };
                for (metric, vs) in &old.per_rep {
                    m.per_rep.entry(*metric).or_default().extend(vs);
                }
                m.runs += old.runs;
                m.failures.extend(old.failures.iter().cloned());
                m.stale_or_spurious += old.stale_or_spurious;
            }
            m.set_medians();
        }
    }
    out
}

/// Runs the whole suite once. `on_run` sees every run as it ends.
pub fn run_once(
    suite: &GateSuite,
    spin: &Spin,
    mut on_run: impl FnMut(&str, &suite::RunResult),
) -> Result<(SuiteRun, Vec<Results>), CannotRun> {
    let reference = suite.reference;
    let mut out = SuiteRun::new();
    let mut all = Vec::new();
    for s in &suite.scenarios {
        let cfg = suite.config(s, spin)?;
        let results = suite::run_suite(&cfg, |r| on_run(&s.name, r))
            .map_err(|e| cannot(format!("scenario {}: {e}", s.name)))?;
        out.insert(s.name.clone(), measure(&results, reference));
        all.push(results);
    }
    Ok((out, all))
}

/// Counters of system calls whose number per event depends on how events
/// batch (timing), not on what the code does per event.
const WAITS: [Counter; 4] = [
    Counter::EpollWait,
    Counter::EnterWait,
    Counter::FutexWait,
    Counter::FutexWake,
];

/// The per-backend measurements of one scenario's results.
pub fn measure(results: &Results, reference: BackendId) -> BTreeMap<String, BackendRun> {
    let by_rep = |id: BackendId| -> BTreeMap<usize, &suite::RunResult> {
        results
            .runs
            .iter()
            .filter(|r| r.backend == id && !r.outcome.failed())
            .map(|r| (r.rep, r))
            .collect()
    };
    let reference_id = reference;
    let reference = by_rep(reference);
    let p99 = |r: &suite::RunResult| {
        let h = &r.outcome.latency;
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(0.99) as f64
        }
    };
    let mut out = BTreeMap::new();
    for &id in &results.config.backends {
        let mut b = BackendRun::default();
        for r in results.runs.iter().filter(|r| r.backend == id) {
            b.runs += 1;
            b.stale_or_spurious += r.outcome.spurious;
            if let Some(why) = r.outcome.failure() {
                b.failures.push(format!("rep {}: {why}", r.rep));
            }
        }
        for (rep, r) in by_rep(id) {
            let pe = PerEvent::of(&r.outcome);
            let o = &r.outcome;
            let waits = WAITS.iter().map(|&c| o.backend.get(c)).sum::<u64>() + o.consumer_other;
            let per = |n: u64| n as f64 / o.events.max(1) as f64;
            let mut push = |m: Metric, v: f64| b.per_rep.entry(m).or_default().push(v);
            push(Metric::WaitSyscallsPerEvent, per(waits));
            push(
                Metric::OpSyscallsPerEvent,
                per(o.consumer_syscalls() - waits),
            );
            push(Metric::RearmsPerEvent, pe.rearms);
            // The reference's own ratios are 1 by definition: not gated.
            if id == reference_id {
                continue;
            }
            if let Some(refr) = reference.get(&rep) {
                let rpe = PerEvent::of(&refr.outcome);
                if rpe.backend_cpu_ns > 0.0 {
                    push(Metric::CpuRatio, pe.backend_cpu_ns / rpe.backend_cpu_ns);
                }
                if rpe.cpu_ns > 0.0 {
                    push(Metric::ProcessCpuRatio, pe.cpu_ns / rpe.cpu_ns);
                }
                let rp = p99(refr);
                if rp > 0.0 {
                    push(Metric::P99Ratio, p99(r) / rp);
                }
            }
        }
        b.set_medians();
        out.insert(id.to_string(), b);
    }
    out
}
