//! AMQP 0-9-1 broker (RabbitMQ) via lapin.
//!
//! Every work queue is a durable **quorum queue** (replicated, Raft-backed) declared with
//! `x-delivery-limit` and a dead-letter exchange routing to `<queue>.dlq`, itself a quorum
//! queue. Messages are published persistent (`delivery_mode = 2`) and mandatory on a channel in
//! confirm mode; [`Broker::publish`] returns only once RabbitMQ has confirmed the message, so a
//! stage acknowledges its input only after its output is safely queued. Each consumer has its own
//! channel with `basic.qos(prefetch)` and manual acknowledgement: if it dies, RabbitMQ returns its
//! unacknowledged deliveries to the queue. The attempt number comes from the quorum queue's
//! `x-delivery-count` header (absent on first delivery).
//!
//! References: RabbitMQ documentation "Quorum Queues" (poison message handling,
//! `x-delivery-limit`), "Dead Letter Exchanges", "Consumer Acknowledgements and Publisher
//! Confirms"; AMQP 0-9-1 specification §1.8 (basic class).
//!
//! Reconnection: any connection or channel failure is reported as
//! [`BrokerError::Connection`] and drops the cached connection, so the next call reconnects.
//! Consumers end with an error when their connection dies; the worker loop then consumes again.

use super::{dlq_name, Acker, Broker, BrokerError, Consumer, Delivery, Message};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
        BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Quorum-queue header counting how often a message was returned (absent on first delivery).
pub const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// How queues are declared and publishes confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpOptions {
    /// Returns (requeues, consumer deaths) after which RabbitMQ dead-letters a message by
    /// itself (`x-delivery-limit`). The worker dead-letters earlier, with a reason, once the
    /// attempt reaches its own limit; this is the backstop for jobs that crash the worker.
    pub delivery_limit: u32,
    /// Name of the direct exchange that routes dead letters to `<queue>.dlq`.
    pub dead_letter_exchange: String,
    /// Connection name shown in the RabbitMQ management UI.
    pub connection_name: String,
    /// How long to wait for a publisher confirm before reporting the publish as failed.
    pub confirm_timeout: Duration,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        Self {
            delivery_limit: 3,
            dead_letter_exchange: "spinescreen.dlx".into(),
            connection_name: "spinescreen".into(),
            confirm_timeout: Duration::from_secs(30),
        }
    }
}

/// A RabbitMQ connection shared by all publishers of a process; consumers get their own channel.
pub struct AmqpBroker {
    url: String,
    options: AmqpOptions,
    link: Mutex<Option<Link>>,
}

#[derive(Clone)]
struct Link {
    connection: Arc<Connection>,
    publisher: Channel,
}

fn conn_err(context: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Connection(format!("{context}: {e}"))
}

fn short(s: &str) -> ShortString {
    ShortString::from(s)
}

impl AmqpBroker {
    /// Connect to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`) and open a publisher
    /// channel in confirm mode. Fails if RabbitMQ does not answer.
    pub async fn connect(url: &str, options: AmqpOptions) -> Result<Self, BrokerError> {
        let broker = Self {
            url: url.to_string(),
            options,
            link: Mutex::new(None),
        };
        broker.link().await?;
        Ok(broker)
    }

    /// The options this broker declares queues with.
    pub fn options(&self) -> &AmqpOptions {
        &self.options
    }

