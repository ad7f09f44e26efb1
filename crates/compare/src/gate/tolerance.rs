//! How far a metric may move: each class's rule applied to the recorded
//! noise ([`tolerance`]), and the suite-wide relative noise of each ratio
//! metric that keeps a quiet backend's tolerance from being needle-thin
//! ([`pooled_noise`]).

use std::collections::BTreeMap;

use super::judgement::off_scenario;
use super::{Baseline, GateSuite, Metric};
use crate::statistics::median_spread;

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
        .map(|(m, v)| (m, median_spread(v).map_or(0.0, |x| x.0)))
        .collect()
}
