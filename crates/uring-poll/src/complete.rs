//! Completion handling: each CQE, the harvest of the CQ and recovery from
//! CQ overflow (S10).

use std::io;

use io_uring::cqueue;
use userpoll::table::Key;
use userpoll::{bits, Counter, Counters};

use crate::control::Registry;
use crate::owner::Owner;
use crate::reg::Ending;
use crate::sqe::{self, Kind};

/// Flushes of the CQ overflow list one take makes at most before it hands
/// out what it has merged.
const MAX_FLUSHES_PER_TAKE: usize = 64;

impl Owner {
    /// The re-arm counter for a request the kernel ended.
    fn end_cause(&self) -> Counter {
        if self.overflow_episode {
            Counter::RearmOverflow
        } else {
            Counter::RearmKernelEnded
        }
    }

    /// Handles one completion.
    pub(crate) fn complete(&mut self, cqe: &cqueue::Entry, g: &mut Registry, c: &Counters) {
        let (key, kind) = sqe::decode(cqe.user_data());
        let res = cqe.result();
        let more = cqueue::more(cqe.flags());
        match kind {
            Kind::Cancel => {}
            Kind::Wake => {
                if !more {
                    self.arm_wake();
                    c.incr(self.end_cause());
                }
            }
            Kind::Update => {
                if res == 0 {
                    return;
                }
                // -EALREADY: the poll's completion work was pending, so it
                // goes on unchanged under the old key: cancel it. -ENOENT:
                // it had ended (its last CQE was stale, not re-armed).
                if res != -libc::ENOENT {
                    let old = Key::new(key.slot() as u32, key.generation().wrapping_sub(1));
                    self.ring.push(sqe::cancel(old));
                }
                if let Some(reg) = g.table.get_mut(key) {
                    self.arm(reg);
                    c.incr(self.end_cause());
                }
            }
            Kind::Poll => {
                let Some(reg) = g.table.get_mut(key) else {
                    c.incr(Counter::StaleDropped);
                    return;
                };
                if res > 0 {
                    reg.extra.fired();
                    let mask = res as u32 & reg.interest.mask();
                    self.merged.merge(key, mask, c);
                }
                if more {
                    return;
                }
                let oneshot = reg.interest.is_oneshot();
                let ending = reg
                    .extra
                    .end(res, oneshot, self.rearm_mode, self.overflow_episode);
                match ending {
                    // S7: silent until modify; re-arm mode: at the take.
                    Ending::Wait => {}
                    Ending::GiveUp => self.merged.merge(key, bits::ERR, c),
                    // Re-arming now would only end again: while the overflow
                    // list is non-empty the kernel ends every multishot poll
                    // that fires. Re-arm once it is flushed; the event this
                    // completion carried is merged already.
                    Ending::AfterOverflow => self.overflow_rearm.push(key),
                    Ending::Rearm => {
                        self.arm(reg);
                        c.incr(Counter::RearmKernelEnded);
                    }
                }
            }
        }
    }

    /// Handles every CQE in the CQ; no system call.
    pub(crate) fn drain_cq(&mut self, g: &mut Registry, c: &Counters) -> usize {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        self.ring.read_cq(&mut batch);
        c.add(Counter::CqesSeen, batch.len() as u64);
        for cqe in &batch {
            self.complete(cqe, g, c);
        }
        let n = batch.len();
        self.batch = batch;
        n
    }

    /// Handles every completion, flushing the kernel's overflow list into
    /// the CQ (only `io_uring_enter(GETEVENTS)` does that) until it is
    /// empty. Polls the overflow ended carry no F_MORE (and their mask,
    /// merged like any other); they are re-armed once the list is empty
    /// (S10).
    pub(crate) fn harvest(&mut self, g: &mut Registry, c: &Counters) -> io::Result<()> {
        let mut flushes = 0;
        loop {
            let overflow = self.ring.cq_overflow();
            if overflow && !self.overflow_episode {
                self.overflow_episode = true;
                c.incr(Counter::OverflowRecoveries);
            }
            self.drain_cq(g, c);
            if overflow {
                if flushes == MAX_FLUSHES_PER_TAKE {
                    // Completions arrive as fast as we read them. Hand out
                    // what is merged; the next take goes on with the
                    // recovery (the episode stays open).
                    return Ok(());
                }
                flushes += 1;
                self.ring.flush_overflow(c)?;
                continue;
            }
            if self.overflow_rearm.is_empty() {
                self.overflow_episode = false;
                return Ok(());
            }
            self.rearm_overflowed(g, c)?;
        }
    }

    /// Re-arms requests the overflow ended, at most as many at a time as
    /// the CQ has room for, and hands them to the kernel at once, so that
    /// the arm-time completions of ready fds land in the CQ within this take
    /// instead of overflowing it again (re-arming all at once made a CQ of
    /// 64 with 10,000 ready fds overflow, end and re-arm a million times).
    /// The caller takes nothing meanwhile, so no fire in the gap goes
    /// unreported: arming checks readiness (S2). SQPOLL submits on its own
    /// thread: everything is re-armed at once there.
    fn rearm_overflowed(&mut self, g: &mut Registry, c: &Counters) -> io::Result<()> {
        let batch = self.ring.rearm_batch();
        let mut armed = 0;
        while armed < batch {
            let Some(key) = self.overflow_rearm.pop() else {
                break;
            };
            if let Some(reg) = g.table.get_mut(key) {
                if reg.extra.awaits_arm() {
                    self.arm(reg);
                    c.incr(Counter::RearmOverflow);
                    armed += 1;
                }
            }
        }
        self.ring.submit_rearms(armed, c)
    }
}
