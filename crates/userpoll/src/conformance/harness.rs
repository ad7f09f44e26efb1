//! [`Harness`]: a poller and an events buffer whose every take checks S3's
//! one-call rule, with takes that wait for what the contract promises.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{PATIENCE, QUIET};
use crate::{Event, Events, Poller};

/// A poller and an events buffer, with takes that check S3 on every call.
#[derive(Debug)]
pub struct Harness<P: Poller> {
    /// The poller under test.
    pub poller: P,
    events: Events,
}

impl<P: Poller> Harness<P> {
    /// Wraps `poller` with an events buffer of `events` capacity.
    pub fn new(poller: P, events: usize) -> Self {
        Harness {
            poller,
            events: Events::with_capacity(events),
        }
    }

    /// The control handle.
    pub fn control(&self) -> &P::Control {
        self.poller.control()
    }

    fn checked(&self, n: usize) -> Vec<Event> {
        assert_eq!(
            n,
            self.events.len(),
            "returned count differs from events held"
        );
        let mut seen = HashSet::new();
        for ev in &self.events {
            assert!(
                seen.insert(ev.data()),
                "S3 violated: one call returned two events for data {} ({:?})",
                ev.data(),
                self.events
            );
        }
        self.events.iter().copied().collect()
    }

    /// One `poll`.
    pub fn poll(&mut self) -> Vec<Event> {
        let n = self.poller.poll(&mut self.events).expect("poll");
        self.checked(n)
    }

    /// One `wait`.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Vec<Event> {
        let n = self.poller.wait(&mut self.events, timeout).expect("wait");
        self.checked(n)
    }

    /// Takes events until one with `data` arrives; returns it with every
    /// event taken meanwhile. Panics after [`PATIENCE`].
    pub fn expect(&mut self, data: u64, why: &str) -> (Event, Vec<Event>) {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no event for data {data} within {PATIENCE:?}: {why}; got {seen:?}"
            );
            for ev in self.wait(Some(left)) {
                if ev.data() == data {
                    return (ev, seen);
                }
                seen.push(ev);
            }
        }
    }

    /// Takes events until every data in `want` has had one; returns all
    /// events taken. Panics after [`PATIENCE`] naming what is missing.
    pub fn expect_all(&mut self, want: &HashSet<u64>, why: &str) -> Vec<Event> {
        let deadline = Instant::now() + PATIENCE;
        let mut missing = want.clone();
        let mut all = Vec::new();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {} registrations had no event within {PATIENCE:?}: {why}; e.g. {:?}",
                missing.len(),
                want.len(),
                missing.iter().take(8).collect::<Vec<_>>()
            );
            for ev in self.wait(Some(left)) {
                missing.remove(&ev.data());
                all.push(ev);
            }
        }
        all
    }

    /// Every event taken during `dur`.
    pub fn watch(&mut self, dur: Duration) -> Vec<Event> {
        let deadline = Instant::now() + dur;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return all;
            }
            all.extend(self.wait(Some(left)));
        }
    }

    /// Panics if any event with `data` arrives within [`QUIET`].
    pub fn expect_none(&mut self, data: u64, why: &str) {
        let evs = self.watch(QUIET);
        assert!(
            !evs.iter().any(|e| e.data() == data),
            "event for data {data} where none may come: {why}; got {evs:?}"
        );
    }
}
