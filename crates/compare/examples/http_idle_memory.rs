//! Memory per idle keep-alive connection of the real server
//! (`userpoll-http`), in the server process (resident memory, `VmRSS`) and
//! in the kernel (slab objects, system-wide, from `/proc/slabinfo`, which
//! needs root). Per backend, repetition by repetition (the order rotates):
//! start the server on a free port of 127.0.0.1; open one connection, make
//! one request, reset it (warm-up); settle; read the slabs and the
//! server's RSS; open CONNS connections that each send one `GET` and read
//! the whole answer, so each went through the receive path once and now
//! waits, armed and idle; settle; read again; reset the connections, stop
//! the server.
//!
//! ```sh
//! cargo build --release -p http-server   # the server binary, userpoll-http
//! cargo run --release -p compare --example http_idle_memory -- [CONNS] [REPS] [BACKENDS...]
//! ```
//!
//! Defaults: 5,000 connections, 5 repetitions, `reference` (kernel epoll,
//! edge-triggered, through the contract) and `uring-recv` (multishot recv
//! into provided buffers). Slab counts are system-wide, and this process's
//! client sockets count too, the same for every backend: the differences
//! against the first backend are what each backend's own state costs. A
//! cache counts when it moved by at least a quarter of an object per
//! connection (median over the repetitions) for some backend; every
//! backend's total is taken over the same caches. Connections are reset
//! (`SO_LINGER` 0) so no TIME_WAIT socket outlives its repetition.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use compare::http::client::linger_zero;
use compare::http::server::Server;
use compare::http::REFERENCE;
use compare::memory::{self, Cache};
use compare::statistics::median_spread;
use http_server::ServerBackend;

/// How long a stopped server's memory takes to go back, and armed
/// connections to settle, at most.
const SETTLE: Duration = Duration::from_secs(1);

/// One keep-alive request for the server's one path.
const REQUEST: &[u8] = b"GET /ind HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Fds this process and the server need besides the connections.
const SPARE_FDS: usize = 64;

/// One backend, one repetition.
struct Sample {
    /// Server resident bytes gained, per connection.
    rss: f64,
    /// Objects every slab cache gained (whole run, not per connection).
    caches: BTreeMap<String, Cache>,
}

/// `userpoll-http` next to this example's folder (`target/PROFILE/`).
fn server_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or_else(|| format!("{} has no target folder", exe.display()))?;
    let bin = dir.join("userpoll-http");
    if bin.is_file() {
        return Ok(bin);
    }
    let release = if dir.ends_with("release") {
        " --release"
    } else {
        ""
    };
    Err(format!(
        "the server binary {} is missing; build it with `cargo build{release} -p http-server`",
        bin.display()
    ))
}

/// A connection that made one request and read all of its answer.
fn request(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(REQUEST)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut want = None;
    loop {
        if matches!(want, Some(w) if got.len() >= w) {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other(
                "the server closed a keep-alive connection",
            ));
        }
        got.extend_from_slice(&buf[..n]);
        if want.is_none() {
            want = answer_len(&got)?;
        }
    }
    if Some(got.len()) != want {
        return Err(io::Error::other("the server sent more than one answer"));
    }
    Ok(s)
}

/// The length of a whole `200` answer once its head arrived.
fn answer_len(got: &[u8]) -> io::Result<Option<usize>> {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&got[..end]);
    if !head.starts_with("HTTP/1.1 200") {
        let line = head.lines().next().unwrap_or_default();
        return Err(io::Error::other(format!("the server answered {line:?}")));
    }
    let body = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .ok_or_else(|| io::Error::other("an answer without Content-Length"))?;
    Ok(Some(end + 4 + body))
}

/// One repetition of one backend.
fn measure(bin: &PathBuf, backend: &str, n: usize) -> io::Result<Sample> {
    let mut server = Server::start(Command::new(bin), backend, 0, n + SPARE_FDS)?;
    let pid = Some(server.pid());
    linger_zero(&request(server.addr)?);
    // The previous server's ring and sockets, and the warm-up connection,
    // are freed by kernel workers and RCU after their close: let that land.
    std::thread::sleep(SETTLE);
    let before = server.snapshot()?;
    let (s0, r0) = (memory::slabs()?, memory::rss(pid)?);
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let c = request(server.addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connection {} of {n}: {e}", i + 1)))?;
        conns.push(c);
    }
    std::thread::sleep(SETTLE);
    let (s1, r1) = (memory::slabs()?, memory::rss(pid)?);
    let after = server.snapshot()?;
    for c in &conns {
        linger_zero(c);
    }
    drop(conns);
    server.stop()?;
    let answered = after.requests.unwrap_or(0) - before.requests.unwrap_or(0);
    if answered != n as u64 {
        return Err(io::Error::other(format!(
            "the server answered {answered} requests, not {n}"
        )));
    }
    Ok(Sample {
        rss: (r1 - r0) as f64 / n as f64,
        caches: memory::delta(&s0, &s1),
    })
}

/// Median (smallest..largest), `decimals` after the point, with a sign
/// when `signed`.
fn median_range(v: &[f64], decimals: usize, signed: bool) -> String {
    let m = median_spread(v.to_vec()).map_or(f64::NAN, |m| m.0);
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if signed {
        format!("{m:+.decimals$} ({lo:+.decimals$}..{hi:+.decimals$})")
    } else {
        format!("{m:.decimals$} ({lo:.decimals$}..{hi:.decimals$})")
    }
}

fn median(v: &[f64]) -> f64 {
    median_spread(v.to_vec()).map_or(0.0, |m| m.0)
}

