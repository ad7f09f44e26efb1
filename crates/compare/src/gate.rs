//! `compare gate`: the CI performance regression gate.
//!
//! A fixed suite (`benches/gate.json`) runs every listed backend with its
//! repetitions interleaved, and each backend's numbers are compared with a
//! committed baseline (`benches/baseline.json`):
//!
//! - correctness, always hard: every run delivers exactly the events fired
//!   (no loss, no stale or spurious event) and ends without error;
//! - counters: consumer system calls per event other than waits, and
//!   re-arms per event, near-exact (they do not depend on timing); waits
//!   per event, loosely (how events batch into one wait does);
//! - cost, in burst scenarios (each round reaches the backend as one
//!   batch): the backend side's CPU ns/event (the process less the writer
//!   threads) as a ratio to the suite's reference backend, taken within
//!   each repetition (the two ran back to back, so the machine's drift
//!   cancels) and then the median over repetitions;
//! - latency, in closed-loop scenarios: p99 as a ratio to the reference's
//!   p99, likewise, with a looser tolerance.
//!
//! Every metric is "higher is worse". A metric regresses when it exceeds
//! its baseline value by more than its tolerance; a suspect is run again
//! (its backends and the reference only) and fails only if it also
//! regresses over both runs' repetitions pooled (see [`pooled`]). Tolerances are not
//! guessed: `compare gate --record` runs the whole suite `record_runs`
//! times, and for each metric takes the baseline value as the median of
//! the per-run values and the noise as their spread (see [`tolerance`]).
//! `docs/gate.md` says how that was checked and when a refresh is
//! legitimate.
//!
//! Exit codes: 0 pass, 1 regression, 2 the gate could not run (a file that
//! cannot be read, a suite changed since its baseline, a backend that
//! cannot run here).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use userpoll::Counter;

use crate::backends;
use crate::fds::FdKind;
use crate::harness::{Handler, Workload};
use crate::report::{self, PerEvent};
use crate::suite::{self, Results, SuiteConfig};

/// The suite file: what the gate runs and how it derives tolerances.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GateSuite {
    /// What the suite is for (free text).
    pub about: String,
    /// The backend every cost and latency ratio is taken against; it must
    /// be in every scenario.
    pub reference: String,
    /// Repetitions of every backend, interleaved.
    pub reps: usize,
    /// Whole-suite runs `--record` makes to measure the noise.
    pub record_runs: usize,
    /// How each class of metric turns measured noise into a tolerance.
    /// Applied when judging, so changing a rule needs no new baseline.
    pub tolerances: Tolerances,
    /// CPU and latency ratios that are measured and reported but not
    /// gated, each with the reason: `backend` (in every scenario) or
    /// `scenario/backend`. Their correctness and counters are gated like
    /// every other's.
    #[serde(default)]
    pub ungated: BTreeMap<String, String>,
    /// Runs a gate may make: when a run shows a cost, counter or latency
    /// regression, the suspect backends run again with the reference, and
    /// a check fails only if it regressed in the first run and over the
    /// repetitions of all runs pooled (a correctness failure in any run
    /// fails at once). 1 disables the confirmation.
    #[serde(default = "one")]
    pub attempts: usize,
    /// The workloads.
    pub scenarios: Vec<Scenario>,
}

/// The tolerance rule of each class of metric.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// CPU ns/event ratios.
    pub cpu: Rule,
    /// p99 latency ratios (looser: tails are noisy on a VM).
    pub latency: Rule,
    /// Counters that do not depend on timing: system calls other than
    /// waits, re-arms (near-exact).
    pub exact: Rule,
    /// Counters that depend on how events batch: waits per event.
    pub timing: Rule,
}

/// Tolerance = max(`k` x noise, `floor_rel` x value, `floor_abs`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Multiple of the measured noise (a standard deviation).
    pub k: f64,
    /// Smallest tolerance as a fraction of the baseline value.
    pub floor_rel: f64,
    /// Smallest tolerance in the metric's own unit.
    pub floor_abs: f64,
}

/// One workload of the suite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A stable name (the baseline's key).
    pub name: String,
    /// eventfd, pipe, socketpair or tcp.
    pub fd_kind: String,
    /// Fds registered.
    pub fds: usize,
    /// Fds fired per round.
    pub active: usize,
    /// Measured rounds per run.
    pub rounds: u64,
    /// Warm-up rounds per run.
    pub warmup_rounds: u64,
    /// read or none.
    pub handler: String,
    /// Writer threads.
    pub writers: usize,
    /// Closed loop in bursts (the writers fire each whole round before the
    /// consumer takes it): a cost scenario. In a burst scenario the CPU
    /// ratio is gated and p99 latency only reported (it includes the
    /// round's firing); in the others, the reverse.
    #[serde(default)]
    pub burst: bool,
    /// Backends, in the order each repetition runs them.
    pub backends: Vec<String>,
}

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

    fn is_counter(self) -> bool {
        !matches!(
            self,
            Metric::CpuRatio | Metric::ProcessCpuRatio | Metric::P99Ratio
        )
    }

    /// Whether a change of this metric can fail the gate.
    fn is_gated(self) -> bool {
        self != Metric::ProcessCpuRatio
    }

    fn rule(self, t: &Tolerances) -> Rule {
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
    fn set_medians(&mut self) {
        self.metrics = self
            .per_rep
            .iter()
            .filter_map(|(m, vs)| report::median_spread(vs.clone()).map(|(med, _)| (*m, med)))
            .collect();
    }
}

