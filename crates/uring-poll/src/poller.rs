//! The poller: one io_uring, the registration table, and the owner-side
//! loop that turns completions into userpoll events.
//!
//! Two halves, as the contract splits them:
//! - [`UringControl`] (any thread): changes the table under one mutex and
//!   queues an [`Op`] for the ring. When the owner is blocked in `wait`, it
//!   wakes it with one `write` to the poller's eventfd, which the ring
//!   polls (multishot, [`Kind::Wake`]). Control threads never enter the
//!   ring: with DEFER_TASKRUN they may not, and in the other profiles a
//!   poll armed by a control thread would run its completion work on that
//!   thread forever after.
//! - [`UringPoll`] (the owner): submits queued ops, reads the CQ in its own
//!   memory, drops stale completions by generation, re-arms what the kernel
//!   ended, merges completions per registration (S3) and hands out events.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use io_uring::{cqueue, squeue, types, EnterFlags, IoUring};
use userpoll::fork::ForkCheck;
use userpoll::sys::{deadline, error};
use userpoll::table::{Key, Table};
use userpoll::{
    bits, syscall, Control, Counter, Counters, Event, Events, Interest, Poller, Ready, Stats,
};

use crate::profile::{Profile, SETUP_CLAMP, SETUP_CQSIZE};
use crate::sqe::{self, Kind, MAX_CAPACITY};

/// Error completions in a row after which a registration is no longer
/// re-armed: the caller gets one event with `EPOLLERR` and should delete it.
const ERRORS_BEFORE_GIVING_UP: u8 = 3;

/// Flushes of the CQ overflow list one take makes at most before it hands
/// out what it has merged.
const MAX_FLUSHES_PER_TAKE: usize = 64;

/// The largest SQ a poller asks for; a longer burst of submissions waits
/// in the owner's backlog for the next `io_uring_enter`.
const MAX_SQ_ENTRIES: u32 = 4096;

/// What the table keeps per registration besides fd, interest and data.
#[derive(Debug, Default)]
struct RegState {
    /// The registration should have a request in the kernel: one is there
    /// or an op or re-arm will put it there. False once a oneshot fired,
    /// while a re-arm waits for the take, and after repeated errors.
    armed: bool,
    /// The owner has queued a POLL_ADD (or update) for this registration
    /// whose request has not ended yet as far as the owner knows: delete
    /// must cancel it, and modify may update it in place. False while the
    /// first POLL_ADD still waits in the op queue.
    in_ring: bool,
    /// Re-arm mode: the one-shot request ended with an event still to hand
    /// out; it is re-armed at the take after the caller got that event,
    /// and counted as this counter.
    rearm_on_take: Option<Counter>,
    /// Error completions in a row.
    errors: u8,
}

/// The POLL_ADD or in-place update a slot's registration waits for.
#[derive(Debug, Clone, Copy)]
enum ArmOp {
    /// POLL_ADD for this key, if it is still current when submitted.
    Arm(Key),
    /// In-place update of the multishot poll of `old` to the interest and
    /// user data of `new` (always `old`'s generation + 1: an update the
    /// kernel refuses is answered by cancelling generation - 1).
    Update { old: Key, new: Key },
}

/// Ring work control calls left for one slot since the owner last drained
/// the queue. At most one of each kind, whatever control threads do while
/// the owner is away: later calls replace or cancel earlier ones (below).
#[derive(Debug, Default)]
struct SlotOps {
    /// ASYNC_CANCEL of a request the owner put in the ring for this slot,
    /// under this key, whose registration was deleted or modified since.
    cancel: Option<Key>,
    /// POLL_ADD or update for the registration holding the slot.
    arm: Option<ArmOp>,
    /// Defer, from a thread that may not touch the ring: the file of the
    /// registration holding the slot, as a duplicate of its fd number `.0`
    /// made in `add` and closed once the owner installed it (or at once,
    /// if the registration is deleted first).
    install: Option<(RawFd, OwnedFd)>,
    /// Defer: empty the fixed-file slot, unless a registration holds it
    /// by then (its own install replaces the file).
    clear: bool,
    /// The slot is listed in `Ops::dirty`.
    dirty: bool,
}

impl SlotOps {
    fn count(&self) -> usize {
        self.cancel.is_some() as usize
            + self.arm.is_some() as usize
            + self.install.is_some() as usize
            + self.clear as usize
    }
}

/// The ring work control calls leave for the owner, per slot: bounded by
/// the capacity (at most four ops and one duplicate fd per slot), however
/// many `add`/`modify`/`delete` calls come while the owner does not take.
///
/// Coalescing, when a control call finds work of the same slot queued:
/// - delete: drops the queued POLL_ADD and install (closing the duplicate
///   fd at once); a queued in-place update becomes a cancel of the request
///   it would have updated; an armed request gets a cancel.
/// - modify: a queued POLL_ADD is replaced by one for the new key; a
///   queued in-place update becomes a cancel of the old request plus a
///   POLL_ADD for the new key (two updates are never merged into one: the
///   refusal recovery cancels the update's generation - 1).
///
/// Across slots nothing depends on order. Within a slot the owner does
/// the cancel, then the file (clear, install), then the POLL_ADD or update.
#[derive(Debug)]
struct Ops {
    slots: Vec<SlotOps>,
    /// Slots with work, each once, in the order they got it.
    dirty: Vec<u32>,
    /// Cancels that found another cancel of the slot queued: never
    /// expected (a cancel is queued only when the slot's registration
    /// leaves the ring, and none re-enters it before the owner drains),
    /// kept so that no request is forgotten if it happens.
    spill: Vec<Key>,
}

impl Ops {
    fn new(capacity: usize) -> Ops {
        Ops {
            slots: (0..capacity).map(|_| SlotOps::default()).collect(),
            dirty: Vec::new(),
            spill: Vec::new(),
        }
    }

    /// The work of `slot`, listed for the owner.
    fn slot(&mut self, slot: usize) -> &mut SlotOps {
        let ops = &mut self.slots[slot];
        if !ops.dirty {
            ops.dirty = true;
            self.dirty.push(slot as u32);
        }
        ops
    }

    /// The work of `slot` as it stands, without listing it.
    fn peek(&mut self, slot: usize) -> &mut SlotOps {
        &mut self.slots[slot]
    }

    fn cancel(&mut self, key: Key) {
        let ops = self.slot(key.slot());
        if let Some(earlier) = ops.cancel.replace(key) {
            debug_assert!(false, "two cancels queued for slot {}", key.slot());
            self.spill.push(earlier);
        }
    }

    /// Ops queued (for tests and `Debug`).
    fn len(&self) -> usize {
        self.spill.len()
            + self
                .dirty
                .iter()
                .map(|&s| self.slots[s as usize].count())
                .sum::<usize>()
    }

    /// Every slot's work, in the order the slots got it; leaves the queue
    /// empty.
    fn take(&mut self) -> (Vec<(u32, SlotOps)>, Vec<Key>) {
        let mut out = Vec::with_capacity(self.dirty.len());
        for slot in self.dirty.drain(..) {
            let ops = std::mem::take(&mut self.slots[slot as usize]);
            out.push((slot, ops));
        }
        (out, std::mem::take(&mut self.spill))
    }