    /// The live connection, reconnecting if the cached one is gone.
    async fn link(&self) -> Result<Link, BrokerError> {
        let mut guard = self.link.lock().await;
        if let Some(link) = guard.as_ref() {
            if link.connection.status().connected() && link.publisher.status().connected() {
                return Ok(link.clone());
            }
        }
        *guard = None;
        let props = ConnectionProperties::default()
            .with_connection_name(LongString::from(self.options.connection_name.as_str()));
        let connection = Connection::connect(&self.url, props)
            .await
            .map_err(|e| conn_err("connect to RabbitMQ", e))?;
        let publisher = connection
            .create_channel()
            .await
            .map_err(|e| conn_err("open publisher channel", e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| conn_err("enable publisher confirms", e))?;
        let link = Link {
            connection: Arc::new(connection),
            publisher,
        };
        *guard = Some(link.clone());
        Ok(link)
    }

    /// Forget the cached connection so the next call reconnects.
    async fn invalidate(&self) {
        *self.link.lock().await = None;
    }

    async fn fresh_channel(&self) -> Result<Channel, BrokerError> {
        let link = self.link().await?;
        match link.connection.create_channel().await {
            Ok(ch) => Ok(ch),
            Err(e) => {
                self.invalidate().await;
                Err(conn_err("open channel", e))
            }
        }
    }

    /// Delete `queue` and its dead-letter queue (for tests and tear-down); returns how many
    /// messages they held.
    pub async fn delete_queue(&self, queue: &str) -> Result<u32, BrokerError> {
        let ch = self.fresh_channel().await?;
        let mut n = 0;
        for q in [queue.to_string(), dlq_name(queue)] {
            n += ch
                .queue_delete(short(&q), QueueDeleteOptions::default())
                .await
                .map_err(|e| conn_err(&format!("delete queue {q}"), e))?;
        }
        let _ = ch.close(200, short("OK")).await;
        Ok(n)
    }

    async fn declare_on(&self, ch: &Channel, queue: &str) -> lapin::Result<()> {
        let dlx = self.options.dead_letter_exchange.as_str();
        let dlq = dlq_name(queue);
        ch.exchange_declare(
            short(dlx),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        let mut dlq_args = FieldTable::default();
        dlq_args.insert(short("x-queue-type"), lstr("quorum"));
        ch.queue_declare(short(&dlq), QueueDeclareOptions::durable(), dlq_args)
            .await?;
        ch.queue_bind(
            short(&dlq),
            short(dlx),
            short(&dlq),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let mut args = FieldTable::default();
        args.insert(short("x-queue-type"), lstr("quorum"));
        args.insert(
            short("x-delivery-limit"),
            AMQPValue::LongLongInt(i64::from(self.options.delivery_limit)),
        );
        args.insert(short("x-dead-letter-exchange"), lstr(dlx));
        args.insert(short("x-dead-letter-routing-key"), lstr(&dlq));
        if spinescreen_proto::job::is_done_queue(queue) {
            // Nobody may be reading the done queue: bound it (oldest dropped first).
            args.insert(
                short("x-max-length"),
                AMQPValue::LongLongInt(spinescreen_proto::job::DONE_QUEUE_MAX_LENGTH),
            );
        }
        ch.queue_declare(short(queue), QueueDeclareOptions::durable(), args)
            .await?;
        Ok(())
    }
}

fn lstr(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Message headers → AMQP field table (all values long strings). The quorum queue's own
/// `x-delivery-count` is never sent back.
fn to_field_table(headers: &BTreeMap<String, String>) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in headers {
        if k == DELIVERY_COUNT_HEADER {
            continue;
        }
        table.insert(short(k), lstr(v));
    }
    table
}

/// AMQP field table → string headers; scalar values are rendered as text, nested tables and
/// arrays (such as RabbitMQ's `x-death`) are left out.
fn from_field_table(table: Option<&FieldTable>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(table) = table else {
        return out;
    };
    for (k, v) in table {
        let text = match v {
            AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            AMQPValue::ShortString(s) => s.as_str().to_string(),
            AMQPValue::Boolean(b) => b.to_string(),
            AMQPValue::ShortShortInt(n) => n.to_string(),
            AMQPValue::ShortShortUInt(n) => n.to_string(),
            AMQPValue::ShortInt(n) => n.to_string(),
            AMQPValue::ShortUInt(n) => n.to_string(),
            AMQPValue::LongInt(n) => n.to_string(),
            AMQPValue::LongUInt(n) => n.to_string(),
            AMQPValue::LongLongInt(n) => n.to_string(),
            AMQPValue::Timestamp(n) => n.to_string(),
            _ => continue,
        };
        out.insert(k.as_str().to_string(), text);
    }
    out
}

/// Attempt number of a delivery: the quorum queue's return count plus one.
fn attempt_from(headers: &BTreeMap<String, String>) -> u32 {
    headers
        .get(DELIVERY_COUNT_HEADER)
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(1, |returns| returns.saturating_add(1))
}

impl AmqpBroker {
    /// Publish persistently and wait for the confirm. With `mandatory`, a message no queue takes
    /// comes back as an error; without, RabbitMQ drops it and confirms.
    async fn publish_with(
        &self,
        queue: &str,
        message: Message,
        mandatory: bool,
    ) -> Result<(), BrokerError> {
        let link = self.link().await?;
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(short("application/json"))
            .with_headers(to_field_table(&message.headers));
        let confirm = match link
            .publisher
            .basic_publish(
                short(""),
                short(queue),
                BasicPublishOptions {
                    mandatory,
                    ..Default::default()
                },
                &message.body,
                props,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                self.invalidate().await;
                return Err(conn_err(&format!("publish to {queue}"), e));
            }
        };
        let confirmation = match tokio::time::timeout(self.options.confirm_timeout, confirm).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                self.invalidate().await;
                return Err(conn_err(&format!("confirm of publish to {queue}"), e));
            }
            Err(_) => {
                return Err(BrokerError::NotConfirmed(format!(
                    "no confirm for publish to {queue} within {:?}",
                    self.options.confirm_timeout
                )))
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(BrokerError::NotConfirmed(format!(
                    "publish to {queue} returned: {} {}",
                    returned.reply_code,
                    returned.reply_text.as_str()
                )))
            }
            Confirmation::Nack(None) => Err(BrokerError::NotConfirmed(format!(
                "RabbitMQ nacked publish to {queue}"
            ))),
            Confirmation::NotRequested => Err(BrokerError::NotConfirmed(
                "publisher confirms are not enabled on the channel".into(),
            )),
        }
    }
}

