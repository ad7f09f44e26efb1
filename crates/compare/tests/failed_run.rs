//! A run that delivers more events than were fired is a failed run, kept in
//! the JSON with `"failed": true`. The CLI refuses `--handler none` for a
//! level-triggered backend for exactly this reason; the library does not,
//! which lets this test produce a real failure with a real kernel.

use compare::backends::BackendId;
use compare::fds::FdKind;
use compare::harness::{Handler, Workload};
use compare::report;
use compare::suite::{run_suite, SuiteConfig};

#[test]
fn level_triggered_without_draining_fails_and_is_reported_as_failed() {
    let cfg = SuiteConfig {
        backends: vec![BackendId::EpollLt, BackendId::EpollEt],
        workload: Workload {
            fds: 20,
            active: 5,
            rounds: 3,
            handler: Handler::None,
            warmup_rounds: 1,
            ..Workload::default()
        },
        fd_kind: FdKind::Eventfd,
        reps: 1,
        scenario: None,
        progress: false,
        spin_backends: vec![],
    };
    let mut seen = Vec::new();
    let results = run_suite(&cfg, |r| seen.push((r.backend, r.outcome.failed()))).unwrap();
    assert_eq!(
        seen,
        [(BackendId::EpollLt, true), (BackendId::EpollEt, false)]
    );
    let lt = &results.runs[0].outcome;
    assert!(
        lt.events > lt.events_expected,
        "level-triggered re-reports undrained fds"
    );
    assert!(lt.spurious > 0);
    let json = report::results_json(&results);
    assert_eq!(json["runs"][0]["failed"], true);
    assert_eq!(json["runs"][1]["failed"], false);
    assert_eq!(json["failed_runs"], 1);
    let summary = report::summary_text(&results);
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("epoll-lt ") && l.ends_with("FAILED in all 1 run(s)")),
        "{summary}"
    );
}
