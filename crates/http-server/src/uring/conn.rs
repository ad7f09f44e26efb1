//! One connection of the completion loop and what its CQEs do: data from
//! the provided buffers answered (parsed in place, `request::answer`),
//! responses sent, the recv paused over `WRITE_HIGH` and re-armed, the
//! close once nothing of it is left in the kernel.

use std::io;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::time::Instant;

use io_uring::{cqueue, opcode, types};
use userpoll::Counter;

use super::{user_data, Kind, UringServer, BGID};
use crate::backend::SendWith;
use crate::request::{self, WRITE_HIGH};
use crate::sys;

/// One client connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// `None` once closing (the close is queued).
    fd: Option<OwnedFd>,
    /// Input not yet answered: a partial request, or requests left while
    /// the output was over `WRITE_HIGH`. Empty (no allocation) for a
    /// connection that never had a partial request.
    rbuf: Vec<u8>,
    /// The send in flight: the kernel reads `sending[spos..]` until its
    /// CQE; nothing touches the vector meanwhile.
    sending: Vec<u8>,
    spos: usize,
    send_in_flight: bool,
    /// Responses queued behind the send in flight.
    pending: Vec<u8>,
    /// The multishot recv is in the kernel (its last CQE is to come).
    recv_armed: bool,
    /// The recv should be armed (false: paused over `WRITE_HIGH`, end of
    /// stream, closing).
    want_recv: bool,
    /// A response said close: nothing more is read or answered.
    close_after: bool,
    /// The peer closed its side.
    eof: bool,
    pub(super) last_active: Instant,
}

impl Conn {
    pub(super) fn closing(&self) -> bool {
        self.fd.is_none()
    }

    fn queued(&self) -> usize {
        self.sending.len() - self.spos + self.pending.len()
    }

    fn in_kernel(&self) -> bool {
        self.recv_armed || self.send_in_flight
    }
}

impl UringServer {
    /// Serves a new connection: a slot, and its multishot recv.
    pub(super) fn start(&mut self, fd: OwnedFd) -> io::Result<()> {
        let key = self.conns.insert(Conn {
            fd: Some(fd),
            rbuf: Vec::new(),
            sending: Vec::new(),
            spos: 0,
            send_in_flight: false,
            pending: Vec::new(),
            recv_armed: false,
            want_recv: true,
            close_after: false,
            eof: false,
            last_active: Instant::now(),
        });
        self.live += 1;
        self.arm_recv(key)
    }

    fn arm_recv(&mut self, key: usize) -> io::Result<()> {
        let conn = &mut self.conns[key];
        let Some(fd) = &conn.fd else {
            return Ok(());
        };
        let sqe = opcode::RecvMulti::new(types::Fd(fd.as_raw_fd()), BGID)
            .build()
            .user_data(user_data(Kind::Recv, key));
        conn.recv_armed = true;
        self.push(sqe)
    }

    /// Re-arms the recvs the kernel ended (ENOBUFS, overflow, ...) of
    /// connections that still want them, after the turn gave every
    /// buffer back.
    pub(super) fn rearm_owed(&mut self) -> io::Result<()> {
        let owed = std::mem::take(&mut self.owed);
        for &(key, why) in &owed {
            if let Some(c) = self.conns.get(key) {
                if c.want_recv && !c.recv_armed && !c.closing() {
                    self.counters.incr(why);
                    self.arm_recv(key)?;
                }
            }
        }
        self.owed = owed;
        self.owed.clear();
        Ok(())
    }

