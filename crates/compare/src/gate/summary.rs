//! The gate's markdown summary (`gate-summary.md`, also printed): one row
//! per check, regressions first.

use std::fmt::Write as _;
use std::path::Path;

use super::{Check, Checked, Verdict};

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
        if c.metric == Checked::Correctness {
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
            c.metric.name(),
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
