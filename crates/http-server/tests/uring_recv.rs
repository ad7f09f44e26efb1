//! The io_uring completion loop (`uring-recv`, both ways of sending) under
//! what only it has: 2,000 connections each served once from one buffer
//! ring, a buffer ring so small that multishot recvs end with ENOBUFS and
//! must be re-armed, and a CQ so small that it overflows. Every request is
//! still answered, exactly once. (The cases every backend shares, such as
//! keep-alive, pipelining, bad input and resets, are in `http.rs`, which
//! runs them on `uring-recv` too.)

use std::io::Write;
use std::net::TcpStream;

use http_server::ServerBackend;

mod support;

use support::{each_answered_exactly_once, Server};

/// A report's number at `"key":`.
fn field(report: &str, key: &str) -> u64 {
    let at = report
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {report}"));
    report[at + key.len() + 3..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Opens `n` connections, sends every one its request (`req`) before
/// reading any answer, checks each gets exactly one 200 with a 10-byte
/// body, closes them; returns the server's last report.
fn many_at_once(srv: Server, n: usize, req: &[u8]) -> String {
    let b = srv.backend;
    let start = srv.fds();
    let mut conns: Vec<TcpStream> = (0..n).map(|_| srv.connect()).collect();
    for s in &mut conns {
        s.write_all(req).unwrap();
    }
    each_answered_exactly_once(b, &mut conns, 10);
    drop(conns);
    srv.expect_fds(start, "after the connections closed");
    let report = srv.stop();
    eprintln!("{b}, {n} connections: {report}");
    assert_eq!(field(&report, "ok"), n as u64, "{b}: {report}");
    assert_eq!(field(&report, "recv_calls"), 0, "{b}: {report}");
    report
}

const REQUEST: &[u8] = b"GET /ind HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n";

#[test]
fn two_thousand_connections_each_served_exactly_once_without_a_recv_call() {
    userpoll::sys::raise_fd_limit().unwrap(); // 2,000 client sockets
    for b in ServerBackend::URING {
        let Some(srv) = Server::start(b, &["--body", "10"]) else {
            return;
        };
        many_at_once(srv, 2000, REQUEST);
    }
}

#[test]
fn an_exhausted_buffer_ring_ends_recvs_with_enobufs_and_every_request_is_still_answered() {
    userpoll::sys::raise_fd_limit().unwrap();
    for b in ServerBackend::URING {
        // Two 64-byte buffers for 500 connections sending 56-byte requests
        // at once: most recvs find the ring empty, and requests are split
        // across buffers.
        let args = [
            "--body",
            "10",
            "--recv-buffers",
            "2",
            "--recv-buffer-size",
            "64",
        ];
        let Some(srv) = Server::start(b, &args) else {
            return;
        };
        let report = many_at_once(srv, 500, REQUEST);
        assert!(
            field(&report, "recv_no_buffers") > 0,
            "{b}: no ENOBUFS: {report}"
        );
        assert!(field(&report, "rearm_kernel_ended") > 0, "{b}: {report}");
    }
}

#[test]
fn an_overflowing_cq_ends_multishots_and_every_request_is_still_answered() {
    userpoll::sys::raise_fd_limit().unwrap();
    for b in ServerBackend::URING {
        let Some(srv) = Server::start(b, &["--body", "10", "--cq-entries", "16"]) else {
            return;
        };
        let report = many_at_once(srv, 500, REQUEST);
        assert!(
            field(&report, "overflow_recoveries") > 0,
            "{b}: no overflow: {report}"
        );
    }
}
