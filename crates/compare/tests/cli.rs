//! The `compare` binary end to end: tiny runs of every backend over every
//! fd kind (events delivered must equal events expected), the JSON keys,
//! the results folder, and the argument errors. Real fds, real threads,
//! real rings; no assertion on speed.

mod common;

use std::process::Output;

use common::{compare, text, tmp, usage_error};
use serde_json::Value;

/// Runs `compare run` with `args` plus a fresh results folder; returns the
/// parsed results.json and the output.
fn run_ok(name: &str, args: &[&str]) -> (Value, Output) {
    let dir = tmp(name);
    let out = dir.join("out");
    let mut all = vec!["run", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = compare(&all);
    assert!(o.status.success(), "compare {all:?} failed:\n{}", text(&o));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (json, o)
}

fn available_backends() -> Vec<String> {
    compare::backends::catalogue()
        .iter()
        .filter(|b| compare::backends::availability(b.id).is_ok())
        .map(|b| b.id.to_string())
        .collect()
}

fn assert_every_run_delivered(json: &Value, what: &str) {
    let runs = json["runs"].as_array().unwrap();
    assert!(!runs.is_empty(), "{what}: no runs");
    for r in runs {
        assert_eq!(
            r["events"], r["events_expected"],
            "{what}: {} delivered the wrong number of events: {r:#}",
            r["backend"]
        );
        assert!(r["events"].as_u64().unwrap() > 0, "{what}: {r:#}");
        assert_eq!(r["failed"], false, "{what}: {r:#}");
    }
    assert_eq!(json["failed_runs"], 0);
}

#[test]
fn tiny_run_of_every_backend_over_every_fd_kind_delivers_what_was_fired() {
    let want = available_backends();
    for kind in ["eventfd", "pipe", "socketpair", "tcp"] {
        let (json, _) = run_ok(
            &format!("tiny-{kind}"),
            &[
                "--fds",
                "100",
                "--active",
                "10",
                "--rounds",
                "5",
                "--reps",
                "1",
                "--fd-kind",
                kind,
            ],
        );
        assert_every_run_delivered(&json, kind);
        let ran: Vec<String> = json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["backend"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ran, want,
            "{kind}: every available backend, in catalogue order"
        );
        for r in json["runs"].as_array().unwrap() {
            assert_eq!(r["fd_kind"], kind);
            assert_eq!(r["events_expected"], 50);
        }
    }
}

#[test]
fn handler_none_runs_the_edge_backends_and_skips_the_others() {
    for kind in ["eventfd", "pipe", "socketpair", "tcp"] {
        let (json, o) = run_ok(
            &format!("none-{kind}"),
            &[
                "--fds",
                "100",
                "--active",
                "10",
                "--rounds",
                "5",
                "--reps",
                "2",
                "--handler",
                "none",
                "--fd-kind",
                kind,
            ],
        );
        assert_every_run_delivered(&json, kind);
        let stderr = String::from_utf8_lossy(&o.stderr);
        for level_like in ["epoll-lt", "epoll-oneshot", "polling"] {
            assert!(
                stderr.contains(&format!("skipping {level_like}")),
                "{stderr}"
            );
        }
        assert!(json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["handler"] == "none"));
    }
}

