//! `compare http` end to end, small: the real server on three readiness
//! backends and the io_uring completion loop, driven by wrk (when
//! installed) and by the new-connection client.

mod common;

use std::process::Command;

fn compare() -> Command {
    Command::new(env!("CARGO_BIN_EXE_compare"))
}

#[test]
fn http_measures_every_backend_with_both_clients_and_writes_json() {
    let dir = common::tmp("http");
    let wrk = Command::new("wrk").arg("-v").output().is_ok();
    let connections = if wrk { "20" } else { "0" };
    if !wrk {
        eprintln!("SKIPPED the wrk part: wrk is not installed (apt-get install -y wrk)");
    }
    let out = compare()
        .args([
            "http",
            "--backends",
            "reference,uring-poll:defer,epoll-ring:inline,uring-recv",
        ])
        .args(["--connections", connections, "--new-connection", "20"])
        .args(["--requests", "400", "--duration", "1s", "--reps", "1"])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("new connection per request, 20 in flight"),
        "{text}"
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("http.json")).unwrap()).unwrap();
    let samples = doc["samples"].as_array().unwrap();
    let shapes = if wrk { 2 } else { 1 };
    let skipped = doc["skipped"].as_object().unwrap().len();
    assert_eq!(samples.len(), (4 - skipped) * shapes, "{doc}");
    for s in samples {
        assert!(s["requests"].as_u64().unwrap() > 0, "{s}");
        assert_eq!(s["errors"].as_u64(), Some(0), "{s}");
        assert!(
            s["server_cpu_ns_per_request"].as_f64().unwrap() > 0.0,
            "{s}"
        );
        assert!(s["syscalls_per_request"].as_f64().unwrap() > 0.0, "{s}");
        if s["shape"].get("new_connection").is_some() {
            assert_eq!(
                s["requests"].as_u64(),
                Some(400),
                "every request answered: {s}"
            );
        }
    }
    assert!(dir.join("http.svg").is_file(), "no plot");
    for b in [
        "reference",
        "uring-poll-defer",
        "epoll-ring-inline",
        "uring-recv",
    ] {
        if samples
            .iter()
            .any(|s| s["backend"].as_str().map(crate_stem) == Some(b.into()))
        {
            let hgrm = std::fs::read_to_string(dir.join(format!("{b}-new-connection.hgrm")))
                .unwrap_or_else(|e| panic!("{b}: {e}"));
            assert!(hgrm.contains("Percentile"), "{hgrm}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A backend id as a file name.
fn crate_stem(id: &str) -> String {
    id.replace(':', "-")
}

#[test]
fn http_refuses_an_unknown_backend_before_running() {
    let dir = common::tmp("http-bad").join("out");
    let out = compare()
        .args(["http", "--backends", "uring-pol", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown backend \"uring-pol\""), "{err}");
    assert!(
        err.contains("uring-recv"),
        "the valid ids are listed: {err}"
    );
    assert!(!dir.exists(), "an invalid run created its results folder");
}
