//! What a suite leaves behind: the JSON (exact keys, one object per run),
//! the summary table with the two numbers the project exists for, and the
//! results folder (JSON, one `.hgrm` per backend, two SVG plots, drawn by
//! [`crate::plot`]). The numbers come from [`crate::summary`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use userpoll::Counter;

use crate::backends::BackendId;
use crate::suite::{Results, RunResult};
use crate::summary::{per, ratio, summarize, PerEvent};
use crate::table::{Align, Table};

/// p50, p90, p99, p99.9 and max of a latency histogram, in ns.
pub fn latency_json(h: &Histogram<u64>) -> Value {
    let q = |q: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        }
    };
    json!({
        "p50": q(0.5),
        "p90": q(0.9),
        "p99": q(0.99),
        "p999": q(0.999),
        "max": if h.is_empty() { 0 } else { h.max() },
    })
}

/// The JSON object of one run.
pub fn run_json(results: &Results, r: &RunResult) -> Value {
    let o = &r.outcome;
    let w = &results.config.workload;
    let pe = PerEvent::of(o);
    let by_kind: BTreeMap<&str, u64> = o
        .backend
        .iter()
        .filter(|(c, v)| c.is_syscall() && *v != 0)
        .map(|(c, v)| (c.name(), v))
        .collect();
    let counters: BTreeMap<&str, u64> = o
        .backend
        .iter()
        .filter(|(_, v)| *v != 0)
        .map(|(c, v)| (c.name(), v))
        .collect();
    let mut v = json!({
        "backend": r.backend,
        "rep": r.rep,
        "fd_kind": results.config.fd_kind.name(),
        "fds": w.fds,
        "active": w.active,
        "rounds": o.rounds,
        "handler": w.handler.name(),
        "writers": w.writers,
        "events_expected": o.events_expected,
        "events": o.events,
        "wall_ns": o.wall_ns,
        "events_per_sec": pe.events_per_sec,
        "cpu_ns_per_event": pe.cpu_ns,
        "consumer_cpu_ns_per_event": pe.consumer_cpu_ns,
        "backend_cpu_ns_per_event": pe.backend_cpu_ns,
        "writer_cpu_ns_per_event": per(o.writer_cpu_ns, o.events),
        "consumer_syscalls_per_event": pe.syscalls,
        "rearms_per_event": pe.rearms,
        "overflow_recoveries": o.backend.get(Counter::OverflowRecoveries),
        "stale_dropped": o.backend.get(Counter::StaleDropped),
        "latency_ns": latency_json(&o.latency),
        "failed": o.failed(),
        "spurious_events": o.spurious,
        "handler_bytes": o.handler_bytes,
        "scenario": results.config.scenario,
        "rate": w.rate,
        "consumers": w.consumers,
        "churn_per_round": w.churn,
        "seed": w.seed,
        "spin_ns": results.config.workload_for(r.backend).spin_ns,
        "syscalls": {
            "backend": by_kind,
            "handler_reads": o.handler_reads,
            "consumer_other": o.consumer_other,
            "consumer_total": o.consumer_syscalls(),
            "writer_writes": o.writer_writes,
            "writer_other": o.writer_other,
            "run_total_all_phases": o.total_syscalls,
        },
        "counters": counters,
    });
    if let Some(e) = &o.error {
        v["error"] = json!(e);
    }
    v
}

/// The whole results document: `env`, `config`, `runs`.
pub fn results_json(results: &Results) -> Value {
    let env = &results.env;
    let c = &results.config;
    let w = &c.workload;
    json!({
        "env": {
            "kernel": env.kernel,
            "cpu": env.cpu,
            "cores": env.cores,
            "rlimit_nofile": { "soft": env.rlimit_nofile.0, "hard": env.rlimit_nofile.1 },
            "crates": env.crates,
            "ring_setup": env.ring_setup,
        },
        "config": {
            "backends": c.backends,
            "reps": c.reps,
            "fd_kind": c.fd_kind.name(),
            "fds": w.fds,
            "active": w.active,
            "rounds": w.rounds,
            "duration_s": w.duration.map(|d| d.as_secs_f64()),
            "handler": w.handler.name(),
            "writers": w.writers,
            "rate": w.rate,
            "consumers": w.consumers,
            "churn_per_round": w.churn,
            "seed": w.seed,
            "warmup_rounds": w.warmup_rounds,
            "scenario": c.scenario,
        },
        "syscalls_counted_total": results.total_syscalls(),
        "failed_runs": results.failed().count(),
        "runs": results.runs.iter().map(|r| run_json(results, r)).collect::<Vec<_>>(),
    })
}

