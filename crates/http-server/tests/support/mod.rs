//! What the server tests share: a `userpoll-http` process on one backend
//! (its fds, its report), reading responses, resets.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_server::ServerBackend as Backend;

/// How long a test waits for something the server must do.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running `userpoll-http`.
pub struct Server {
    child: Child,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its backend.
    pub backend: Backend,
}

impl Server {
    /// Starts the server on `backend` on a free loopback port, or `None`
    /// (with the reason printed) when this kernel lacks the backend.
    pub fn start(backend: Backend, extra: &[&str]) -> Option<Server> {
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
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Waits until the server's fd count is `want` (connections close
    /// asynchronously to the client's view).
    pub fn expect_fds(&self, want: usize, why: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.fds() != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(self.fds(), want, "{}: fds leaked {why}", self.backend);
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s
    }

    /// Stops the server (SIGTERM) and returns its report line.
    pub fn stop(mut self) -> String {
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
pub type Headers = Vec<(String, String)>;

/// One response read from `s`: the status code, the headers and the body.
pub fn response(s: &mut impl Read) -> io::Result<(u16, Headers, Vec<u8>)> {
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
/// Checks that every one of `conns` got exactly one 200 with a body of
/// `body_len` bytes and nothing after it (read 50 ms later, non-blocking).
pub fn each_answered_exactly_once(b: Backend, conns: &mut [TcpStream], body_len: usize) {
    for (i, s) in conns.iter_mut().enumerate() {
        let (status, _, body) = response(s).unwrap_or_else(|e| panic!("{b}: conn {i}: {e}"));
        assert_eq!((status, body.len()), (200, body_len), "{b}: conn {i}");
    }
    for s in conns.iter_mut() {
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
}

pub fn closed_by_server(s: &mut TcpStream) -> bool {
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

pub fn each_backend(test: impl Fn(Backend)) {
    for b in Backend::all() {
        test(b);
    }
}

/// Closes `s` with SO_LINGER 0: the peer gets a reset, not a FIN.
pub fn reset(s: TcpStream) {
    rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO)).unwrap();
    drop(s);
}
