//! The torture test: random sequences of `add`, `modify`, `delete`, fires,
//! drains, close-and-reuse of a registered number and takes, driven from
//! two threads against a backend and checked, call by call, against a
//! model of the contract.
//!
//! What every step checks:
//! - S9: each control call gets the errno the model predicts (EINVAL, then
//!   EEXIST, ENOSPC, ENOENT), or succeeds, and a refused call changes
//!   nothing (later steps would find it).
//! - S5: a take returns only the data of a registration current at some
//!   moment of that take (control calls from the other thread either finish
//!   before a take starts, or run during one `wait`, whose check accepts
//!   the data of before and after).
//! - S3: no take returns two events for one registration.
//! - S7: the data of a oneshot arm is delivered at most once.
//! - S2, S4, S10: at every `Settle` step, every registration owed an event
//!   (fired, or ready when armed, since its last event) gets one, through
//!   `Events` buffers as small as one.
//!   An event that is not owed is allowed (spurious events are, as with
//!   epoll), as is one for a registration whose fd was closed (S13).
//!
//! In CI each backend runs [`CASES`] sequences. Soak mode runs the same
//! generator for as long as asked: `USERPOLL_SOAK_SECS=600 cargo test
//! --release -p uring-poll --test conformance model` (docs/semantics.md).

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use super::fds;
use super::{child, make, PATIENCE};
use crate::{Control, Event, Events, Interest, Poller};

/// Random sequences each backend runs in CI (`USERPOLL_MODEL_CASES`
/// overrides it).
pub const CASES: u32 = 24;
/// Fd slots a sequence works on: eventfd, pipe, socketpair, eventfd, pipe.
const SLOTS: usize = 5;
/// Longest sequence.
const MAX_OPS: usize = 48;

/// Which thread makes a control call or fire.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// The thread that takes events.
    Owner,
    /// Another thread, while the owner does nothing.
    Other,
    /// Another thread, while the owner is blocked in `wait`.
    DuringWait,
}

/// An interest the generator picks; `Invalid` is EINVAL everywhere.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Int {
    Read,
    ReadOneshot,
    Write,
    Invalid,
}

impl Int {
    fn interest(self) -> Interest {
        match self {
            Int::Read => Interest::READABLE,
            Int::ReadOneshot => Interest::READABLE.oneshot(),
            Int::Write => Interest::WRITABLE,
            Int::Invalid => Interest::from_epoll_bits(0),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, Int, Who),
    Modify(usize, Int, Who),
    Delete(usize, Who),
    Fire(usize, Who),
    /// The owner reads everything the fd holds.
    Drain(usize),
    /// Close the registered fd without `delete` and put a new file of the
    /// same kind at its number (S13).
    Reuse(usize),
    /// One `poll` into a buffer of this capacity.
    Poll(usize),
    /// Take until every owed event has come.
    Settle,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        4 => Just(Who::Owner),
        2 => Just(Who::Other),
        1 => Just(Who::DuringWait),
    ]
}

fn int() -> impl Strategy<Value = Int> {
    prop_oneof![
        6 => Just(Int::Read),
        2 => Just(Int::ReadOneshot),
        1 => Just(Int::Write),
        1 => Just(Int::Invalid),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        4 => (slot.clone(), int(), who()).prop_map(|(s, i, w)| Op::Add(s, i, w)),
        2 => (slot.clone(), int(), who()).prop_map(|(s, i, w)| Op::Modify(s, i, w)),
        2 => (slot.clone(), who()).prop_map(|(s, w)| Op::Delete(s, w)),
        5 => (slot.clone(), who()).prop_map(|(s, w)| Op::Fire(s, w)),
        1 => slot.clone().prop_map(Op::Drain),
        1 => slot.prop_map(Op::Reuse),
        2 => (1usize..4).prop_map(Op::Poll),
        2 => Just(Op::Settle),
    ]
}

/// One fd slot: the fd that is registered and the end that fires it.
struct Fixture {
    fd: OwnedFd,
    /// `None` for an eventfd, which fires itself.
    writer: Option<OwnedFd>,
}