/// Exits with `code` after saying why.
fn fail(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("http_idle_memory: {msg}");
    std::process::exit(code);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(5_000, |a| {
        a.parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| fail(2, format!("CONNS {a:?}: a positive number")))
    });
    let reps: usize = args.next().map_or(5, |a| {
        a.parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| fail(2, format!("REPS {a:?}: a positive number")))
    });
    let mut backends: Vec<String> = args.collect();
    if backends.is_empty() {
        backends = vec![REFERENCE.into(), "uring-recv".into()];
    }
    for b in &backends {
        match b.parse::<ServerBackend>() {
            Ok(sb) if !sb.is_supported() => fail(2, format!("{b}: this kernel cannot run it")),
            Ok(_) => {}
            Err(e) => fail(2, e),
        }
    }
    let bin = server_binary().unwrap_or_else(|e| fail(2, e));
    if let Err(e) = memory::slabs() {
        fail(2, e);
    }
    let limit = userpoll::sys::raise_fd_limit().unwrap_or_else(|e| fail(2, e));
    if (n + SPARE_FDS) as u64 > limit {
        fail(
            2,
            format!(
                "{n} connections need {} fds here and in the server; RLIMIT_NOFILE is {limit}",
                n + SPARE_FDS
            ),
        );
    }

    let k = backends.len();
    let mut got: Vec<Vec<Sample>> = (0..k).map(|_| Vec::new()).collect();
    for rep in 0..reps {
        for j in 0..k {
            let b = (rep + j) % k;
            let s = measure(&bin, &backends[b], n)
                .unwrap_or_else(|e| fail(1, format!("{}: {e}", backends[b])));
            let moved: i64 = s
                .caches
                .values()
                .filter(|c| memory::moved(c.objects, n))
                .map(|c| c.objects * c.size)
                .sum();
            eprintln!(
                "rep {}/{reps} {:<12} per connection: server RSS {:+.0} B, \
                 slab {:+.0} B (caches that moved this time)",
                rep + 1,
                backends[b],
                s.rss,
                moved as f64 / n as f64
            );
            got[b].push(s);
        }
    }

    // The caches that moved with the connections, for some backend.
    let per = |objects: i64| objects as f64 / n as f64;
    let names: BTreeSet<String> = got
        .iter()
        .flat_map(|samples| {
            let first = &samples[0].caches;
            first
                .keys()
                .filter(|name| {
                    let objs: Vec<f64> = samples
                        .iter()
                        .map(|s| s.caches.get(*name).map_or(0, |c| c.objects) as f64)
                        .collect();
                    memory::moved(median(&objs) as i64, n)
                })
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    let objects = |s: &Sample, name: &str| s.caches.get(name).map_or(0, |c| c.objects);
    let size = |name: &str| got[0][0].caches.get(name).map_or(0, |c| c.size);
    let slab = |s: &Sample| -> f64 {
        names
            .iter()
            .map(|name| per(objects(s, name) * size(name)))
            .sum()
    };

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{}: {n} idle keep-alive connections, each after one request; {reps} reps, \
         backends alternated; kernel {}, load {}",
        bin.display(),
        rustix::system::uname().release().to_string_lossy(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    println!("bytes per connection, median (range) over the repetitions");
    println!(
        "{:<24} {:>22} {:>22} {:>22}",
        "backend", "server RSS", "kernel slab", "RSS + slab"
    );
    let row = |label: &str, rss: Vec<f64>, slab: Vec<f64>, signed: bool| {
        let both: Vec<f64> = rss.iter().zip(&slab).map(|(a, b)| a + b).collect();
        println!(
            "{label:<24} {:>22} {:>22} {:>22}",
            median_range(&rss, 0, signed),
            median_range(&slab, 0, signed),
            median_range(&both, 0, signed),
        );
    };
    for (b, samples) in got.iter().enumerate() {
        row(
            &backends[b],
            samples.iter().map(|s| s.rss).collect(),
            samples.iter().map(slab).collect(),
            false,
        );
    }
    // Paired by repetition: the backend's own state, the sockets cancel.
    for b in 1..k {
        let pairs = got[b].iter().zip(&got[0]);
        row(
            &format!("{} - {}", backends[b], backends[0]),
            pairs.clone().map(|(s, r)| s.rss - r.rss).collect(),
            pairs.map(|(s, r)| slab(s) - slab(r)).collect(),
            true,
        );
    }

    println!();
    println!(
        "slab caches that moved by >= 1/4 object per connection for some backend \
         (SLUB merges caches of one size: a name stands for its group); \
         objects and bytes per connection, median"
    );
    print!("{:<20} {:>6}", "cache", "size");
    for b in &backends {
        print!(" {b:>22}");
    }
    for b in &backends[1..] {
        print!(" {:>22}", format!("{b} - {}", backends[0]));
    }
    println!();
    let cell = |objs: f64, sz: i64, signed: bool| {
        if signed {
            format!("{objs:+.2} {:+.0}", objs * sz as f64)
        } else {
            format!("{objs:.2} {:.0}", objs * sz as f64)
        }
    };
    for name in &names {
        let sz = size(name);
        print!("{name:<20} {sz:>6}");
        for samples in &got {
            let objs: Vec<f64> = samples.iter().map(|s| per(objects(s, name))).collect();
            print!(" {:>22}", cell(median(&objs), sz, false));
        }
        for samples in &got[1..] {
            let diff: Vec<f64> = samples
                .iter()
                .zip(&got[0])
                .map(|(s, r)| per(objects(s, name) - objects(r, name)))
                .collect();
            print!(" {:>22}", cell(median(&diff), sz, true));
        }
        println!();
    }
}
