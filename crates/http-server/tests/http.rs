//! The server on every backend (the readiness backends and the io_uring
//! completion loop, `uring-recv`), as its own process, driven by real sockets:
//! keep-alive, pipelining, HTTP/1.0 close, 404, 400, 431, a reset
//! mid-response, a disconnect mid-request, the idle timeout, 1,000
//! concurrent connections each served exactly once, and the server's fd
//! count back to where it started after each. A short `wrk` run per backend
//! when `wrk` is installed (`.ci/run` installs it).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

mod support;

use support::{
    closed_by_server, each_answered_exactly_once, each_backend, reset, response, Server,
};

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
        each_answered_exactly_once(b, &mut conns, 10);
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

#[test]
fn at_max_connections_accepting_pauses_until_one_closes() {
    each_backend(|b| {
        let Some(srv) = Server::start(b, &["--max-connections", "2"]) else {
            return;
        };
        let start = srv.fds();
        let mut served: Vec<TcpStream> = (0..2).map(|_| srv.connect()).collect();
        for s in &mut served {
            s.write_all(b"GET /ind HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(response(s).unwrap().0, 200, "{b}");
        }
        // A third client connects (the kernel completes the handshake
        // from the backlog) but is not served while two are open.
        let mut third = srv.connect();
        third.write_all(b"GET /ind HTTP/1.1\r\n\r\n").unwrap();
        third
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut byte = [0u8; 1];
        let read = loop {
            match third.read(&mut byte) {
                // A child of another test ending (SIGCHLD).
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        match read {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            other => panic!("{b}: served over the limit of 2: {other:?}"),
        }
        // One closes: the third is served.
        drop(served.remove(0));
        third.set_read_timeout(Some(support::PATIENCE)).unwrap();
        assert_eq!(response(&mut third).unwrap().0, 200, "{b}: after a close");
        drop(third);
        drop(served);
        srv.expect_fds(start, "after the limit");
        let report = srv.stop();
        assert!(!report.contains("\"accept_paused\":0"), "{b}: {report}");
    });
}