/// One whole run of the gate suite: scenario -> backend -> measurements.
pub type SuiteRun = BTreeMap<String, BTreeMap<String, BackendRun>>;

/// One metric of the baseline.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Baselined {
    /// The value the gate compares with: the median of the recorded runs.
    pub value: f64,
    /// This metric's noise over the recorded runs (a standard deviation).
    pub noise: f64,
}

/// The committed baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// Digest of the suite it was recorded with; a different suite needs a
    /// new baseline.
    pub suite_digest: String,
    /// Where and how it was recorded (kernel, CPU, runs, date).
    pub recorded: BTreeMap<String, String>,
    /// scenario -> backend -> metric -> value, noise and tolerance.
    pub scenarios: BTreeMap<String, BTreeMap<String, BTreeMap<Metric, Baselined>>>,
    /// Every recorded run's per-backend medians, for the record.
    pub runs: Vec<SuiteRun>,
}

fn one() -> usize {
    1
}

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

/// Merges the checks of a confirming run (judged on the pooled
/// repetitions, see [`pooled`]) into `checks`: a cost, counter or latency
/// regression stands only if it regressed again; a correctness failure in
/// either run stands.
pub fn confirm(checks: &mut [Check], again: &[Check], attempt: usize) {
    let key = |c: &Check| (c.scenario.clone(), c.backend.clone(), c.metric.clone());
    let again: BTreeMap<_, &Check> = again.iter().map(|c| (key(c), c)).collect();
    for c in checks.iter_mut() {
        let Some(a) = again.get(&key(c)) else {
            continue;
        };
        if c.metric == "correctness" {
            if a.verdict == Verdict::Regression {
                c.verdict = Verdict::Regression;
                c.detail = format!("{} | run {attempt}: {}", c.detail, a.detail);
            }
            continue;
        }
        if c.verdict != Verdict::Regression {
            continue;
        }
        if a.verdict == Verdict::Regression {
            c.detail = format!(
                "confirmed by run {attempt}: {:.3} over the pooled repetitions",
                a.measured
            );
        } else {
            c.detail = format!(
                "{:.3} in the first run, {:.3} over the pooled repetitions of run {attempt}: \
                 not confirmed",
                c.measured, a.measured
            );
            c.verdict = a.verdict;
            c.measured = a.measured;
        }
    }
}

/// Why the gate could not run (exit 2).
#[derive(Debug)]
pub struct CannotRun(pub String);

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn cannot(msg: impl Into<String>) -> CannotRun {
    CannotRun(msg.into())
}