#[test]
fn open_loop_and_scenarios_deliver_what_was_fired() {
    let (json, _) = run_ok(
        "rate",
        &[
            "--fds",
            "100",
            "--active",
            "10",
            "--rounds",
            "10",
            "--reps",
            "1",
            "--rate",
            "20000",
            "--writers",
            "2",
        ],
    );
    assert_every_run_delivered(&json, "open loop");
    assert_eq!(json["runs"][0]["events_expected"], 100);
    assert_eq!(json["runs"][0]["rate"], 20000.0);

    let (json, _) = run_ok(
        "duration",
        &[
            "--fds",
            "100",
            "--active",
            "10",
            "--duration",
            "100ms",
            "--reps",
            "1",
            "--backends",
            "floor,epoll-et,uring-raw",
        ],
    );
    assert_every_run_delivered(&json, "--duration");
    for r in json["runs"].as_array().unwrap() {
        let rounds = r["rounds"].as_u64().unwrap();
        assert!(
            rounds > 0 && r["events_expected"].as_u64() == Some(rounds * 10),
            "{r:#}"
        );
        assert!(r["wall_ns"].as_u64().unwrap() >= 100_000_000, "{r:#}");
    }

    let (json, o) = run_ok(
        "consumers",
        &[
            "--fds",
            "100",
            "--active",
            "10",
            "--rounds",
            "5",
            "--reps",
            "1",
            "--consumers",
            "3",
        ],
    );
    assert_every_run_delivered(&json, "three consumers");
    let ran: Vec<&str> = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(
        ran,
        [
            "epoll-et",
            "epoll-oneshot",
            "epoll-ring",
            "epoll-ring:inline"
        ]
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("skipping mio: it takes events on one thread")
    );
    assert!(json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["consumers"] == 3));

    let (json, _) = run_ok(
        "series",
        &[
            "--scenario",
            "userpoll-series",
            "--writers",
            "3",
            "--rounds",
            "50",
            "--reps",
            "1",
        ],
    );
    assert_every_run_delivered(&json, "userpoll-series");
    for r in json["runs"].as_array().unwrap() {
        assert_eq!(
            (r["fds"].as_u64(), r["writers"].as_u64()),
            (Some(3), Some(3))
        );
        assert_eq!(r["events_expected"], 150);
    }

    let (json, _) = run_ok(
        "churn",
        &[
            "--scenario",
            "churn",
            "--fds",
            "100",
            "--active",
            "20",
            "--rounds",
            "5",
            "--reps",
            "1",
        ],
    );
    assert_every_run_delivered(&json, "churn");
    for r in json["runs"].as_array().unwrap() {
        assert_eq!(r["churn_per_round"], 2);
        // Warm-up and measured rounds each delete and add 2 registrations.
        let ops = r["counters"]["control_ops"].as_u64().unwrap_or(0);
        assert!(
            ops >= 20,
            "{}: {ops} control ops in 5 rounds of churn",
            r["backend"]
        );
    }
}

#[test]
fn json_has_the_documented_keys_and_the_folder_its_files() {
    let dir = tmp("keys");
    let out = dir.join("out");
    let extra = dir.join("copy.json");
    let o = compare(&[
        "run",
        "--fds",
        "50",
        "--active",
        "5",
        "--rounds",
        "3",
        "--reps",
        "2",
        "--backends",
        "floor,epoll-et",
        "--out",
        out.to_str().unwrap(),
        "--json",
        extra.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&extra).unwrap()).unwrap();
    let same: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["runs"], same["runs"]);
    for key in [
        "kernel",
        "cpu",
        "cores",
        "rlimit_nofile",
        "crates",
        "ring_setup",
    ] {
        assert!(
            json["env"].get(key).is_some(),
            "env.{key} missing: {:#}",
            json["env"]
        );
    }
    for krate in ["io-uring", "mio", "polling", "hdrhistogram"] {
        assert!(
            json["env"]["crates"][krate].is_string(),
            "{:#}",
            json["env"]["crates"]
        );
    }
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "2 backends x 2 reps");
    // Interleaved: floor, epoll-et, floor, epoll-et.
    let order: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| (r["backend"].as_str().unwrap(), r["rep"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        order,
        [("floor", 0), ("epoll-et", 0), ("floor", 1), ("epoll-et", 1)]
    );
    let keys = [
        "backend",
        "rep",
        "fd_kind",
        "fds",
        "active",
        "rounds",
        "handler",
        "writers",
        "events_expected",
        "events",
        "wall_ns",
        "events_per_sec",
        "cpu_ns_per_event",
        "consumer_cpu_ns_per_event",
        "consumer_syscalls_per_event",
        "rearms_per_event",
        "overflow_recoveries",
        "stale_dropped",
        "latency_ns",
        "failed",
    ];
    for r in runs {
        for k in keys {
            assert!(r.get(k).is_some(), "run key {k} missing: {r:#}");
        }
        for k in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                r["latency_ns"][k].as_u64().unwrap() > 0,
                "latency_ns.{k}: {r:#}"
            );
        }
        assert_eq!(r["rounds"], 3);
        assert!(r["wall_ns"].as_u64().unwrap() > 0);
        // epoll-et: one epoll_wait per batch and one read per event at least.
        assert!(
            r["consumer_syscalls_per_event"].as_f64().unwrap() >= 1.0,
            "{r:#}"
        );
    }
    for f in ["floor.hgrm", "epoll-et.hgrm", "latency.svg", "cpu.svg"] {
        let body = std::fs::read_to_string(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!body.is_empty(), "{f} is empty");
    }
    let hgrm = std::fs::read_to_string(out.join("epoll-et.hgrm")).unwrap();
    assert!(hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    // 2 reps x 3 rounds x 5 fires, merged.
    assert!(hgrm.contains("Total count    =           30]"), "{hgrm}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn summary_names_the_rearm_and_ring_costs() {
    let (_, o) = run_ok(
        "summary",
        &[
            "--fds",
            "50",
            "--active",
            "5",
            "--rounds",
            "3",
            "--reps",
            "1",
            "--backends",
            "floor,epoll-et,epoll-oneshot",
        ],
    );
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("re-arm cost:"), "{s}");
    assert!(s.contains("epoll-oneshot     against epoll-et"), "{s}");
    assert!(s.contains("ring cost:"), "{s}");
    assert!(
        s.contains("+1.00 re-arms/event"),
        "one-shot re-arms once per event: {s}"
    );
}

