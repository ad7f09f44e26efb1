//! A suite: several backends, several repetitions, interleaved (A B C A B
//! C ...) over one set of fds, with the environment they ran in. This is
//! the library entry point the CLI and the CI gate call: [`run_suite`].
//!
//! ```
//! use compare::backends::BackendId;
//! use compare::fds::FdKind;
//! use compare::harness::Workload;
//! use compare::suite::{run_suite, SuiteConfig};
//! use compare::summary;
//!
//! let cfg = SuiteConfig {
//!     backends: vec![BackendId::Floor, BackendId::EpollEt],
//!     workload: Workload { fds: 64, active: 8, rounds: 4, warmup_rounds: 1, ..Workload::default() },
//!     fd_kind: FdKind::Eventfd,
//!     reps: 2,
//!     scenario: None,
//!     progress: false,
//!     spin_backends: vec![],
//! };
//! let results = run_suite(&cfg, |_| {}).unwrap();
//! assert_eq!(results.failed().count(), 0);
//! let sums = summary::summarize(&results);
//! let et = sums.iter().find(|s| s.id == BackendId::EpollEt);
//! let floor = sums.iter().find(|s| s.id == BackendId::Floor);
//! assert!(summary::ratio(et, floor).unwrap() > 0.0);
//! ```

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::backends::{self, BackendId};
use crate::fds::{FdKind, FdSet};
use crate::harness::{self, Outcome, Workload};
use crate::sys;

/// Fds the process needs besides the sources: stdio, backends' own fds
/// (epoll fds, rings, notifiers), output files.
pub const FD_OVERHEAD: u64 = 64;

/// Everything a suite runs.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// Backends, in the order each repetition runs them.
    pub backends: Vec<BackendId>,
    /// The workload every run uses.
    pub workload: Workload,
    /// The kind of fds.
    pub fd_kind: FdKind,
    /// Repetitions of every backend.
    pub reps: usize,
    /// The named scenario, if any (`userpoll-series`, `churn`).
    pub scenario: Option<String>,
    /// Show a progress bar on stderr (only drawn when it is a terminal).
    pub progress: bool,
    /// Backends the workload's `spin_ns` applies to (empty: all of them).
    pub spin_backends: Vec<BackendId>,
}

impl SuiteConfig {
    /// The workload backend `id` runs: the suite's, without the injected
    /// spin unless `id` is one of `spin_backends`.
    pub fn workload_for(&self, id: BackendId) -> Workload {
        let mut w = self.workload.clone();
        if !self.spin_backends.is_empty() && !self.spin_backends.contains(&id) {
            w.spin_ns = 0;
        }
        w
    }
}

/// One run of one backend.
#[derive(Debug)]
pub struct RunResult {
    /// The backend.
    pub backend: BackendId,
    /// Repetition, from 0.
    pub rep: usize,
    /// What it measured.
    pub outcome: Outcome,
}

/// The machine and build a suite ran on.
#[derive(Debug, Clone)]
pub struct Env {
    /// `uname -r` and `uname -v`.
    pub kernel: String,
    /// CPU model name.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// `RLIMIT_NOFILE` (soft, hard) after raising the soft limit.
    pub rlimit_nofile: (u64, u64),
    /// Crate name to version.
    pub crates: BTreeMap<String, String>,
    /// Backend id to ring setup, for backends with an io_uring.
    pub ring_setup: BTreeMap<String, String>,
    /// When the suite started, `YYYY-MM-DD HH:MM UTC` (for the plots).
    pub date: String,
}

/// What a suite produced.
#[derive(Debug)]
pub struct Results {
    /// What ran.
    pub config: SuiteConfig,
    /// Where.
    pub env: Env,
    /// Every run, in the order they ran.
    pub runs: Vec<RunResult>,
    /// System calls made opening, draining and closing the fds.
    pub fd_syscalls: u64,
}

impl Results {
    /// Runs that failed (wrong event count or an error).
    pub fn failed(&self) -> impl Iterator<Item = &RunResult> {
        self.runs.iter().filter(|r| r.outcome.failed())
    }

    /// Every system call `compare` counted for this suite: the runs' (all
    /// phases, writers included) plus opening, draining and closing fds.
    pub fn total_syscalls(&self) -> u64 {
        self.fd_syscalls
            + self
                .runs
                .iter()
                .map(|r| r.outcome.total_syscalls)
                .sum::<u64>()
    }
}

