//! The command line: `compare run [options]`, `compare backends` and
//! `compare gate`. [`config_from`] turns arguments into a
//! [`SuiteConfig`](crate::suite::SuiteConfig) (or a message saying what to
//! change); [`main`] runs it and prints.
//!
//! `args` holds what clap parses, `config` turns it into a suite; this
//! file runs the subcommands.

mod args;
mod config;

pub use args::{parse_duration, Cli, Cmd, GateArgs, HttpArgs, NamedScenario, RunArgs, ServeArgs};
pub use config::{config_from, DEFAULT_ROUNDS, SERIES_ROUNDS, SERIES_WRITERS};

use clap::Parser;

use crate::backends::{self, Delivery};
use crate::report;
use crate::suite;

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
        Cmd::Http(args) => http(&args),
        Cmd::Serve(args) => serve(&args),
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

fn http(args: &HttpArgs) -> i32 {
    use crate::http::{HttpConfig, Shape, NGINX};
    let backends = args.backends.clone().unwrap_or_else(|| {
        let mut all: Vec<String> = http_server::ServerBackend::all()
            .filter(|b| b.is_supported())
            .map(|b| b.to_string())
            .collect();
        all.push(NGINX.into());
        all
    });
    for b in &backends {
        if b != NGINX {
            if let Err(e) = b.parse::<http_server::ServerBackend>() {
                eprintln!("error: --backends: {e}, or nginx");
                return 2;
            }
        }
    }
    let mut shapes: Vec<Shape> = args
        .connections
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| Shape::KeepAlive(c as usize))
        .collect();
    if args.new_connection > 0 {
        shapes.push(Shape::NewConnection(args.new_connection as usize));
    }
    if shapes.is_empty() {
        eprintln!("error: nothing to run: --connections and --new-connection are both 0");
        return 2;
    }
    if args.duration < std::time::Duration::from_secs(1) {
        eprintln!(
            "error: --duration {:?}: wrk runs whole seconds; use 1s or more",
            args.duration
        );
        return 2;
    }
    crate::http::main(&HttpConfig {
        backends,
        shapes,
        duration: args.duration,
        requests: args.requests,
        reps: args.reps as usize,
        body: args.body as usize,
        out: args.out.clone(),
        json: args.json.clone(),
    })
}

fn serve(args: &ServeArgs) -> i32 {
    let opts = http_server::ServeOptions {
        backend: args.backend,
        listen: args.listen,
        backlog: 65_535,
        config: http_server::Config {
            body_len: args.body,
            max_connections: args.max_connections,
            ..http_server::Config::default()
        },
    };
    match http_server::serve(&opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("compare __serve: {e}");
            1
        }
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
    // A path that cannot be written fails now, not after the whole run.
    if let Err(msg) = report::prepare_outputs(&args.out, args.json.as_deref()) {
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