    /// Drops all work (closing every queued duplicate fd).
    fn clear(&mut self) {
        drop(self.take());
    }
}

#[derive(Debug)]
struct Registry {
    table: Table<RegState>,
    pending: Ops,
    /// The owner is (about to be) blocked in `io_uring_enter`; the next
    /// control call must wake it.
    waiting: bool,
    /// A wake ([`Control::wake`]) not yet seen by a `wait`.
    woken: bool,
    /// The poller is gone; control calls only keep the table.
    closed: bool,
    /// The ring, for fixed-file updates from control calls. Valid while
    /// `!closed`; replaced under the lock when a Defer ring is rebuilt.
    ring_fd: RawFd,
    /// Defer: the thread the ring is enabled on. From then on only that
    /// thread may update the fixed-file table, so other threads queue it.
    enabled_on: Option<ThreadId>,
    /// Per slot: the serial of the registration that holds it, 0 if free.
    /// A serial names one `add` across its modifies (keys change on
    /// modify); a queued `Install` or `Clear` checks it.
    serial: Vec<u64>,
    /// The last serial given.
    last_serial: u64,
}

impl Registry {
    /// Whether this control call may update the fixed-file table itself:
    /// any profile but Defer, Defer before the ring is enabled, and Defer
    /// on the owner thread.
    fn files_inline(&self) -> bool {
        self.enabled_on
            .map_or(true, |t| t == thread::current().id())
    }
}

/// `io_uring_register(IORING_REGISTER_FILES_UPDATE)`: puts the file of `fd`
/// (or nothing, for -1) in fixed-file `slot` of `ring_fd`. The table then
/// holds its own reference to the file, so the fd may be closed.
fn files_update(ring_fd: RawFd, slot: usize, fd: RawFd) -> io::Result<()> {
    const IORING_REGISTER_FILES_UPDATE: libc::c_long = 6;
    #[repr(C)]
    struct FilesUpdate {
        offset: u32,
        resv: u32,
        fds: u64,
    }
    let fds = [fd];
    let up = FilesUpdate {
        offset: slot as u32,
        resv: 0,
        fds: fds.as_ptr() as u64,
    };
    // SAFETY: `up` and the one-element `fds` it points to are live for the
    // call; the kernel reads them and writes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            IORING_REGISTER_FILES_UPDATE,
            &up as *const FilesUpdate,
            1 as libc::c_long,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The EBADF of an fd a fixed-file install refuses, saying which kind:
/// closed, `O_PATH`, or an io_uring.
fn refused_file(fd: RawFd, kind: Refused) -> io::Error {
    let msg = match kind {
        Refused::Closed => {
            format!("fd {fd} is not an open file descriptor; register an fd that is open")
        }
        Refused::Path => format!(
            "fd {fd} was opened with O_PATH, which cannot be polled (epoll refuses it too); \
             open the file without O_PATH"
        ),
        Refused::Uring => format!(
            "fd {fd} is an io_uring, which io_uring cannot poll through its fixed-file table; \
             wait on that ring itself, or use the epoll-ring backend for it"
        ),
    };
    error(libc::EBADF, msg)
}

#[derive(Debug, Clone, Copy)]
enum Refused {
    Closed,
    Path,
    Uring,
}

/// `fstat` of `fd`; EBADF (with what to do) for a closed fd, naming it
/// `name` (the caller's number for a duplicate we check).
fn fstat(fd: RawFd, name: RawFd, c: &Counters) -> io::Result<libc::stat> {
    c.incr(Counter::OtherSyscall);
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is live and large enough for the kernel's stat; on
    // success the kernel wrote all of it.
    match unsafe { syscall!(fstat(fd, st.as_mut_ptr())) } {
        // SAFETY: fstat succeeded, so `st` is initialised.
        Ok(_) => Ok(unsafe { st.assume_init() }),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Err(refused_file(name, Refused::Closed)),
        Err(e) => Err(e),
    }
}

/// Whether epoll accepts `fd` (it refuses a file without poll support
/// with EPERM, and an `O_PATH` fd with EBADF): an `epoll_ctl(ADD)` on a
/// scratch epoll instance, closed at once (three system calls). Made only
/// for regular files, directories and devices, where the file type does
/// not tell (procfs and sysfs files, terminals and some devices poll).
fn epoll_accepts(fd: RawFd, name: RawFd, c: &Counters) -> io::Result<()> {
    c.add(Counter::OtherSyscall, 3);
    // SAFETY: plain system call with no pointers.
    let ep = unsafe { syscall!(epoll_create1(libc::EPOLL_CLOEXEC)) }?;
    // SAFETY: epoll_create1 returned a new fd that nothing else owns; the
    // OwnedFd closes it (the third system call).
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY: `ev` is live for the call; the kernel only reads it.
    match unsafe { syscall!(epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev)) } {
        Ok(_) => Ok(()),
        Err(e) => match e.raw_os_error() {
            Some(libc::EPERM) => Err(error(
                libc::EPERM,
                format_args!(
                    "fd {name} is a file the kernel cannot poll (a regular file, directory or \
                     device without poll support; epoll refuses it with EPERM too): it never \
                     blocks, so read or write it directly; register sockets, pipes, eventfds, \
                     terminals and other pollable fds"
                ),
            )),
            Some(libc::EBADF) => Err(refused_file(name, Refused::Path)),
            _ => Err(e),
        },
    }
}

/// What `add` checks of the file behind `fd` before it changes any state,
/// the same from every thread (S9):
/// - EBADF for a closed fd, an `O_PATH` fd or an io_uring (what the
///   fixed-file install refuses; epoll refuses the first two as well);
/// - EPERM for a file the kernel cannot poll (what epoll refuses).
///
/// `fd` is checked, `name` is the caller's number for it (they differ for
/// a duplicate). `installs` says the caller installs the file at once, which checks
/// `O_PATH` and io_uring itself; otherwise (a Defer add queued for the
/// owner) they are checked here. Sockets, FIFOs and anonymous-inode files
/// (eventfd, timerfd, signalfd, epoll, pidfd, ...) always poll: one
/// `fstat`, plus one `fcntl` when queued. Everything else gets an exact
/// probe ([`epoll_accepts`]).
fn check_file(
    fd: RawFd,
    name: RawFd,
    installs: bool,
    anon: (u64, u64),
    c: &Counters,
) -> io::Result<()> {
    let st = fstat(fd, name, c)?;
    let kind = st.st_mode & libc::S_IFMT;
    if !matches!(kind, libc::S_IFSOCK | libc::S_IFIFO | 0) {
        return epoll_accepts(fd, name, c);
    }
    if installs {
        return Ok(());
    }
    c.incr(Counter::OtherSyscall);
    // SAFETY: plain system call with no pointers.
    let flags = unsafe { syscall!(fcntl(fd, libc::F_GETFL)) }?;
    if flags & libc::O_PATH != 0 {
        return Err(refused_file(name, Refused::Path));
    }
    // An anonymous-inode file with an inode of its own (not eventfd's
    // shared one) may be an io_uring: its /proc link names it.
    if kind == 0 && (st.st_dev as u64, st.st_ino as u64) != anon && is_io_uring(fd, c) {
        return Err(refused_file(name, Refused::Uring));
    }
    Ok(())
}