impl Fixture {
    fn new(slot: usize) -> Fixture {
        match slot % 3 {
            0 => Fixture {
                fd: fds::eventfd().unwrap(),
                writer: None,
            },
            1 => {
                let (r, w) = fds::pipe().unwrap();
                Fixture {
                    fd: r,
                    writer: Some(w),
                }
            }
            _ => {
                let (a, b) = fds::socketpair().unwrap();
                Fixture {
                    fd: a,
                    writer: Some(b),
                }
            }
        }
    }

    fn fire(&self) {
        match &self.writer {
            None => fds::fire(self.fd.as_fd()).unwrap(),
            Some(w) => fds::write(w.as_fd(), b"x").unwrap(),
        }
    }
}

/// What the model knows of one registration.
#[derive(Debug, Clone)]
struct Reg {
    data: u64,
    int: Int,
    /// Its fd was closed and the number reused (S13): events allowed, none
    /// owed.
    zombie: bool,
    /// An event is owed since it was fired or armed ready.
    owed: bool,
}

#[derive(Debug, Default)]
struct Model {
    regs: [Option<Reg>; SLOTS],
    /// Fired and not drained since.
    ready: [bool; SLOTS],
    capacity: usize,
    next_data: u64,
    /// Data of oneshot arms delivered already (S7).
    oneshot_seen: HashSet<u64>,
}

impl Model {
    fn live(&self) -> HashSet<u64> {
        self.regs.iter().flatten().map(|r| r.data).collect()
    }

    fn data(&mut self) -> u64 {
        self.next_data += 1;
        self.next_data
    }

    /// The errno a control call must give, or 0.
    fn predict(&self, op: &Op) -> i32 {
        match *op {
            Op::Add(s, i, _) => {
                if i == Int::Invalid {
                    libc::EINVAL
                } else if self.regs[s].is_some() {
                    libc::EEXIST
                } else if self.regs.iter().flatten().count() >= self.capacity {
                    libc::ENOSPC
                } else {
                    0
                }
            }
            Op::Modify(s, i, _) => {
                if i == Int::Invalid {
                    libc::EINVAL
                } else if self.regs[s].is_none() {
                    libc::ENOENT
                } else {
                    0
                }
            }
            Op::Delete(s, _) if self.regs[s].is_none() => libc::ENOENT,
            _ => 0,
        }
    }

