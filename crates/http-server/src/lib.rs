//! `userpoll-http`: a one-thread HTTP/1.1 server whose event loop is
//! written once against the userpoll contract ([`Poller`], [`Control`]) and
//! runs on any backend, chosen at run time ([`anypoll::Backend`]).
//!
//! It is the example of how to use the library, and the real server that
//! `compare` measures (the EPOLL_USERPOLL series' one published number came
//! from an HTTP server, libevent's `bench_http`). What it does:
//! - one thread, non-blocking sockets; the listening socket is registered
//!   like any other fd, and each readiness event accepts until EAGAIN;
//! - edge delivery (S2): every event is read until EAGAIN; a registration
//!   is never re-armed after an event (S1);
//! - keep-alive (HTTP/1.1), close (HTTP/1.0, `Connection: close`),
//!   pipelined requests, parsed by `httparse`; `GET`/`HEAD` of one path
//!   gives a fixed body (by default empty, as `bench_http` serves), any
//!   other path 404, another method 405;
//! - bad input gets what a real server gives and costs one connection: a
//!   malformed request 400, request headers over 8 KiB 431, then close; a
//!   client that resets or disconnects mid-request or mid-response is
//!   closed; an idle connection is closed after `idle_timeout`;
//! - a send that returns EAGAIN switches the registration to writable
//!   (`modify`), and back to readable once written (S4 reports data that
//!   arrived meanwhile);
//! - SIGUSR1 prints a [`stats::Report`] (one JSON line on stdout);
//!   SIGINT/SIGTERM print it and stop, closing every connection.
//!
//! The same server also runs on a completion loop that is not a readiness
//! backend: `uring-recv` ([`uring::UringServer`]: multishot accept and
//! multishot recv into provided buffers on io_uring, so the kernel hands
//! over the data and no `recv` call follows it). [`ServerBackend`] names
//! either; both answer through [`request::answer`].

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anypoll::AnyPoller;
use slab::Slab;
use userpoll::{Control, Events, Interest, Poller};

pub mod backend;
mod conn;
pub mod request;
pub mod response;
pub mod stats;
pub mod sys;
pub mod uring;

pub use backend::{SendWith, ServerBackend};

use conn::{Conn, Next, Want};
use response::Responses;
use stats::{Counts, Report};

/// Event data of the listening socket.
const LISTENER: u64 = u64::MAX;
/// Event data of the signalfd.
const SIGNALS: u64 = u64::MAX - 1;
/// Events one take hands out at most.
const BATCH: usize = 1024;

/// What the server serves and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The one path that answers 200.
    pub path: String,
    /// Bytes of the 200 body.
    pub body_len: usize,
    /// Most open connections; accepting pauses at the limit.
    pub max_connections: usize,
    /// A connection with no progress for this long is closed.
    pub idle_timeout: Duration,
    /// `uring-recv` only: provided buffers (a power of two; 0: sized to
    /// `max_connections`, 64 bytes of pool each).
    pub recv_buffers: usize,
    /// `uring-recv` only: bytes of each provided buffer.
    pub recv_buffer_size: u32,
    /// `uring-recv` only: CQ entries (0: four per connection, at least
    /// 8,192; tests make it small to overflow it).
    pub cq_entries: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            path: "/ind".into(),
            body_len: 0,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
            recv_buffers: 0,
            recv_buffer_size: 4096,
            cq_entries: 0,
        }
    }
}

/// The server: a listening socket, the connections, and a poller.
#[derive(Debug)]
pub struct Server<P: Poller> {
    poller: P,
    listener: TcpListener,
    signals: Option<OwnedFd>,
    conns: Slab<Conn>,
    responses: Responses,
    config: Config,
    counts: Counts,
    /// Accepting paused (fds or connections ran out); retried after a
    /// close, since edge delivery will not report the waiting clients again.
    accept_paused: bool,
    name: String,
}

/// Builds the poller a server with `config` needs: room for every
/// connection plus the listener and the signalfd.
pub fn capacity(config: &Config) -> usize {
    config.max_connections + 2
}

