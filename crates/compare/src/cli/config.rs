//! From arguments to a [`SuiteConfig`]: the defaults, every check on the
//! values and their combinations (each failure a message saying what to
//! change), and which backends run.

use std::time::Duration;

use super::{NamedScenario, RunArgs};
use crate::backends::{self, BackendId, Delivery};
use crate::fds::FdKind;
use crate::harness::{Handler, Workload};
use crate::suite::SuiteConfig;

/// Measured rounds of a default run.
pub const DEFAULT_ROUNDS: u64 = crate::harness::DEFAULT_ROUNDS;
/// Writers of the userpoll-series scenario unless `--writers` says otherwise.
pub const SERIES_WRITERS: usize = 4;
/// Measured rounds of the userpoll-series scenario (each fires every fd).
pub const SERIES_ROUNDS: u64 = 20_000;

/// Largest `--fds`: tokens are `u32`, and the churn pool adds as many again.
pub const MAX_FDS: usize = u32::MAX as usize / 2;
/// Largest `--writers`.
pub const MAX_WRITERS: usize = 256;
/// Largest `--consumers`.
pub const MAX_CONSUMERS: usize = 64;
/// Largest `--rounds`.
pub const MAX_ROUNDS: u64 = 1_000_000_000;
/// Largest `--reps`.
pub const MAX_REPS: usize = 1_000;
/// Largest `--rate`, fires per second.
pub const MAX_RATE: f64 = 1e9;
/// Largest `--spin-ns` (10 ms of busy work per event).
pub const MAX_SPIN_NS: u64 = 10_000_000;

/// `Ok` when `lo <= v <= hi`; otherwise a message naming the option, the
/// value and the range.
fn in_range(option: &str, v: u64, lo: u64, hi: u64, what: &str) -> Result<(), String> {
    if (lo..=hi).contains(&v) {
        return Ok(());
    }
    if v == u64::MAX {
        return Err(format!(
            "{option}: the value is too large; use {lo} to {hi} {what}"
        ));
    }
    Err(format!("{option} {v}: use {lo} to {hi} {what}"))
}

/// The suite `args` ask for, or a message saying what to change. Notes
/// (backends skipped from the default list) go to `notes`.
pub fn config_from(args: &RunArgs, notes: &mut Vec<String>) -> Result<SuiteConfig, String> {
    let series = args.scenario == Some(NamedScenario::UserpollSeries);
    let churn_scenario = args.scenario == Some(NamedScenario::Churn);
    let handler = args.handler;
    let fd_kind = args.fd_kind.unwrap_or(FdKind::Eventfd);
    let writers = args
        .writers
        .unwrap_or(if series { SERIES_WRITERS } else { 1 });
    in_range(
        "--writers",
        writers as u64,
        1,
        MAX_WRITERS as u64,
        "writer threads",
    )?;
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
    in_range("--fds", fds as u64, 1, MAX_FDS as u64, "fds")?;
    if active == 0 || active > fds {
        return Err(format!(
            "--active {active}: fds fired per round must be between 1 and --fds ({fds})"
        ));
    }
    if let Some(r) = args.rounds {
        in_range("--rounds", r, 1, MAX_ROUNDS, "measured rounds")?;
    }
    in_range(
        "--reps",
        args.reps as u64,
        1,
        MAX_REPS as u64,
        "repetitions",
    )?;
    if let Some(r) = args.rate {
        if !(r > 0.0 && r <= MAX_RATE) {
            return Err(format!(
                "--rate {r}: fires per second must be more than 0 and at most {MAX_RATE}"
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
    if churn_scenario {
        in_range(
            "--churn",
            churn as u64,
            1,
            fds as u64,
            "registrations changed per round (at most --fds)",
        )?;
    }
    in_range(
        "--consumers",
        args.consumers as u64,
        1,
        MAX_CONSUMERS as u64,
        "consuming threads",
    )?;
    in_range(
        "--spin-ns",
        args.spin_ns,
        0,
        MAX_SPIN_NS,
        "ns of busy work per event",
    )?;

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
        if handler == Handler::None && info.delivers_data {
            // The kernel reads with every event: there is no
            // notification-only cost to measure, and a run would report
            // the read's cost under the label of one without.
            if explicit {
                return Err(format!(
                    "--handler none measures notification alone, and {id} reads the data in \
                     the kernel with every event: it cannot notify without reading. Drop {id} \
                     from --backends or use --handler read"
                ));
            }
            notes.push(format!(
                "skipping {id} with --handler none: it reads the data with every event"
            ));
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
        scenario: args.scenario.map(|s| s.name().to_string()),
        progress: true,
        spin_backends,
    })
}