impl GateSuite {
    /// Reads and checks a suite file.
    pub fn load(path: &Path) -> Result<GateSuite, CannotRun> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            cannot(format!(
                "cannot read the gate suite {}: {e}",
                path.display()
            ))
        })?;
        let suite: GateSuite = serde_json::from_str(&text)
            .map_err(|e| cannot(format!("{} is not a valid gate suite: {e}", path.display())))?;
        suite.check()?;
        Ok(suite)
    }

    /// Whether `scenario` runs in bursts (cost gated, latency reported).
    pub fn is_burst(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s.name == scenario && s.burst)
    }

    /// Why the ratios of `backend` in `scenario` are not gated, if they
    /// are not (the `ungated` entry `scenario/backend`, else `backend`).
    pub fn ungated_reason(&self, scenario: &str, backend: &str) -> Option<&str> {
        self.ungated
            .get(&format!("{scenario}/{backend}"))
            .or_else(|| self.ungated.get(backend))
            .map(String::as_str)
    }

    fn check(&self) -> Result<(), CannotRun> {
        self.check_ungated()?;
        self.check_scenarios()
    }

    /// Every `ungated` key names a backend or a scenario/backend of the
    /// suite (a misspelt key would silently gate what it meant to exempt).
    fn check_ungated(&self) -> Result<(), CannotRun> {
        for key in self.ungated.keys() {
            let known = self.scenarios.iter().any(|s| {
                s.backends
                    .iter()
                    .any(|b| *key == *b || *key == format!("{}/{b}", s.name))
            });
            if !known {
                return Err(cannot(format!(
                    "ungated names {key}, which is neither a backend nor a scenario/backend of \
                     the suite"
                )));
            }
        }
        Ok(())
    }

    fn check_scenarios(&self) -> Result<(), CannotRun> {
        if self.reps < 3 || self.record_runs < 3 {
            return Err(cannot(
                "the gate suite needs reps >= 3 and record_runs >= 3 to measure a median and its noise",
            ));
        }
        if self.scenarios.is_empty() {
            return Err(cannot("the gate suite has no scenario"));
        }
        for s in &self.scenarios {
            if !s.backends.contains(&self.reference) {
                return Err(cannot(format!(
                    "scenario {} does not run the reference backend {}",
                    s.name, self.reference
                )));
            }
            FdKind::parse(&s.fd_kind).map_err(cannot)?;
            for b in &s.backends {
                backends::info(b).map_err(cannot)?;
                if let Err(why) = backends::availability(b) {
                    return Err(cannot(format!(
                        "scenario {} needs backend {b}, which cannot run here: {why}",
                        s.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// A digest of what the measurements depend on (the reference, the
    /// repetitions and the scenarios): FNV-1a 64 over their canonical JSON.
    /// Tolerance rules and the ungated list are applied when judging and
    /// are not part of it.
    pub fn digest(&self) -> String {
        let text = serde_json::to_string(&(&self.reference, self.reps, &self.scenarios))
            .expect("a suite serialises");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The suite cut down to what a confirming run needs: in each scenario
    /// with a suspect, the reference and the suspect backends (ratios are
    /// taken within a repetition, so nothing else has to run again).
    pub fn only(&self, suspects: &[(String, String)]) -> GateSuite {
        let mut out = self.clone();
        out.scenarios.retain_mut(|s| {
            let mine = |b: &String| suspects.iter().any(|(sc, sb)| *sc == s.name && sb == b);
            if !s.backends.iter().any(mine) {
                return false;
            }
            s.backends.retain(|b| *b == self.reference || mine(b));
            true
        });
        out
    }

    /// The suite config of one scenario, with the injected spin if any.
    pub fn config(&self, s: &Scenario, spin: &Spin) -> Result<SuiteConfig, CannotRun> {
        let handler = match s.handler.as_str() {
            "read" => Handler::Read,
            "none" => Handler::None,
            h => return Err(cannot(format!("scenario {}: unknown handler {h}", s.name))),
        };
        Ok(SuiteConfig {
            backends: s.backends.clone(),
            workload: Workload {
                fds: s.fds,
                active: s.active,
                rounds: s.rounds,
                warmup_rounds: s.warmup_rounds,
                handler,
                writers: s.writers,
                burst: s.burst,
                spin_ns: if spin.scenarios.is_empty() || spin.scenarios.contains(&s.name) {
                    spin.ns
                } else {
                    0
                },
                ..Workload::default()
            },
            fd_kind: FdKind::parse(&s.fd_kind).map_err(cannot)?,
            reps: self.reps,
            scenario: None,
            progress: true,
            spin_backends: spin.backends.clone(),
        })
    }
}

/// Injected per-event work, for measuring the gate itself.
#[derive(Debug, Clone, Default)]
pub struct Spin {
    /// Nanoseconds of busy work per event.
    pub ns: u64,
    /// The backends it applies to (empty: all).
    pub backends: Vec<String>,
    /// The scenarios it applies to (empty: all).
    pub scenarios: Vec<String>,
}

/// Runs the whole suite once. `on_run` sees every run as it ends.
pub fn run_once(
    suite: &GateSuite,
    spin: &Spin,
    mut on_run: impl FnMut(&str, &suite::RunResult),
) -> Result<(SuiteRun, Vec<Results>), CannotRun> {
    let mut out = SuiteRun::new();
    let mut all = Vec::new();
    for s in &suite.scenarios {
        let cfg = suite.config(s, spin)?;
        let results = suite::run_suite(&cfg, |r| on_run(&s.name, r))
            .map_err(|e| cannot(format!("scenario {}: {e}", s.name)))?;
        out.insert(s.name.clone(), measure(&results, &suite.reference));
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
pub fn measure(results: &Results, reference: &str) -> BTreeMap<String, BackendRun> {
    let by_rep = |id: &str| -> BTreeMap<usize, &suite::RunResult> {
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
    for id in &results.config.backends {
        let mut b = BackendRun::default();
        for r in results.runs.iter().filter(|r| &r.backend == id) {
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
        out.insert(id.clone(), b);
    }
    out
}

/// Robust standard deviation: 1.4826 x the median absolute deviation, but
/// never below the sample standard deviation divided by 2 (with a handful
/// of runs the MAD can be 0 by chance).
pub fn noise(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let med = report::median_spread(values.to_vec()).map_or(0.0, |m| m.0);
    let mad = report::median_spread(values.iter().map(|v| (v - med).abs()).collect())
        .map_or(0.0, |m| m.0);
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    (1.4826 * mad).max(sd / 2.0)
}

/// The tolerance of one metric: its class's `k` times its noise, where the noise is
/// the larger of the metric's own (measured over the recorded runs) and
/// the suite-wide relative noise of that metric applied to this value (a
/// pooled estimate from every backend, so a backend whose few recorded
/// runs happened to agree does not get a needle-thin tolerance); never
/// below the class's floors.
pub fn tolerance(suite: &GateSuite, metric: Metric, value: f64, own: f64, pooled_rel: f64) -> f64 {
    let noise = own.max(pooled_rel * value.abs());
    let r = metric.rule(&suite.tolerances);
    (r.k * noise)
        .max(r.floor_rel * value.abs())
        .max(r.floor_abs)
}

/// The suite-wide relative noise of each ratio metric: the median, over
/// every backend and scenario where it is gated, of recorded noise / value.
/// Counters get none (their floors carry them).
pub fn pooled_noise(suite: &GateSuite, baseline: &Baseline) -> BTreeMap<Metric, f64> {
    let mut rel: BTreeMap<Metric, Vec<f64>> = BTreeMap::new();
    for (sc, backends) in &baseline.scenarios {
        let burst = suite.is_burst(sc);
        for (b, metrics) in backends {
            if suite.ungated_reason(sc, b).is_some() {
                continue;
            }
            for (m, v) in metrics {
                if !m.is_counter() && off_scenario(*m, burst).is_none() && v.value > 0.0 {
                    rel.entry(*m).or_default().push(v.noise / v.value);
                }
            }
        }
    }
    rel.into_iter()
        .map(|(m, v)| (m, report::median_spread(v).map_or(0.0, |x| x.0)))
        .collect()
}

/// Builds a baseline from several whole-suite runs.
pub fn baseline_from(
    suite: &GateSuite,
    runs: Vec<SuiteRun>,
    recorded: BTreeMap<String, String>,
) -> Baseline {
    // Per scenario/backend/metric: the recorded values.
    let mut values: BTreeMap<(String, String, Metric), Vec<f64>> = BTreeMap::new();
    for run in &runs {
        for (sc, backends) in run {
            for (b, m) in backends {
                for (metric, v) in &m.metrics {
                    values
                        .entry((sc.clone(), b.clone(), *metric))
                        .or_default()
                        .push(*v);
                }
            }
        }
    }
    let mut scenarios: BTreeMap<String, BTreeMap<String, BTreeMap<Metric, Baselined>>> =
        BTreeMap::new();
    for ((sc, b, m), vs) in values {
        let value = report::median_spread(vs.clone()).map_or(0.0, |x| x.0);
        let own = noise(&vs);
        scenarios
            .entry(sc)
            .or_default()
            .entry(b)
            .or_default()
            .insert(m, Baselined { value, noise: own });
    }
    Baseline {
        suite_digest: suite.digest(),
        recorded,
        scenarios,
        runs,
    }
}

/// The verdict of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within tolerance.
    Pass,
    /// Better than the baseline by more than the tolerance: passes, and
    /// the baseline may deserve a refresh.
    Improved,
    /// Worse than the baseline by more than the tolerance.
    Regression,
    /// Reported, not gated (the suite's `ungated` list says why).
    NotGated,
}

/// One line of the gate's report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Scenario name.
    pub scenario: String,
    /// Backend id.
    pub backend: String,
    /// Metric name, or `correctness`.
    pub metric: String,
    /// Baseline value (0 for correctness).
    pub baseline: f64,
    /// Tolerance (0 for correctness).
    pub tolerance: f64,
    /// Measured value (failed runs, for correctness).
    pub measured: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// What went wrong, for correctness failures.
    pub detail: String,
}

/// Compares one suite run with the baseline, with the suite's tolerance
/// rules.
pub fn judge(
    suite: &GateSuite,
    baseline: &Baseline,
    run: &SuiteRun,
) -> Result<Vec<Check>, CannotRun> {
    let mut checks = Vec::new();
    let pooled = pooled_noise(suite, baseline);
    for (sc, backends) in run {
        let burst = suite.is_burst(sc);
        let Some(base_sc) = baseline.scenarios.get(sc) else {
            return Err(cannot(format!(
                "the baseline has no scenario {sc}; record a new baseline"
            )));
        };
        for (b, m) in backends {
            let bad = !m.failures.is_empty() || m.stale_or_spurious > 0;
            checks.push(Check {
                scenario: sc.clone(),
                backend: b.clone(),
                metric: "correctness".into(),
                baseline: 0.0,
                tolerance: 0.0,
                measured: m.failures.len() as f64,
                verdict: if bad {
                    Verdict::Regression
                } else {
                    Verdict::Pass
                },
                detail: if bad {
                    format!(
                        "{} of {} runs failed; {} stale or spurious events; {}",
                        m.failures.len(),
                        m.runs,
                        m.stale_or_spurious,
                        m.failures.join("; ")
                    )
                } else {
                    String::new()
                },
            });
            let Some(base_b) = base_sc.get(b) else {
                return Err(cannot(format!(
                    "the baseline has no backend {b} in scenario {sc}; record a new baseline"
                )));
            };
            for metric in Metric::ALL {
                let (Some(base), Some(&v)) = (base_b.get(&metric), m.metrics.get(&metric)) else {
                    continue;
                };
                let pooled_rel = pooled.get(&metric).copied().unwrap_or(0.0);
                let tol = tolerance(suite, metric, base.value, base.noise, pooled_rel);
                let not_gated: Option<String> = if !metric.is_gated() {
                    Some(
                        "reported, not gated: whole-process CPU, the writer thread's included"
                            .into(),
                    )
                } else if let Some(why) = off_scenario(metric, burst) {
                    Some(why.into())
                } else if !metric.is_counter() {
                    suite.ungated_reason(sc, b).map(str::to_owned)
                } else {
                    None
                };
                let verdict = if not_gated.is_some() {
                    Verdict::NotGated
                } else if v > base.value + tol {
                    Verdict::Regression
                } else if v < base.value - tol {
                    Verdict::Improved
                } else {
                    Verdict::Pass
                };
                checks.push(Check {
                    scenario: sc.clone(),
                    backend: b.clone(),
                    metric: metric.name().into(),
                    baseline: base.value,
                    tolerance: tol,
                    measured: v,
                    verdict,
                    detail: not_gated.unwrap_or_default(),
                });
            }
        }
    }
    Ok(checks)
}

/// Why `metric` is reported but not gated in a burst (`burst`) or closed
/// scenario, if it is: cost is gated where every round reaches the backend
/// as one batch, latency where events are taken as they are fired.
fn off_scenario(metric: Metric, burst: bool) -> Option<&'static str> {
    match (metric, burst) {
        (Metric::CpuRatio, false) => Some(
            "reported, not gated: in a closed-loop scenario the cost per event depends on how \
             the consumer's waits interleave with the writer's fires; cost is gated in the burst \
             scenarios",
        ),
        (Metric::P99Ratio, true) => Some(
            "reported, not gated: in a burst scenario latency includes the rest of the round's \
             firing; latency is gated in the closed-loop scenarios",
        ),
        _ => None,
    }
}

/// The markdown summary of a gate run.
pub fn summary_markdown(checks: &[Check], suite_path: &Path, baseline_path: &Path) -> String {
    let regressions = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Regression)
        .count();
    let improved = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Improved)
        .count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Performance gate: {}\n",
        if regressions == 0 {
            "PASS"
        } else {
            "REGRESSION"
        }
    );
    let _ = writeln!(
        s,
        "Suite `{}` against baseline `{}`: {} checks, {regressions} regressions, {improved} \
         improvements beyond tolerance.\n",
        suite_path.display(),
        baseline_path.display(),
        checks.len()
    );
    let _ = writeln!(
        s,
        "| scenario | backend | metric | baseline | tolerance | measured | change | verdict |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---|");
    // Regressions first, then improvements, passes, and what is only
    // reported; in suite order within each.
    let mut rows: Vec<&Check> = checks.iter().collect();
    rows.sort_by_key(|c| match c.verdict {
        Verdict::Regression => 0,
        Verdict::Improved => 1,
        Verdict::Pass => 2,
        Verdict::NotGated => 3,
    });
    for c in rows {
        if c.metric == "correctness" {
            let _ = writeln!(
                s,
                "| {} | {} | correctness | | | {} failed | | {} {} |",
                c.scenario,
                c.backend,
                c.measured,
                verdict_word(c.verdict),
                c.detail
            );
            continue;
        }
        let change = if c.baseline != 0.0 {
            format!("{:+.1}%", (c.measured / c.baseline - 1.0) * 100.0)
        } else {
            format!("{:+.3}", c.measured - c.baseline)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | ±{:.3} | {:.3} | {change} | {} |",
            c.scenario,
            c.backend,
            c.metric,
            c.baseline,
            c.tolerance,
            c.measured,
            verdict_word(c.verdict)
        );
    }
    s
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Improved => "improved",
        Verdict::Regression => "**REGRESSION**",
        Verdict::NotGated => "not gated",
    }
}

/// Options of `compare gate`.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// The suite file.
    pub suite: PathBuf,
    /// Compare with this baseline (exclusive with `record`).
    pub baseline: Option<PathBuf>,
    /// Write a new baseline here.
    pub record: Option<PathBuf>,
    /// Where the report goes.
    pub out: PathBuf,
    /// Injected spin (gate calibration only).
    pub spin: Spin,
}

/// Runs `compare gate`; returns the exit code.
pub fn main(opts: &GateOptions) -> i32 {
    match run(opts) {
        Ok(code) => code,
        Err(CannotRun(msg)) => {
            eprintln!("gate: could not run: {msg}");
            2
        }
    }
}

fn print_failures(scenario: &str, r: &suite::RunResult) {
    if let Some(why) = r.outcome.failure() {
        eprintln!(
            "\n*** FAILED: {scenario} / {} rep {}: {why} ***\n",
            r.backend, r.rep
        );
    }
}

fn run(opts: &GateOptions) -> Result<i32, CannotRun> {
    let suite = GateSuite::load(&opts.suite)?;
    for name in &opts.spin.scenarios {
        if !suite.scenarios.iter().any(|s| &s.name == name) {
            return Err(cannot(format!(
                "--spin-scenarios names {name}, which is not a scenario of {}",
                opts.suite.display()
            )));
        }
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| cannot(format!("cannot create {}: {e}", opts.out.display())))?;
    if let Some(path) = &opts.record {
        let mut runs = Vec::new();
        let mut env = None;
        for i in 0..suite.record_runs {
            eprintln!(
                "gate: recording, suite run {} of {}",
                i + 1,
                suite.record_runs
            );
            let (run, results) = run_once(&suite, &opts.spin, print_failures)?;
            if run
                .values()
                .flat_map(|b| b.values())
                .any(|b| !b.failures.is_empty())
            {
                return Err(cannot(
                    "a run failed while recording; a baseline needs correct runs",
                ));
            }
            env = results.into_iter().next().map(|r| r.env);
            runs.push(run);
        }
        let mut recorded = BTreeMap::new();
        if let Some(env) = env {
            recorded.insert("kernel".into(), env.kernel);
            recorded.insert("cpu".into(), env.cpu);
            recorded.insert("cores".into(), env.cores.to_string());
        }
        recorded.insert("record_runs".into(), suite.record_runs.to_string());
        recorded.insert("unix_time".into(), unix_time().to_string());
        let baseline = baseline_from(&suite, runs, recorded);
        let text = serde_json::to_string_pretty(&baseline).expect("a baseline serialises");
        std::fs::write(path, text + "\n")
            .map_err(|e| cannot(format!("cannot write {}: {e}", path.display())))?;
        print!("{}", baseline_text(&suite, &baseline));
        println!("baseline written to {}", path.display());
        return Ok(0);
    }
    let path = opts
        .baseline
        .as_ref()
        .ok_or_else(|| cannot("give --baseline FILE or --record FILE"))?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        cannot(format!(
            "cannot read the baseline {}: {e}; record one with compare gate --record {}",
            path.display(),
            path.display()
        ))
    })?;
    let baseline: Baseline = serde_json::from_str(&text)
        .map_err(|e| cannot(format!("{} is not a gate baseline: {e}", path.display())))?;
    if baseline.suite_digest != suite.digest() {
        return Err(cannot(format!(
            "the suite {} changed since the baseline {} was recorded (digest {} vs {}); record a \
             new baseline with compare gate --record {}",
            opts.suite.display(),
            path.display(),
            suite.digest(),
            baseline.suite_digest,
            path.display()
        )));
    }
    let (run, results) = run_once(&suite, &opts.spin, print_failures)?;
    let mut checks = judge(&suite, &baseline, &run)?;
    let mut confirming = Vec::new();
    for attempt in 2..=suite.attempts {
        let suspects: Vec<(String, String)> = checks
            .iter()
            .filter(|c| c.verdict == Verdict::Regression && c.metric != "correctness")
            .map(|c| (c.scenario.clone(), c.backend.clone()))
            .collect();
        if suspects.is_empty() {
            break;
        }
        let again_suite = suite.only(&suspects);
        eprintln!(
            "gate: {} checks regressed; running their backends and the reference again (run \
             {attempt}) to confirm",
            suspects.len()
        );
        let (again, _) = run_once(&again_suite, &opts.spin, print_failures)?;
        let earlier: Vec<&SuiteRun> = std::iter::once(&run).chain(&confirming).collect();
        let both = pooled(&earlier, &again);
        confirm(
            &mut checks,
            &judge(&again_suite, &baseline, &both)?,
            attempt,
        );
        confirming.push(again);
    }
    let md = summary_markdown(&checks, &opts.suite, path);
    let regressions = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Regression)
        .count();
    let report = serde_json::json!({
        "verdict": if regressions == 0 { "pass" } else { "regression" },
        "regressions": regressions,
        "suite": opts.suite,
        "suite_digest": suite.digest(),
        "baseline": path,
        "spin_ns": opts.spin.ns,
        "spin_backends": opts.spin.backends,
        "checks": checks,
        "measured": run,
        "confirming_runs": confirming,
        "env": results.first().map(|r| report::results_json(r)["env"].clone()),
    });
    let write = |name: &str, text: String| {
        let p = opts.out.join(name);
        std::fs::write(&p, text).map_err(|e| cannot(format!("cannot write {}: {e}", p.display())))
    };
    write(
        "gate-report.json",
        serde_json::to_string_pretty(&report).expect("a report serialises") + "\n",
    )?;
    write("gate-summary.md", md.clone())?;
    print!("{md}");
    println!(
        "\nreport: {} and {}",
        opts.out.join("gate-report.json").display(),
        opts.out.join("gate-summary.md").display()
    );
    Ok(if regressions == 0 { 0 } else { 1 })
}

