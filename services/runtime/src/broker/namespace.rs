//! A broker whose queue names all carry a prefix, so several pipelines (test runs, demos, a
//! canary next to production) can share one RabbitMQ virtual host without seeing each other's
//! jobs. Stages stay unaware: they keep using [`spinescreen_proto::Stage::queue`].

use super::{Broker, BrokerError, Consumer, Message};
use async_trait::async_trait;
use std::sync::Arc;

/// Wraps a broker and prefixes every queue name with `prefix`.
#[derive(Clone)]
pub struct Namespaced {
    inner: Arc<dyn Broker>,
    prefix: String,
}

impl Namespaced {
    /// Queues named `q` become `<prefix>q` on `inner` (and their dead-letter queues
    /// `<prefix>q.dlq`).
    pub fn new(inner: Arc<dyn Broker>, prefix: impl Into<String>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
        }
    }

    /// The real name of `queue` on the wrapped broker.
    pub fn real_name(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }
}

#[async_trait]
impl Broker for Namespaced {
    async fn declare(&self, queue: &str) -> Result<(), BrokerError> {
        self.inner.declare(&self.real_name(queue)).await
    }

    async fn publish(&self, queue: &str, message: Message) -> Result<(), BrokerError> {
        self.inner.publish(&self.real_name(queue), message).await
    }

    async fn publish_optional(&self, queue: &str, message: Message) -> Result<(), BrokerError> {
        self.inner
            .publish_optional(&self.real_name(queue), message)
            .await
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        self.inner.consume(&self.real_name(queue), prefetch).await
    }

    async fn queue_depth(&self, queue: &str) -> Result<u64, BrokerError> {
        self.inner.queue_depth(&self.real_name(queue)).await
    }
}
