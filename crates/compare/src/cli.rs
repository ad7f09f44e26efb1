//! The command line: `compare run [options]` and `compare backends`.
//! [`config_from`] turns arguments into a [`SuiteConfig`] (or a message
//! saying what to change); [`main`] runs it and prints.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::backends::{self, BackendId, Delivery};
use crate::fds::FdKind;
use crate::harness::{Handler, Workload};
use crate::report;
use crate::suite::{self, SuiteConfig};

/// Measured rounds of a default run.
pub const DEFAULT_ROUNDS: u64 = crate::harness::DEFAULT_ROUNDS;
/// Writers of the userpoll-series scenario unless `--writers` says otherwise.
pub const SERIES_WRITERS: usize = 4;
/// Measured rounds of the userpoll-series scenario (each fires every fd).
pub const SERIES_ROUNDS: u64 = 20_000;

/// Measures readiness delivery: re-arm cost against ring cost, per backend.
#[derive(Debug, Parser)]
#[command(name = "compare", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run backends over a workload; print a summary, write a results folder.
    Run(Box<RunArgs>),
    /// List every backend id, what it is, and whether it runs here.
    Backends,
    /// The CI performance gate: run the fixed suite, compare with a
    /// baseline; exit 0 pass, 1 regression, 2 could not run.
    Gate(GateArgs),
}

/// Options of `compare gate`.
#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["baseline", "record"])))]
pub struct GateArgs {
    /// Compare with this baseline (e.g. benches/baseline.json).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Record a new baseline into this file instead (runs the suite
    /// record_runs times to measure the noise).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// The suite definition.
    #[arg(long, default_value = "benches/gate.json")]
    pub suite: PathBuf,
    /// Where the report (gate-report.json, gate-summary.md) goes.
    #[arg(long, default_value = "results/gate")]
    pub out: PathBuf,
    /// Gate calibration only: the consumer busy-spins this many ns per event.
    #[arg(long, default_value_t = 0)]
    pub spin_ns: u64,
    /// Backends `--spin-ns` applies to, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "spin_ns")]
    pub spin_backends: Option<Vec<String>>,
    /// Scenarios of the suite `--spin-ns` applies to, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "spin_ns")]
    pub spin_scenarios: Option<Vec<String>>,
}

/// Options of `compare run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Backends to run, comma-separated (default: every backend available here).
    #[arg(long, value_delimiter = ',')]
    pub backends: Option<Vec<String>>,
    /// Fds registered and fired (default 10000).
    #[arg(long)]
    pub fds: Option<usize>,
    /// Fds fired per round (default 1000).
    #[arg(long)]
    pub active: Option<usize>,
    /// Measured rounds per run (default 250).
    #[arg(long, conflicts_with = "duration")]
    pub rounds: Option<u64>,
    /// Measure each run for this long instead of a number of rounds (e.g. 2s, 500ms).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Kind of fd: eventfd, pipe, socketpair, tcp (real loopback connections).
    #[arg(long, value_parser = FdKind::parse)]
    pub fd_kind: Option<FdKind>,
    /// Handler: read (drain each fired fd) or none (edge-like backends only).
    #[arg(long, default_value = "read", value_parser = ["read", "none"])]
    pub handler: String,
    /// Writer threads (default 1; userpoll-series: 4).
    #[arg(long)]
    pub writers: Option<usize>,
    /// Open loop: fires per second on a schedule; latency from the scheduled time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop in bursts: the writers fire each whole round before the
    /// consumer takes it, so batching does not depend on scheduling (the
    /// gate's cost scenarios). Latency then includes the round's firing.
    #[arg(long, conflicts_with = "rate")]
    pub burst: bool,
    /// Consuming threads, for backends that support several.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Repetitions of each backend, interleaved across backends.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Seed of the fire schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the JSON results to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Results folder (JSON, .hgrm per backend, SVG plots).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// A named scenario: userpoll-series or churn.
    #[arg(long, value_parser = ["userpoll-series", "churn"])]
    pub scenario: Option<String>,
    /// Churn scenario: registrations deleted and re-added per round (default active/10).
    #[arg(long)]
    pub churn: Option<usize>,
    /// Gate calibration only: the consumer busy-spins this many ns per event
    /// (after the handler), to make a known regression. Never in real runs.
    #[arg(long, default_value_t = 0)]
    pub spin_ns: u64,
    /// Backends `--spin-ns` applies to, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "spin_ns")]
    pub spin_backends: Option<Vec<String>>,
}

