//! `compare`: measures what it costs to learn that one of thousands of fds
//! became ready, for every backend the project has, on the machine it runs
//! on. See `docs/compare.md` for how to run it and read its output. The
//! method: real fds, threads and rings; CPU time rather than wall time;
//! system calls counted exactly; medians of interleaved repetitions;
//! ratios taken within a repetition rather than absolute times.
//!
//! - [`backends`]: every backend behind one interface, with stable ids.
//! - [`fds`]: the fds a run fires: eventfds, pipes, socketpairs, TCP.
//! - [`harness`]: one run (writers, consumer, counts, latency).
//! - [`suite`]: runs several backends interleaved and collects [`suite::Results`].
//! - [`summary`]: per-backend medians and ratios, read by everything below.
//! - [`report`]: the JSON, the summary table (laid out by [`table`]), `.hgrm`
//!   files ([`hgrm`]); [`plot`] the SVGs.
//! - [`statistics`]: medians, spreads and noise, computed in one place.
//! - [`gate`]: the CI performance regression gate (one file per job under `gate/`).
//! - [`http`]: `compare http`, the real-server scenario (`userpoll-http` on
//!   every backend, nginx, `wrk` and a new-connection client).
//! - [`cli`]: the command line.
//! - [`sys`]: the raw calls (clocks, futex, limits) the harness counts.
//! - [`memory`]: slab caches and resident memory from `/proc`, for the
//!   memory examples (`idle_memory`, `http_idle_memory`).

pub mod backends;
pub mod cli;
pub mod fds;
pub mod gate;
pub mod harness;
pub mod hgrm;
pub mod http;
pub mod memory;
pub mod plot;
pub mod report;
pub mod statistics;
pub mod suite;
pub mod summary;
pub mod sys;
pub mod table;