    /// A CQE of connection `key`'s recv: data (in a provided buffer), end
    /// of stream, or an error; without `F_MORE` the recv is over.
    pub(super) fn on_recv(&mut self, key: usize, res: i32, flags: u32) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else {
            // Never: a slot is freed only after its recv's last CQE. The
            // buffer still goes back.
            if let Some(bid) = cqueue::buffer_select(flags) {
                self.bufs
                    .took(bid, res.max(0) as u32, cqueue::buffer_more(flags))?;
                self.bufs.release(bid);
            }
            return Ok(());
        };
        let ended = !cqueue::more(flags);
        if ended {
            conn.recv_armed = false;
        }
        if let Some(bid) = cqueue::buffer_select(flags) {
            let len = res.max(0) as u32;
            let off = self.bufs.took(bid, len, cqueue::buffer_more(flags))?;
            if len > 0 && !conn.closing() && !conn.close_after {
                conn.last_active = Instant::now();
                let data = self.bufs.bytes(bid, off, len);
                let room = WRITE_HIGH.saturating_sub(conn.queued());
                let path = self.config.path.as_bytes();
                let c = &mut self.counts;
                if conn.rbuf.is_empty() {
                    // The usual case: whole requests, answered from the
                    // buffer; only a remainder is kept.
                    let done =
                        request::answer(data, &mut conn.pending, room, &self.responses, path, c);
                    if done.close {
                        conn.close_after = true;
                    } else {
                        conn.rbuf.extend_from_slice(&data[done.used..]);
                    }
                } else {
                    conn.rbuf.extend_from_slice(data);
                    let done = request::answer(
                        &conn.rbuf,
                        &mut conn.pending,
                        room,
                        &self.responses,
                        path,
                        c,
                    );
                    if done.close {
                        conn.close_after = true;
                        conn.rbuf = Vec::new();
                    } else {
                        conn.rbuf.drain(..done.used);
                    }
                }
            }
            self.bufs.release(bid);
        }
        let conn = &mut self.conns[key];
        match res {
            n if n > 0 => {}
            0 => {
                // End of stream: what came whole is answered (an HTTP/1.0
                // client may half-close after its request), then close.
                conn.eof = true;
                conn.want_recv = false;
            }
            e if -e == libc::ENOBUFS => {
                // The buffer ring ran dry: every buffer is back by the end
                // of this turn, and the recv is re-armed before the next
                // enter.
                self.counts.recv_no_buffers += 1;
            }
            e if -e == libc::ECANCELED => {}
            _ => {
                if !conn.closing() {
                    self.counts.peer_errors += 1;
                    self.close(key);
                }
                return self.reap_if_done(key);
            }
        }
        if ended && conn.want_recv && !conn.closing() {
            // Data without F_MORE: its CQE went to the overflow list.
            let why = if res > 0 {
                Counter::RearmOverflow
            } else {
                Counter::RearmKernelEnded
            };
            self.owed.push((key, why));
        }
        self.settle(key, false)
    }

    /// The CQE of connection `key`'s send: `res` bytes went, or an error.
    pub(super) fn on_send(&mut self, key: usize, res: i32) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else {
            return Ok(());
        };
        conn.send_in_flight = false;
        if conn.closing() {
            return self.reap_if_done(key);
        }
        if res < 0 {
            self.counts.peer_errors += 1;
            self.close(key);
            return self.reap_if_done(key);
        }
        conn.spos += res as usize;
        conn.last_active = Instant::now();
        if conn.spos < conn.sending.len() {
            // A short send: the rest goes next.
            return self.submit_send(key);
        }
        conn.sending.clear();
        conn.spos = 0;
        self.settle(key, true)
    }

    /// After a connection's CQE: answer what waited for room (when
    /// `answer_buffered`), send what is queued, and pause, resume or end
    /// its reading as the output and the stream say.
    fn settle(&mut self, key: usize, answer_buffered: bool) -> io::Result<()> {
        let conn = &mut self.conns[key];
        if conn.closing() {
            return self.reap_if_done(key);
        }
        if answer_buffered && !conn.close_after && !conn.rbuf.is_empty() {
            let room = WRITE_HIGH.saturating_sub(conn.queued());
            let path = self.config.path.as_bytes();
            let done = request::answer(
                &conn.rbuf,
                &mut conn.pending,
                room,
                &self.responses,
                path,
                &mut self.counts,
            );
            if done.close {
                conn.close_after = true;
                conn.rbuf = Vec::new();
            } else {
                conn.rbuf.drain(..done.used);
            }
        }
        if !conn.send_in_flight && !conn.pending.is_empty() {
            self.send(key)?;
        }
        let conn = &mut self.conns[key];
        if conn.queued() == 0 && !conn.send_in_flight {
            // Nothing left to send: a closing response or the end of the
            // stream ends the connection (a partial request with it).
            // (With nothing queued, `rbuf` holds no whole request: the
            // last answer had room for all of them.)
            if conn.close_after || conn.eof {
                self.close(key);
                return self.reap_if_done(key);
            }
        }
        if conn.queued() >= WRITE_HIGH || conn.close_after {
            // Stop reading until the client read its responses (the
            // readiness loop's switch to writable).
            if conn.want_recv {
                conn.want_recv = false;
                if conn.recv_armed {
                    let cancel = opcode::AsyncCancel::new(user_data(Kind::Recv, key))
                        .build()
                        .user_data(user_data(Kind::Ignore, key));
                    self.push(cancel)?;
                }
            }
        } else if !conn.want_recv && !conn.eof {
            // Written out: read again (and its switch back).
            conn.want_recv = true;
            if !conn.recv_armed {
                self.counts.modify_calls += 1;
                self.arm_recv(key)?;
            }
        }
        Ok(())
    }

    /// Sends what is queued: moves `pending` into `sending` and hands it
    /// to the kernel (a SQE), or first tries `send(2)` ([`SendWith::Call`]).
    fn send(&mut self, key: usize) -> io::Result<()> {
        let conn = &mut self.conns[key];
        debug_assert!(!conn.send_in_flight && conn.sending.is_empty());
        std::mem::swap(&mut conn.sending, &mut conn.pending);
        conn.spos = 0;
        if self.send_with == SendWith::Call {
            let fd = conn.fd.as_ref().expect("not closing").as_fd();
            while conn.spos < conn.sending.len() {
                self.counts.send_calls += 1;
                match sys::send(fd, &conn.sending[conn.spos..]) {
                    Ok(n) => conn.spos += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.counts.peer_errors += 1;
                        self.close(key);
                        return Ok(());
                    }
                }
            }
            if conn.spos == conn.sending.len() {
                conn.sending.clear();
                conn.spos = 0;
                return Ok(());
            }
        }
        self.submit_send(key)
    }

    /// A send SQE of `sending[spos..]`.
    fn submit_send(&mut self, key: usize) -> io::Result<()> {
        let conn = &mut self.conns[key];
        let fd = conn.fd.as_ref().expect("not closing").as_raw_fd();
        let rest = &conn.sending[conn.spos..];
        let len = rest.len().min(u32::MAX as usize) as u32;
        let sqe = opcode::Send::new(types::Fd(fd), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(Kind::Send, key));
        conn.send_in_flight = true;
        self.push(sqe)
    }

    /// Closes connection `key`: cancels what it has in the kernel, queues
    /// the close of its socket; its slot goes once its last CQE came.
    pub(super) fn close(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let Some(fd) = conn.fd.take() else {
            return;
        };
        conn.want_recv = false;
        let (recv, send) = (conn.recv_armed, conn.send_in_flight);
        for (armed, kind) in [(recv, Kind::Recv), (send, Kind::Send)] {
            if armed {
                let cancel = opcode::AsyncCancel::new(user_data(kind, key))
                    .build()
                    .user_data(user_data(Kind::Ignore, key));
                // A full SQ submits, so the push cannot fail for room; an
                // enter error shows again at the turn's own enter.
                let _ = self.push(cancel);
            }
        }
        // The requests hold the socket until they end; the close releases
        // the fd number now. Ownership passes to the CLOSE request.
        let raw = fd.into_raw_fd();
        let close = opcode::Close::new(types::Fd(raw))
            .build()
            .user_data(user_data(Kind::Ignore, key));
        let _ = self.push(close);
        self.live -= 1;
        self.counts.closed += 1;
        if let Err(e) = self.resume_accepting() {
            eprintln!("userpoll-http: accepting again: {e}");
        }
    }

    /// Frees connection `key`'s slot (and its buffers) once it is closing
    /// and nothing of it is left in the kernel.
    fn reap_if_done(&mut self, key: usize) -> io::Result<()> {
        if let Some(c) = self.conns.get(key) {
            if c.closing() && !c.in_kernel() {
                self.conns.remove(key);
            }
        }
        Ok(())
    }
}
