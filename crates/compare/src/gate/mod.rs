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
//!
//! The files, by what they own: `suite` the suite file,
//! `measurement` the metrics and running the suite, `tolerance` how far a
//! metric may move, `baseline` the committed baseline, `judgement` the
//! checks and verdicts, `summary` the markdown, `spin` the injected work
//! for measuring the gate itself; this file runs `compare gate`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::report;

mod baseline;
mod judgement;
mod measurement;
mod spin;
mod suite;
mod summary;
#[cfg(test)]
mod tests;
mod tolerance;

pub use baseline::{baseline_from, baseline_text, Baseline, Baselined};
pub use judgement::{confirm, judge, Check, Checked, Verdict};
pub use measurement::{measure, pooled, run_once, BackendRun, Metric, SuiteRun};
pub use spin::{spin, spins_per_us, Spin};
pub use suite::{GateSuite, Rule, Scenario, Tolerances};
pub use summary::{closing_lines, summary_markdown};
pub use tolerance::{pooled_noise, tolerance};

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

fn print_failures(scenario: &str, r: &crate::suite::RunResult) {
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
    // Everything that can be checked is checked before any folder or file
    // is made and before anything runs.
    if let Some(path) = &opts.record {
        report::prepare_file("--record", path).map_err(cannot)?;
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
        recorded.insert("unix_time".into(), baseline::unix_time().to_string());
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
    report::prepare_outputs(&opts.out, None).map_err(cannot)?;
    let (run, results) = run_once(&suite, &opts.spin, print_failures)?;
    let mut checks = judge(&suite, &baseline, &run)?;
    let mut confirming = Vec::new();
    for attempt in 2..=suite.attempts {
        let suspects: Vec<(String, String)> = checks
            .iter()
            .filter(|c| c.verdict == Verdict::Regression && c.metric != Checked::Correctness)
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
    print!("{}", closing_lines(&checks));
    Ok(if regressions == 0 { 0 } else { 1 })
}
