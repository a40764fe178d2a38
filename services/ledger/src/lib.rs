//! The study ledger: every study's life in PostgreSQL.
//!
//! `spinescreen worker ledger` consumes `spinescreen.done` and the events feed every stage
//! publishes ([`spinescreen_proto::StudyEvent`]) and records, per study, where it came from
//! (accession number, scanner, chosen series), where it is, what the service concluded, how
//! long each stage took, whether the SLA was met and where it was delivered — never the
//! patient's name, ID or birth date. Operators query it with `spinescreen studies …`; the
//! monthly quality review runs on it with `spinescreen monitor …`; per-station defect gauges
//! let an alert name a faulty scanner the day it starts. The embedded mode (`analyze`, `demo`)
//! needs no database: nothing here runs there.
//!
//! # Layout
//! - [`config`]: `[ledger]` (`url` or `DATABASE_URL`, `schema`, `metrics_refresh_secs`).
//! - [`migrate`]: the embedded SQL migrations, applied on start.
//! - [`db`]: [`Ledger`], the connection and every (idempotent) write.
//! - [`consumer`]: the `worker ledger` loop.
//! - [`query`]: the study list and one study's timeline.
//! - [`studies`]: `studies list | show | retry` output and the retry itself.
//! - [`console`]: the read-only operator console (`spinescreen console`): templates, login.
//! - [`metrics`]: per-station studies and defects today, for Prometheus.
//! - [`monitor`]: the review sample, its worksheet, the review report and its stored copies.
//! - [`when`]: times on the command line and in output.

pub mod config;
pub mod console;
pub mod consumer;
pub mod db;
pub mod metrics;
pub mod migrate;
pub mod monitor;
pub mod query;
pub mod studies;
pub mod when;

pub use config::LedgerConfig;
pub use consumer::run_ledger;
pub use db::Ledger;
