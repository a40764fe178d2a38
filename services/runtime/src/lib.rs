//! The ground every spinescreen worker stands on.
//!
//! A worker is a [`worker::StageWorker`]: a value that turns one [`spinescreen_proto::Job`] into
//! the next. This crate owns everything around that: receiving jobs from a [`broker::Broker`]
//! (RabbitMQ via lapin, or in-memory for the embedded mode — same semantics), reading and writing
//! study objects in a [`storage::StudyStore`] (S3 or a local directory), configuration, metrics,
//! trace propagation and graceful shutdown.
//!
//! # Layout
//! - [`broker`]: the `Broker` trait, `Message`/`Delivery`, and its AMQP and in-memory implementations.
//! - [`storage`]: `StudyStore`, object storage with UID-validated keys.
//! - [`metrics`]: Prometheus metrics in the default registry, incl. the 390 s SLA bucket.
//! - [`worker`]: `StageWorker` and the consume → process → store → publish → ack loop.

pub mod broker;
pub mod metrics;
pub mod storage;
pub mod worker;

pub use broker::{Broker, Delivery, Message};
pub use storage::StudyStore;
pub use worker::{StageContext, StageError, StageWorker};
