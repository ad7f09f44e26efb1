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

/// The lines a gate prints last: its verdict and every regression in one
/// line each, so that a log cut to its tail (a CI page) still says what
/// failed and by how much. The table above them has the same rows.
pub fn closing_lines(checks: &[Check]) -> String {
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Regression)
        .collect();
    let mut s = String::new();
    if failed.is_empty() {
        let _ = writeln!(s, "gate: PASS ({} checks)", checks.len());
        return s;
    }
    let _ = writeln!(
        s,
        "gate: REGRESSION in {} of {} checks:",
        failed.len(),
        checks.len()
    );
    for c in failed {
        if c.metric == Checked::Correctness {
            let _ = writeln!(
                s,
                "gate:   {}/{} correctness: {}",
                c.scenario, c.backend, c.detail
            );
        } else {
            let _ = writeln!(
                s,
                "gate:   {}/{} {}: {:.3} against {:.3} ±{:.3}{}",
                c.scenario,
                c.backend,
                c.metric.name(),
                c.measured,
                c.baseline,
                c.tolerance,
                if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.detail)
                }
            );
        }
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
