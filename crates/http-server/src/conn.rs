//! One connection of the readiness loop: its socket, what it has read and
//! not yet parsed, what it has to write, and reading and writing it on
//! readiness events. Parsing and answering is `request.rs`'s.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use crate::request::{self, WRITE_HIGH};
use crate::response::Responses;
use crate::stats::Counts;
use crate::sys;

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
        if self.close_after {
            self.rbuf.clear();
            return;
        }
        let room = WRITE_HIGH.saturating_sub(self.queued());
        let done = request::answer(&self.rbuf, &mut self.wbuf, room, responses, path, c);
        if done.close {
            self.close_after = true;
            self.rbuf.clear();
        } else {
            self.rbuf.drain(..done.used);
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
