//! The listening side of the completion loop: the multishot accept, its
//! pause at `max_connections` (cancel; connections accepted before the
//! cancel took effect are parked) and its resumption after a close, and
//! the signalfd's multishot poll.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use io_uring::{cqueue, opcode, types};
use userpoll::Counter;

use super::{user_data, Accepting, Kind, UringServer};
use crate::stats;

impl UringServer {
    pub(super) fn arm_accept(&mut self) -> io::Result<()> {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let sqe = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .flags(flags)
            .build()
            .user_data(user_data(Kind::Accept, 0));
        self.push(sqe)?;
        self.accepting = Accepting::Armed;
        Ok(())
    }

    /// A CQE of the multishot accept: a new connection, or an error.
    pub(super) fn on_accept(&mut self, res: i32, flags: u32) -> io::Result<()> {
        let ended = !cqueue::more(flags);
        if res >= 0 {
            // SAFETY: the kernel just made this fd for us; nothing else
            // owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            self.counts.accepted += 1;
            if self.live >= self.config.max_connections || !self.parked.is_empty() {
                self.parked.push_back(fd);
                self.pause_accepting();
            } else {
                self.start(fd)?;
                if self.live >= self.config.max_connections {
                    self.pause_accepting();
                }
            }
        } else {
            match -res {
                libc::ECANCELED => {}
                libc::ECONNABORTED | libc::EPROTO | libc::EINTR | libc::EAGAIN => {}
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    self.pause_accepting()
                }
                e => eprintln!("userpoll-http: accept: {}", io::Error::from_raw_os_error(e)),
            }
        }
        if ended {
            let ours = self.accepting == Accepting::Cancelling;
            self.accepting = Accepting::Off;
            if !ours && !self.accept_paused {
                self.counters.incr(Counter::RearmKernelEnded);
                self.arm_accept()?;
            }
        }
        Ok(())
    }

    /// Stops accepting until a connection closes (counted once a pause).
    pub(super) fn pause_accepting(&mut self) {
        if !self.accept_paused {
            self.accept_paused = true;
            self.counts.accept_paused += 1;
        }
        if self.accepting == Accepting::Armed {
            let cancel = opcode::AsyncCancel::new(user_data(Kind::Accept, 0))
                .build()
                .user_data(user_data(Kind::Ignore, 0));
            // A full SQ submits, so the push cannot fail for room; an
            // error of the enter shows at the next turn's enter.
            let _ = self.push(cancel);
            self.accepting = Accepting::Cancelling;
        }
    }

    /// After a close: serve parked connections, then accept again.
    pub(super) fn resume_accepting(&mut self) -> io::Result<()> {
        if self.stopping {
            return Ok(());
        }
        while self.live < self.config.max_connections {
            let Some(fd) = self.parked.pop_front() else {
                break;
            };
            self.start(fd)?;
        }
        if self.accept_paused && self.parked.is_empty() && self.live < self.config.max_connections {
            self.accept_paused = false;
            if self.accepting == Accepting::Off {
                self.arm_accept()?;
            }
            // Cancelling: its last CQE re-arms it (not ours any more).
            if self.accepting == Accepting::Cancelling {
                self.accepting = Accepting::Armed;
            }
        }
        Ok(())
    }

    /// Reads the signalfd; true when the server must stop.
    pub(super) fn on_signals(&mut self, flags: u32, out: &mut dyn Write) -> io::Result<bool> {
        let Some(fd) = &self.signals else {
            return Ok(false);
        };
        let stop = stats::answer_signals(fd.as_fd(), out, || self.report())?;
        if !cqueue::more(flags) {
            self.counters.incr(Counter::RearmKernelEnded);
            self.arm_signals()?;
        }
        Ok(stop)
    }

    /// Arms the multishot poll of the signalfd.
    pub(super) fn arm_signals(&mut self) -> io::Result<()> {
        let Some(fd) = &self.signals else {
            return Ok(());
        };
        let sqe = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(user_data(Kind::Signals, 0));
        self.push(sqe)
    }
}
