//! spinescreen eval: the experiment's calibration test as a command.
//!
//! It **takes** a set of studies with a reference standard (`truth.csv`: positive = a vertebral
//! compression deformity > 25 %, Genant ≥ 2; optionally per-vertebra grades) and the service's
//! `result.json` for each, and **gives** the figures the Moscow experiment admits a service on
//! (Artyukova et al., Digital Diagnostics 2024;5(3):505–518): sensitivity, specificity, accuracy
//! and ROC AUC with 95 % confidence intervals (Wilson; DeLong et al., Biometrics 1988) and the
//! experiment's verdict for each, processing time per study as mean ± SD, technical defects and
//! abstentions, a per-vertebra Genant confusion matrix, an ROC plot, and the random audit sheet
//! the experts fill in. **Why**: hospitals run this procedure before admitting a service and
//! repeat the audit during operation.
//!
//! ```
//! use spinescreen_eval::stats::wilson_interval;
//! let ci = wilson_interval(8, 10).unwrap();
//! assert!((ci.lower - 0.490).abs() < 1e-3 && (ci.upper - 0.943).abs() < 1e-3);
//! ```
//!
//! # Layout
//! - [`stats`] — Wilson intervals, ROC curve, AUC with DeLong variance, mean ± SD.
//! - [`verdict`] — the experiment's bands and how values between them map.
//! - [`truth`] — `truth.csv`.
//! - [`report`] — outcomes, metrics, Genant confusion matrix, `report.json` / `report.md`.
//! - [`plot`] — `roc.png`.
//! - [`audit`] — the seeded audit sample and `audit.csv`.
//! - [`cli`] — [`cli::EvalArgs`] and [`cli::run`].

pub mod audit;
pub mod cli;
pub mod plot;
pub mod report;
pub mod stats;
pub mod truth;
pub mod verdict;

pub use cli::{run, EvalArgs};
pub use report::EvalReport;
