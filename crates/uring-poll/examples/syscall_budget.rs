//! Counts, per profile and mode, what the poller itself spends per event in
//! a closed loop: N eventfds registered, K distinct ones fired per round by
//! another thread, the owner takes until all K are seen and drains each.
//! Prints exact counts from the poller's counters (no timing).
//!
//! `cargo run -p uring-poll --example syscall_budget -- [N] [K] [ROUNDS]`

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use uring_poll::{Profile, UringPoll};
use userpoll::conformance::fds;
use userpoll::{Control, Counter, Events, Interest, Poller};

fn main() -> std::io::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let k = args.get(1).copied().unwrap_or(100).min(n);
    let rounds = args.get(2).copied().unwrap_or(200);
    let efds: Vec<OwnedFd> = (0..n).map(|_| fds::eventfd()).collect::<Result<_, _>>()?;
    println!("{n} eventfds, {k} fired per round, {rounds} rounds; per event:");
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "variant", "syscalls", "enters", "wait", "submit", "sqes", "rearms"
    );
    let mut variants: Vec<(String, Profile, bool)> = Profile::ALL
        .iter()
        .map(|&p| (p.name().to_owned(), p, false))
        .collect();
    variants.push(("rearm".into(), Profile::Default, true));
    variants.push(("rearm-defer".into(), Profile::Defer, true));
    for (name, profile, rearm) in variants {
        let mut p = match UringPoll::builder().profile(profile).rearm(rearm).build(n) {
            Ok(p) => p,
            Err(e) => {
                println!("{name:<14} skipped: {e}");
                continue;
            }
        };
        for (i, fd) in efds.iter().enumerate() {
            p.control().add(fd.as_fd(), Interest::READABLE, i as u64)?;
        }
        let mut events = Events::with_capacity(256);
        p.poll(&mut events)?;
        let before = p.stats();
        let (tx, rx) = mpsc::channel::<Vec<usize>>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        thread::scope(|s| -> std::io::Result<()> {
            let efds = &efds;
            s.spawn(move || {
                for batch in rx {
                    for i in batch {
                        fds::fire(efds[i].as_fd()).unwrap();
                    }
                    done_tx.send(()).unwrap();
                }
            });
            for round in 0..rounds {
                let batch: Vec<usize> = (0..k).map(|j| (round * 7919 + j * 104729) % n).collect();
                let mut want: HashSet<u64> = batch.iter().map(|&i| i as u64).collect();
                tx.send(batch).unwrap();
                done_rx.recv().unwrap();
                while !want.is_empty() {
                    p.wait(&mut events, Some(Duration::from_secs(5)))?;
                    for e in &events {
                        if want.remove(&e.data()) {
                            fds::drain(efds[e.data() as usize].as_fd())?;
                        }
                    }
                }
            }
            drop(tx);
            Ok(())
        })?;
        let d = p.stats() - before;
        let ev = d.get(Counter::EventsDelivered).max(1) as f64;
        let enters =
            d.get(Counter::EnterWait) + d.get(Counter::EnterSubmit) + d.get(Counter::EnterFlush);
        println!(
            "{name:<14} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            d.syscalls() as f64 / ev,
            enters as f64 / ev,
            d.get(Counter::EnterWait) as f64 / ev,
            d.get(Counter::EnterSubmit) as f64 / ev,
            d.get(Counter::SqesSubmitted) as f64 / ev,
            d.rearms() as f64 / ev,
        );
        for fd in &efds {
            fds::drain(fd.as_fd())?;
        }
    }
    Ok(())
}
