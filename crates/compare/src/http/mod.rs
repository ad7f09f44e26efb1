//! `compare http`: the real-server scenario. For each backend (the
//! readiness backends, the io_uring completion loop `uring-recv`, and nginx
//! as a yardstick), `userpoll-http` runs as its own process and real
//! clients drive it: `wrk` keep-alive load at several connection counts,
//! and the EPOLL_USERPOLL series' shape (a new connection per request).
//! Backends are interleaved within each repetition, in an order that
//! rotates, and ratios are taken per repetition against `reference`
//! (kernel epoll, edge-triggered, through the contract), as `compare run`
//! does.
//!
//! Files: [`server`] (the server process and its snapshots), [`client`]
//! (`wrk` and the new-connection client), [`netstat`] (listen drops),
//! [`plot`] (`http.svg`). The results folder gets `http.json` (one sample
//! per run), `http.svg`, and per server a `.hgrm` of the new-connection
//! client's latency over every repetition.

use std::collections::BTreeMap;
use std::io;

use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::statistics::median_spread;
use crate::table::{Align, Table};

pub mod client;
pub mod netstat;
pub mod plot;
pub mod server;

use client::ClientRun;
use netstat::ListenDrops;
use server::Server;

/// The id of the yardstick.
pub const NGINX: &str = "nginx";
/// Ratios are taken against this backend.
pub const REFERENCE: &str = "reference";

/// One client shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// `wrk`, this many keep-alive connections.
    KeepAlive(usize),
    /// A new connection per request, this many in flight.
    NewConnection(usize),
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::KeepAlive(c) => write!(f, "wrk keep-alive, {c} connections"),
            Shape::NewConnection(p) => write!(f, "new connection per request, {p} in flight"),
        }
    }
}

/// What `compare http` runs.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Backend ids, and `nginx`.
    pub backends: Vec<String>,
    /// Client shapes.
    pub shapes: Vec<Shape>,
    /// How long each `wrk` run lasts.
    pub duration: Duration,
    /// Requests per new-connection run.
    pub requests: u64,
    /// Interleaved repetitions.
    pub reps: usize,
    /// Body bytes of the 200 answer.
    pub body: usize,
    /// Results folder.
    pub out: PathBuf,
    /// Also write the JSON here.
    pub json: Option<PathBuf>,
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Repetition.
    pub rep: usize,
    /// Client shape.
    pub shape: Shape,
    /// Backend id or `nginx`.
    pub backend: String,
    /// Requests answered with 2xx, as the client counted.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// Wall time, ns.
    pub elapsed_ns: u64,
    /// Client latency percentiles, ns.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Socket errors and non-2xx answers.
    pub errors: u64,
    /// Server CPU (every thread of its process) during the run, ns.
    pub server_cpu_ns: u64,
    /// Server CPU per request, ns.
    pub server_cpu_ns_per_request: f64,
    /// Server CPU as a share of one vCPU.
    pub server_cpu_share: f64,
    /// Client CPU as a share of one vCPU.
    pub client_cpu_share: f64,
    /// System calls per request (backend plus server); `None` for nginx.
    pub syscalls_per_request: Option<f64>,
    /// Re-arms plus `modify` calls per request; `None` for nginx.
    pub rearms_per_request: Option<f64>,
    /// Listen-queue drops during the run.
    pub listen_drops: u64,
}