fn scenario_note(results: &Results) -> String {
    let w = &results.config.workload;
    match &results.config.scenario {
        Some(sc) if w.churn > 0 => format!(
            ", scenario {sc} ({} registrations deleted and re-added per round)",
            w.churn
        ),
        Some(sc) => format!(", scenario {sc}"),
        None => String::new(),
    }
}

/// The summary table and the re-arm and ring costs, as printed.
pub fn summary_text(results: &Results) -> String {
    let sums = summarize(results);
    let find = |id: BackendId| sums.iter().find(|s| s.id == id);
    let w = &results.config.workload;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} fds ({}), {} fired per round, {}, handler {}, {} writer(s), {} \
         consumer(s){}, {} rep(s); medians (± half the range, ? with fewer than 2 good \
         runs); x columns: median of the ratios within each repetition",
        w.fds,
        results.config.fd_kind.name(),
        w.active,
        match (w.duration, w.rate) {
            (Some(d), None) => format!("rounds for {d:?}"),
            (Some(d), Some(_)) => format!("fires over {d:?}"),
            (None, _) => format!("{} measured rounds", w.rounds),
        },
        w.handler.name(),
        w.writers,
        w.consumers,
        w.rate
            .map_or(String::new(), |r| format!(", open loop at {r}/s"))
            + &scenario_note(results),
        results.config.reps
    );
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("backend", Left),
        ("events/s", Right),
        ("", Right),
        ("cpu ns/ev", Right),
        ("", Right),
        ("consumer ns", Right),
        ("", Right),
        ("sys/ev", Right),
        ("rearm/ev", Right),
        ("p50 us", Right),
        ("p99 us", Right),
        ("xfloor", Right),
        ("xepoll-et", Right),
        ("", Left),
    ]);
    for b in &sums {
        if b.failed == b.runs {
            table.row_with_text(b.id.to_string(), format!("FAILED in all {} run(s)", b.runs));
            continue;
        }
        // A spread needs two good runs; with one it is unknown, not 0.
        let known = b.runs - b.failed >= 2;
        let spread = |x: f64| {
            if known {
                format!("± {:.0}%", x * 100.0)
            } else {
                "± ?".to_string()
            }
        };
        let q = |q: f64| format!("{:.1}", b.latency.value_at_quantile(q) as f64 / 1000.0);
        let x = |other: BackendId| {
            ratio(Some(b), find(other)).map_or("-".to_string(), |r| format!("{r:.2}"))
        };
        table.row(vec![
            b.id.to_string(),
            format!("{:.0}", b.events_per_sec.0),
            spread(b.events_per_sec.1),
            format!("{:.0}", b.cpu_ns.0),
            spread(b.cpu_ns.1),
            format!("{:.0}", b.consumer_cpu_ns.0),
            spread(b.consumer_cpu_ns.1),
            format!("{:.2}", b.syscalls),
            format!("{:.2}", b.rearms),
            q(0.5),
            q(0.99),
            x(BackendId::Floor),
            x(BackendId::EpollEt),
            if b.failed > 0 {
                format!(" ({} of {} runs FAILED)", b.failed, b.runs)
            } else {
                String::new()
            },
        ]);
    }
    s += &table.render();
    let cost = |s: &mut String, a: BackendId, b: BackendId| {
        let line = match (find(a), find(b), ratio(find(a), find(b))) {
            (Some(x), Some(y), Some(r)) => format!(
                "{r:.2}x CPU ns/event ({:.0} vs {:.0}, {:+.0} ns/event; {:+.2} syscalls/event, {:+.2} re-arms/event)",
                x.cpu_ns.0,
                y.cpu_ns.0,
                x.cpu_ns.0 - y.cpu_ns.0,
                x.syscalls - y.syscalls,
                x.rearms - y.rearms
            ),
            _ => "not measured (run both backends to see it)".to_string(),
        };
        let _ = writeln!(s, "  {a:<17} against {b:<11} {line}");
    };
    let _ = writeln!(s, "\nre-arm cost:");
    cost(&mut s, BackendId::EpollOneshot, BackendId::EpollEt);
    cost(&mut s, BackendId::UringPollRearm, BackendId::UringPoll);
    let _ = writeln!(s, "ring cost:");
    cost(&mut s, BackendId::UringPoll, BackendId::Floor);
    cost(&mut s, BackendId::EpollRing, BackendId::Floor);
    let _ = writeln!(
        s,
        "\nsystem calls counted by compare for the whole suite (all phases, writers included): {}",
        results.total_syscalls()
    );
    s
}

