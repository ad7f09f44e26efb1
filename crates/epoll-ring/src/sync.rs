//! The atomics the ring protocol is written against: std's normally, loom's
//! under `--cfg loom`, so that the very same protocol code is model-checked
//! (the way crossbeam's `primitive` module does it).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

#[cfg(loom)]
pub(crate) use loom::sync::atomic;

/// One iteration of a bounded busy-wait. Under loom it yields, so that the
/// model checker schedules the thread being waited for.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
