//! One connection: its socket, what it has read and not yet parsed, what
//! it has to write, and the request parsing (with `httparse`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use crate::response::{Responses, Status};
use crate::stats::Counts;
use crate::sys;

/// The most request-head bytes (request line and headers) a request may
/// have: over it, 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have: over it, 431.
const MAX_HEADERS: usize = 64;
/// Bytes of responses queued before the connection stops reading and waits
/// for the client to read (pipelining clients cannot make it buffer more).
const WRITE_HIGH: usize = 256 * 1024;

/// Where the connection's readiness interest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Registered for readable: reading requests.
    Read,
    /// Registered for writable: a send returned EAGAIN, or the queue is
    /// over its limit; reading waits until it is written.
    Write,
}

/// What the event loop must do with a connection after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it, registered as it is.
    Keep,
    /// Switch its registration to this interest (`modify`).
    Switch(Want),
    /// Close it (`delete`, then `close`).
    Close,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    pub fd: OwnedFd,
    /// Read, not yet parsed (a partial request, or pipelined ones).
    rbuf: Vec<u8>,
    /// Responses not yet sent, from `wpos` on.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Close once `wbuf` is sent.
    close_after: bool,
    /// The peer has closed its side; no more reads.
    eof: bool,
    pub want: Want,
    pub last_active: Instant,
}

/// The outcome of one read-and-parse pass.
enum Read {
    /// Read until EAGAIN, or the peer half-closed.
    Drained,
    /// Stopped at the queue limit with the socket maybe not drained: read
    /// again once the queue is sent (edge delivery will not say so).
    Stalled,
    /// The peer closed or failed: close.
    Gone,
}

/// The outcome of sending what is queued.
enum Sent {
    All,
    WouldBlock,
    Failed,
}

impl Conn {
    /// A new connection, registered for readable.
    pub fn new(fd: OwnedFd, now: Instant) -> Conn {
        Conn {
            fd,
            rbuf: Vec::with_capacity(1024),
            wbuf: Vec::new(),
            wpos: 0,
            close_after: false,
            eof: false,
            want: Want::Read,
            last_active: now,
        }
    }

    /// Handles a readiness event: reads and answers every complete request
    /// while registered for reading; sends what is queued. Returns what the
    /// loop must do.
    pub fn on_event(&mut self, responses: &Responses, path: &[u8], c: &mut Counts) -> Next {
        loop {
            let mut stalled = false;
            if self.want == Want::Read {
                match self.read(responses, path, c) {
                    Read::Gone => return Next::Close,
                    Read::Stalled => stalled = true,
                    Read::Drained => {}
                }
            }
            match self.flush(c) {
                Sent::Failed => return Next::Close,
                Sent::WouldBlock if self.want == Want::Read => return Next::Switch(Want::Write),
                Sent::WouldBlock => return Next::Keep,
                Sent::All if self.close_after => return Next::Close,
                // Written out: back to reading, where requests already read
                // are answered first (the loop calls again after the
                // switch); data still in the socket is reported again when
                // the registration switches back (S4).
                Sent::All if self.want == Want::Write => return Next::Switch(Want::Read),
                Sent::All if stalled => continue,
                Sent::All => return Next::Keep,
            }
        }
    }