    /// The model after `op` succeeded as predicted.
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Add(s, i, _) | Op::Modify(s, i, _) if i != Int::Invalid => {
                let zombie = self.regs[s].as_ref().is_some_and(|r| r.zombie);
                let data = self.data();
                let owed = !zombie && self.ready[s] && i != Int::Write;
                self.regs[s] = Some(Reg {
                    data,
                    int: i,
                    zombie,
                    owed,
                });
            }
            Op::Delete(s, _) => self.regs[s] = None,
            Op::Fire(s, _) => {
                self.ready[s] = true;
                if let Some(r) = &mut self.regs[s] {
                    let spent = r.int == Int::ReadOneshot && self.oneshot_seen.contains(&r.data);
                    if !r.zombie && r.int != Int::Write && !spent {
                        r.owed = true;
                    }
                }
            }
            Op::Drain(s) => {
                // An event queued before the drain may still come; none is
                // owed any more (epoll itself drops it when the fd is no
                // longer ready).
                self.ready[s] = false;
                if let Some(r) = &mut self.regs[s] {
                    r.owed = false;
                }
            }
            Op::Reuse(s) => {
                self.ready[s] = false;
                if let Some(r) = &mut self.regs[s] {
                    r.zombie = true;
                    r.owed = false;
                }
            }
            _ => {}
        }
    }

    /// Checks one take against the model: `valid` is every data current at
    /// some moment of the take.
    fn take(&mut self, events: &[Event], valid: &HashSet<u64>) -> Result<(), String> {
        let mut seen = HashSet::new();
        for ev in events {
            let d = ev.data();
            if !seen.insert(d) {
                return Err(format!(
                    "S3: two events for data {d} in one take: {events:?}"
                ));
            }
            if !valid.contains(&d) {
                return Err(format!(
                    "S5: event for data {d}, deleted or modified before the take (live: {valid:?})"
                ));
            }
            for r in self.regs.iter_mut().flatten() {
                if r.data == d {
                    r.owed = false;
                    if r.int == Int::ReadOneshot && !self.oneshot_seen.insert(d) {
                        return Err(format!("S7: a second event for oneshot data {d}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs `op` (a control call or fire) on the fixtures; the errno, or 0.
fn control<C: Control>(ctl: &C, fx: &[Fixture], op: &Op) -> i32 {
    let r = match *op {
        Op::Add(s, i, _) => ctl.add(fx[s].fd.as_fd(), i.interest(), 0),
        Op::Modify(s, i, _) => ctl.modify(fx[s].fd.as_fd(), i.interest(), 0),
        Op::Delete(s, _) => ctl.delete(fx[s].fd.as_fd()),
        Op::Fire(s, _) => {
            fx[s].fire();
            Ok(())
        }
        _ => unreachable!("not a control op: {op:?}"),
    };
    match r {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// The data a control call gives: the model's next data, so each arm's
/// data is unique (S5 and S7 are checked by data).
fn with_data<C: Control>(ctl: &C, fx: &[Fixture], op: &Op, data: u64) -> i32 {
    let r = match *op {
        Op::Add(s, i, _) => ctl.add(fx[s].fd.as_fd(), i.interest(), data),
        Op::Modify(s, i, _) => ctl.modify(fx[s].fd.as_fd(), i.interest(), data),
        _ => return control(ctl, fx, op),
    };
    match r {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn who_of(op: &Op) -> Option<Who> {
    match *op {
        Op::Add(_, _, w) | Op::Modify(_, _, w) | Op::Delete(_, w) | Op::Fire(_, w) => Some(w),
        _ => None,
    }
}

/// Puts a new file of the slot's kind at the slot's fd number (the old file
/// is closed by `dup3`, atomically: no other thread can take the number).
fn reuse(fx: &mut [Fixture], s: usize) {
    let new = Fixture::new(s);
    // The slot's OwnedFd keeps its number, which now names the new file.
    rustix::io::dup3(&new.fd, &mut fx[s].fd, rustix::io::DupFlags::CLOEXEC).expect("dup3");
    let old_writer = std::mem::replace(&mut fx[s].writer, new.writer);
    drop(new.fd);
    drop(old_writer);
}

fn run_one<P: Poller>(poller: &mut P, capacity: usize, ops: &[Op]) -> Result<(), String> {
    let mut fx: Vec<Fixture> = (0..SLOTS).map(Fixture::new).collect();
    let mut m = Model {
        capacity,
        ..Model::default()
    };
    let ctl = poller.control().clone();
    for (step, op) in ops.iter().enumerate() {
        let at = |e: String| format!("step {step} ({op:?}): {e}");
        match (op, who_of(op)) {
            (_, Some(who)) => {
                let want = m.predict(op);
                let data = m.next_data + 1;
                let (got, events, valid) = match who {
                    Who::Owner => (with_data(&ctl, &fx, op, data), None, None),
                    Who::Other => {
                        let got = thread::scope(|s| {
                            s.spawn(|| with_data(&ctl, &fx, op, data)).join().unwrap()
                        });
                        (got, None, None)
                    }
                    Who::DuringWait => {
                        let before = m.live();
                        let mut events = Events::with_capacity(8);
                        let got = thread::scope(|s| {
                            let other = s.spawn(|| {
                                thread::sleep(Duration::from_millis(1));
                                with_data(&ctl, &fx, op, data)
                            });
                            poller
                                .wait(&mut events, Some(Duration::from_millis(20)))
                                .map_err(|e| format!("wait: {e}"))?;
                            Ok::<_, String>(other.join().unwrap())
                        })
                        .map_err(at)?;
                        (got, Some(events), Some(before))
                    }
                };
                if got != want {
                    return Err(at(format!("S9: errno {got}, the model says {want}")));
                }
                if want == 0 {
                    m.apply(op);
                    if matches!(op, Op::Add(..) | Op::Modify(..)) {
                        m.next_data = data;
                    }
                }
                if let (Some(events), Some(before)) = (events, valid) {
                    let valid: HashSet<u64> = before.union(&m.live()).copied().collect();
                    m.take(events.as_slice(), &valid).map_err(at)?;
                }
            }
            (Op::Drain(s), None) => {
                fds::drain(fx[*s].fd.as_fd()).unwrap();
                m.apply(op);
            }
            (Op::Reuse(s), None) => {
                reuse(&mut fx, *s);
                m.apply(op);
            }
            (Op::Poll(cap), None) => {
                let mut events = Events::with_capacity(*cap);
                poller
                    .poll(&mut events)
                    .map_err(|e| at(format!("poll: {e}")))?;
                let live = m.live();
                m.take(events.as_slice(), &live).map_err(at)?;
            }
            (Op::Settle, None) => settle(poller, &mut m).map_err(at)?,
            _ => unreachable!(),
        }
    }
    settle(poller, &mut m).map_err(|e| format!("final settle: {e}"))?;
    drop(ctl);
    Ok(())
}

/// Takes, with buffers of one and of many, until nothing is owed.
fn settle<P: Poller>(poller: &mut P, m: &mut Model) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    let mut small = true;
    loop {
        let owed: Vec<u64> = m
            .regs
            .iter()
            .flatten()
            .filter(|r| r.owed)
            .map(|r| r.data)
            .collect();
        if owed.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "S2/S4: no event within {PATIENCE:?} for owed data {owed:?} (model: {:?})",
                m.regs
            ));
        }
        let mut events = Events::with_capacity(if small { 1 } else { 64 });
        small = !small;
        poller
            .wait(&mut events, Some(left))
            .map_err(|e| format!("wait: {e}"))?;
        let live = m.live();
        m.take(events.as_slice(), &live)?;
    }
}

fn cases() -> u32 {
    std::env::var("USERPOLL_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

/// S2, S3, S4, S5, S7, S9, S10, S11, S13 together: random sequences from
/// two threads, each step checked against the model (see the module
/// documentation). A failure prints the shortest sequence proptest found.
/// Runs alone in a child process: `Reuse` puts files at chosen fd numbers.
pub fn s02_s05_s09_random_sequences_keep_the_contract<P: Poller>(
    new: &dyn Fn(usize) -> io::Result<P>,
) {
    child::alone(|| {
        if make("model", new, 1).is_none() {
            return;
        }
        let soak = std::env::var("USERPOLL_SOAK_SECS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| Instant::now() + Duration::from_secs(s));
        let mut rounds = 0u64;
        loop {
            let config = Config {
                cases: cases(),
                failure_persistence: None,
                max_shrink_iters: 256,
                ..Config::default()
            };
            let mut runner = TestRunner::new(config);
            let strategy = (1..=SLOTS, prop::collection::vec(op(), 1..MAX_OPS));
            let result = runner.run(&strategy, |(capacity, ops)| {
                let mut poller = new(capacity)
                    .map_err(|e| TestCaseError::fail(format!("new({capacity}): {e}")))?;
                run_one(&mut poller, capacity, &ops).map_err(TestCaseError::fail)
            });
            match result {
                Ok(()) => {}
                Err(TestError::Fail(why, (capacity, ops))) => panic!(
                    "a random sequence broke the contract: {why}\n\
                     capacity {capacity}, sequence ({} steps):\n{ops:#?}",
                    ops.len()
                ),
                Err(e) => panic!("{e}"),
            }
            rounds += 1;
            match soak {
                Some(end) if Instant::now() < end => continue,
                Some(_) => {
                    eprintln!("soak: {rounds} rounds of {} sequences passed", cases());
                    return;
                }
                None => return,
            }
        }
    });
}