/// Whether `fd` is an io_uring, from its `/proc/self/fd` link (one
/// `readlink`; false when /proc is not there).
fn is_io_uring(fd: RawFd, c: &Counters) -> bool {
    c.incr(Counter::OtherSyscall);
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|l| l.as_os_str() == "anon_inode:[io_uring]")
}

/// The EBADF of a refused inline install, telling closed, `O_PATH` and
/// io_uring fds apart (one `fcntl`, on this error path only).
fn explain_refused(fd: RawFd, e: io::Error, c: &Counters) -> io::Error {
    if e.raw_os_error() != Some(libc::EBADF) {
        return e;
    }
    c.incr(Counter::OtherSyscall);
    // SAFETY: plain system call with no pointers.
    match unsafe { syscall!(fcntl(fd, libc::F_GETFL)) } {
        Err(_) => refused_file(fd, Refused::Closed),
        Ok(flags) if flags & libc::O_PATH != 0 => refused_file(fd, Refused::Path),
        Ok(_) => refused_file(fd, Refused::Uring),
    }
}

#[derive(Debug)]
struct UringShared {
    shared: Mutex<Registry>,
    counters: Counters,
    /// Polled by the ring; a write wakes the owner.
    wake: OwnedFd,
    /// One-shot POLL_ADD re-armed after every event, instead of multishot.
    rearm_mode: bool,
    /// The process the poller was made in: every entry point fails with
    /// EPERM in a forked child (one relaxed atomic load).
    process: ForkCheck,
    /// `st_dev` and `st_ino` of the anonymous inode eventfd, timerfd and
    /// the like share (that of `wake`): files on it are never io_urings.
    anon: (u64, u64),
}

impl UringShared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every mutation under the lock is a single table call or push, so
        // a poisoned lock still guards a consistent state.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a successful control call: counts it and wakes the owner if it
    /// is blocked (once: the owner drains every queued op when it wakes).
    fn finish(&self, mut g: MutexGuard<'_, Registry>) {
        let wake = std::mem::replace(&mut g.waiting, false);
        drop(g);
        self.counters.incr(Counter::ControlOps);
        if wake {
            self.write_wake_fd();
        }
    }

    /// Wakes the owner blocked in `io_uring_enter`: one `write` to the
    /// eventfd the ring polls.
    fn write_wake_fd(&self) {
        self.counters.incr(Counter::OtherSyscall);
        // Cannot fail on our own open eventfd.
        let _ = userpoll::sys::eventfd_signal(self.wake.as_fd());
    }
}

/// The control handle of a [`UringPoll`]: `add`, `modify` and `delete`
/// from any thread (S11). Cheap to clone; clones share one poller.
///
/// A call changes the registration table at once (so S5 and S9 hold when
/// it returns) and leaves the ring work (POLL_ADD, update, cancel) to the
/// owner, waking it when it is blocked in `wait`.
#[derive(Clone)]
pub struct UringControl {
    inner: Arc<UringShared>,
}

impl fmt::Debug for UringControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.inner.lock();
        f.debug_struct("UringControl")
            .field("registrations", &g.table.len())
            .field("pending_ops", &g.pending.len())
            .finish()
    }
}

impl UringControl {
    /// Ring operations control calls have queued for the owner and it has
    /// not taken yet. Bounded by four per registration slot, whatever
    /// control threads do while the owner is away (tests check it).
    #[doc(hidden)]
    pub fn pending_ops(&self) -> usize {
        self.inner.lock().pending.len()
    }
}

impl Control for UringControl {
    fn add(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        self.inner.process.check()?;
        let raw = fd.as_raw_fd();
        let inner = &*self.inner;
        let c = &inner.counters;
        let mut g = inner.lock();
        g.table.check_insert(raw, interest)?;
        let inline = g.files_inline() && !g.closed;
        let dup = if inline || g.closed {
            None
        } else {
            // Defer, another thread: hold the file with a duplicate fd until
            // the owner installs it, so closing or reusing the number after
            // add returns cannot change what is polled (S13). The dup is
            // also the check for a closed fd (S9).
            c.incr(Counter::OtherSyscall);
            Some(
                fd.try_clone_to_owned()
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::EBADF) => refused_file(raw, Refused::Closed),
                        _ => e,
                    })?,
            )
        };
        // The same errors from every thread (S9), before anything changes:
        // what the install refuses, checked here when the install is not
        // made now, and what epoll refuses. A refused dup closes as it
        // drops.
        let checked = dup.as_ref().map_or(raw, |d| d.as_raw_fd());
        if let Err(e) = check_file(checked, raw, inline, inner.anon, c) {
            if dup.is_some() {
                c.incr(Counter::OtherSyscall); // its close
            }
            return Err(e);
        }
        let state = RegState {
            armed: true,
            ..RegState::default()
        };
        let key = g.table.insert(raw, interest, data, state)?;
        g.last_serial += 1;
        g.serial[key.slot()] = g.last_serial;
        if inline {
            // Install the file now, before add returns: whatever the caller
            // does with the fd number afterwards, the poll reaches this file
            // (S13). This is also the EBADF check (S9).
            c.incr(Counter::OtherSyscall);
            if let Err(e) = files_update(g.ring_fd, key.slot(), raw) {
                g.table.remove(raw).expect("just inserted");
                g.serial[key.slot()] = 0;
                return Err(explain_refused(raw, e, c));
            }
            g.pending.slot(key.slot()).arm = Some(ArmOp::Arm(key));
        } else if let Some(dup) = dup {
            // The slot was free: no POLL_ADD or install of it is queued
            // (a delete drops them).
            let ops = g.pending.slot(key.slot());
            debug_assert!(ops.arm.is_none() && ops.install.is_none());
            ops.install = Some((raw, dup));
            ops.arm = Some(ArmOp::Arm(key));
        }
        self.inner.finish(g);
        Ok(())
    }

    fn modify(&self, fd: BorrowedFd<'_>, interest: Interest, data: u64) -> io::Result<()> {
        self.inner.process.check()?;
        interest.validate()?;
        let raw = fd.as_raw_fd();
        let mut g = self.inner.lock();
        let Registry {
            table,
            pending,
            closed,
            ..
        } = &mut *g;
        let old_interest = table.by_fd(raw)?.interest;
        let (old, reg) = table.modify(raw, interest, data)?;
        let new = reg.key;
        // An update refused with -EALREADY is answered by cancelling the
        // old request, found as generation - 1 of the new key.
        debug_assert_eq!(new.generation(), old.generation().wrapping_add(1));
        // In place only from multishot to multishot: an update cannot turn
        // a one-shot poll into a multishot one or back.
        // (A POLL_ADD still in the op queue is simply skipped as stale and
        // replaced by one for the new key.)
        let in_place = !self.inner.rearm_mode
            && !old_interest.is_oneshot()
            && !interest.is_oneshot()
            && reg.extra.in_ring;
        let mut in_ring = in_place;
        if !*closed {
            let queued = pending.peek(new.slot()).arm;
            match queued {
                // The update has not left: cancel the request it would
                // have updated and arm afresh (two updates are not merged
                // into one; see `Ops`).
                Some(ArmOp::Update { old: armed, .. }) => {
                    pending.cancel(armed);
                    pending.slot(new.slot()).arm = Some(ArmOp::Arm(new));
                    in_ring = false;
                }
                // The POLL_ADD has not left: arm the new key instead.
                Some(ArmOp::Arm(_)) => {
                    pending.slot(new.slot()).arm = Some(ArmOp::Arm(new));
                    in_ring = false;
                }
                None if in_place => {
                    pending.slot(new.slot()).arm = Some(ArmOp::Update { old, new });
                }
                None => {
                    if reg.extra.in_ring {
                        pending.cancel(old);
                    }
                    pending.slot(new.slot()).arm = Some(ArmOp::Arm(new));
                }
            }
        }
        reg.extra = RegState {
            armed: true,
            in_ring,
            ..RegState::default()
        };
        self.inner.finish(g);
        Ok(())
    }

    fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.inner.process.check()?;
        let raw = fd.as_raw_fd();
        let mut g = self.inner.lock();
        let reg = g.table.remove(raw)?;
        g.serial[reg.key.slot()] = 0;
        if !g.closed {
            let slot = reg.key.slot();
            let ops = g.pending.peek(slot);
            // Queued work of this registration that has not left goes now:
            // its POLL_ADD, and its install with the duplicate fd.
            let arm = ops.arm.take();
            let installed = match ops.install.take() {
                None => true,
                Some(_dup) => {
                    self.inner.counters.incr(Counter::OtherSyscall); // its close
                    false
                }
            };
            match arm {
                Some(ArmOp::Update { old, .. }) => g.pending.cancel(old),
                Some(ArmOp::Arm(_)) => {}
                None if reg.extra.in_ring => g.pending.cancel(reg.key),
                None => {}
            }
            if g.files_inline() {
                // Releases the table's reference to the file. A poll still
                // running on it keeps the file until its cancel completes.
                self.inner.counters.incr(Counter::OtherSyscall);
                let _ = files_update(g.ring_fd, slot, -1);
            } else if installed {
                // An install dropped above never put its file there.
                g.pending.slot(slot).clear = true;
            }
        }
        self.inner.finish(g);
        Ok(())
    }

    fn wake(&self) -> io::Result<()> {
        self.inner.process.check()?;
        let mut g = self.inner.lock();
        g.woken = true;
        // Writes the ring's wake-up eventfd only if the owner is blocked.
        let wake = std::mem::replace(&mut g.waiting, false);
        drop(g);
        if wake {
            self.inner.write_wake_fd();
        }
        Ok(())
    }
}