    /// Reads until EAGAIN (edge delivery: a readiness event is not repeated
    /// for data left unread), answering complete requests as they come.
    fn read(&mut self, responses: &Responses, path: &[u8], c: &mut Counts) -> Read {
        // Pipelined requests left from before a write stall.
        self.answer(responses, path, c);
        loop {
            if self.close_after || self.eof {
                return Read::Drained;
            }
            if self.queued() >= WRITE_HIGH {
                return Read::Stalled;
            }
            if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                self.rbuf.reserve(4096);
            }
            c.recv_calls += 1;
            let n = match sys::recv_spare(self.fd.as_fd(), &mut self.rbuf) {
                Ok(n) => n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Read::Drained,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        c.peer_errors += 1;
                        return Read::Gone;
                    }
                },
            };
            if n == 0 {
                // The client closed. What it sent whole is answered (an
                // HTTP/1.0 client may half-close after its request); a
                // request cut off mid-way costs only this connection.
                self.eof = true;
                if self.rbuf.is_empty() && self.queued() == 0 {
                    return Read::Gone;
                }
                self.close_after = true;
                return Read::Drained;
            }
            self.last_active = Instant::now();
            self.answer(responses, path, c);
        }
    }

    /// Parses and answers every complete request in `rbuf`.
    fn answer(&mut self, responses: &Responses, path: &[u8], c: &mut Counts) {
        let mut pos = 0;
        while !self.close_after && self.queued() < WRITE_HIGH {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let (status, keep, http10, head, used) = match req.parse(&self.rbuf[pos..]) {
                Ok(httparse::Status::Complete(used)) => {
                    let http10 = req.version == Some(0);
                    let mut keep = !http10;
                    let mut body = 0usize;
                    let mut bad = false;
                    for h in req.headers.iter() {
                        if h.name.eq_ignore_ascii_case("connection") {
                            let v = h.value;
                            if has_token(v, b"close") {
                                keep = false;
                            } else if has_token(v, b"keep-alive") {
                                keep = true;
                            }
                        } else if h.name.eq_ignore_ascii_case("content-length") {
                            match std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                            {
                                Some(n) => body = n,
                                None => bad = true,
                            }
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            // No request bodies of unknown length here.
                            bad = true;
                        }
                    }
                    if used > MAX_HEAD {
                        (Status::HeadersTooLarge, false, http10, false, used)
                    } else if bad {
                        (Status::BadRequest, false, http10, false, used)
                    } else if self.rbuf.len() - pos - used < body {
                        // The body has not all arrived.
                        if body > MAX_HEAD {
                            (Status::HeadersTooLarge, false, http10, false, used)
                        } else {
                            break;
                        }
                    } else {
                        let method = req.method.unwrap_or("");
                        let head = method == "HEAD";
                        let status = if method != "GET" && !head {
                            Status::MethodNotAllowed
                        } else if req.path.map(str::as_bytes) != Some(path) {
                            Status::NotFound
                        } else {
                            Status::Ok
                        };
                        // An HTTP/1.0 client is told keep-alive only with 200.
                        let keep = keep && (!http10 || status == Status::Ok);
                        (status, keep, http10, head, used + body)
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if self.rbuf.len() - pos > MAX_HEAD {
                        (Status::HeadersTooLarge, false, false, false, 0)
                    } else {
                        break;
                    }
                }
                Err(httparse::Error::TooManyHeaders) => {
                    (Status::HeadersTooLarge, false, false, false, 0)
                }
                Err(_) => (Status::BadRequest, false, false, false, 0),
            };
            pos += used;
            c.requests += 1;
            match status {
                Status::Ok => c.ok += 1,
                Status::NotFound => c.not_found += 1,
                Status::BadRequest => c.bad_request += 1,
                Status::MethodNotAllowed => c.method_not_allowed += 1,
                Status::HeadersTooLarge => c.headers_too_large += 1,
            }
            self.wbuf
                .extend_from_slice(responses.get(status, keep, http10, head));
            if !keep {
                self.close_after = true;
            }
        }
        if self.close_after {
            self.rbuf.clear();
        } else {
            self.rbuf.drain(..pos);
        }
    }

    fn queued(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Sends what is queued until done or EAGAIN.
    fn flush(&mut self, c: &mut Counts) -> Sent {
        while self.queued() > 0 {
            c.send_calls += 1;
            match sys::send(self.fd.as_fd(), &self.wbuf[self.wpos..]) {
                Ok(n) => {
                    self.wpos += n;
                    self.last_active = Instant::now();
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Sent::WouldBlock,
                    io::ErrorKind::Interrupted => {}
                    _ => {
                        c.peer_errors += 1;
                        return Sent::Failed;
                    }
                },
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Sent::All
    }
}

/// Whether a comma-separated header value holds `token` (any case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}
