//! The `spinescreen` binary's library: how a process is assembled from the stage crates.
//!
//! # Layout
//! - [`config`]: one TOML file + env overrides → the runtime and every stage's section.
//! - [`fleet`]: building stage workers and spawning their loops over one broker and store.
//! - [`analyze`]: one study through the embedded pipeline (`analyze`, used by `demo` and `eval`).
//! - [`demo`]: the phantom-with-a-fracture demonstration, README's main job.
//! - [`ledger`]: `worker ledger`, `studies …` and `monitor …` over the study ledger.
//! - [`load`]: `spinescreen load`, throughput and latency of a running fleet.

pub mod analyze;
pub mod config;
pub mod demo;
pub mod fleet;
pub mod ledger;
pub mod load;