/// Parses `2s`, `1.5s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("cannot read {s:?} as a duration; write e.g. 2s, 500ms or 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s:?}; use ms, s or m")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("--duration {s} must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The suite `args` ask for, or a message saying what to change. Notes
/// (backends skipped from the default list) go to `notes`.
pub fn config_from(args: &RunArgs, notes: &mut Vec<String>) -> Result<SuiteConfig, String> {
    let series = args.scenario.as_deref() == Some("userpoll-series");
    let churn_scenario = args.scenario.as_deref() == Some("churn");
    let handler = if args.handler == "none" {
        Handler::None
    } else {
        Handler::Read
    };
    let fd_kind = args.fd_kind.unwrap_or(FdKind::Eventfd);
    let writers = args
        .writers
        .unwrap_or(if series { SERIES_WRITERS } else { 1 });
    if writers == 0 || writers > 256 {
        return Err(format!("--writers {writers}: use 1 to 256 writer threads"));
    }
    let (fds, active) = if series {
        if args.fds.is_some() || args.active.is_some() {
            return Err(
                "--scenario userpoll-series gives each writer its own eventfd, so fds = \
                        active = writers; set --writers instead of --fds/--active"
                    .into(),
            );
        }
        if fd_kind != FdKind::Eventfd {
            return Err("--scenario userpoll-series uses eventfds; drop --fd-kind".into());
        }
        if args.rate.is_some() {
            return Err("--scenario userpoll-series is closed-loop; drop --rate".into());
        }
        (writers, writers)
    } else {
        let fds = args.fds.unwrap_or(10_000);
        let active = args.active.unwrap_or(1_000.min(fds));
        (fds, active)
    };
    if fds == 0 || fds > u32::MAX as usize / 2 {
        return Err(format!("--fds {fds}: use at least 1"));
    }
    if active == 0 || active > fds {
        return Err(format!(
            "--active {active}: fds fired per round must be between 1 and --fds ({fds})"
        ));
    }
    if args.rounds == Some(0) {
        return Err("--rounds 0: use at least 1".into());
    }
    if args.reps == 0 {
        return Err("--reps 0: use at least 1".into());
    }
    if let Some(r) = args.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err(format!(
                "--rate {r}: fires per second must be more than zero"
            ));
        }
    }
    if args.churn.is_some() && !churn_scenario {
        return Err("--churn only applies to --scenario churn".into());
    }
    let churn = if churn_scenario {
        args.churn.unwrap_or((active / 10).max(1))
    } else {
        0
    };
    if args.consumers == 0 {
        return Err("--consumers 0: use at least 1".into());
    }
    if args.consumers > 64 {
        return Err(format!("--consumers {}: use 1 to 64", args.consumers));
    }

    // Backends: named ones must exist, run here and suit the handler; the
    // default list skips the ones that do not, with a note.
    let explicit = args.backends.is_some();
    let wanted: Vec<BackendId> = match &args.backends {
        Some(list) => list
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(BackendId::parse)
            .collect::<Result<_, _>>()?,
        None => backends::catalogue()
            .iter()
            .filter(|b| !series || b.delivery == Delivery::Edge)
            .map(|b| b.id)
            .collect(),
    };
    if wanted.is_empty() {
        return Err("--backends is empty; name at least one (see compare backends)".into());
    }
    let mut chosen = Vec::new();
    for id in wanted {
        let info = id.info();
        if args.consumers > 1 && !info.multi_consumer {
            if explicit {
                let several: Vec<&str> = backends::catalogue()
                    .iter()
                    .filter(|b| b.multi_consumer)
                    .map(|b| b.id.as_str())
                    .collect();
                return Err(format!(
                    "--consumers {}: {id} takes events on one thread; backends with several \
                     consumers: {}. Drop {id} or use --consumers 1",
                    args.consumers,
                    several.join(", ")
                ));
            }
            notes.push(format!("skipping {id}: it takes events on one thread"));
            continue;
        }
        if chosen.contains(&id) {
            return Err(format!("--backends names {id} twice"));
        }
        if let Err(why) = backends::availability(id) {
            if explicit {
                return Err(format!("backend {id} cannot run on this machine: {why}"));
            }
            notes.push(format!("skipping {id}: {why}"));
            continue;
        }
        if handler == Handler::None && info.delivery != Delivery::Edge {
            let how = match info.delivery {
                Delivery::Level => "level-triggered",
                _ => "one-shot re-armed after each event",
            };
            if explicit {
                return Err(format!(
                    "--handler none needs edge-like delivery, and {id} is {how}: it reports an \
                     undrained fd again at once, so the run would never settle. Drop {id} from \
                     --backends or use --handler read"
                ));
            }
            notes.push(format!("skipping {id} with --handler none: it is {how}"));
            continue;
        }
        chosen.push(id);
    }
    if chosen.is_empty() {
        return Err("no backend left to run; see compare backends".into());
    }
    let spin_backends: Vec<BackendId> = args
        .spin_backends
        .iter()
        .flatten()
        .map(|s| BackendId::parse(s.trim()))
        .collect::<Result<_, _>>()?;
    for id in &spin_backends {
        if !chosen.contains(id) {
            let chosen: Vec<&str> = chosen.iter().map(|b| b.as_str()).collect();
            return Err(format!(
                "--spin-backends names {id}, which this run does not include; name backends \
                 from --backends ({})",
                chosen.join(", ")
            ));
        }
    }
    let rounds = args.rounds.unwrap_or(if series {
        SERIES_ROUNDS
    } else {
        DEFAULT_ROUNDS
    });
    let warmup_rounds = if args.duration.is_some() {
        5
    } else {
        (rounds / 10).clamp(1, 50)
    };
    Ok(SuiteConfig {
        backends: chosen,
        workload: Workload {
            fds,
            active,
            rounds,
            duration: args.duration,
            handler,
            writers,
            consumers: args.consumers,
            rate: args.rate,
            burst: args.burst,
            own_fd: series,
            churn,
            seed: args.seed,
            warmup_rounds,
            stall: Duration::from_secs(5),
            spin_ns: args.spin_ns,
        },
        fd_kind,
        reps: args.reps,
        scenario: args.scenario.clone(),
        progress: true,
        spin_backends,
    })
}

