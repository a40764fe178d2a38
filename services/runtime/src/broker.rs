//! Job transport. Two implementations with the same semantics: AMQP 0-9-1 (RabbitMQ quorum
//! queues, publisher confirms, manual acks, bounded redelivery, dead-lettering) and in-memory.

pub mod amqp;
pub mod memory;
pub mod namespace;

pub use amqp::{AmqpBroker, AmqpOptions};
pub use memory::MemoryBroker;
pub use namespace::Namespaced;

use async_trait::async_trait;
use std::collections::BTreeMap;

/// The dead-letter headers and queue naming are part of the wire contract; they live in
/// `spinescreen_proto::job` and are re-exported here for the workers.
pub use spinescreen_proto::job::{dlq_name, ATTEMPTS_HEADER, ERROR_HEADER, STAGE_HEADER};

/// Errors from a broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Connection or channel failure; callers may reconnect and retry.
    #[error("broker connection: {0}")]
    Connection(String),
    /// The broker did not confirm a publish.
    #[error("publish not confirmed: {0}")]
    NotConfirmed(String),
    /// The broker has been closed.
    #[error("broker closed")]
    Closed,
}

/// A message: body plus string headers (trace context, failure reason).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// Serialized payload (a JSON [`spinescreen_proto::Job`] for work queues).
    pub body: Vec<u8>,
    /// Headers, e.g. `traceparent`, `x-spinescreen-error`.
    pub headers: BTreeMap<String, String>,
}

/// Transport for jobs between stages.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Declare a durable work queue and its dead-letter queue `<queue>.dlq` (idempotent).
    async fn declare(&self, queue: &str) -> Result<(), BrokerError>;
    /// Publish persistently; returns only once the broker has confirmed the message.
    async fn publish(&self, queue: &str, message: Message) -> Result<(), BrokerError>;
    /// Like [`Broker::publish`], for feeds whose consumer is optional (the events feed): a
    /// message no queue takes (nobody declared `queue`) is dropped, not an error. Brokers that
    /// cannot tell the two apart publish as [`Broker::publish`] does.
    async fn publish_optional(&self, queue: &str, message: Message) -> Result<(), BrokerError> {
        self.publish(queue, message).await
    }
    /// Start consuming with manual acknowledgement and at most `prefetch` unacked deliveries.
    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError>;
    /// Messages ready for delivery in `queue` (unacknowledged ones not counted), for the CLI and
    /// tests. Brokers that cannot tell answer with an error.
    async fn queue_depth(&self, queue: &str) -> Result<u64, BrokerError> {
        Err(BrokerError::Connection(format!(
            "this broker cannot report the depth of {queue:?}"
        )))
    }
}

/// Submit `job` to `stage`'s work queue, declaring the queue first (idempotent): how a new
/// reception enters the pipeline, whoever makes it (a receiver, `analyze`, `studies retry`).
pub async fn submit(
    broker: &dyn Broker,
    stage: spinescreen_proto::Stage,
    job: &spinescreen_proto::Job,
) -> Result<(), BrokerError> {
    let queue = stage.queue();
    broker.declare(queue).await?;
    broker
        .publish(
            queue,
            Message {
                body: job.to_bytes(),
                headers: BTreeMap::new(),
            },
        )
        .await
}

/// A stream of deliveries from one queue. Dropping it without settling its deliveries returns
/// them to the queue (attempt + 1), as closing an AMQP channel does.
#[async_trait]
pub trait Consumer: Send {
    /// Next delivery; `None` when the consumer has been cancelled or the broker closed.
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>>;
}

/// Settles one delivery. Implemented by each broker.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Done: remove the message.
    async fn ack(&self) -> Result<(), BrokerError>;
    /// Failed: return the message to the queue for another attempt.
    async fn requeue(&self) -> Result<(), BrokerError>;
}

/// One received message, to be settled exactly once.
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// 1 on first delivery, incremented on each redelivery.
    pub attempt: u32,
    /// Settles the delivery.
    pub acker: Box<dyn Acker>,
}
