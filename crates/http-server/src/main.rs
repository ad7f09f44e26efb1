//! `userpoll-http`: serve HTTP on a userpoll backend chosen at run time, or
//! on the io_uring completion loop (`--backend uring-recv`).
//!
//! ```sh
//! cargo run --release -p http-server -- --backend uring-poll:defer --listen 127.0.0.1:8080
//! wrk -t1 -c200 -d10s http://127.0.0.1:8080/ind
//! kill -USR1 <pid>   # one JSON report line on stdout; SIGTERM: report and stop
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use http_server::{Config, ServerBackend};

/// A one-thread HTTP/1.1 server on any userpoll backend.
#[derive(Debug, Parser)]
#[command(name = "userpoll-http", version)]
struct Args {
    /// The backend, by its compare id: a readiness backend (reference,
    /// epoll-ring, epoll-ring:inline, uring-poll, uring-poll:coop,
    /// uring-poll:defer, uring-poll:defer+batch, uring-poll:sqpoll,
    /// uring-poll:rearm, uring-poll:rearm+defer) or the io_uring
    /// completion loop
    /// (uring-recv, uring-recv:direct-send).
    #[arg(long, default_value = "uring-poll:defer")]
    backend: ServerBackend,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The path that answers 200 (others: 404).
    #[arg(long, default_value = "/ind")]
    path: String,
    /// Bytes of the 200 body (libevent's bench_http serves 0 by default).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=(1 << 24)))]
    body: u32,
    /// Most open connections (the process fd limit bounds it too).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Close a connection with no progress for this many milliseconds.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_ms: u64,
    /// uring-recv: provided buffers, a power of two (0: sized to
    /// --max-connections, 64 bytes of pool each).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=32768))]
    recv_buffers: u32,
    /// uring-recv: bytes of each provided buffer.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=(1 << 20)))]
    recv_buffer_size: u32,
    /// uring-recv: CQ entries (0: four per connection, at least 8192).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=(1 << 20)))]
    cq_entries: u32,
    /// Listen backlog (the kernel caps it at net.core.somaxconn).
    #[arg(long, default_value_t = 65_535, value_parser = clap::value_parser!(i32).range(1..))]
    backlog: i32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("userpoll-http: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &Args) -> std::io::Result<()> {
    http_server::serve(&http_server::ServeOptions {
        backend: args.backend,
        listen: args.listen,
        backlog: args.backlog,
        config: Config {
            path: args.path.clone(),
            body_len: args.body as usize,
            max_connections: args.max_connections as usize,
            idle_timeout: Duration::from_millis(args.idle_timeout_ms),
            recv_buffers: args.recv_buffers as usize,
            recv_buffer_size: args.recv_buffer_size,
            cq_entries: args.cq_entries,
        },
    })
}