/// The recorded values and tolerances, as printed by `--record`.
pub fn baseline_text(suite: &GateSuite, b: &Baseline) -> String {
    let pooled = pooled_noise(suite, b);
    let mut s = String::new();
    for (m, r) in &pooled {
        let _ = writeln!(s, "pooled noise of {}: {:.1}%", m.name(), r * 100.0);
    }
    for (sc, backends) in &b.scenarios {
        let _ = writeln!(s, "scenario {sc}");
        for (id, metrics) in backends {
            let _ = write!(s, "  {id:<18}");
            for (m, v) in metrics {
                let pooled_rel = pooled.get(m).copied().unwrap_or(0.0);
                let tol = tolerance(suite, *m, v.value, v.noise, pooled_rel);
                let _ = write!(s, " {}={:.3}±{:.3}", m.name(), v.value, tol);
            }
            let _ = writeln!(s);
        }
    }
    s
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> GateSuite {
        GateSuite {
            about: "test".into(),
            reference: "epoll-et".into(),
            reps: 5,
            record_runs: 3,
            tolerances: Tolerances {
                cpu: Rule {
                    k: 4.0,
                    floor_rel: 0.05,
                    floor_abs: 0.0,
                },
                latency: Rule {
                    k: 4.0,
                    floor_rel: 0.25,
                    floor_abs: 0.0,
                },
                exact: Rule {
                    k: 4.0,
                    floor_rel: 0.02,
                    floor_abs: 0.01,
                },
                timing: Rule {
                    k: 4.0,
                    floor_rel: 0.5,
                    floor_abs: 0.25,
                },
            },
            scenarios: vec![scenario("s", true, &["epoll-et", "x"])],
            ungated: BTreeMap::new(),
            attempts: 2,
        }
    }

    fn scenario(name: &str, burst: bool, backends: &[&str]) -> Scenario {
        Scenario {
            name: name.into(),
            fd_kind: "eventfd".into(),
            fds: 10,
            active: 5,
            rounds: 10,
            warmup_rounds: 1,
            handler: "read".into(),
            writers: 1,
            burst,
            backends: backends.iter().map(|b| b.to_string()).collect(),
        }
    }

    fn run_with(cpu: f64, sys: f64) -> SuiteRun {
        let mut b = BackendRun::default();
        b.metrics.insert(Metric::CpuRatio, cpu);
        b.metrics.insert(Metric::OpSyscallsPerEvent, sys);
        b.runs = 5;
        let mut sc = BTreeMap::new();
        sc.insert("x".to_string(), b);
        let mut r = SuiteRun::new();
        r.insert("s".into(), sc);
        r
    }

    #[test]
    fn noise_is_robust_and_never_zero_for_spread_values() {
        assert_eq!(noise(&[1.0]), 0.0);
        let n = noise(&[1.0, 1.0, 1.0, 2.0]);
        assert!(n > 0.0, "MAD 0, but the values differ: {n}");
        let n = noise(&[1.0, 1.1, 0.9, 1.05, 0.95]);
        assert!((0.05..0.12).contains(&n), "{n}");
    }

    #[test]
    fn tolerance_takes_noise_times_k_above_the_floor() {
        let s = suite();
        // Own noise 0.02 on 1.0: 4 x 0.02 = 0.08 > floor 0.05.
        assert!((tolerance(&s, Metric::CpuRatio, 1.0, 0.02, 0.0) - 0.08).abs() < 1e-9);
        // Pooled relative noise 3% on 2.0 beats own noise 0.01.
        assert!((tolerance(&s, Metric::CpuRatio, 2.0, 0.01, 0.03) - 0.24).abs() < 1e-9);
        // Quiet counters get the floor.
        assert!((tolerance(&s, Metric::OpSyscallsPerEvent, 0.1, 0.0, 0.0) - 0.01).abs() < 1e-9);
        assert!((tolerance(&s, Metric::P99Ratio, 2.0, 0.0, 0.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn judge_flags_a_rise_beyond_tolerance_and_only_that() {
        let s = suite();
        let runs = vec![run_with(1.0, 1.0), run_with(1.02, 1.0), run_with(0.98, 1.0)];
        let b = baseline_from(&s, runs, BTreeMap::new());
        let base = b.scenarios["s"]["x"][&Metric::CpuRatio];
        assert_eq!(base.value, 1.0);
        let pooled = pooled_noise(&s, &b)[&Metric::CpuRatio];
        let tol = tolerance(&s, Metric::CpuRatio, 1.0, base.noise, pooled);
        let verdict = |cpu: f64| {
            judge(&s, &b, &run_with(cpu, 1.0))
                .unwrap()
                .into_iter()
                .find(|c| c.metric == "cpu_ratio")
                .unwrap()
                .verdict
        };
        assert_eq!(verdict(1.0), Verdict::Pass);
        assert_eq!(verdict(1.0 + tol * 0.9), Verdict::Pass);
        assert_eq!(verdict(1.0 + tol * 1.1), Verdict::Regression);
        assert_eq!(verdict(1.0 - tol * 1.1), Verdict::Improved);
        let sys = judge(&s, &b, &run_with(1.0, 1.05)).unwrap();
        let sys = sys
            .iter()
            .find(|c| c.metric == "op_syscalls_per_event")
            .unwrap();
        assert_eq!(sys.verdict, Verdict::Regression, "counters are near-exact");
    }

    #[test]
    fn a_regression_stands_only_if_the_confirming_run_repeats_it() {
        let s = suite();
        let runs = vec![run_with(1.0, 1.0), run_with(1.02, 1.0), run_with(0.98, 1.0)];
        let b = baseline_from(&s, runs, BTreeMap::new());
        let cpu = |checks: &[Check]| {
            checks
                .iter()
                .find(|c| c.metric == "cpu_ratio")
                .unwrap()
                .verdict
        };
        let mut first = judge(&s, &b, &run_with(2.0, 1.0)).unwrap();
        assert_eq!(cpu(&first), Verdict::Regression);
        confirm(&mut first, &judge(&s, &b, &run_with(1.0, 1.0)).unwrap(), 2);
        assert_eq!(cpu(&first), Verdict::Pass, "a noise spike is not confirmed");
        let mut first = judge(&s, &b, &run_with(2.0, 1.0)).unwrap();
        confirm(&mut first, &judge(&s, &b, &run_with(2.0, 1.0)).unwrap(), 2);
        assert_eq!(cpu(&first), Verdict::Regression, "a real regression is");
        let mut bad = run_with(1.0, 1.0);
        bad.get_mut("s")
            .unwrap()
            .get_mut("x")
            .unwrap()
            .failures
            .push("x".into());
        let mut first = judge(&s, &b, &run_with(1.0, 1.0)).unwrap();
        confirm(&mut first, &judge(&s, &b, &bad).unwrap(), 2);
        let c = first.iter().find(|c| c.metric == "correctness").unwrap();
        assert_eq!(
            c.verdict,
            Verdict::Regression,
            "a correctness failure in any run stands"
        );
    }

    #[test]
    fn cost_is_gated_in_burst_scenarios_and_latency_in_closed_ones() {
        let mut s = suite();
        let mut run = run_with(1.0, 1.0);
        let x = run.get_mut("s").unwrap().get_mut("x").unwrap();
        x.metrics.insert(Metric::P99Ratio, 1.0);
        let b = baseline_from(&s, vec![run.clone(); 3], BTreeMap::new());
        let mut worse = run.clone();
        let x = worse.get_mut("s").unwrap().get_mut("x").unwrap();
        x.metrics.insert(Metric::CpuRatio, 3.0);
        x.metrics.insert(Metric::P99Ratio, 30.0);
        let verdict = |s: &GateSuite, m: &str| {
            judge(s, &b, &worse)
                .unwrap()
                .into_iter()
                .find(|c| c.metric == m)
                .unwrap()
                .verdict
        };
        assert_eq!(verdict(&s, "cpu_ratio"), Verdict::Regression);
        assert_eq!(verdict(&s, "p99_ratio"), Verdict::NotGated);
        s.scenarios[0].burst = false;
        assert_eq!(verdict(&s, "cpu_ratio"), Verdict::NotGated);
        assert_eq!(verdict(&s, "p99_ratio"), Verdict::Regression);
    }

    #[test]
    fn ungated_takes_a_backend_or_one_scenario_of_it() {
        let mut s = suite();
        s.scenarios.push(scenario("t", true, &["epoll-et", "x"]));
        s.ungated.insert("t/x".into(), "noisy in t".into());
        assert_eq!(s.ungated_reason("t", "x"), Some("noisy in t"));
        assert_eq!(s.ungated_reason("s", "x"), None);
        assert!(s.check_ungated().is_ok());
        s.ungated.insert("x".into(), "noisy".into());
        assert_eq!(s.ungated_reason("s", "x"), Some("noisy"));
        assert_eq!(s.ungated_reason("t", "x"), Some("noisy in t"));
        s.ungated.insert("u/x".into(), "no such scenario".into());
        let e = s.check_ungated().unwrap_err().to_string();
        assert!(e.contains("u/x"), "{e}");
    }

    #[test]
    fn a_confirming_run_repeats_only_the_suspects_and_the_reference() {
        let mut s = suite();
        s.scenarios = vec![
            scenario("a", true, &["floor", "epoll-et", "x", "y"]),
            scenario("b", true, &["epoll-et", "x"]),
        ];
        let only = s.only(&[("a".into(), "y".into())]);
        assert_eq!(only.scenarios.len(), 1, "scenario b had no suspect");
        assert_eq!(only.scenarios[0].backends, ["epoll-et", "y"]);
    }

    #[test]
    fn confirmation_judges_the_pooled_repetitions_of_both_runs() {
        let rep = |vals: &[f64]| {
            let mut r = run_with(0.0, 1.0);
            let x = r.get_mut("s").unwrap().get_mut("x").unwrap();
            x.per_rep.insert(Metric::CpuRatio, vals.to_vec());
            r
        };
        let first = rep(&[1.0, 1.3, 1.3]);
        let again = rep(&[1.0, 1.0, 1.1]);
        let both = pooled(&[&first], &again);
        let x = &both["s"]["x"];
        assert_eq!(x.per_rep[&Metric::CpuRatio].len(), 6);
        // Median of 1.0 1.0 1.0 1.1 1.3 1.3.
        assert!((x.metrics[&Metric::CpuRatio] - 1.05).abs() < 1e-9);
        assert_eq!(x.runs, 10, "runs of both");
    }

    #[test]
    fn correctness_failures_are_always_regressions() {
        let s = suite();
        let b = baseline_from(&s, vec![run_with(1.0, 1.0); 3], BTreeMap::new());
        let mut bad = run_with(1.0, 1.0);
        bad.get_mut("s")
            .unwrap()
            .get_mut("x")
            .unwrap()
            .stale_or_spurious = 1;
        let checks = judge(&s, &b, &bad).unwrap();
        let c = checks.iter().find(|c| c.metric == "correctness").unwrap();
        assert_eq!(c.verdict, Verdict::Regression);
        let md = summary_markdown(&checks, Path::new("g.json"), Path::new("b.json"));
        assert!(md.starts_with("# Performance gate: REGRESSION"), "{md}");
    }

    #[test]
    fn the_committed_suite_is_valid_and_its_baseline_matches_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/gate.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let suite: GateSuite = serde_json::from_str(&text).unwrap();
        for sc in &suite.scenarios {
            assert!(sc.backends.contains(&suite.reference), "{}", sc.name);
            FdKind::parse(&sc.fd_kind).unwrap();
            for b in &sc.backends {
                backends::info(b).unwrap();
            }
        }
        let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/baseline.json");
        let b: Baseline =
            serde_json::from_str(&std::fs::read_to_string(baseline).unwrap()).unwrap();
        assert_eq!(
            b.suite_digest,
            suite.digest(),
            "benches/baseline.json was recorded with another suite"
        );
    }
}
