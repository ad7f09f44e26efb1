//! The server under test, as its own process: `userpoll-http` on one
//! backend (this binary run again as `compare __serve`), or nginx (one
//! worker) as the yardstick. What a run needs of it: where to connect, and
//! a snapshot of its CPU time and counters before and after.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

/// The server's figures at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// CPU time of the whole server process (every thread), ns.
    pub cpu_ns: u64,
    /// Requests answered (our server only).
    pub requests: Option<u64>,
    /// The backend's system calls plus the server's own (our server only).
    pub syscalls: Option<u64>,
    /// The backend's re-arms plus `modify` calls (our server only).
    pub rearms: Option<u64>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
    stdout: Option<BufReader<ChildStdout>>,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// nginx's prefix folder, removed at the end.
    nginx_dir: Option<PathBuf>,
}

impl Server {
    /// `userpoll-http` on `backend`, serving `body` bytes at `/ind`.
    pub fn ours(backend: &str, body: usize, max_connections: usize) -> io::Result<Server> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("__serve");
        Server::start(cmd, backend, body, max_connections)
    }

    /// The server `cmd` runs (`compare __serve`, or the `userpoll-http`
    /// binary itself: both take these options and announce themselves
    /// alike) on `backend`, on a free port of 127.0.0.1.
    pub fn start(
        mut cmd: Command,
        backend: &str,
        body: usize,
        max_connections: usize,
    ) -> io::Result<Server> {
        let mut child = cmd
            .args(["--backend", backend, "--listen", "127.0.0.1:0"])
            .args(["--body", &body.to_string()])
            .args(["--max-connections", &max_connections.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|l| l.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("the {backend} server did not start: {line:?}"))
            })?;
        Ok(Server {
            child,
            stdout: Some(stdout),
            addr,
            nginx_dir: None,
        })
    }

    /// nginx, one worker, `accept_mutex off`, serving a file of `body`
    /// bytes at `/ind` on a free port; `Ok(None)` with the reason when
    /// nginx is not installed.
    pub fn nginx(body: usize, max_connections: usize) -> io::Result<Result<Server, String>> {
        let Some(bin) = nginx_binary() else {
            return Ok(Err(
                "nginx is not installed (apt-get install -y nginx-light)".into(),
            ));
        };
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("compare-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("html"))?;
        std::fs::create_dir_all(dir.join("logs"))?;
        std::fs::write(
            dir.join("html/ind"),
            (0..body).map(|i| i as u8).collect::<Vec<_>>(),
        )?;
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile {files};\n\
             pid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log error;\n\
             events {{ worker_connections {conns}; accept_mutex off; multi_accept on; }}\n\
             http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 60s;\n\
             default_type text/plain;\n  client_body_temp_path {dir}/tmp;\n  proxy_temp_path {dir}/tmp;\n\
             fastcgi_temp_path {dir}/tmp;\n  uwsgi_temp_path {dir}/tmp;\n  scgi_temp_path {dir}/tmp;\n\
             server {{\n    listen 127.0.0.1:{port} backlog=65535;\n    root {dir}/html;\n\
             location / {{ }}\n  }}\n}}\n",
            dir = dir.display(),
            conns = max_connections + 64,
            files = 2 * max_connections + 128,
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        // Up when it accepts.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Ok(Err(format!(
                    "nginx did not start on {addr}; see {}/logs/error.log",
                    dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Ok(Server {
            child,
            stdout: None,
            addr,
            nginx_dir: Some(dir),
        }))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's CPU time and (ours) counters now.
    pub fn snapshot(&mut self) -> io::Result<Snapshot> {
        let Some(stdout) = &mut self.stdout else {
            return Ok(Snapshot {
                cpu_ns: tree_cpu_ns(self.child.id()),
                ..Snapshot::default()
            });
        };
        let _ = kill_process(Pid::from_child(&self.child), Signal::USR1);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| io::Error::other(format!("server report {line:?}: {e}")))?;
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        Ok(Snapshot {
            cpu_ns: n(&v["cpu_ns"]),
            requests: Some(n(&v["counts"]["requests"])),
            syscalls: Some(n(&v["syscalls"])),
            rearms: Some(n(&v["rearms"])),
        })
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and waits.
    pub fn stop(mut self) -> io::Result<()> {
        let _ = kill_process(Pid::from_child(&self.child), Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(dir) = self.nginx_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.nginx_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// nginx on PATH or where Debian puts it.
fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// A port no one listens on now.
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// User + system CPU of `pid` and its children (nginx's master and
/// worker), from `/proc/PID/stat`, in ns (clock-tick resolution).
fn tree_cpu_ns(pid: u32) -> u64 {
    let mut pids = vec![pid];
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    let tick = rustix::param::clock_ticks_per_second().max(1);
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .map(|s| {
            // Fields after the command (which may hold spaces): utime is
            // the 14th field overall, the 12th after ") ".
            let rest = s.rsplit_once(") ").map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            field(11) + field(12)
        })
        .sum::<u64>()
        * (1_000_000_000 / tick)
}
