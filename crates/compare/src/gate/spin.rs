//! Injected per-event work, for measuring the gate itself (`--spin-ns`):
//! the options that say where it applies ([`Spin`]) and the calibrated
//! busy loop the harness runs after the handler ([`spin`]). Never part of
//! a real measurement.

use crate::sys::now_ns;

/// Injected per-event work, for measuring the gate itself.
#[derive(Debug, Clone, Default)]
pub struct Spin {
    /// Nanoseconds of busy work per event.
    pub ns: u64,
    /// The backends it applies to (empty: all).
    pub backends: Vec<String>,
    /// The scenarios it applies to (empty: all).
    pub scenarios: Vec<String>,
}

/// Busy-works about `ns` nanoseconds: the injected per-event work of
/// `--spin-ns`. A loop of spin-loop hints calibrated once per process
/// ([`spins_per_us`]), not a loop on the clock: each clock read costs tens
/// of nanoseconds on a VM, so a clock loop cannot add less than that, and
/// a small spin would add far more than it says.
pub fn spin(ns: u64) {
    let n = (ns as f64 * spins_per_us() / 1000.0).round() as u64;
    for i in 0..n {
        std::hint::spin_loop();
        std::hint::black_box(i);
    }
}

/// Iterations of the `--spin-ns` busy loop per microsecond on this machine: the
/// fastest of five timed batches (the least disturbed by preemption).
pub fn spins_per_us() -> f64 {
    static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *RATE.get_or_init(|| {
        const N: u64 = 200_000;
        (0..5)
            .map(|_| {
                let t0 = now_ns();
                for i in 0..N {
                    std::hint::spin_loop();
                    std::hint::black_box(i);
                }
                N as f64 * 1000.0 / (now_ns() - t0).max(1) as f64
            })
            .fold(0.0, f64::max)
    })
}