/// A registration's completions merged since its event was last taken.
#[derive(Debug, Clone, Copy, Default)]
struct Merged {
    generation: u32,
    mask: u32,
    queued: bool,
}

/// Everything only the owner touches: the ring, the merge buffer and the
/// queue of registrations with an event to hand out.
struct Owner {
    ring: IoUring,
    profile: Profile,
    rearm_mode: bool,
    capacity: usize,
    sq_wanted: u32,
    cq_wanted: u32,
    /// Per slot: the OR of the masks of completions not yet taken (S3).
    merged: Vec<Merged>,
    /// Slots with a merged event, each at most once, oldest first.
    queue: VecDeque<u32>,
    /// SQEs that did not fit in the SQ; they go at the next enter.
    backlog: VecDeque<squeue::Entry>,
    /// CQEs copied out of the CQ, so the CQ is free while they are handled.
    batch: Vec<cqueue::Entry>,
    /// Defer: the thread the ring is enabled on (its single issuer).
    thread: Option<ThreadId>,
    /// Re-arm mode: registrations whose event was handed out; re-armed at
    /// the start of the next take, after the caller has handled it.
    rearm_next: Vec<Key>,
    /// Requests a CQ overflow ended, re-armed once the overflow is flushed.
    overflow_rearm: Vec<Key>,
    /// A CQ overflow is being recovered: ended polls count as overflow
    /// re-arms.
    overflow_episode: bool,
    wake_fd: RawFd,
    /// SQEs queued since the counters were last updated.
    queued_sqes: u64,
    /// An in-place update waits in the SQ (or backlog).
    update_queued: bool,
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owner")
            .field("profile", &self.profile)
            .field("rearm_mode", &self.rearm_mode)
            .field("params", self.ring.params())
            .field("queued_events", &self.queue.len())
            .field("backlog", &self.backlog.len())
            .field("thread", &self.thread)
            .finish()
    }
}

/// The timespec `io_uring_enter` waits for at most `d`: its seconds are a
/// signed 64-bit field, so a longer wait is clamped to `i64::MAX` seconds
/// (about 292 billion years). Unclamped, io-uring's `Timespec` cast
/// `u64::MAX` seconds to -1 and the kernel returned at once, so
/// `wait(Some(Duration::MAX))` spun.
fn kernel_timespec(d: Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(d.as_secs().min(i64::MAX as u64))
        .nsec(d.subsec_nanos())
}

fn key_of(slot: usize, generation: u32) -> Key {
    Key::new(slot as u32, generation)
}

fn is_errno(e: &io::Error, errnos: &[i32]) -> bool {
    e.raw_os_error().is_some_and(|n| errnos.contains(&n))
}

impl Owner {
    /// Puts `e` in the SQ, or in the backlog when the SQ is full.
    fn queue_sqe(&mut self, e: squeue::Entry) {
        self.queued_sqes += 1;
        if self.backlog.is_empty() {
            // Our SQEs (POLL_ADD, POLL_REMOVE, ASYNC_CANCEL) name fds checked
            // open at add, and the kernel takes its own file reference.
            // SAFETY: they carry no pointers to buffers that could dangle.
            if unsafe { self.ring.submission().push(&e) }.is_ok() {
                return;
            }
        }
        self.backlog.push_back(e);
    }

    /// Moves what fits of the backlog into the SQ; the number of SQEs the
    /// SQ then holds.
    fn fill_sq(&mut self) -> u32 {
        let mut sq = self.ring.submission();
        while let Some(e) = self.backlog.front() {
            // SAFETY: as in queue_sqe.
            if unsafe { sq.push(e) }.is_err() {
                break;
            }
            self.backlog.pop_front();
        }
        sq.sync();
        sq.len() as u32
    }

    fn enter(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: EnterFlags,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        // Always the plain ring fd, never one registered with the owner
        // thread (IORING_REGISTER_RING_FDS): a registration holds the ring,
        // and every file its polls hold, until the thread that made it
        // unregisters it or exits, so a poller dropped or moved away from
        // that thread kept the caller's files open (pitfall 8).
        let fd = self.ring.as_raw_fd() as libc::c_long;
        let ts = timeout.map(kernel_timespec);
        let args = ts.as_ref().map(|ts| types::SubmitArgs::new().timespec(ts));
        let (flags, arg, size) = match &args {
            Some(a) => (
                flags | EnterFlags::EXT_ARG,
                a as *const types::SubmitArgs<'_, '_> as *const libc::c_void,
                std::mem::size_of::<types::SubmitArgs<'_, '_>>(),
            ),
            None => (flags, std::ptr::null(), 0),
        };
        // The SQ entries up to its tail are initialised SQEs pushed through
        // SubmissionQueue::push; EXT_ARG is set exactly when `arg` is.
        // SAFETY: `arg` points to a live io_uring_getevents_arg (SubmitArgs)
        // whose timespec outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                fd,
                to_submit as libc::c_long,
                min_complete as libc::c_long,
                flags.bits() as libc::c_long,
                arg,
                size as libc::c_long,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }

