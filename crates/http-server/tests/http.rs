//! The server on every backend, as its own process, driven by real sockets:
//! keep-alive, pipelining, HTTP/1.0 close, 404, 400, 431, a reset
//! mid-response, a disconnect mid-request, the idle timeout, 1,000
//! concurrent connections each served exactly once, and the server's fd
//! count back to where it started after each. A short `wrk` run per backend
//! when `wrk` is installed (`.ci/run` installs it).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anypoll::Backend;

/// How long a test waits for something the server must do.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running `userpoll-http`.
struct Server {
    child: Child,
    addr: SocketAddr,
    backend: Backend,
}

impl Server {
    /// Starts the server on `backend` on a free loopback port, or `None`
    /// (with the reason printed) when this kernel lacks the backend.
    fn start(backend: Backend, extra: &[&str]) -> Option<Server> {
        if !backend.is_supported() {
            eprintln!("SKIPPED {backend}: not supported by this kernel");
            return None;
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_userpoll-http"))
            .args(["--backend", &backend.to_string(), "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start userpoll-http");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{backend}: unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Some(Server {
            child,
            addr,
            backend,
        })
    }

    /// The server process's open fds.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Waits until the server's fd count is `want` (connections close
    /// asynchronously to the client's view).
    fn expect_fds(&self, want: usize, why: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.fds() != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(self.fds(), want, "{}: fds leaked {why}", self.backend);
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s
    }

    /// Stops the server (SIGTERM) and returns its report line.
    fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{}: server exited {status}", self.backend);
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Header (name in lower case, value) pairs.
type Headers = Vec<(String, String)>;

/// One response read from `s`: the status code, the headers and the body.
fn response(s: &mut impl Read) -> io::Result<(u16, Headers, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok((status, headers, body))
}

/// Whether the server closed (or reset) `s`: a read finds the end of the
/// stream, or an error other than a timeout.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    loop {
        match s.read(&mut b) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(0) => return true,
            Ok(_) => return false,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                )
            }
        }
    }
}

fn each_backend(test: impl Fn(Backend)) {
    for &b in Backend::ALL {
        test(b);
    }
}