impl<P: Poller> Server<P> {
    /// A server listening on `listener` (non-blocking), taking events from
    /// `poller`, stopped by the signals of `signals` if given (see
    /// [`sys::signalfd`]). `name` is the backend's id, for the report.
    pub fn new(
        poller: P,
        listener: TcpListener,
        signals: Option<OwnedFd>,
        config: Config,
        name: String,
    ) -> io::Result<Server<P>> {
        poller
            .control()
            .add(listener.as_fd(), Interest::READABLE, LISTENER)?;
        if let Some(s) = &signals {
            poller
                .control()
                .add(s.as_fd(), Interest::READABLE, SIGNALS)?;
        }
        Ok(Server {
            poller,
            listener,
            signals,
            conns: Slab::with_capacity(config.max_connections),
            responses: Responses::new(config.body_len),
            config,
            counts: Counts::default(),
            accept_paused: false,
            name,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The report as of now.
    pub fn report(&self) -> Report {
        Report::new(
            self.name.clone(),
            self.counts,
            self.conns.len(),
            self.poller.stats(),
            sys::process_cpu(),
        )
    }

    /// Serves until SIGINT/SIGTERM (or forever without a signalfd); prints
    /// a report to `out` on SIGUSR1 and at the end, and closes every
    /// connection before returning.
    pub fn run(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut events = Events::with_capacity(BATCH);
        let sweep_every = (self.config.idle_timeout / 4).max(Duration::from_millis(10));
        let mut next_sweep = Instant::now() + sweep_every;
        'serve: loop {
            let left = next_sweep.saturating_duration_since(Instant::now());
            self.poller.wait(&mut events, Some(left))?;
            for ev in &events {
                match ev.data() {
                    LISTENER => self.accept_all(),
                    SIGNALS => {
                        if self.on_signals(out)? {
                            break 'serve;
                        }
                    }
                    key => self.on_conn(key as usize),
                }
            }
            if Instant::now() >= next_sweep {
                self.close_idle();
                next_sweep = Instant::now() + sweep_every;
            }
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key);
        }
        writeln!(out, "{}", serde_json::to_string(&self.report())?)?;
        Ok(())
    }

    /// Reads the signalfd; true when the server must stop.
    fn on_signals(&mut self, out: &mut dyn Write) -> io::Result<bool> {
        let Some(fd) = &self.signals else {
            return Ok(false);
        };
        stats::answer_signals(fd.as_fd(), out, || self.report())
    }

    /// Accepts until EAGAIN, registering each connection for readable.
    fn accept_all(&mut self) {
        self.accept_paused = false;
        loop {
            if self.conns.len() >= self.config.max_connections {
                self.pause_accepting();
                return;
            }
            self.counts.accept_calls += 1;
            let fd = match sys::accept(self.listener.as_fd()) {
                Ok(fd) => fd,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => continue,
                    // Out of fds: the clients wait in the backlog until a
                    // connection closes.
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        self.pause_accepting();
                        return;
                    }
                    _ => {
                        eprintln!("userpoll-http: accept: {e}");
                        return;
                    }
                },
            };
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self
                .poller
                .control()
                .add(fd.as_fd(), Interest::READABLE, key as u64)
            {
                eprintln!("userpoll-http: registering a connection: {e}");
                self.counts.close_calls += 1;
                drop(fd);
                self.pause_accepting();
                return;
            }
            entry.insert(Conn::new(fd, Instant::now()));
            self.counts.accepted += 1;
        }
    }

    fn pause_accepting(&mut self) {
        if !self.accept_paused {
            self.accept_paused = true;
            self.counts.accept_paused += 1;
        }
    }

    /// Handles an event of connection `key`: reads, answers, writes, and
    /// changes or ends its registration as the connection asks.
    fn on_conn(&mut self, key: usize) {
        let path = self.config.path.as_bytes();
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                // Never for a closed connection: delete returned before
                // the slot could be reused (S5). Only a stale key of ours.
                return;
            };
            match conn.on_event(&self.responses, path, &mut self.counts) {
                Next::Keep => return,
                Next::Close => {
                    self.close(key);
                    return;
                }
                Next::Switch(want) => {
                    let interest = match want {
                        Want::Read => Interest::READABLE,
                        Want::Write => Interest::WRITABLE,
                    };
                    self.counts.modify_calls += 1;
                    if let Err(e) =
                        self.poller
                            .control()
                            .modify(conn.fd.as_fd(), interest, key as u64)
                    {
                        eprintln!("userpoll-http: modify: {e}");
                        self.close(key);
                        return;
                    }
                    conn.want = want;
                    if want == Want::Write {
                        return;
                    }
                    // Back to reading: answer what was read meanwhile.
                }
            }
        }
    }

    /// Deletes the registration, then closes the socket.
    fn close(&mut self, key: usize) {
        let conn = self.conns.remove(key);
        if let Err(e) = self.poller.control().delete(conn.fd.as_fd()) {
            eprintln!("userpoll-http: delete: {e}");
        }
        self.counts.close_calls += 1;
        self.counts.closed += 1;
        drop(conn);
        if self.accept_paused {
            self.accept_all();
        }
    }

    /// Closes every connection with no progress within the idle timeout.
    fn close_idle(&mut self) {
        let now = Instant::now();
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| now.duration_since(c.last_active) >= self.config.idle_timeout)
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.counts.idle_closed += 1;
            self.close(key);
        }
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