    fn is_sqpoll(&self) -> bool {
        self.profile == Profile::Sqpoll
    }

    /// SQPOLL: whether the SQ thread sleeps and needs SQ_WAKEUP.
    fn sq_needs_wakeup(&mut self) -> bool {
        // The kernel sets NEED_WAKEUP and then re-checks the tail; this
        // fence orders our tail store before our flag load (see
        // io_uring_enter(2), SQPOLL).
        fence(Ordering::SeqCst);
        self.ring.submission().need_wakeup()
    }

    /// `fill_sq` for an enter that submits: what it hands over includes
    /// any queued update.
    fn submitted(&mut self) -> u32 {
        let n = self.fill_sq();
        if self.backlog.is_empty() {
            self.update_queued = false;
        }
        n
    }

    /// Hands every queued SQE to the kernel without waiting.
    fn submit(&mut self, c: &Counters) -> io::Result<()> {
        loop {
            let n = self.submitted();
            if n == 0 {
                return Ok(());
            }
            if self.is_sqpoll() {
                if self.sq_needs_wakeup() {
                    c.incr(Counter::EnterSubmit);
                    self.enter(0, 0, EnterFlags::SQ_WAKEUP, None)?;
                }
                if self.backlog.is_empty() {
                    return Ok(());
                }
                c.incr(Counter::EnterSubmit);
                self.enter(0, 0, EnterFlags::SQ_WAIT, None)?;
                continue;
            }
            c.incr(Counter::EnterSubmit);
            match self.enter(n, 0, EnterFlags::empty(), None) {
                Ok(0) => return Ok(()),
                Ok(_) if self.backlog.is_empty() => return Ok(()),
                Ok(_) => {}
                Err(e) if is_errno(&e, &[libc::EINTR]) => {}
                // The CQ is overflowing: the entries stay in the SQ and go
                // with the next enter, after the overflow is flushed.
                Err(e) if is_errno(&e, &[libc::EBUSY, libc::EAGAIN]) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Submits what is queued and blocks until a completion or `timeout`.
    fn enter_wait(&mut self, timeout: Option<Duration>, c: &Counters) -> io::Result<()> {
        let n = self.submitted();
        let mut flags = EnterFlags::GETEVENTS;
        if self.is_sqpoll() && self.sq_needs_wakeup() {
            flags |= EnterFlags::SQ_WAKEUP;
        }
        c.incr(Counter::EnterWait);
        match self.enter(n, 1, flags, timeout) {
            Ok(_) => Ok(()),
            Err(e) if is_errno(&e, &[libc::ETIME, libc::EINTR, libc::EBUSY, libc::EAGAIN]) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether SQEs wait to be handed to the kernel.
    fn has_queued_sqes(&mut self) -> bool {
        !self.backlog.is_empty() || !self.ring.submission().is_empty()
    }

    /// Submits what is queued and collects what that posts at once (the
    /// arm-time completions of ready fds) without waiting: under Coop and
    /// Default they run on this thread as the enter returns; under Defer
    /// they run when asked for (as many as the take and the CQ can hold,
    /// zero timeout); under SQPOLL they come when the kernel thread gets to
    /// them.
    fn submit_and_collect(&mut self, want: usize, c: &Counters) -> io::Result<()> {
        if self.is_sqpoll() {
            return self.submit(c);
        }
        let n = self.submitted();
        let (min_complete, timeout) = self.getevents_args(want);
        c.incr(Counter::EnterSubmit);
        self.enter_getevents(n, min_complete, timeout)
    }

    /// `min_complete` and timeout of a non-blocking GETEVENTS enter. Defer:
    /// ask for `want` completions, but no more than the CQ has room for
    /// (more would overflow it), with a zero timeout; others: 0 and none.
    fn getevents_args(&mut self, want: usize) -> (u32, Option<Duration>) {
        if self.profile != Profile::Defer {
            return (0, None);
        }
        let cq = self.ring.completion();
        let room = cq.capacity() - cq.len();
        drop(cq);
        (
            want.min(room).clamp(1, u32::MAX as usize) as u32,
            Some(Duration::ZERO),
        )
    }

    /// Coop and Defer: whether completion work waits for an enter of ours.
    fn taskrun_pending(&mut self) -> bool {
        self.profile.needs_enter_for_taskrun() && self.ring.submission().taskrun()
    }

    /// Runs pending completion work (and submits) without waiting.
    ///
    /// Defer: the kernel runs at most `max(20, min_complete)` deferred
    /// completions per enter, so asking for `want` completions (capped by
    /// the CQ's free room) with a zero timeout runs up to that many in one
    /// call (and returns -ETIME when fewer were pending) instead of one call
    /// per 20.
    ///
    /// Defer with an in-place update queued: run the pending completion
    /// work *without* submitting. Submitted first, the update would find
    /// the poll's completion work pending and be refused (-EALREADY), and
    /// cost a cancel and a new POLL_ADD; the SQ goes with the next enter.
    fn run_taskrun(&mut self, want: usize, c: &Counters) -> io::Result<()> {
        let n = if self.profile == Profile::Defer && self.update_queued {
            0
        } else {
            self.submitted()
        };
        let (min_complete, timeout) = self.getevents_args(want);
        c.incr(Counter::EnterWait);
        match self.enter(n, min_complete, EnterFlags::GETEVENTS, timeout) {
            Ok(_) => Ok(()),
            Err(e) if is_errno(&e, &[libc::ETIME, libc::EINTR, libc::EBUSY, libc::EAGAIN]) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// POLL_ADD for `reg`'s current key and interest.
    fn arm(&mut self, reg: &mut userpoll::table::Registration<RegState>) {
        let multishot = !self.rearm_mode && !reg.interest.is_oneshot();
        self.queue_sqe(sqe::poll_add(
            reg.key.slot() as u32,
            reg.interest.mask(),
            multishot,
            reg.key,
        ));
        reg.extra.armed = true;
        reg.extra.in_ring = true;
    }

    /// Multishot POLL_ADD of the wake-up eventfd.
    fn arm_wake(&mut self) {
        self.queue_sqe(sqe::poll_add_wake(self.wake_fd, bits::IN));
    }

    /// Turns the ops control calls queued into SQEs and fixed-file
    /// updates (see `Ops` for the order).
    fn drain_pending(&mut self, g: &mut Registry, c: &Counters) {
        if g.pending.dirty.is_empty() && g.pending.spill.is_empty() {
            return;
        }
        let Registry {
            table,
            ring_fd,
            serial: holder,
            pending,
            ..
        } = g;
        for key in pending.spill.drain(..) {
            self.queue_sqe(sqe::cancel(key));
        }
        // Not through `Ops::take`: no allocation per take.
        let mut dirty = std::mem::take(&mut pending.dirty);
        for &slot in &dirty {
            let ops = std::mem::take(&mut pending.slots[slot as usize]);
            if let Some(key) = ops.cancel {
                self.queue_sqe(sqe::cancel(key));
            }
            if ops.clear && holder[slot as usize] == 0 {
                c.incr(Counter::OtherSyscall);
                let _ = files_update(*ring_fd, slot as usize, -1);
            }
            if let Some((fd, file)) = ops.install {
                // The registration holding the slot (a delete drops its
                // install), whatever its key is after modifies.
                c.incr(Counter::OtherSyscall);
                if files_update(*ring_fd, slot as usize, file.as_raw_fd()).is_err() {
                    // Cannot happen for a file `add` accepted, short of
                    // ENOMEM; tell the caller once, it should delete.
                    if let Ok(reg) = table.by_fd_mut(fd) {
                        let key = reg.key;
                        reg.extra.armed = false;
                        self.merge(key, bits::ERR | bits::HUP, c);
                    }
                }
                // Closing the duplicate; the table holds the file now.
                c.incr(Counter::OtherSyscall);
                drop(file);
            }
            match ops.arm {
                // A key no longer current was deleted or modified before
                // its POLL_ADD left (coalescing replaces such ops; kept as
                // a guard).
                Some(ArmOp::Arm(key)) => {
                    if let Some(reg) = table.get_mut(key) {
                        if reg.extra.armed {
                            self.arm(reg);
                        }
                    }
                }
                Some(ArmOp::Update { old, new }) => {
                    let mask = table.get(new).map_or(bits::IN, |r| r.interest.mask());
                    self.queue_sqe(sqe::poll_update(old, new, mask));
                    self.update_queued = true;
                }
                None => {}
            }
        }
        dirty.clear();
        pending.dirty = dirty;
    }

    /// Re-arm mode: arms again every registration whose event the caller
    /// has taken since the last call.
    fn rearm_taken(&mut self, g: &mut Registry, c: &Counters) {
        let mut keys = std::mem::take(&mut self.rearm_next);
        for key in keys.drain(..) {
            if let Some(reg) = g.table.get_mut(key) {
                if let Some(cause) = reg.extra.rearm_on_take.take() {
                    self.arm(reg);
                    c.incr(cause);
                }
            }
        }
        self.rearm_next = keys;
    }

    /// The re-arm counter for a request the kernel ended.
    fn end_cause(&self) -> Counter {
        if self.overflow_episode {
            Counter::RearmOverflow
        } else {
            Counter::RearmKernelEnded
        }
    }

    /// Adds `mask` to the merged event of `key`'s slot (S3).
    fn merge(&mut self, key: Key, mask: u32, c: &Counters) {
        let slot = key.slot();
        let m = &mut self.merged[slot];
        if m.queued && m.generation == key.generation() {
            m.mask |= mask;
            c.incr(Counter::FiresCoalesced);
        } else if m.queued {
            // The queued one belongs to a deleted or modified registration.
            c.incr(Counter::StaleDropped);
            m.generation = key.generation();
            m.mask = mask;
        } else {
            *m = Merged {
                generation: key.generation(),
                mask,
                queued: true,
            };
            self.queue.push_back(slot as u32);
        }
    }

    /// Handles one completion.
    fn complete(&mut self, cqe: &cqueue::Entry, g: &mut Registry, c: &Counters) {
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
                    let old = key_of(key.slot(), key.generation().wrapping_sub(1));
                    self.queue_sqe(sqe::cancel(old));
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
                    reg.extra.errors = 0;
                    let mask = res as u32 & reg.interest.mask();
                    self.merge(key, mask, c);
                }
                if more {
                    return;
                }
                reg.extra.armed = false;
                reg.extra.in_ring = false;
                if res > 0 && reg.interest.is_oneshot() {
                    return; // S7: silent until modify
                }
                if res > 0 && self.rearm_mode {
                    reg.extra.rearm_on_take = Some(Counter::RearmMode);
                    return;
                }
                if res < 0 && res != -libc::ECANCELED {
                    reg.extra.errors += 1;
                    if reg.extra.errors >= ERRORS_BEFORE_GIVING_UP {
                        self.merge(key, bits::ERR, c);
                        return;
                    }
                }
                if self.overflow_episode {
                    // Re-arming now would only end again: while the overflow
                    // list is non-empty the kernel ends every multishot poll
                    // that fires. Re-arm once it is flushed; the event this
                    // completion carried is merged already.
                    reg.extra.armed = true;
                    self.overflow_rearm.push(key);
                    return;
                }
                self.arm(reg);
                c.incr(Counter::RearmKernelEnded);
            }
        }
    }

    /// Handles every CQE in the CQ; no system call.
    fn drain_cq(&mut self, g: &mut Registry, c: &Counters) -> usize {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        batch.extend(self.ring.completion());
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
    fn harvest(&mut self, g: &mut Registry, c: &Counters) -> io::Result<()> {
        let mut flushes = 0;
        loop {
            let overflow = self.ring.submission().cq_overflow();
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
                c.incr(Counter::EnterFlush);
                self.enter_getevents(0, 0, None)?;
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
        let room = {
            let cq = self.ring.completion();
            cq.capacity() - cq.len()
        };
        let batch = if self.is_sqpoll() {
            usize::MAX
        } else {
            room.max(1)
        };
        let mut armed = 0;
        while armed < batch {
            let Some(key) = self.overflow_rearm.pop() else {
                break;
            };
            if let Some(reg) = g.table.get_mut(key) {
                if reg.extra.armed && !reg.extra.in_ring {
                    self.arm(reg);
                    c.incr(Counter::RearmOverflow);
                    armed += 1;
                }
            }
        }
        if armed == 0 || self.is_sqpoll() {
            return Ok(());
        }
        let n = self.submitted();
        // Defer posts the completions only when asked to, as many as asked.
        let (min_complete, timeout) = if self.profile == Profile::Defer {
            (armed as u32, Some(Duration::ZERO))
        } else {
            (0, None)
        };
        c.incr(Counter::EnterFlush);
        self.enter_getevents(n, min_complete, timeout)
    }

    /// `io_uring_enter(GETEVENTS)` that does not wait beyond `timeout`;
    /// interruptions, a zero timeout expiring and a busy CQ are not errors.
    fn enter_getevents(
        &mut self,
        to_submit: u32,
        min_complete: u32,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        match self.enter(to_submit, min_complete, EnterFlags::GETEVENTS, timeout) {
            Ok(_) => Ok(()),
            Err(e) if is_errno(&e, &[libc::ETIME, libc::EINTR, libc::EBUSY, libc::EAGAIN]) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves merged events into `events`, dropping those whose
    /// registration was deleted or modified since (S5).
    fn emit(&mut self, g: &mut Registry, events: &mut Events, c: &Counters) {
        while !events.is_full() {
            let Some(slot) = self.queue.pop_front() else {
                break;
            };
            let m = &mut self.merged[slot as usize];
            m.queued = false;
            let (generation, mask) = (m.generation, m.mask);
            match g.table.get_mut(key_of(slot as usize, generation)) {
                None => c.incr(Counter::StaleDropped),
                Some(reg) => {
                    events.push(Event::new(reg.data, Ready::from_bits(mask)));
                    if reg.extra.rearm_on_take.is_some() {
                        self.rearm_next.push(reg.key);
                    }
                }
            }
        }
    }

    /// Defer: makes this thread the ring's single issuer, enabling the
    /// ring on first use, or moving the poller to a new ring when it was
    /// taken to another thread (only the enabling thread may enter).
    fn ensure_thread(&mut self, inner: &UringShared) -> io::Result<()> {
        if self.profile != Profile::Defer {
            return Ok(());
        }
        let me = thread::current().id();
        match self.thread {
            Some(t) if t == me => Ok(()),
            None => {
                let mut g = inner.lock();
                inner.counters.incr(Counter::OtherSyscall);
                self.ring.submitter().register_enable_rings()?;
                g.enabled_on = Some(me);
                self.thread = Some(me);
                self.arm_wake();
                Ok(())
            }
            Some(_) => self.migrate(inner),
        }
    }

    /// Defer, on a new thread: handles the completions the old ring had
    /// posted, replaces it with a ring enabled on this thread and arms
    /// every armed registration there (arming finds ready fds, S4). Closing
    /// the old ring cancels its polls.
    fn migrate(&mut self, inner: &UringShared) -> io::Result<()> {
        let c = &inner.counters;
        let mut g = inner.lock();
        self.drain_cq(&mut g, c);
        let ring = new_ring(self.profile, self.sq_wanted, self.cq_wanted, self.capacity)?;
        c.add(Counter::OtherSyscall, 2);
        ring.submitter().register_enable_rings()?;
        self.ring = ring;
        g.ring_fd = self.ring.as_raw_fd();
        g.enabled_on = Some(thread::current().id());
        self.backlog.clear();
        self.overflow_episode = false;
        self.overflow_rearm.clear();
        self.update_queued = false;
        // The new ring's file table is empty: install every registration's
        // file again, from the duplicate a queued add still holds, else by
        // fd number (the one place that trusts the number to still name the
        // registered file; see docs/uring-poll.md). Queued ring work for the
        // old ring is void; every armed registration is armed afresh.
        let (queued, _) = g.pending.take();
        let mut dups: Vec<Option<OwnedFd>> = (0..self.capacity).map(|_| None).collect();
        for (slot, ops) in queued {
            dups[slot as usize] = ops.install.map(|(_, file)| file);
        }
        let keys: Vec<Key> = g.table.iter().map(|r| r.key).collect();
        let ring_fd = g.ring_fd;
        for key in keys {
            let Some(reg) = g.table.get_mut(key) else {
                continue;
            };
            let dup = dups[key.slot()].take();
            let fd = dup.as_ref().map_or(reg.fd, |d| d.as_raw_fd());
            c.incr(Counter::OtherSyscall);
            if files_update(ring_fd, key.slot(), fd).is_err() {
                reg.extra.armed = false;
                self.merge(key, bits::ERR | bits::HUP, c);
            } else if reg.extra.armed {
                self.arm(reg);
            }
        }
        self.thread = Some(thread::current().id());
        self.arm_wake();
        Ok(())
    }
}

/// A ring of `profile` with a sparse fixed-file table of `capacity` slots,
/// one per registration slot.
fn new_ring(profile: Profile, sq: u32, cq: u32, capacity: usize) -> io::Result<IoUring> {
    let ring = profile.build(sq, cq)?;
    ring.submitter()
        .register_files_sparse(capacity as u32)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EMFILE) => error(
                libc::EMFILE,
                format_args!(
                    "a fixed-file table of {capacity} slots exceeds RLIMIT_NOFILE; raise the \
                     limit or create the poller with a smaller capacity"
                ),
            ),
            _ => e,
        })?;
    Ok(ring)
}

/// A userpoll poller on io_uring multishot poll: the owner of the ring.
///
/// `Send`, not `Sync`: one thread takes events at a time. Control calls go
/// through [`UringControl`] (from [`Poller::control`]) from any thread. With
/// [`Profile::Defer`] the first thread that takes events becomes the ring's
/// single issuer; taking events on another thread later rebuilds the ring
/// there (every registration is kept and re-armed).
///
/// Dropping it closes the ring, which cancels every poll and releases every
/// file it held; control handles that outlive it keep only the table.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use uring_poll::UringPoll;
/// use userpoll::{sys, Control, Events, Interest, Poller};
///
/// # fn main() -> std::io::Result<()> {
/// let Ok(mut poller) = UringPoll::new(1024) else { return Ok(()) }; // no io_uring here
/// let efd = sys::eventfd()?;
/// poller.control().add(efd.as_fd(), Interest::READABLE, 3)?;
/// // From another thread: end a blocked wait.
/// let control = poller.control().clone();
/// std::thread::spawn(move || control.wake());
/// let mut events = Events::with_capacity(64);
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?; // woken: returns
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct UringPoll {
    owner: Owner,
    control: UringControl,
}

/// Options for a [`UringPoll`]: profile, re-arm mode, CQ size.
///
/// ```
/// use uring_poll::{Profile, UringPoll};
/// use userpoll::Poller;
///
/// # fn main() -> std::io::Result<()> {
/// let built = UringPoll::builder()
///     .profile(Profile::Coop)   // 5.19+; Profile::Defer needs 6.1
///     .cq_entries(4096)         // else 2 x capacity + 64
///     .build(1024);
/// match built {
///     Ok(p) => assert_eq!(p.capacity(), 1024),
///     Err(e) => eprintln!("no coop ring here: {e}"), // says which flags
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    profile: Profile,
    rearm: bool,
    cq_entries: Option<u32>,
}

impl Builder {
    /// The default: [`Profile::Default`], multishot, CQ sized from the
    /// capacity.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The ring setup profile.
    pub fn profile(mut self, profile: Profile) -> Builder {
        self.profile = profile;
        self
    }

    /// Re-arm mode: every registration is a one-shot POLL_ADD that the
    /// poller submits again after each event it hands out (what monoio,
    /// glommio and compio do), instead of one multishot POLL_ADD armed once.
    /// Same contract; it exists to measure the cost of re-arming.
    pub fn rearm(mut self, rearm: bool) -> Builder {
        self.rearm = rearm;
        self
    }

    /// CQ entries (rounded up to a power of two, clamped by the kernel).
    /// The default, twice the capacity plus 64, keeps a steady state of up
    /// to two completions per registration per take out of overflow; a
    /// smaller CQ overflows sooner, which the poller recovers from (S10).
    pub fn cq_entries(mut self, entries: u32) -> Builder {
        self.cq_entries = Some(entries);
        self
    }

    /// A poller for at most `capacity` registrations (1 to 2^30 - 1).
    /// Fails with EINVAL for a capacity out of range, and with the cause
    /// (ENOSYS, EPERM, EOPNOTSUPP, ENOMEM) when the ring cannot be made.
    pub fn build(self, capacity: usize) -> io::Result<UringPoll> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(error(
                libc::EINVAL,
                format_args!(
                    "capacity {capacity} is out of range; give 1 to {MAX_CAPACITY} registrations"
                ),
            ));
        }
        let cq_wanted = self
            .cq_entries
            .unwrap_or_else(|| (capacity as u64 * 2 + 64).min(u32::MAX as u64) as u32)
            .max(2);
        let sq_wanted = (capacity as u32 + 1)
            .clamp(2, MAX_SQ_ENTRIES)
            .min(cq_wanted);
        let ring = new_ring(self.profile, sq_wanted, cq_wanted, capacity)?;
        // SAFETY: plain system call with no pointers.
        let wake = unsafe { syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)) }?;
        // SAFETY: eventfd returned a new fd that nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(wake) };
        let wake_fd = wake.as_raw_fd();
        let counters = Counters::new();
        let st = fstat(wake_fd, wake_fd, &counters)?;
        let inner = Arc::new(UringShared {
            shared: Mutex::new(Registry {
                table: Table::with_capacity(capacity)?,
                pending: Ops::new(capacity),
                waiting: false,
                woken: false,
                closed: false,
                ring_fd: ring.as_raw_fd(),
                enabled_on: None,
                serial: vec![0; capacity],
                last_serial: 0,
            }),
            counters,
            wake,
            rearm_mode: self.rearm,
            anon: (st.st_dev as u64, st.st_ino as u64),
            process: ForkCheck::new(),
        });
        let cq_len = ring.params().cq_entries() as usize;
        let mut owner = Owner {
            ring,
            profile: self.profile,
            rearm_mode: self.rearm,
            capacity,
            sq_wanted,
            cq_wanted,
            merged: vec![Merged::default(); capacity],
            queue: VecDeque::with_capacity(capacity),
            backlog: VecDeque::new(),
            batch: Vec::with_capacity(cq_len),
            thread: None,
            rearm_next: Vec::new(),
            overflow_rearm: Vec::new(),
            overflow_episode: false,
            wake_fd,
            queued_sqes: 0,
            update_queued: false,
        };
        if self.profile != Profile::Defer {
            owner.arm_wake();
        }
        Ok(UringPoll {
            owner,
            control: UringControl { inner },
        })
    }
}