#[test]
fn argument_errors_fail_at_once_and_say_what_to_do() {
    usage_error(
        &["--fds", "10", "--active", "11"],
        &["--active 11", "between 1 and --fds (10)"],
    );
    usage_error(
        &["--backends", "epoll-lt", "--handler", "none"],
        &["edge-like", "--handler read"],
    );
    usage_error(
        &["--backends", "kqueue"],
        &["unknown backend \"kqueue\"", "epoll-et"],
    );
    usage_error(&["--rounds", "5", "--duration", "1s"], &["--duration"]);
    usage_error(
        &["--fd-kind", "fifo"],
        &["eventfd, pipe, socketpair or tcp"],
    );
    usage_error(
        &["--consumers", "2", "--backends", "mio"],
        &["one thread", "--consumers 1"],
    );
    usage_error(
        &["--scenario", "userpoll-series", "--fds", "9"],
        &["--writers"],
    );
    usage_error(&["--churn", "3"], &["--scenario churn"]);
    usage_error(&["--rate", "0"], &["more than 0"]);
    usage_error(&["--reps", "0"], &["--reps 0", "use 1 to"]);
}

#[test]
fn too_many_fds_fail_at_once_naming_the_limit_and_what_fits() {
    let (_, hard) = compare::sys::nofile_limit().unwrap();
    let too_many = (hard + 1).to_string();
    usage_error(
        &["--fds", &too_many, "--active", "1"],
        &["RLIMIT_NOFILE", &format!("({hard}")],
    );
    let o = compare(&[
        "run",
        "--fds",
        &too_many,
        "--active",
        "1",
        "--fd-kind",
        "pipe",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    let fit: u64 = err
        .split("largest --fds that fits is ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no largest size in: {err}"));
    assert!(
        fit > 0 && fit * 2 < hard,
        "pipes take two fds each: {fit} of {hard}"
    );
}

#[test]
fn backends_lists_every_id_and_its_state() {
    let o = compare(&["backends"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    for id in [
        "floor",
        "epoll-lt",
        "epoll-et",
        "epoll-oneshot",
        "uring-raw",
        "uring-raw:coop",
        "uring-read",
        "uring-poll",
        "uring-poll:coop",
        "uring-poll:defer",
        "uring-poll:sqpoll",
        "uring-poll:rearm",
        "epoll-ring",
        "epoll-ring:inline",
        "mio",
        "polling",
    ] {
        assert!(
            s.lines().any(|l| l.split_whitespace().next() == Some(id)),
            "{id} missing:\n{s}"
        );
    }
    assert!(s.contains("available"), "{s}");
}

#[test]
fn a_failed_run_is_printed_loudly_kept_in_the_json_and_exits_non_zero() {
    // One pipe fired 70,000 times and never drained: its 64 KiB buffer
    // fills, the writer cannot fire, the run delivers fewer events than
    // expected.
    let dir = tmp("fail");
    let out = dir.join("out");
    let o = compare(&[
        "run",
        "--fds",
        "1",
        "--active",
        "1",
        "--rounds",
        "70000",
        "--handler",
        "none",
        "--fd-kind",
        "pipe",
        "--backends",
        "epoll-et",
        "--reps",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("*** FAILED: epoll-et rep 0"), "{err}");
    assert!(err.contains("use --handler read"), "{err}");
    assert!(err.contains("1 run(s) FAILED"), "{err}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let r = &json["runs"][0];
    assert_eq!(r["failed"], true, "{r:#}");
    assert_ne!(r["events"], r["events_expected"]);
    assert!(r["error"].as_str().unwrap().contains("full"), "{r:#}");
    assert_eq!(json["failed_runs"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}
