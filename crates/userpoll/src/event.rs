//! Events handed to the caller and the fixed-capacity buffer a take fills.

use std::fmt;

use crate::interest::Ready;

/// One event: the caller's `u64` data and the ready mask.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Event {
    data: u64,
    ready: Ready,
}

impl Event {
    /// An event for the registration whose data is `data`.
    pub const fn new(data: u64, ready: Ready) -> Event {
        Event { data, ready }
    }
    /// The data given at `add` or `modify`.
    pub const fn data(&self) -> u64 {
        self.data
    }
    /// The ready mask (the OR of every fire merged into this event, S3).
    pub const fn ready(&self) -> Ready {
        self.ready
    }
    /// See [`Ready::is_readable`].
    pub const fn is_readable(&self) -> bool {
        self.ready.is_readable()
    }
    /// See [`Ready::is_writable`].
    pub const fn is_writable(&self) -> bool {
        self.ready.is_writable()
    }
    /// See [`Ready::is_error`].
    pub const fn is_error(&self) -> bool {
        self.ready.is_error()
    }
    /// See [`Ready::is_hangup`].
    pub const fn is_hangup(&self) -> bool {
        self.ready.is_hangup()
    }
    /// See [`Ready::is_read_closed`].
    pub const fn is_read_closed(&self) -> bool {
        self.ready.is_read_closed()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("data", &self.data)
            .field("ready", &self.ready)
            .finish()
    }
}

/// A buffer of events with a capacity fixed at creation. `poll` and `wait`
/// clear it and fill it with at most `capacity()` events, never allocating.
///
/// ```
/// use userpoll::{Event, Events, Ready};
/// let mut events = Events::with_capacity(2);
/// assert!(events.push(Event::new(7, Ready::from_bits(1))));
/// assert!(events.push(Event::new(8, Ready::from_bits(1))));
/// assert!(!events.push(Event::new(9, Ready::from_bits(1))), "full");
/// assert_eq!(events.iter().map(|e| e.data()).collect::<Vec<_>>(), [7, 8]);
/// ```
#[derive(Debug)]
pub struct Events {
    buf: Vec<Event>,
}

/// A clone has the same capacity (a derived `Clone` would copy only the
/// events and could leave a buffer with room for none) and the same events.
impl Clone for Events {
    fn clone(&self) -> Events {
        let mut buf = Vec::with_capacity(self.capacity());
        buf.extend_from_slice(&self.buf);
        Events { buf }
    }
}

impl Events {
    /// A buffer for at most `capacity` events (at least 1).
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            buf: Vec::with_capacity(capacity.max(1)),
        }
    }
    /// How many events one take may return.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
    /// Room left before the buffer is full.
    pub fn remaining(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }
    /// Number of events held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// No events held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// No room left.
    pub fn is_full(&self) -> bool {
        self.buf.len() == self.buf.capacity()
    }
    /// Forgets every event; keeps the capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
    /// Appends an event if there is room; `false` (and nothing changed) when
    /// full. Backends fill the buffer with this; it never allocates.
    #[inline]
    pub fn push(&mut self, event: Event) -> bool {
        if self.is_full() {
            return false;
        }
        self.buf.push(event);
        true
    }
    /// The events held, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.buf.iter()
    }
    /// The events held as a slice.
    pub fn as_slice(&self) -> &[Event] {
        &self.buf
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.buf.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s12_a_clone_keeps_the_capacity() {
        let mut events = Events::with_capacity(64);
        assert!(events.push(Event::new(1, Ready::from_bits(1))));
        let copy = events.clone();
        assert!(copy.capacity() >= 64, "capacity {}", copy.capacity());
        assert_eq!(copy.as_slice(), events.as_slice());
        assert!(Events::with_capacity(0).clone().capacity() >= 1);
    }
}
