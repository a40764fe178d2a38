//! The ground every spinescreen worker stands on.
//!
//! A worker is a [`worker::StageWorker`]: a value that turns one [`spinescreen_proto::Job`] into
//! the next. This crate owns everything around that: receiving jobs from a [`broker::Broker`]
//! (RabbitMQ via lapin, or in-memory for the embedded mode — same semantics), reading and writing
//! study objects in a [`storage::StudyStore`] (S3 or a local directory), configuration, metrics,
//! trace propagation and graceful shutdown.
//!
//! # Layout
//! - [`broker`]: the `Broker` trait, `Message`/`Delivery`, and its AMQP ([`broker::AmqpBroker`])
//!   and in-memory ([`broker::MemoryBroker`]) implementations.
//! - [`storage`]: `StudyStore`, object storage (local directory or S3) with validated keys.
//! - [`volumes`]: HU volumes streamed to and from the store (zstd frames along z).
//! - [`config`]: one TOML file plus `SPINESCREEN__…` environment overrides, laptop defaults.
//! - [`metrics`]: Prometheus metrics in the default registry, incl. the 390 s SLA bucket.
//! - [`process_memory`]: `process_resident_memory_bytes` and the peak, from `/proc/self/status`.
//! - [`allocator`]: glibc's mmap threshold fixed, so a worker returns what each study frees.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` (axum).
//! - [`telemetry`]: logs (text or JSON) and OpenTelemetry traces, exported over OTLP/HTTP when
//!   configured; W3C trace context in job and headers.
//! - [`events`]: the best-effort events feed (received, started, finished, failed, …) for the
//!   study ledger.
//! - [`worker`]: `StageWorker` and [`worker::run_stage`], the consume → process → publish →
//!   ack loop with retries and dead-lettering.
//! - [`shutdown`]: SIGTERM/SIGINT as a cancellation token.
//! - [`privacy`]: pseudonyms for identifiers that must not be logged.
//!
//! # A worker process
//! ```no_run
//! use spinescreen_runtime::{connect_broker, http, load_config_value, run_stage, shutdown,
//!     telemetry, LoopOptions, RuntimeConfig, StageContext, StageWorker, StudyStore};
//! use std::sync::Arc;
//!
//! async fn serve(worker: Arc<dyn StageWorker>) -> anyhow::Result<()> {
//!     let value = load_config_value(None)?; // + SPINESCREEN__… overrides
//!     let config = RuntimeConfig::from_value(&value)?;
//!     let telemetry_config = config.telemetry.clone().with_env(|k| std::env::var(k).ok())?;
//!     let _telemetry = telemetry::init_tracing(&config.service_name, &telemetry_config)?;
//!     let stop = shutdown::cancel_on_signal();
//!     let ctx = StageContext {
//!         store: StudyStore::from_config(&config.store)?,
//!         broker: connect_broker(&config.broker).await?,
//!         service: spinescreen_proto::ServiceInfo {
//!             name: config.service_name.clone(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!         },
//!     };
//!     tokio::spawn(http::serve_metrics(config.metrics_addr, stop.clone()));
//!     run_stage(worker, ctx, LoopOptions::from_config(&config), stop).await
//! }
//! ```
//!
//! # Guarantees
//! A job is acknowledged only after the stage stored its outputs and the broker confirmed the
//! next job (at-least-once delivery; stages are idempotent). A job failing transiently is
//! retried up to the delivery limit (default 3), then moved with its reason to `<queue>.dlq`.
//! References: RabbitMQ "Reliability Guide", "Quorum Queues", "Dead Letter Exchanges".

pub mod allocator;
pub mod broker;
pub mod config;
pub mod events;
pub mod http;
pub mod metrics;
pub mod privacy;
pub mod process_memory;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
pub mod volumes;
pub mod worker;

pub use broker::{Broker, Delivery, Message};
pub use config::{connect_broker, load_config_value, BrokerConfig, RuntimeConfig};
pub use privacy::pseudonym;
pub use shutdown::CancellationToken;
pub use storage::{StoreConfig, StudyStore};
pub use worker::{run_stage, LoopOptions, StageContext, StageError, StageWorker};
