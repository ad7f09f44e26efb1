//! `compare gate` end to end on a tiny suite: recording a baseline, the
//! exit codes (1 regression, 2 could not run), the report files, and the
//! injected spin that the gate's own calibration relies on. Real fds and
//! threads; the only regression asserted is one far larger than any noise
//! (a 100 us spin per event against runs that cost a few us per event).

mod common;

use std::path::{Path, PathBuf};

use common::{compare, text, tmp};
use serde_json::Value;

fn tiny_suite(dir: &Path, rounds: u64) -> PathBuf {
    let suite = serde_json::json!({
        "about": "test",
        "reference": "epoll-et",
        "reps": 3,
        "record_runs": 3,
        "tolerances": {
            "cpu": { "k": 4.0, "floor_rel": 0.05, "floor_abs": 0.0 },
            "latency": { "k": 4.0, "floor_rel": 0.5, "floor_abs": 0.0 },
            "exact": { "k": 4.0, "floor_rel": 0.02, "floor_abs": 0.05 },
            "timing": { "k": 4.0, "floor_rel": 0.5, "floor_abs": 0.25 }
        },
        "scenarios": [{
            "name": "tiny", "fd_kind": "eventfd", "fds": 64, "active": 8,
            "rounds": rounds, "warmup_rounds": 2, "handler": "read", "writers": 1, "burst": true,
            "backends": ["floor", "epoll-et"]
        }]
    });
    let p = dir.join("gate.json");
    std::fs::write(&p, suite.to_string()).unwrap();
    p
}

#[test]
fn record_then_a_large_injected_regression_fails_with_exit_1() {
    let dir = tmp("record");
    let suite = tiny_suite(&dir, 30);
    let base = dir.join("baseline.json");
    let out = dir.join("out");
    let (s, b, o) = (
        suite.to_str().unwrap(),
        base.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let r = compare(&["gate", "--suite", s, "--record", b, "--out", o]);
    assert!(r.status.success(), "{}", text(&r));
    let baseline: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let floor = &baseline["scenarios"]["tiny"]["floor"];
    for m in [
        "cpu_ratio",
        "op_syscalls_per_event",
        "wait_syscalls_per_event",
        "rearms_per_event",
        "p99_ratio",
    ] {
        let (v, n) = (floor[m]["value"].as_f64(), floor[m]["noise"].as_f64());
        assert!(
            v.is_some_and(|v| v >= 0.0) && n.is_some_and(|n| n >= 0.0),
            "{m} has no value and noise: {floor}"
        );
    }
    // Floor makes exactly one read per event and no other call but waits.
    let ops = floor["op_syscalls_per_event"]["value"].as_f64().unwrap();
    assert!((ops - 1.0).abs() < 1e-9, "floor op syscalls/event {ops}");
    assert_eq!(baseline["runs"].as_array().unwrap().len(), 3);

    // 100 us of busy work per event on floor: its CPU ratio to epoll-et
    // rises many times over, far beyond any recorded noise.
    let r = compare(&[
        "gate",
        "--suite",
        s,
        "--baseline",
        b,
        "--out",
        o,
        "--spin-ns",
        "100000",
        "--spin-backends",
        "floor",
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    let md = std::fs::read_to_string(out.join("gate-summary.md")).unwrap();
    assert!(md.starts_with("# Performance gate: REGRESSION"), "{md}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("gate-report.json")).unwrap())
            .unwrap();
    let cpu = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["backend"] == "floor" && c["metric"] == "cpu_ratio")
        .unwrap();
    assert_eq!(cpu["verdict"], "regression", "{cpu}");
    let et = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["backend"] == "epoll-et" && c["metric"] == "correctness")
        .unwrap();
    assert_eq!(et["verdict"], "pass", "the reference ran correctly: {et}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_changed_suite_or_a_missing_baseline_cannot_run_exit_2() {
    let dir = tmp("cannot");
    let suite = tiny_suite(&dir, 10);
    let s = suite.to_str().unwrap();
    // Every call names an --out in the temp folder: a gate that cannot run
    // must leave it uncreated (and none of them writes into the source tree).
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let missing = dir.join("nope.json");
    let r = compare(&[
        "gate",
        "--suite",
        s,
        "--baseline",
        missing.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("compare gate --record"), "{}", text(&r));
    assert!(!out.exists(), "no output folder when the gate cannot run");

    // A baseline recorded with another suite.
    let base = dir.join("baseline.json");
    let r = compare(&[
        "gate",
        "--suite",
        s,
        "--record",
        base.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let changed = tiny_suite(&dir, 11);
    let r = compare(&[
        "gate",
        "--suite",
        changed.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        text(&r).contains("changed since the baseline"),
        "{}",
        text(&r)
    );

    // A suite naming a backend that does not exist.
    let bad = dir.join("bad.json");
    let t = std::fs::read_to_string(&suite)
        .unwrap()
        .replace("floor", "no-such-backend");
    std::fs::write(&bad, t).unwrap();
    let r = compare(&[
        "gate",
        "--suite",
        bad.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("no-such-backend"), "{}", text(&r));

    // A spin aimed at a scenario the suite does not have.
    let r = compare(&[
        "gate",
        "--suite",
        s,
        "--baseline",
        base.to_str().unwrap(),
        "--spin-ns",
        "100",
        "--spin-scenarios",
        "no-such-scenario",
        "--out",
        o,
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("no-such-scenario"), "{}", text(&r));

    // Neither --baseline nor --record: a usage error.
    let r = compare(&["gate", "--suite", s, "--out", o]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        !out.exists(),
        "a gate that could not run created its output folder"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spin_ns_adds_busy_work_to_the_named_backend_only() {
    let dir = tmp("spin");
    let out = dir.join("out");
    let r = compare(&[
        "run",
        "--backends",
        "floor,epoll-et",
        "--fds",
        "32",
        "--active",
        "8",
        "--rounds",
        "20",
        "--reps",
        "1",
        "--spin-ns",
        "50000",
        "--spin-backends",
        "floor",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let run = |id: &str| {
        json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["backend"] == id)
            .unwrap()
            .clone()
    };
    let (floor, et) = (run("floor"), run("epoll-et"));
    assert_eq!(floor["spin_ns"], 50000);
    assert_eq!(et["spin_ns"], 0);
    // 50 us of spinning per event shows in the consumer's CPU time (at
    // least half of it, however the thread was scheduled).
    let c = floor["consumer_cpu_ns_per_event"].as_f64().unwrap();
    assert!(
        c > 25_000.0,
        "consumer CPU per event {c} ns with a 50 us spin"
    );

    let r = compare(&[
        "run",
        "--backends",
        "floor",
        "--spin-ns",
        "10",
        "--spin-backends",
        "epoll-et",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        text(&r).contains("--spin-backends names epoll-et"),
        "{}",
        text(&r)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_suite_creates_no_output_folder() {
    let dir = tmp("invalid-suite");
    let suite = dir.join("gate.json");
    std::fs::write(&suite, "{ \"about\": \"not a suite\" }").unwrap();
    let out = dir.join("out");
    let r = compare(&[
        "gate",
        "--suite",
        suite.to_str().unwrap(),
        "--baseline",
        dir.join("b.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("not a valid gate suite"), "{}", text(&r));
    assert!(
        !out.exists(),
        "the suite is checked before any folder is made"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
