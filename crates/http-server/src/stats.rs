//! What the server counts about itself, and the per-run report it prints
//! (one JSON line) on SIGUSR1 and when it stops.

use std::io::{self, Write};
use std::os::fd::BorrowedFd;

use serde::Serialize;
use userpoll::Stats;

/// The server's own counts; the backend counts its own system calls.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    /// Requests answered (every status).
    pub requests: u64,
    /// 200 answers.
    pub ok: u64,
    /// 404 answers.
    pub not_found: u64,
    /// 400 answers (malformed requests).
    pub bad_request: u64,
    /// 405 answers.
    pub method_not_allowed: u64,
    /// 431 answers (headers over the limit).
    pub headers_too_large: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed, for any reason.
    pub closed: u64,
    /// Of those, closed by the idle timeout.
    pub idle_closed: u64,
    /// Of those, reset or broken by the peer (ECONNRESET, EPIPE).
    pub peer_errors: u64,
    /// `accept4` calls, the one that found nothing included.
    pub accept_calls: u64,
    /// `recv` calls.
    pub recv_calls: u64,
    /// `send` calls.
    pub send_calls: u64,
    /// `close` calls.
    pub close_calls: u64,
    /// `modify` calls: switching a connection between read and write
    /// interest (`uring-recv`: re-arming a recv cancelled while the output
    /// was over its limit, the same switch back).
    pub modify_calls: u64,
    /// `uring-recv` only: multishot recvs the kernel ended with ENOBUFS
    /// (the provided buffer ring was empty), each re-armed.
    pub recv_no_buffers: u64,
    /// Times accepting paused because fds ran out (EMFILE, ENFILE) or the
    /// poller was full.
    pub accept_paused: u64,
}

impl Counts {
    /// System calls the server made itself (not the backend's).
    pub fn syscalls(&self) -> u64 {
        self.accept_calls + self.recv_calls + self.send_calls + self.close_calls
    }
}

/// The report: the server's counts, the backend's counters and the
/// process's CPU time, with per-request figures.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The backend id.
    pub backend: String,
    /// The server's own counts.
    pub counts: Counts,
    /// Open connections now.
    pub open_connections: usize,
    /// CPU time of the whole server process so far, nanoseconds.
    pub cpu_ns: u64,
    /// The backend's system calls (every kind).
    pub backend_syscalls: u64,
    /// The backend's re-arms (every cause).
    pub backend_rearms: u64,
    /// System calls so far: the backend's plus the server's own.
    pub syscalls: u64,
    /// Re-arms so far: the backend's plus the server's `modify` calls.
    pub rearms: u64,
    /// Every backend counter by name.
    pub backend_counters: std::collections::BTreeMap<&'static str, u64>,
    /// System calls per request: the backend's plus the server's own.
    pub syscalls_per_request: f64,
    /// Backend re-arms plus `modify` calls per request.
    pub rearms_per_request: f64,
    /// CPU nanoseconds per request.
    pub cpu_ns_per_request: f64,
}

impl Report {
    /// A report from the counts, the backend's stats and the CPU time.
    pub fn new(
        backend: String,
        counts: Counts,
        open_connections: usize,
        stats: Stats,
        cpu: std::time::Duration,
    ) -> Report {
        let per = |x: f64| {
            if counts.requests == 0 {
                0.0
            } else {
                x / counts.requests as f64
            }
        };
        let cpu_ns = cpu.as_nanos() as u64;
        let syscalls = stats.syscalls() + counts.syscalls();
        let rearms = stats.rearms() + counts.modify_calls;
        Report {
            backend,
            counts,
            open_connections,
            cpu_ns,
            backend_syscalls: stats.syscalls(),
            backend_rearms: stats.rearms(),
            backend_counters: stats.iter().map(|(c, v)| (c.name(), v)).collect(),
            syscalls,
            rearms,
            syscalls_per_request: per(syscalls as f64),
            rearms_per_request: per(rearms as f64),
            cpu_ns_per_request: per(cpu_ns as f64),
        }
    }
}

/// Reads every signal pending on the server's signalfd: a SIGUSR1 prints
/// `report()` as one JSON line on `out`; any other (SIGINT, SIGTERM) asks
/// the server to stop, and `true` is returned. Both event loops answer
/// signals so.
pub(crate) fn answer_signals(
    fd: BorrowedFd<'_>,
    out: &mut dyn Write,
    report: impl Fn() -> Report,
) -> io::Result<bool> {
    let mut stop = false;
    while let Some(sig) = crate::sys::read_signal(fd)? {
        match sig {
            libc::SIGUSR1 => {
                writeln!(out, "{}", serde_json::to_string(&report())?)?;
                out.flush()?;
            }
            _ => stop = true,
        }
    }
    Ok(stop)
}