/// Raises the soft fd limit to the hard one, then checks that the suite's
/// fds fit; the error names the limit and the largest `--fds` that fits.
pub fn check_fd_budget(cfg: &SuiteConfig) -> Result<(), String> {
    let limit = sys::raise_nofile_limit().map_err(|e| format!("cannot read RLIMIT_NOFILE: {e}"))?;
    let per = cfg.fd_kind.fds_per_source();
    let fixed = cfg.fd_kind.fixed_fds() + FD_OVERHEAD + sys::open_fds().unwrap_or(3);
    let w = &cfg.workload;
    let need = w.sources() as u64 * per + fixed;
    if need > limit {
        let fit = (limit.saturating_sub(fixed) / per).saturating_sub(2 * w.churn as u64);
        return Err(format!(
            "--fds {} with --fd-kind {} needs about {need} open files, more than RLIMIT_NOFILE \
             allows ({limit}, the hard limit; the soft limit is raised to it automatically). The \
             largest --fds that fits is {fit}; use that, or raise the hard limit (ulimit -Hn, \
             /etc/security/limits.conf) first.",
            w.fds,
            cfg.fd_kind.name()
        ));
    }
    Ok(())
}

/// The environment of this process.
pub fn env(cfg: &SuiteConfig) -> Env {
    let kernel = {
        let u = rustix::system::uname();
        format!(
            "{} {} {}",
            u.sysname().to_string_lossy(),
            u.release().to_string_lossy(),
            u.version().to_string_lossy()
        )
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut crates: BTreeMap<String, String> = env!("COMPARE_DEP_VERSIONS")
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    crates.insert("compare".into(), env!("CARGO_PKG_VERSION").into());
    let ring_setup = cfg
        .backends
        .iter()
        .filter_map(|&b| {
            backends::ring_setup(b, cfg.workload.sources()).map(|s| (b.to_string(), s))
        })
        .collect();
    Env {
        kernel,
        cpu,
        cores,
        rlimit_nofile: sys::nofile_limit().unwrap_or((0, 0)),
        crates,
        ring_setup,
        date: sys::utc_text(sys::unix_now()),
    }
}

/// Runs every backend `reps` times, interleaved, over one set of fds.
/// `on_run` sees each run as it finishes (the CLI prints failures loudly
/// there). Fails before any run when the fds do not fit or cannot be opened.
pub fn run_suite(cfg: &SuiteConfig, mut on_run: impl FnMut(&RunResult)) -> io::Result<Results> {
    check_fd_budget(cfg).map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
    let env = env(cfg);
    let fds = FdSet::open(cfg.fd_kind, cfg.workload.sources())?;
    let mut fd_syscalls = fds.setup_syscalls();
    let total = (cfg.reps * cfg.backends.len()) as u64;
    let w = &cfg.workload;
    // The bar counts rounds when the runs have a known number of them
    // (closed loop, --rounds), so it moves within a run; otherwise runs.
    let per_run = if w.rate.is_none() && w.duration.is_none() {
        w.warmup_rounds + w.rounds
    } else {
        1
    };
    let shown = cfg.progress && io::stderr().is_terminal() && total > 1;
    let bar = if shown {
        let b = indicatif::ProgressBar::new(total * per_run);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {percent:>3}% {msg} [{elapsed} elapsed, ETA {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Rounds done over the whole suite; the harness adds to it after each
    // round and a ticker thread (only when the bar is shown) moves the bar.
    let rounds_done = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    let mut runs = Vec::with_capacity(total as usize);
    std::thread::scope(|s| {
        if shown && per_run > 1 {
            let (bar, done, finished) = (&bar, &rounds_done, &finished);
            s.spawn(move || {
                while !finished.load(Ordering::Relaxed) {
                    bar.set_position(done.load(Ordering::Relaxed));
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            });
        }
        // A run must start with nothing ready: after a run that left data
        // in the fds (handler none, a failure), drain them all.
        let mut dirty = false;
        let mut n = 0;
        for rep in 0..cfg.reps {
            for &id in &cfg.backends {
                if dirty {
                    fd_syscalls += fds.drain_all();
                }
                n += 1;
                bar.set_message(format!("{id} rep {} (run {n} of {total})", rep + 1));
                let counter = (per_run > 1).then_some(&rounds_done);
                let outcome = harness::run_one_counting(id, &cfg.workload_for(id), &fds, counter);
                dirty = outcome.failed() || cfg.workload.handler == harness::Handler::None;
                let r = RunResult {
                    backend: id,
                    rep,
                    outcome,
                };
                bar.suspend(|| on_run(&r));
                // A run that stopped early still counts as all its rounds.
                rounds_done.store(n * per_run, Ordering::Relaxed);
                bar.set_position(n * per_run);
                runs.push(r);
            }
        }
        finished.store(true, Ordering::Relaxed);
    });
    bar.finish_and_clear();
    fd_syscalls += fds.close_syscalls();
    drop(fds);
    Ok(Results {
        config: cfg.clone(),
        env,
        runs,
        fd_syscalls,
    })
}
