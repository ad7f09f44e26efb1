//! The gate's rules on hand-made runs: tolerances, judgement, confirmation,
//! the suite's checks, and the committed suite and baseline.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::backends::BackendId;
use crate::fds::FdKind;
use crate::harness::Handler;

fn suite() -> GateSuite {
    GateSuite {
        about: "test".into(),
        reference: BackendId::EpollEt,
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
        scenarios: vec![scenario("s", true, &["epoll-et", "mio"])],
        ungated: BTreeMap::new(),
        attempts: 2,
    }
}

fn scenario(name: &str, burst: bool, backends: &[&str]) -> Scenario {
    Scenario {
        name: name.into(),
        fd_kind: FdKind::Eventfd,
        fds: 10,
        active: 5,
        rounds: 10,
        warmup_rounds: 1,
        handler: Handler::Read,
        writers: 1,
        burst,
        backends: backends
            .iter()
            .map(|b| BackendId::parse(b).unwrap())
            .collect(),
    }
}

fn run_with(cpu: f64, sys: f64) -> SuiteRun {
    let mut b = BackendRun::default();
    b.metrics.insert(Metric::CpuRatio, cpu);
    b.metrics.insert(Metric::OpSyscallsPerEvent, sys);
    b.runs = 5;
    let mut sc = BTreeMap::new();
    sc.insert("mio".to_string(), b);
    let mut r = SuiteRun::new();
    r.insert("s".into(), sc);
    r
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
    let base = b.scenarios["s"]["mio"][&Metric::CpuRatio];
    assert_eq!(base.value, 1.0);
    let pooled = pooled_noise(&s, &b)[&Metric::CpuRatio];
    let tol = tolerance(&s, Metric::CpuRatio, 1.0, base.noise, pooled);
    let verdict = |cpu: f64| {
        judge(&s, &b, &run_with(cpu, 1.0))
            .unwrap()
            .into_iter()
            .find(|c| c.metric == Checked::Metric(Metric::CpuRatio))
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
        .find(|c| c.metric == Checked::Metric(Metric::OpSyscallsPerEvent))
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
            .find(|c| c.metric == Checked::Metric(Metric::CpuRatio))
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
        .get_mut("mio")
        .unwrap()
        .failures
        .push("a failure".into());
    let mut first = judge(&s, &b, &run_with(1.0, 1.0)).unwrap();
    confirm(&mut first, &judge(&s, &b, &bad).unwrap(), 2);
    let c = first
        .iter()
        .find(|c| c.metric == Checked::Correctness)
        .unwrap();
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
    let x = run.get_mut("s").unwrap().get_mut("mio").unwrap();
    x.metrics.insert(Metric::P99Ratio, 1.0);
    let b = baseline_from(&s, vec![run.clone(); 3], BTreeMap::new());
    let mut worse = run.clone();
    let x = worse.get_mut("s").unwrap().get_mut("mio").unwrap();
    x.metrics.insert(Metric::CpuRatio, 3.0);
    x.metrics.insert(Metric::P99Ratio, 30.0);
    let verdict = |s: &GateSuite, m: &str| {
        judge(s, &b, &worse)
            .unwrap()
            .into_iter()
            .find(|c| c.metric.name() == m)
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
    s.scenarios.push(scenario("t", true, &["epoll-et", "mio"]));
    s.ungated.insert("t/mio".into(), "noisy in t".into());
    assert_eq!(s.ungated_reason("t", "mio"), Some("noisy in t"));
    assert_eq!(s.ungated_reason("s", "mio"), None);
    assert!(s.check_ungated().is_ok());
    s.ungated.insert("mio".into(), "noisy".into());
    assert_eq!(s.ungated_reason("s", "mio"), Some("noisy"));
    assert_eq!(s.ungated_reason("t", "mio"), Some("noisy in t"));
    s.ungated.insert("u/mio".into(), "no such scenario".into());
    let e = s.check_ungated().unwrap_err().to_string();
    assert!(e.contains("u/mio"), "{e}");
}

#[test]
fn a_confirming_run_repeats_only_the_suspects_and_the_reference() {
    let mut s = suite();
    s.scenarios = vec![
        scenario("a", true, &["floor", "epoll-et", "mio", "polling"]),
        scenario("b", true, &["epoll-et", "mio"]),
    ];
    let only = s.only(&[("a".into(), "polling".into())]);
    assert_eq!(only.scenarios.len(), 1, "scenario b had no suspect");
    assert_eq!(
        only.scenarios[0].backends,
        [BackendId::EpollEt, BackendId::Polling]
    );
}

#[test]
fn confirmation_judges_the_pooled_repetitions_of_both_runs() {
    let rep = |vals: &[f64]| {
        let mut r = run_with(0.0, 1.0);
        let x = r.get_mut("s").unwrap().get_mut("mio").unwrap();
        x.per_rep.insert(Metric::CpuRatio, vals.to_vec());
        r
    };
    let first = rep(&[1.0, 1.3, 1.3]);
    let again = rep(&[1.0, 1.0, 1.1]);
    let both = pooled(&[&first], &again);
    let x = &both["s"]["mio"];
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
        .get_mut("mio")
        .unwrap()
        .stale_or_spurious = 1;
    let checks = judge(&s, &b, &bad).unwrap();
    let c = checks
        .iter()
        .find(|c| c.metric == Checked::Correctness)
        .unwrap();
    assert_eq!(c.verdict, Verdict::Regression);
    let md = summary_markdown(&checks, Path::new("g.json"), Path::new("b.json"));
    assert!(md.starts_with("# Performance gate: REGRESSION"), "{md}");
    let last = closing_lines(&checks);
    assert!(
        last.starts_with("gate: REGRESSION in 1 of ")
            && last.contains("s/mio correctness: 0 of 5 runs failed; 1 stale or spurious"),
        "{last}"
    );
}

#[test]
fn the_closing_lines_name_each_regression_with_its_numbers() {
    let s = suite();
    let b = baseline_from(&s, vec![run_with(1.0, 1.0); 3], BTreeMap::new());
    let pass = judge(&s, &b, &run_with(1.0, 1.0)).unwrap();
    assert_eq!(
        closing_lines(&pass),
        format!("gate: PASS ({} checks)\n", pass.len())
    );
    let mut checks = pass.clone();
    let c = checks
        .iter_mut()
        .find(|c| c.metric != Checked::Correctness)
        .unwrap();
    c.verdict = Verdict::Regression;
    c.measured = c.baseline + 2.0 * c.tolerance + 0.5;
    let want = format!(
        "gate:   {}/{} {}: {:.3} against {:.3} ±{:.3}",
        c.scenario,
        c.backend,
        c.metric.name(),
        c.measured,
        c.baseline,
        c.tolerance
    );
    let last = closing_lines(&checks);
    assert!(last.starts_with("gate: REGRESSION in 1 of "), "{last}");
    assert!(last.contains(&want), "{last}\nwants {want}");
}

#[test]
fn the_committed_suite_is_valid_and_its_baseline_matches_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/gate.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let suite: GateSuite = serde_json::from_str(&text).unwrap();
    for sc in &suite.scenarios {
        assert!(sc.backends.contains(&suite.reference), "{}", sc.name);
    }
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/baseline.json");
    let b: Baseline = serde_json::from_str(&std::fs::read_to_string(baseline).unwrap()).unwrap();
    assert_eq!(
        b.suite_digest,
        suite.digest(),
        "benches/baseline.json was recorded with another suite"
    );
}

#[test]
fn a_third_run_outvotes_a_first_run_disturbed_throughout() {
    // Baseline: mio's CPU ratio 1.0 with a tolerance of 5% (the floor).
    let s = suite();
    let b = baseline_from(&s, vec![run_with(1.0, 1.0); 3], BTreeMap::new());
    let rep = |vals: &[f64]| {
        let mut r = run_with(0.0, 1.0);
        let x = r.get_mut("s").unwrap().get_mut("mio").unwrap();
        x.per_rep.insert(Metric::CpuRatio, vals.to_vec());
        x.per_rep
            .insert(Metric::OpSyscallsPerEvent, vec![1.0; vals.len()]);
        x.set_medians();
        r
    };
    let cpu = |checks: &[Check]| {
        checks
            .iter()
            .find(|c| c.metric == Checked::Metric(Metric::CpuRatio))
            .unwrap()
            .clone()
    };
    // Every repetition of the first run disturbed, the later ones quiet.
    let first = rep(&[1.4, 1.5, 1.5, 1.6]);
    let quiet = rep(&[1.0, 1.01, 0.99, 1.0]);
    let mut checks = judge(&s, &b, &first).unwrap();
    assert_eq!(cpu(&checks).verdict, Verdict::Regression);
    // Two runs pooled: half the repetitions are disturbed, and the median
    // (1.2) stays past the line.
    let two = pooled(&[&first], &quiet);
    confirm(&mut checks, &judge(&s, &b, &two).unwrap(), 2);
    assert_eq!(cpu(&checks).verdict, Verdict::Regression);
    // A third: a third of them, and the median falls among the quiet runs.
    let three = pooled(&[&first, &quiet], &quiet);
    confirm(&mut checks, &judge(&s, &b, &three).unwrap(), 3);
    let c = cpu(&checks);
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.detail);
    assert!(c.detail.contains("not confirmed"), "{}", c.detail);
    // A real regression moves every run, and all three confirm it.
    let mut checks = judge(&s, &b, &first).unwrap();
    let two = pooled(&[&first], &first);
    confirm(&mut checks, &judge(&s, &b, &two).unwrap(), 2);
    let three = pooled(&[&first, &first], &first);
    confirm(&mut checks, &judge(&s, &b, &three).unwrap(), 3);
    let c = cpu(&checks);
    assert_eq!(c.verdict, Verdict::Regression);
    assert!(c.detail.starts_with("confirmed by run 3"), "{}", c.detail);
}