impl UringPoll {
    /// A poller for at most `capacity` registrations with the default
    /// options ([`Profile::Default`], multishot).
    pub fn new(capacity: usize) -> io::Result<UringPoll> {
        Builder::new().build(capacity)
    }

    /// Options for a poller.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The setup profile.
    pub fn profile(&self) -> Profile {
        self.owner.profile
    }

    /// Whether this poller re-arms a one-shot poll after every event.
    pub fn is_rearm_mode(&self) -> bool {
        self.owner.rearm_mode
    }

    /// The flags given to `io_uring_setup` (profile flags plus
    /// `CQSIZE | CLAMP`), for environment reports.
    pub fn setup_flags(&self) -> u32 {
        self.owner.profile.setup_flags() | SETUP_CQSIZE | SETUP_CLAMP
    }

    /// SQ entries of the ring, as the kernel made it.
    pub fn sq_entries(&self) -> u32 {
        self.owner.ring.params().sq_entries()
    }

    /// CQ entries of the ring, as the kernel made it.
    pub fn cq_entries(&self) -> u32 {
        self.owner.ring.params().cq_entries()
    }

    /// One line for environment reports: profile, mode, flags, sizes.
    pub fn describe(&self) -> String {
        format!(
            "uring-poll profile={} mode={} setup_flags={:#x} sq={} cq={}",
            self.profile(),
            if self.is_rearm_mode() {
                "rearm"
            } else {
                "multishot"
            },
            self.setup_flags(),
            self.sq_entries(),
            self.cq_entries()
        )
    }
}