#[async_trait]
impl Broker for AmqpBroker {
    async fn declare(&self, queue: &str) -> Result<(), BrokerError> {
        // A failed declaration (e.g. PRECONDITION_FAILED on different arguments) closes the
        // channel, so use a throw-away one.
        let ch = self.fresh_channel().await?;
        let result = self.declare_on(&ch, queue).await;
        let _ = ch.close(200, short("OK")).await;
        result.map_err(|e| conn_err(&format!("declare queue {queue}"), e))
    }

    async fn publish(&self, queue: &str, message: Message) -> Result<(), BrokerError> {
        self.publish_with(queue, message, true).await
    }

    async fn publish_optional(&self, queue: &str, message: Message) -> Result<(), BrokerError> {
        self.publish_with(queue, message, false).await
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        let ch = self.fresh_channel().await?;
        ch.basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| conn_err("basic.qos", e))?;
        let consumer = ch
            .basic_consume(
                short(queue),
                short(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| conn_err(&format!("consume {queue}"), e))?;
        Ok(Box::new(AmqpConsumer {
            _channel: ch,
            consumer,
        }))
    }

    async fn queue_depth(&self, queue: &str) -> Result<u64, BrokerError> {
        let ch = self.fresh_channel().await?;
        let q = ch
            .queue_declare(
                short(queue),
                QueueDeclareOptions::durable().passive(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| conn_err(&format!("inspect queue {queue}"), e))?;
        let _ = ch.close(200, short("OK")).await;
        Ok(u64::from(q.message_count()))
    }
}

/// A consumer on its own channel; dropping it closes the channel, which returns its
/// unacknowledged deliveries to the queue.
struct AmqpConsumer {
    _channel: Channel,
    consumer: lapin::Consumer,
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        match self.consumer.next().await? {
            Ok(d) => {
                let headers = from_field_table(d.properties.headers().as_ref());
                let attempt = attempt_from(&headers);
                Some(Ok(Delivery {
                    message: Message {
                        body: d.data,
                        headers,
                    },
                    attempt,
                    acker: Box::new(AmqpAcker(d.acker)),
                }))
            }
            Err(e) => Some(Err(conn_err("consumer", e))),
        }
    }
}

struct AmqpAcker(lapin::Acker);

fn settled(what: &str, r: lapin::Result<bool>) -> Result<(), BrokerError> {
    match r {
        Ok(true) => Ok(()),
        Ok(false) => Err(BrokerError::Connection(format!(
            "{what}: delivery already settled or its channel is closed (it will be redelivered)"
        ))),
        Err(e) => Err(conn_err(what, e)),
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> Result<(), BrokerError> {
        settled("ack", self.0.ack(BasicAckOptions::default()).await)
    }

    async fn requeue(&self) -> Result<(), BrokerError> {
        settled(
            "requeue",
            self.0
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_through_field_tables_without_delivery_count() {
        let mut h = BTreeMap::new();
        h.insert("traceparent".to_string(), "00-abc-def-01".to_string());
        h.insert(DELIVERY_COUNT_HEADER.to_string(), "2".to_string());
        let table = to_field_table(&h);
        assert!(!table.contains_key(DELIVERY_COUNT_HEADER));
        let back = from_field_table(Some(&table));
        assert_eq!(
            back.get("traceparent").map(String::as_str),
            Some("00-abc-def-01")
        );
    }

    #[test]
    fn attempt_is_delivery_count_plus_one() {
        let mut h = BTreeMap::new();
        assert_eq!(attempt_from(&h), 1);
        h.insert(DELIVERY_COUNT_HEADER.to_string(), "2".to_string());
        assert_eq!(attempt_from(&h), 3);
    }
}
