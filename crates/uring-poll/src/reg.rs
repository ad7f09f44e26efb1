//! What the owner keeps per registration besides fd, interest and data.

use userpoll::Counter;

/// What the table keeps per registration besides fd, interest and data.
#[derive(Debug, Default)]
pub(crate) struct RegState {
    /// The registration should have a request in the kernel: one is there
    /// or an op or re-arm will put it there. False once a oneshot fired,
    /// while a re-arm waits for the take, and after repeated errors.
    pub(crate) armed: bool,
    /// The owner has queued a POLL_ADD (or update) for this registration
    /// whose request has not ended yet as far as the owner knows: delete
    /// must cancel it, and modify may update it in place. False while the
    /// first POLL_ADD still waits in the op queue.
    pub(crate) in_ring: bool,
    /// Re-arm mode: the one-shot request ended with an event still to hand
    /// out; it is re-armed at the take after the caller got that event,
    /// and counted as this counter.
    pub(crate) rearm_on_take: Option<Counter>,
    /// Error completions in a row.
    pub(crate) errors: u8,
}
