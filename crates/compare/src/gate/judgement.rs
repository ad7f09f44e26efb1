//! Judging a run against the baseline: one [`Check`] per backend for
//! correctness and per metric, its [`Verdict`] ([`judge`]), and merging a
//! confirming run's checks ([`confirm`]).

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::{cannot, pooled_noise, tolerance, Baseline, CannotRun, GateSuite, Metric, SuiteRun};

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

/// What a [`Check`] judges: every run's correctness, or one measured
/// metric. Written in the report as the metric's name (`"correctness"`,
/// `"cpu_ratio"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Checked {
    /// Every run delivered exactly the events fired, without error.
    Correctness,
    /// A measured metric within its tolerance.
    Metric(Metric),
}

impl Checked {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Checked::Correctness => "correctness",
            Checked::Metric(m) => m.name(),
        }
    }
}

impl Serialize for Checked {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One line of the gate's report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Scenario name.
    pub scenario: String,
    /// Backend id.
    pub backend: String,
    /// What is judged: correctness, or one metric.
    pub metric: Checked,
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
                metric: Checked::Correctness,
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
                    metric: Checked::Metric(metric),
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
pub(super) fn off_scenario(metric: Metric, burst: bool) -> Option<&'static str> {
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

/// Merges the checks of a confirming run (judged on the pooled
/// repetitions, see [`pooled`](super::pooled)) into `checks`: a cost, counter or latency
/// regression stands only if it regressed again; a correctness failure in
/// either run stands.
pub fn confirm(checks: &mut [Check], again: &[Check], attempt: usize) {
    let key = |c: &Check| (c.scenario.clone(), c.backend.clone(), c.metric);
    let again: BTreeMap<_, &Check> = again.iter().map(|c| (key(c), c)).collect();
    for c in checks.iter_mut() {
        let Some(a) = again.get(&key(c)) else {
            continue;
        };
        if c.metric == Checked::Correctness {
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