#[test]
fn keep_alive_pipelining_http10_and_404() {
    each_backend(|b| {
        let Some(srv) = Server::start(b, &["--body", "100"]) else {
            return;
        };
        let start = srv.fds();
        let mut s = srv.connect();
        // Three pipelined requests in one write, answered in order.
        s.write_all(b"GET /ind HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /ind HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        for want in [200, 404, 200] {
            let (status, _, body) = response(&mut s).unwrap();
            assert_eq!(status, want, "{b}: pipelined");
            if want == 200 {
                assert_eq!(body, (0..100).map(|i| i as u8).collect::<Vec<_>>(), "{b}");
            }
        }
        // Keep-alive: the same connection serves again.
        for _ in 0..3 {
            s.write_all(b"GET /ind HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            assert_eq!(response(&mut s).unwrap().0, 200, "{b}: keep-alive");
        }
        // A request split across writes.
        s.write_all(b"GET /ind HT").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        s.write_all(b"TP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(response(&mut s).unwrap().0, 200, "{b}: split request");
        // Connection: close is honoured.
        s.write_all(b"GET /ind HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (status, headers, _) = response(&mut s).unwrap();
        assert_eq!(status, 200);
        assert!(
            headers.contains(&("connection".into(), "close".into())),
            "{b}"
        );
        assert!(
            closed_by_server(&mut s),
            "{b}: Connection: close kept it open"
        );
        // HTTP/1.0 closes after the response.
        let mut s = srv.connect();
        s.write_all(b"GET /ind HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(response(&mut s).unwrap().0, 200);
        assert!(closed_by_server(&mut s), "{b}: HTTP/1.0 kept open");
        // HTTP/1.0 with keep-alive stays open and says so.
        let mut s = srv.connect();
        for _ in 0..2 {
            s.write_all(b"GET /ind HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            let (status, headers, _) = response(&mut s).unwrap();
            assert_eq!(status, 200);
            assert!(headers.contains(&("connection".into(), "keep-alive".into())));
        }
        drop(s);
        srv.expect_fds(start, "after keep-alive, pipelining and close");
        let report = srv.stop();
        assert!(report.contains("\"requests\":"), "{b}: report {report}");
    });
}

#[test]
fn bad_input_gets_400_431_405_and_costs_one_connection() {
    each_backend(|b| {
        let Some(srv) = Server::start(b, &[]) else {
            return;
        };
        let start = srv.fds();
        let bystander = &mut srv.connect();
        bystander.write_all(b"GET /ind HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(response(bystander).unwrap().0, 200);

        let cases: [(&str, Vec<u8>, u16); 4] = [
            (
                "malformed",
                b"GET / HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
                400,
            ),
            (
                "not HTTP",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
                400,
            ),
            (
                "headers over 8 KiB",
                format!("GET /ind HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000)).into_bytes(),
                431,
            ),
            (
                "chunked body",
                b"POST /ind HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                400,
            ),
        ];
        for (what, req, want) in cases {
            let mut s = srv.connect();
            s.write_all(&req).unwrap();
            let (status, _, _) = response(&mut s).unwrap_or_else(|e| panic!("{b}: {what}: {e}"));
            assert_eq!(status, want, "{b}: {what}");
            assert!(
                closed_by_server(&mut s),
                "{b}: {what}: connection kept open"
            );
        }
        // Headers that never end: 431 once over the limit, without waiting.
        let mut s = srv.connect();
        s.write_all(b"GET /ind HTTP/1.1\r\n").unwrap();
        for _ in 0..100 {
            if s.write_all(b"X-Filler: 0123456789012345678901234567890123456789\r\n")
                .is_err()
            {
                break;
            }
        }
        assert_eq!(
            response(&mut s).map(|r| r.0).unwrap_or(431),
            431,
            "{b}: endless headers"
        );
        // A method other than GET/HEAD: 405, the connection stays.
        let mut s = srv.connect();
        s.write_all(b"DELETE /ind HTTP/1.1\r\n\r\nHEAD /ind HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(response(&mut s).unwrap().0, 405, "{b}");
        assert_eq!(response(&mut s).unwrap().0, 200, "{b}: HEAD");
        drop(s);
        // The bystander was not disturbed.
        bystander.write_all(b"GET /ind HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(response(bystander).unwrap().0, 200, "{b}: bystander");
        srv.expect_fds(start + 1, "after bad input (the bystander is open)");
    });
}

/// Closes `s` with SO_LINGER 0: the peer gets a reset, not a FIN.
fn reset(s: TcpStream) {
    rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO)).unwrap();
    drop(s);
}

#[test]
fn reset_mid_response_and_disconnect_mid_request_cost_one_connection() {
    each_backend(|b| {
        // A 4 MiB body cannot fit the socket buffers: the server is
        // mid-response (registered for writable) when the client resets.
        let Some(srv) = Server::start(b, &["--body", "4194304"]) else {
            return;
        };
        let start = srv.fds();
        for _ in 0..3 {
            let mut s = srv.connect();
            s.write_all(b"GET /ind HTTP/1.1\r\n\r\nGET /ind HTTP/1.1\r\n\r\n")
                .unwrap();
            let mut some = [0u8; 1000];
            s.read_exact(&mut some).unwrap();
            reset(s);
            // Disconnect mid-request, politely and rudely.
            let mut s = srv.connect();
            s.write_all(b"GET /ind HTTP/1.1\r\nHost:").unwrap();
            drop(s);
            let mut s = srv.connect();
            s.write_all(b"GET /in").unwrap();
            reset(s);
        }
        // Everyone else is still served.
        let mut s = srv.connect();
        s.write_all(b"GET /ind HTTP/1.1\r\n\r\n").unwrap();
        let (status, _, body) = response(&mut s).unwrap();
        assert_eq!((status, body.len()), (200, 4 << 20), "{b}");
        drop(s);
        srv.expect_fds(start, "after resets and disconnects");
    });
}

#[test]
fn idle_connections_are_closed_after_the_timeout() {
    each_backend(|b| {
        let Some(srv) = Server::start(b, &["--idle-timeout-ms", "200"]) else {
            return;
        };
        let start = srv.fds();
        let mut idle = srv.connect();
        let mut half = srv.connect();
        half.write_all(b"GET /ind HTT").unwrap();
        assert!(closed_by_server(&mut idle), "{b}: idle connection kept");
        assert!(closed_by_server(&mut half), "{b}: half a request kept");
        srv.expect_fds(start, "after the idle timeout");
    });
}

#[test]
fn a_thousand_concurrent_connections_each_served_exactly_once() {
    userpoll::sys::raise_fd_limit().unwrap(); // 1,000 client sockets
    each_backend(|b| {
        let Some(srv) = Server::start(b, &["--body", "10"]) else {
            return;
        };
        let start = srv.fds();
        let mut conns: Vec<TcpStream> = (0..1000).map(|_| srv.connect()).collect();
        for s in &mut conns {
            s.write_all(b"GET /ind HTTP/1.1\r\n\r\n").unwrap();
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let (status, _, body) = response(s).unwrap_or_else(|e| panic!("{b}: conn {i}: {e}"));
            assert_eq!((status, body.len()), (200, 10), "{b}: conn {i}");
        }
        // Exactly once: nothing more arrives on any of them.
        for s in &mut conns {
            s.set_nonblocking(true).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        for (i, s) in conns.iter_mut().enumerate() {
            let mut b1 = [0u8; 1];
            match s.read(&mut b1) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => panic!("{b}: conn {i} got more than one response: {other:?}"),
            }
        }
        assert_eq!(srv.fds(), start + 1000, "{b}: one fd per connection");
        drop(conns);
        srv.expect_fds(start, "after 1,000 connections");
        let report = srv.stop();
        assert!(report.contains("\"ok\":1000"), "{b}: {report}");
    });
}

#[test]
fn wrk_sees_no_errors_and_only_2xx() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("SKIPPED: wrk is not installed (apt-get install -y wrk)");
        return;
    }
    userpoll::sys::raise_fd_limit().unwrap(); // 1,000 client sockets
    each_backend(|b| {
        let Some(srv) = Server::start(b, &[]) else {
            return;
        };
        let start = srv.fds();
        let url = format!("http://{}/ind", srv.addr);
        let out = Command::new("wrk")
            .args(["-t1", "-c100", "-d2s", &url])
            .output()
            .expect("run wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{b}: wrk failed: {text}");
        assert!(!text.contains("Socket errors"), "{b}: {text}");
        assert!(!text.contains("Non-2xx"), "{b}: {text}");
        assert!(text.contains("Requests/sec"), "{b}: {text}");
        srv.expect_fds(start, "after wrk");
    });
}