/// Runs every backend with every shape, interleaved; prints the summary,
/// writes the JSON. Exit code: 0, 1 when a run failed, 2 on bad input.
pub fn main(cfg: &HttpConfig) -> i32 {
    if let Err(msg) = crate::report::prepare_outputs(&cfg.out, cfg.json.as_deref()) {
        eprintln!("error: {msg}");
        return 2;
    }
    if cfg.shapes.iter().any(|s| matches!(s, Shape::KeepAlive(_))) && !client::wrk_available() {
        eprintln!("error: wrk is not installed (apt-get install -y wrk); or pass --connections 0");
        return 2;
    }
    let _ = crate::sys::raise_nofile_limit();
    let max_conns = cfg
        .shapes
        .iter()
        .map(|s| match *s {
            Shape::KeepAlive(c) | Shape::NewConnection(c) => c,
        })
        .max()
        .unwrap_or(1)
        + 64;
    let mut samples = Vec::new();
    let mut latency: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();
    let mut failed = 0;
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    for rep in 0..cfg.reps {
        for &shape in &cfg.shapes {
            let n = cfg.backends.len();
            for i in 0..n {
                let backend = &cfg.backends[(i + rep) % n];
                if skipped.contains_key(backend) {
                    continue;
                }
                if progress {
                    eprint!("\rrep {}/{} {shape}: {backend:<24}", rep + 1, cfg.reps);
                }
                match one(cfg, rep, shape, backend, max_conns) {
                    Ok(Ok((s, hist))) => {
                        samples.push(s);
                        if let Some(h) = hist {
                            match latency.get_mut(backend) {
                                Some(all) => {
                                    let _ = all.add(&h);
                                }
                                None => {
                                    latency.insert(backend.clone(), h);
                                }
                            }
                        }
                    }
                    Ok(Err(why)) => {
                        eprintln!("\nskipped {backend}: {why}");
                        skipped.insert(backend.clone(), why);
                    }
                    Err(e) => {
                        eprintln!("\n*** FAILED: {backend} rep {rep} {shape}: {e} ***");
                        failed += 1;
                    }
                }
            }
        }
    }
    if progress {
        eprintln!();
    }
    print!("{}", summary_text(cfg, &samples, &skipped));
    let doc = json!({
        "kernel": kernel(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "date": crate::sys::utc_text(crate::sys::unix_now()),
        "settings": {
            "backends": cfg.backends,
            "shapes": cfg.shapes,
            "duration_s": cfg.duration.as_secs_f64(),
            "requests": cfg.requests,
            "reps": cfg.reps,
            "body": cfg.body,
        },
        "skipped": skipped,
        "samples": samples,
    });
    let text = serde_json::to_string_pretty(&doc).expect("JSON of plain values");
    let mut code = if failed > 0 { 1 } else { 0 };
    for path in std::iter::once(cfg.out.join("http.json")).chain(cfg.json.clone()) {
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("error: {}: {e}", path.display());
            code = 1;
        }
    }
    for (backend, h) in &latency {
        let path = cfg.out.join(format!(
            "{}-new-connection.hgrm",
            crate::report::file_stem(backend)
        ));
        if let Err(e) = std::fs::write(&path, crate::hgrm::percentile_distribution(h, 1000.0)) {
            eprintln!("error: {}: {e}", path.display());
            code = 1;
        }
    }
    let subtitle = format!(
        "kernel {}, {} cores, {} reps, wrk {}s runs, new connection: {} requests, body {} B, {}",
        kernel(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cfg.reps,
        cfg.duration.as_secs(),
        cfg.requests,
        cfg.body,
        crate::sys::utc_text(crate::sys::unix_now())
    );
    if !samples.is_empty() {
        if let Err(e) = plot::draw(cfg, &samples, &subtitle, &cfg.out.join("http.svg")) {
            eprintln!("error: http.svg: {e}");
            code = 1;
        }
    }
    println!(
        "results: {}/ (http.json, http.svg, one .hgrm per server for the new-connection client)",
        cfg.out.display()
    );
    code
}

/// A run's sample and, for the new-connection client, its latency.
type Measured = (Sample, Option<Histogram<u64>>);

/// One run: start the server, measure one client shape, stop it.
/// `Ok(Err(why))` when the backend cannot run here.
fn one(
    cfg: &HttpConfig,
    rep: usize,
    shape: Shape,
    backend: &str,
    max_conns: usize,
) -> io::Result<Result<Measured, String>> {
    let mut server = if backend == NGINX {
        match Server::nginx(cfg.body, max_conns)? {
            Ok(s) => s,
            Err(why) => return Ok(Err(why)),
        }
    } else {
        let parsed: Result<http_server::ServerBackend, _> = backend.parse();
        match parsed {
            Ok(b) if !b.is_supported() => {
                return Ok(Err("this kernel lacks its io_uring setup".into()))
            }
            Ok(_) => Server::ours(backend, cfg.body, max_conns)?,
            Err(e) => return Ok(Err(e.to_string())),
        }
    };
    let drops0 = ListenDrops::now();
    let s0 = server.snapshot()?;
    let run: ClientRun = match shape {
        Shape::KeepAlive(c) => client::wrk(server.addr, c, cfg.duration)?,
        Shape::NewConnection(p) => {
            client::new_connection_per_request(server.addr, p, cfg.requests)?
        }
    };
    let s1 = server.snapshot()?;
    let drops = ListenDrops::now().since(drops0);
    server.stop()?;
    let cpu = s1.cpu_ns.saturating_sub(s0.cpu_ns);
    // Our server counts what it answered; nginx does not tell.
    let served = match (s0.requests, s1.requests) {
        (Some(a), Some(b)) => b - a,
        _ => run.requests,
    }
    .max(1) as f64;
    let per = |a: Option<u64>, b: Option<u64>| Some((b? - a?) as f64 / served);
    let secs = run.elapsed.as_secs_f64().max(1e-9);
    let sample = Sample {
        rep,
        shape,
        backend: backend.to_string(),
        requests: run.requests,
        rps: run.rps(),
        elapsed_ns: run.elapsed.as_nanos() as u64,
        p50_ns: run.p50_ns,
        p90_ns: run.p90_ns,
        p99_ns: run.p99_ns,
        errors: run.errors,
        server_cpu_ns: cpu,
        server_cpu_ns_per_request: cpu as f64 / served,
        server_cpu_share: cpu as f64 / 1e9 / secs,
        client_cpu_share: run.client_cpu_ns as f64 / 1e9 / secs,
        syscalls_per_request: per(s0.syscalls, s1.syscalls),
        rearms_per_request: per(s0.rearms, s1.rearms),
        listen_drops: drops.drops,
    };
    Ok(Ok((sample, run.latency)))
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Median with its spread, as `compare run` prints them (`± ?` for one).
fn med(xs: Vec<f64>, fmt: impl Fn(f64) -> String) -> String {
    let n = xs.len();
    match median_spread(xs) {
        None => "-".into(),
        Some((m, _)) if n == 1 => format!("{} ± ?", fmt(m)),
        Some((m, s)) => format!("{} ±{:.0}%", fmt(m), s * 100.0),
    }
}

/// Median of per-repetition ratios of `f` against the reference.
fn ratio(samples: &[&Sample], all: &[Sample], f: impl Fn(&Sample) -> f64) -> String {
    let ratios: Vec<f64> = samples
        .iter()
        .filter_map(|s| {
            let r = all
                .iter()
                .find(|r| r.backend == REFERENCE && r.rep == s.rep && r.shape == s.shape)?;
            let d = f(r);
            (d > 0.0).then(|| f(s) / d)
        })
        .collect();
    med(ratios, |x| format!("{x:.2}x"))
}

/// The summary: one table per client shape.
pub fn summary_text(
    cfg: &HttpConfig,
    samples: &[Sample],
    skipped: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    for &shape in &cfg.shapes {
        out.push_str(&format!(
            "\n{shape} (medians of {} reps; ratios per rep against {REFERENCE})\n",
            cfg.reps
        ));
        let mut t = Table::new(&[
            ("backend", Align::Left),
            ("req/s", Align::Right),
            ("x ref", Align::Right),
            ("srv us/req", Align::Right),
            ("x ref", Align::Right),
            ("syscalls/req", Align::Right),
            ("rearms/req", Align::Right),
            ("p50", Align::Right),
            ("p99", Align::Right),
            ("srv cpu", Align::Right),
            ("client cpu", Align::Right),
            ("drops", Align::Right),
            ("errors", Align::Right),
        ]);
        for b in &cfg.backends {
            let mine: Vec<&Sample> = samples
                .iter()
                .filter(|s| &s.backend == b && s.shape == shape)
                .collect();
            if mine.is_empty() {
                if let Some(why) = skipped.get(b) {
                    t.row_with_text(b.clone(), format!("skipped: {why}"));
                }
                continue;
            }
            let col = |f: &dyn Fn(&Sample) -> f64| mine.iter().map(|s| f(s)).collect::<Vec<_>>();
            let opt = |f: &dyn Fn(&Sample) -> Option<f64>| -> String {
                let v: Vec<f64> = mine.iter().filter_map(|s| f(s)).collect();
                if v.is_empty() {
                    "n/a".into()
                } else {
                    med(v, |x| format!("{x:.2}"))
                }
            };
            t.row(vec![
                b.clone(),
                med(col(&|s| s.rps), |x| format!("{x:.0}")),
                ratio(&mine, samples, |s| s.rps),
                med(col(&|s| s.server_cpu_ns_per_request / 1e3), |x| {
                    format!("{x:.2}")
                }),
                ratio(&mine, samples, |s| s.server_cpu_ns_per_request),
                opt(&|s| s.syscalls_per_request),
                opt(&|s| s.rearms_per_request),
                med(col(&|s| s.p50_ns as f64 / 1e3), |x| format!("{x:.0}us")),
                med(col(&|s| s.p99_ns as f64 / 1e3), |x| format!("{x:.0}us")),
                med(col(&|s| s.server_cpu_share * 100.0), |x| format!("{x:.0}%")),
                med(col(&|s| s.client_cpu_share * 100.0), |x| format!("{x:.0}%")),
                mine.iter().map(|s| s.listen_drops).sum::<u64>().to_string(),
                mine.iter().map(|s| s.errors).sum::<u64>().to_string(),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}