/// A file name for backend `id` (`:` is awkward in file names).
pub fn file_stem(id: &str) -> String {
    id.replace(':', "-")
}

/// What a suite measured, in one line for the plots: fds and their kind,
/// fired per round, the loop, handler, threads, repetitions, kernel, date.
pub fn plot_subtitle(results: &Results) -> String {
    let c = &results.config;
    let w = &c.workload;
    let kernel = results
        .env
        .kernel
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let shape = match (w.rate, w.burst) {
        (Some(r), _) => format!("open loop at {r}/s"),
        (None, true) => "closed loop in bursts".to_string(),
        (None, false) => "closed loop".to_string(),
    };
    format!(
        "{} {} fds, {} fired per round, {shape}, handler {}, {} writer(s), {} consumer(s){}, {} \
         rep(s); {kernel}, {} cores; {}",
        w.fds,
        c.fd_kind.name(),
        w.active,
        w.handler.name(),
        w.writers,
        w.consumers,
        scenario_note(results),
        c.reps,
        results.env.cores,
        results.env.date
    )
}

/// Writes the results folder: `results.json`, one `<backend>.hgrm` per
/// backend, `latency.svg` and `cpu.svg`.
pub fn write_folder(results: &Results, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create results folder {}: {e}", dir.display()),
        )
    })?;
    write_json(results, &dir.join("results.json"))?;
    let sums = summarize(results);
    for b in &sums {
        let text = crate::hgrm::percentile_distribution(&b.latency, 1000.0);
        std::fs::write(dir.join(format!("{}.hgrm", file_stem(b.id.as_str()))), text)?;
    }
    let what = plot_subtitle(results);
    crate::plot::latency(&sums, &what, &dir.join("latency.svg"))?;
    crate::plot::cpu(&sums, &what, &dir.join("cpu.svg"))?;
    Ok(())
}

/// Checks, before anything is measured, that the results can be written:
/// creates the results folder `dir` and the folder of `json` (with any
/// missing parents) and makes sure a file can be created in each. The
/// error says which option names a path that cannot be written, and why.
pub fn prepare_outputs(dir: &Path, json: Option<&Path>) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .and_then(|()| probe_writable(&dir.join(".compare-write-check")))
        .map_err(|e| {
            format!(
                "--out {}: cannot write the results folder there ({e}); choose another folder",
                dir.display()
            )
        })?;
    if let Some(path) = json {
        prepare_file("--json", path)?;
    }
    Ok(())
}

/// Checks that the file `path`, named by `option`, can be written: creates
/// its folder (with any missing parents) and opens the file without
/// changing it.
pub fn prepare_file(option: &str, path: &Path) -> Result<(), String> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    parent
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| probe_writable(path))
        .map_err(|e| {
            format!(
                "{option} {}: cannot write there ({e}); choose another file",
                path.display()
            )
        })
}

/// Opens `path` for writing without changing it: an existing file is
/// opened for appending (nothing written), a new one is created and
/// removed again.
fn probe_writable(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::other("it is a folder"));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    if !existed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// Writes the JSON document to `path`.
pub fn write_json(results: &Results, path: &Path) -> io::Result<()> {
    let text = serde_json::to_string_pretty(&results_json(results)).map_err(io::Error::other)?;
    std::fs::write(path, text + "\n")
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_have_no_colon() {
        assert_eq!(file_stem("uring-poll:coop"), "uring-poll-coop");
    }
}