impl Drop for UringPoll {
    fn drop(&mut self) {
        if self.control.inner.process.is_child() {
            // Forked: the ring, its polls and the wake-up eventfd are the
            // parent's too. Touch nothing they share (no cancel, no files
            // update, no wake-up write; not even the lock, which a parent
            // thread may have held at the fork): dropping the fields only
            // unmaps the child's copy of the ring and closes the child's
            // copies of the fds, which leaves the parent's polls running.
            return;
        }
        // Control handles may outlive the poller: stop queueing ring work
        // nobody will submit. Closing the ring (dropping `owner`) cancels
        // every poll and releases the files they hold.
        let mut g = self.control.inner.lock();
        g.closed = true;
        g.pending.clear();
    }
}

impl Poller for UringPoll {
    type Control = UringControl;

    fn control(&self) -> &UringControl {
        &self.control
    }

    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let inner = &*self.control.inner;
        inner.process.check()?;
        let c = &inner.counters;
        let owner = &mut self.owner;
        owner.ensure_thread(inner)?;
        // A timeout too far away to add to now has no limit, as
        // `wait(None)` (userpoll::sys::deadline).
        let deadline = deadline(timeout);
        let mut ran_taskrun = false;
        let mut ran_submit = false;
        loop {
            {
                let mut g = inner.lock();
                g.waiting = false;
                owner.rearm_taken(&mut g, c);
                owner.drain_pending(&mut g, c);
                // Coop and Defer: completion work waits for an enter of
                // ours. Run it before reading the CQ, every time it is
                // pending, or completions posted inline at submission
                // could keep the CQ busy and starve it.
                if owner.taskrun_pending() {
                    owner.run_taskrun(events.remaining(), c)?;
                }
                owner.harvest(&mut g, c)?;
                owner.emit(&mut g, events, c);
                // A wake ends this wait, with or without events.
                if std::mem::replace(&mut g.woken, false) {
                    break;
                }
            }
            if !events.is_empty() {
                break;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                // Nothing ready and no time to wait. POLL_ADDs (and updates)
                // queued by this take's control ops or re-arms have not
                // reached the kernel yet: submit them and look once more, so
                // that an fd ready when `add` or `modify` returned is
                // reported by the very next `poll` (S4), as epoll would.
                if !ran_submit && owner.has_queued_sqes() {
                    ran_submit = true;
                    owner.submit_and_collect(events.remaining(), c)?;
                    continue;
                }
                // Coop and Defer: completions may be waiting for an enter.
                if !ran_taskrun && owner.taskrun_pending() {
                    ran_taskrun = true;
                    continue;
                }
                break;
            }
            {
                let mut g = inner.lock();
                owner.drain_pending(&mut g, c);
                if std::mem::replace(&mut g.woken, false) {
                    break;
                }
                g.waiting = true;
            }
            if let Err(e) = owner.enter_wait(left, c) {
                inner.lock().waiting = false;
                return Err(e);
            }
        }
        // Re-arms and control ops queued meanwhile go to the kernel now.
        // Events already taken out of the queue are not thrown away for a
        // failed submit: the SQEs stay queued, and the next call retries
        // (and reports the error if it persists).
        if let Err(e) = owner.submit(c) {
            if events.is_empty() {
                return Err(e);
            }
        }
        c.add(
            Counter::SqesSubmitted,
            std::mem::take(&mut owner.queued_sqes),
        );
        c.add(Counter::EventsDelivered, events.len() as u64);
        Ok(events.len())
    }

    fn capacity(&self) -> usize {
        self.owner.capacity
    }

    fn stats(&self) -> Stats {
        self.control.inner.counters.snapshot()
    }
}