fn backends_text() -> String {
    let mut s = String::new();
    for b in backends::catalogue() {
        let state = match backends::availability(b.id) {
            Ok(()) => "available".to_string(),
            Err(why) => format!("UNAVAILABLE: {why}"),
        };
        let delivery = match b.delivery {
            Delivery::Edge => "edge",
            Delivery::Level => "level",
            Delivery::Oneshot => "one-shot",
        };
        s += &format!(
            "{:<18} {:<9} {}\n{:<18} {:<9} {}\n",
            b.id, delivery, b.about, "", "", state
        );
    }
    for (id, about) in backends::not_built() {
        s += &format!(
            "{id:<18} {:<9} {about}\n{:<18} {:<9} UNAVAILABLE: not built into this binary yet\n",
            "", "", ""
        );
    }
    s
}

/// Writes to stdout; a closed pipe (`compare run | head`) is not an error.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Runs the command line; returns the process exit code (0 ok, 1 a run
/// failed or output could not be written, 2 a usage error).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.cmd {
        Cmd::Backends => {
            out(&backends_text());
            0
        }
        Cmd::Run(args) => run(&args),
        Cmd::Gate(args) => crate::gate::main(&crate::gate::GateOptions {
            suite: args.suite,
            baseline: args.baseline,
            record: args.record,
            out: args.out,
            spin: crate::gate::Spin {
                ns: args.spin_ns,
                backends: args.spin_backends.unwrap_or_default(),
                scenarios: args.spin_scenarios.unwrap_or_default(),
            },
        }),
    }
}

fn run(args: &RunArgs) -> i32 {
    let mut notes = Vec::new();
    let cfg = match config_from(args, &mut notes) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("error: {msg}");
            return 2;
        }
    };
    for n in &notes {
        eprintln!("note: {n}");
    }
    if let Err(msg) = suite::check_fd_budget(&cfg) {
        eprintln!("error: {msg}");
        return 2;
    }
    let results = suite::run_suite(&cfg, |r| {
        if let Some(why) = r.outcome.failure() {
            eprintln!("\n*** FAILED: {} rep {}: {why} ***\n", r.backend, r.rep);
        }
    });
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return if e.kind() == std::io::ErrorKind::InvalidInput {
                2
            } else {
                1
            };
        }
    };
    out(&report::summary_text(&results));
    let mut code = 0;
    if let Err(e) = report::write_folder(&results, &args.out) {
        eprintln!("error: {e}");
        code = 1;
    } else {
        out(&format!(
            "results: {}/ (results.json, one .hgrm per backend, latency.svg, cpu.svg)\n",
            args.out.display()
        ));
    }
    if let Some(path) = &args.json {
        if let Err(e) = report::write_json(&results, path) {
            eprintln!("error: {e}");
            code = 1;
        }
    }
    let failed = results.failed().count();
    if failed > 0 {
        eprintln!(
            "\n*** {failed} run(s) FAILED (events delivered != expected, or an error); they are \
             in the JSON with \"failed\": true ***"
        );
        code = 1;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2h").unwrap_err().contains("unit"));
    }
}