/// What [`serve`] needs: the backend, where to listen, and the server's
/// [`Config`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The loop and the backend it runs on.
    pub backend: ServerBackend,
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Listen backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: i32,
    /// What is served.
    pub config: Config,
}

/// The whole program: raises the fd limit, blocks the signals the loop
/// reads from a signalfd, listens, prints `listening on ADDR backend ID
/// (DESCRIPTION) pid PID` as the first line on stdout, and serves until
/// SIGINT/SIGTERM, printing a report line on SIGUSR1 and at the end.
/// `userpoll-http` is this; `compare http` runs it in a child process.
pub fn serve(opts: &ServeOptions) -> io::Result<()> {
    // 10,000 connections need more than the usual soft limit of 1,024.
    userpoll::sys::raise_fd_limit()?;
    // Before any thread starts (a backend may start one), so that every
    // thread blocks the signals the loop reads from its signalfd.
    let signals = sys::signalfd()?;
    let listener = sys::listen(opts.listen, opts.backlog)?;
    let backend = match opts.backend {
        ServerBackend::Readiness(b) => b,
        ServerBackend::UringRecv(send_with) => {
            let mut server = uring::UringServer::new(
                listener,
                Some(signals),
                opts.config.clone(),
                send_with,
                opts.backend.to_string(),
            )
            .map_err(|e| io::Error::new(e.kind(), format!("backend {}: {e}", opts.backend)))?;
            let mut out = io::stdout().lock();
            announce(
                &mut out,
                server.local_addr()?,
                opts.backend,
                &server.describe(),
            )?;
            return server.run(&mut out);
        }
    };
    let poller = AnyPoller::new(backend, capacity(&opts.config)).map_err(|e| {
        // The library's errors carry only their errno; say why for a person.
        match backend.explain(&e) {
            Some(why) => io::Error::new(e.kind(), format!("backend {backend}: {e}: {why}")),
            None => io::Error::new(e.kind(), format!("backend {backend}: {e}")),
        }
    })?;
    let describe = poller.describe();
    let mut server = Server::new(
        poller,
        listener,
        Some(signals),
        opts.config.clone(),
        backend.to_string(),
    )?;
    let mut out = io::stdout().lock();
    announce(&mut out, server.local_addr()?, opts.backend, &describe)?;
    server.run(&mut out)
}

/// The first line on stdout: `listening on ADDR backend ID (DESCRIPTION)
/// pid PID`.
fn announce(
    out: &mut dyn Write,
    addr: SocketAddr,
    backend: ServerBackend,
    describe: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "listening on {addr} backend {backend} ({describe}) pid {}",
        std::process::id()
    )?;
    out.flush()
}
