//! The options of `compare run` and `compare gate` as clap parses them,
//! and the duration syntax of `--duration`.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::fds::FdKind;
use crate::harness::Handler;

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
    /// A real server on every backend (and nginx), driven by wrk and by a
    /// new-connection-per-request client: req/s, server CPU per request,
    /// system calls and re-arms per request, latency.
    Http(HttpArgs),
    /// Internal: the server `compare http` runs (userpoll-http).
    #[command(name = "__serve", hide = true)]
    Serve(ServeArgs),
}

/// Options of `compare http`.
#[derive(Debug, Args, Clone)]
pub struct HttpArgs {
    /// Servers to run, comma-separated: backend ids (readiness backends,
    /// uring-recv, uring-recv:direct-send) and `nginx` (default: every
    /// backend available here, then nginx if installed).
    #[arg(long, value_delimiter = ',')]
    pub backends: Option<Vec<String>>,
    /// wrk keep-alive runs, one per connection count, comma-separated (0:
    /// none).
    #[arg(long, value_delimiter = ',', default_value = "200,1000,10000", value_parser = clap::value_parser!(u32).range(0..=18_000))]
    pub connections: Vec<u32>,
    /// New-connection-per-request runs: connections in flight (0: none).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub new_connection: u32,
    /// Requests per new-connection run.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub requests: u64,
    /// Length of each wrk run (whole seconds, e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Interleaved repetitions.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: u32,
    /// Bytes of the 200 body (libevent's bench_http serves 0).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=(1 << 24)))]
    pub body: u32,
    /// Results folder (http.json goes there).
    #[arg(long, default_value = "results/http")]
    pub out: PathBuf,
    /// Also write the JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of the internal `__serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Backend id (a readiness backend or uring-recv).
    #[arg(long)]
    pub backend: http_server::ServerBackend,
    /// Address to listen on.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Body bytes.
    #[arg(long, default_value_t = 0)]
    pub body: usize,
    /// Most connections.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
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
    #[arg(long, value_parser = whole_usize)]
    pub fds: Option<usize>,
    /// Fds fired per round (default 1000).
    #[arg(long, value_parser = whole_usize)]
    pub active: Option<usize>,
    /// Measured rounds per run (default 250).
    #[arg(long, conflicts_with = "duration", value_parser = whole_u64)]
    pub rounds: Option<u64>,
    /// Measure each run for this long instead of a number of rounds (e.g. 2s, 500ms).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Kind of fd: eventfd, pipe, socketpair, tcp (real loopback connections).
    #[arg(long, value_parser = FdKind::parse)]
    pub fd_kind: Option<FdKind>,
    /// Handler: read (drain each fired fd) or none (edge-like backends only).
    #[arg(
        long,
        default_value = "read",
        value_parser = PossibleValuesParser::new(["read", "none"]).try_map(|s| Handler::parse(&s))
    )]
    pub handler: Handler,
    /// Writer threads (default 1; userpoll-series: 4).
    #[arg(long, value_parser = whole_usize)]
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
    #[arg(long, default_value_t = 1, value_parser = whole_usize)]
    pub consumers: usize,
    /// Repetitions of each backend, interleaved across backends.
    #[arg(long, default_value_t = 5, value_parser = whole_usize)]
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
    #[arg(
        long,
        value_parser = PossibleValuesParser::new(["userpoll-series", "churn"])
            .try_map(|s| NamedScenario::parse(&s))
    )]
    pub scenario: Option<NamedScenario>,
    /// Churn scenario: registrations deleted and re-added per round (default active/10).
    #[arg(long, value_parser = whole_usize)]
    pub churn: Option<usize>,
    /// Gate calibration only: the consumer busy-spins this many ns per event
    /// (after the handler), to make a known regression. Never in real runs.
    #[arg(long, default_value_t = 0, value_parser = whole_u64)]
    pub spin_ns: u64,
    /// Backends `--spin-ns` applies to, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "spin_ns")]
    pub spin_backends: Option<Vec<String>>,
}

/// `--scenario`: the named workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedScenario {
    /// W writers, each writing its own eventfd once per round.
    UserpollSeries,
    /// Registrations deleted and added again every round.
    Churn,
}

impl NamedScenario {
    /// The scenario named `s`.
    pub fn parse(s: &str) -> Result<NamedScenario, String> {
        match s {
            "userpoll-series" => Ok(NamedScenario::UserpollSeries),
            "churn" => Ok(NamedScenario::Churn),
            _ => Err(format!(
                "unknown scenario {s:?}; use userpoll-series or churn"
            )),
        }
    }

    /// The name on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            NamedScenario::UserpollSeries => "userpoll-series",
            NamedScenario::Churn => "churn",
        }
    }
}

/// A whole number; one too large for `u64` reads as `u64::MAX`, so the
/// option's range check names the range instead of a parse error.
pub fn whole_u64(s: &str) -> Result<u64, String> {
    let s = s.trim().replace('_', "");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a whole number (write e.g. 1000)"));
    }
    Ok(s.parse().unwrap_or(u64::MAX))
}

/// [`whole_u64`] as a `usize` (saturating).
pub fn whole_usize(s: &str) -> Result<usize, String> {
    whole_u64(s).map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

/// Longest `--duration`, in seconds (a day).
pub const MAX_DURATION_S: f64 = 86_400.0;

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
    if !(secs > 0.0 && secs <= MAX_DURATION_S) {
        return Err(format!(
            "--duration {s}: use more than 0s and at most {MAX_DURATION_S}s (a day)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
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
