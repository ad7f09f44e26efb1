//! The committed baseline (`benches/baseline.json`): what it holds, how
//! `--record` builds it from several suite runs ([`baseline_from`]), and
//! the text `--record` prints ([`baseline_text`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{pooled_noise, tolerance, GateSuite, Metric, SuiteRun};
use crate::statistics::{median_spread, noise};

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
        let value = median_spread(vs.clone()).map_or(0.0, |x| x.0);
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

pub(super) fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
