//! The two real clients: `wrk` for keep-alive load, and the EPOLL_USERPOLL
//! series' shape (a new TCP connection per request, HTTP/1.0, a fixed
//! number in flight, `SO_LINGER` 0), written here on mio.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// What one client run measured.
#[derive(Debug, Clone, Default)]
pub struct ClientRun {
    /// Requests answered with 2xx.
    pub requests: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency percentiles, ns: p50, p90, p99.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Socket errors (connect, read, write, timeout) and non-2xx answers.
    pub errors: u64,
    /// CPU time the client used, ns.
    pub client_cpu_ns: u64,
    /// Every request's latency, ns (the new-connection client; wrk reports
    /// only percentiles).
    pub latency: Option<Histogram<u64>>,
}

impl ClientRun {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Whether `wrk` can be run here.
pub fn wrk_available() -> bool {
    Command::new("wrk").arg("-v").output().is_ok()
}

/// `wrk -t1 -cN -dD --latency http://ADDR/ind`, parsed.
pub fn wrk(addr: SocketAddr, connections: usize, duration: Duration) -> io::Result<ClientRun> {
    let secs = duration.as_secs().max(1);
    let before = children_cpu_ns();
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
        ])
        .arg(format!("http://{addr}/ind"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut run = parse_wrk(&text)
        .ok_or_else(|| io::Error::other(format!("cannot read wrk's output:\n{text}")))?;
    run.client_cpu_ns = children_cpu_ns().saturating_sub(before);
    Ok(run)
}

/// CPU time of this process's waited-for children, ns.
fn children_cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is valid storage; getrusage only writes it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is live.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

/// A wrk duration (`1.23ms`, `456.00us`, `1.02s`, `2m`) in ns.
fn wrk_time_ns(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let x: f64 = num.parse().ok()?;
    let scale = match unit {
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    Some((x * scale) as u64)
}

/// Reads wrk's `--latency` report.
pub fn parse_wrk(text: &str) -> Option<ClientRun> {
    let mut run = ClientRun::default();
    let mut total = None;
    let mut non2xx = 0;
    for line in text.lines().map(str::trim) {
        let mut w = line.split_whitespace();
        match (w.next(), w.next()) {
            (Some("50%"), Some(t)) => run.p50_ns = wrk_time_ns(t)?,
            (Some("90%"), Some(t)) => run.p90_ns = wrk_time_ns(t)?,
            (Some("99%"), Some(t)) => run.p99_ns = wrk_time_ns(t)?,
            (Some(n), Some("requests")) => {
                total = n.parse::<u64>().ok();
                // "N requests in 5.00s, 1.2MB read"
                let secs = line.split(" in ").nth(1)?.split(',').next()?;
                run.elapsed = Duration::from_nanos(wrk_time_ns(secs.trim())?);
            }
            (Some("Socket"), Some("errors:")) => {
                run.errors += line
                    .split([',', ' '])
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum::<u64>();
            }
            (Some("Non-2xx"), _) => {
                non2xx = line.rsplit(' ').next()?.parse().ok()?;
            }
            _ => {}
        }
    }
    run.requests = total?.saturating_sub(non2xx);
    run.errors += non2xx;
    Some(run)
}

/// The series' client: `total` requests, each on a new TCP connection,
/// `parallel` in flight, `GET /ind HTTP/1.0`, closed with `SO_LINGER` 0
/// once the server's answer and end of stream arrived.
pub fn new_connection_per_request(
    addr: SocketAddr,
    parallel: usize,
    total: u64,
) -> io::Result<ClientRun> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<(TcpStream, Instant, usize)>> = (0..parallel).map(|_| None).collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    let (mut started, mut done, mut errors) = (0u64, 0u64, 0u64);
    let cpu0 = crate::sys::thread_cpu_ns();
    let t0 = Instant::now();
    const REQUEST: &[u8] = b"GET /ind HTTP/1.0\r\n\r\n";
    let mut buf = [0u8; 16 * 1024];
    let open = |poll: &Poll, slot: usize| -> io::Result<(TcpStream, Instant, usize)> {
        let mut s = TcpStream::connect(addr)?;
        poll.registry()
            .register(&mut s, Token(slot), Interest::READABLE | Interest::WRITABLE)?;
        Ok((s, Instant::now(), 0))
    };
    for (slot, place) in slots.iter_mut().enumerate().take(total as usize) {
        *place = Some(open(&poll, slot)?);
        started += 1;
    }
    let deadline = t0 + Duration::from_secs(600);
    while done + errors < total {
        if Instant::now() > deadline {
            return Err(io::Error::other(
                "the new-connection client ran for 10 minutes",
            ));
        }
        match poll.poll(&mut events, Some(Duration::from_secs(5))) {
            // A signal delivered to this thread ends epoll_wait early
            // (EINTR): nothing failed, wait again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        for ev in events.iter() {
            let slot = ev.token().0;
            let Some((s, _, sent)) = slots[slot].as_mut() else {
                continue;
            };
            let mut finished = None;
            if *sent < REQUEST.len() && ev.is_writable() {
                match s.write(&REQUEST[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => finished = Some(false),
                }
            }
            if finished.is_none() && *sent == REQUEST.len() {
                let mut ok = None;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => {
                            ok = Some(true);
                            break;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            ok = Some(false);
                            break;
                        }
                    }
                }
                finished = ok;
            }
            let Some(ok) = finished else { continue };
            let (mut s, t, _) = slots[slot].take().expect("occupied");
            let _ = poll.registry().deregister(&mut s);
            if ok {
                hist.saturating_record(t.elapsed().as_nanos() as u64);
                done += 1;
            } else {
                errors += 1;
            }
            linger_zero(&s);
            drop(s);
            if started < total {
                match open(&poll, slot) {
                    Ok(c) => slots[slot] = Some(c),
                    Err(_) => errors += 1,
                }
                started += 1;
            }
        }
    }
    Ok(ClientRun {
        requests: done,
        elapsed: t0.elapsed(),
        p50_ns: hist.value_at_quantile(0.50),
        p90_ns: hist.value_at_quantile(0.90),
        p99_ns: hist.value_at_quantile(0.99),
        errors,
        client_cpu_ns: crate::sys::thread_cpu_ns() - cpu0,
        latency: Some(hist),
    })
}

/// `SO_LINGER` 0: the close sends a reset, as the series' client did, so
/// neither side keeps TIME_WAIT sockets.
pub fn linger_zero(s: impl std::os::fd::AsFd) {
    let _ = rustix::net::sockopt::set_socket_linger(s, Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 2s test @ http://127.0.0.1:1/ind\n  1 threads and 100 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.20ms  300.00us   5.00ms   90.00%\n\
  Latency Distribution\n     50%    1.10ms\n     75%    1.30ms\n     90%  812.00us\n     99%    2.50s\n\
  123456 requests in 2.00s, 9.42MB read\n  Socket errors: connect 1, read 2, write 0, timeout 3\n\
  Non-2xx or 3xx responses: 6\nRequests/sec:  61728.00\nTransfer/sec:      4.71MB\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.p50_ns, 1_100_000);
        assert_eq!(r.p90_ns, 812_000);
        assert_eq!(r.p99_ns, 2_500_000_000);
        assert_eq!(r.requests, 123_450);
        assert_eq!(r.errors, 12);
        assert_eq!(r.elapsed, Duration::from_secs(2));
    }
}
