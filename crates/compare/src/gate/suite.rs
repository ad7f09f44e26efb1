//! The suite file (`benches/gate.json`): what the gate runs, the tolerance
//! rules, the backends whose ratios are only reported; loading and checking
//! it, its digest, and the [`SuiteConfig`] each scenario runs as.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{cannot, CannotRun, Spin};
use crate::backends::{self, BackendId};
use crate::fds::FdKind;
use crate::harness::{Handler, Workload};
use crate::suite::SuiteConfig;

/// The suite file: what the gate runs and how it derives tolerances.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GateSuite {
    /// What the suite is for (free text).
    pub about: String,
    /// The backend every cost and latency ratio is taken against; it must
    /// be in every scenario.
    pub reference: BackendId,
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
    pub fd_kind: FdKind,
    /// Fds registered.
    pub fds: usize,
    /// Fds fired per round.
    pub active: usize,
    /// Measured rounds per run.
    pub rounds: u64,
    /// Warm-up rounds per run.
    pub warmup_rounds: u64,
    /// read or none.
    pub handler: Handler,
    /// Writer threads.
    pub writers: usize,
    /// Closed loop in bursts (the writers fire each whole round before the
    /// consumer takes it): a cost scenario. In a burst scenario the CPU
    /// ratio is gated and p99 latency only reported (it includes the
    /// round's firing); in the others, the reverse.
    #[serde(default)]
    pub burst: bool,
    /// Backends, in the order each repetition runs them.
    pub backends: Vec<BackendId>,
}

fn one() -> usize {
    1
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

    pub(super) fn check(&self) -> Result<(), CannotRun> {
        self.check_ungated()?;
        self.check_scenarios()
    }

    /// Every `ungated` key names a backend or a scenario/backend of the
    /// suite (a misspelt key would silently gate what it meant to exempt).
    pub(super) fn check_ungated(&self) -> Result<(), CannotRun> {
        for key in self.ungated.keys() {
            let known = self.scenarios.iter().any(|s| {
                s.backends
                    .iter()
                    .any(|b| key == b.as_str() || *key == format!("{}/{b}", s.name))
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
            for &b in &s.backends {
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
            let mine = |b: &BackendId| {
                suspects
                    .iter()
                    .any(|(sc, sb)| *sc == s.name && sb == b.as_str())
            };
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
        Ok(SuiteConfig {
            backends: s.backends.clone(),
            workload: Workload {
                fds: s.fds,
                active: s.active,
                rounds: s.rounds,
                warmup_rounds: s.warmup_rounds,
                handler: s.handler,
                writers: s.writers,
                burst: s.burst,
                spin_ns: if spin.scenarios.is_empty() || spin.scenarios.contains(&s.name) {
                    spin.ns
                } else {
                    0
                },
                ..Workload::default()
            },
            fd_kind: s.fd_kind,
            reps: self.reps,
            scenario: None,
            progress: true,
            spin_backends: parse_ids(&spin.backends)?,
        })
    }
}

/// The backends named in `ids`, or why one of them is not a backend.
fn parse_ids(ids: &[String]) -> Result<Vec<BackendId>, CannotRun> {
    ids.iter()
        .map(|b| BackendId::parse(b).map_err(cannot))
        .collect()
}
