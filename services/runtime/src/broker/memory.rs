//! In-memory broker for the embedded mode (`spinescreen all`) and for tests.
//!
//! It keeps the semantics of the AMQP broker so a stage cannot tell them apart: one FIFO per
//! queue, manual acknowledgement, at most `prefetch` unsettled deliveries per consumer, a
//! requeued or abandoned delivery comes back with its attempt number incremented, deliveries a
//! consumer still held when it was dropped return to the queue (like a closed AMQP channel), and
//! a message returned more than `delivery_limit` times is moved to `<queue>.dlq` with the
//! RabbitMQ header `x-first-death-reason: delivery_limit` (as a quorum queue with
//! `x-delivery-limit` does). Publishing to a queue that was never declared fails, like a
//! mandatory AMQP publish that the broker returns as unroutable.
//!
//! Nothing is persisted: messages live as long as the process.

use super::{dlq_name, Acker, Broker, BrokerError, Consumer, Delivery, Message};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Header RabbitMQ sets on a message it dead-letters itself; the memory broker sets it too.
pub const FIRST_DEATH_REASON_HEADER: &str = "x-first-death-reason";
/// Header RabbitMQ sets with the queue a dead-lettered message came from.
pub const FIRST_DEATH_QUEUE_HEADER: &str = "x-first-death-queue";

/// An in-process broker with the semantics of the AMQP one. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    delivery_limit: u32,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, QueueState>,
    next_consumer: u64,
    next_tag: u64,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<Pending>,
    /// delivery tag → (consumer id, message)
    unacked: BTreeMap<u64, (u64, Pending)>,
    /// consumer id → prefetch (0 = unlimited)
    consumers: HashMap<u64, u16>,
    notify: Arc<Notify>,
}

#[derive(Clone)]
struct Pending {
    message: Message,
    attempt: u32,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker whose queues dead-letter a message returned more than 3 times (the AMQP default).
    pub fn new() -> Self {
        Self::with_delivery_limit(3)
    }

    /// A broker whose queues dead-letter a message once it has been returned (requeued or
    /// abandoned by a dropped consumer) more than `delivery_limit` times, like a quorum queue's
    /// `x-delivery-limit`.
    pub fn with_delivery_limit(delivery_limit: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                delivery_limit,
            }),
        }
    }

    /// Messages ready for delivery in `queue` (not counting unacknowledged ones); 0 for an
    /// undeclared queue.
    pub fn queue_len(&self, queue: &str) -> usize {
        self.inner
            .lock()
            .queues
            .get(queue)
            .map_or(0, |q| q.ready.len())
    }

    /// Consumers attached to `queue` (0 for an undeclared queue).
    pub fn consumer_count(&self, queue: &str) -> usize {
        self.inner
            .lock()
            .queues
            .get(queue)
            .map_or(0, |q| q.consumers.len())
    }

    /// Deliveries of `queue` handed out and not yet settled.
    pub fn unacked_len(&self, queue: &str) -> usize {
        self.inner
            .lock()
            .queues
            .get(queue)
            .map_or(0, |q| q.unacked.len())
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of plain collections;
        // the data is still consistent enough to keep serving (no invariant spans two fields).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Put a returned message back (attempt + 1), or dead-letter it past the delivery limit.
    fn return_message(&self, state: &mut State, queue: &str, pending: Pending) {
        let returns = pending.attempt;
        if returns > self.delivery_limit {
            let dlq = dlq_name(queue);
            if let Some(dead) = state.queues.get_mut(&dlq) {
                let mut message = pending.message;
                message
                    .headers
                    .insert(FIRST_DEATH_REASON_HEADER.into(), "delivery_limit".into());
                message
                    .headers
                    .insert(FIRST_DEATH_QUEUE_HEADER.into(), queue.to_string());
                dead.ready.push_back(Pending {
                    message,
                    attempt: 1,
                });
                dead.notify.notify_waiters();
            }
            return;
        }
        if let Some(q) = state.queues.get_mut(queue) {
            q.ready.push_front(Pending {
                message: pending.message,
                attempt: pending.attempt + 1,
            });
            q.notify.notify_waiters();
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn declare(&self, queue: &str) -> Result<(), BrokerError> {
        let mut state = self.inner.lock();
        state.queues.entry(queue.to_string()).or_default();
        state.queues.entry(dlq_name(queue)).or_default();
        Ok(())
    }

    async fn publish(&self, queue: &str, message: Message) -> Result<(), BrokerError> {
        let mut state = self.inner.lock();
        let q = state.queues.get_mut(queue).ok_or_else(|| {
            BrokerError::NotConfirmed(format!("queue {queue:?} is not declared (unroutable)"))
        })?;
        q.ready.push_back(Pending {
            message,
            attempt: 1,
        });
        q.notify.notify_waiters();
        Ok(())
    }

    async fn publish_optional(&self, queue: &str, message: Message) -> Result<(), BrokerError> {
        if !self.inner.lock().queues.contains_key(queue) {
            // Like RabbitMQ with a non-mandatory publish: nobody takes it, it is dropped.
            return Ok(());
        }
        self.publish(queue, message).await
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        let mut state = self.inner.lock();
        state.next_consumer += 1;
        let id = state.next_consumer;
        let q = state
            .queues
            .get_mut(queue)
            .ok_or_else(|| BrokerError::Connection(format!("queue {queue:?} is not declared")))?;
        q.consumers.insert(id, prefetch);
        let notify = q.notify.clone();
        Ok(Box::new(MemoryConsumer {
            inner: self.inner.clone(),
            queue: queue.to_string(),
            id,
            notify,
        }))
    }

    async fn queue_depth(&self, queue: &str) -> Result<u64, BrokerError> {
        Ok(self.queue_len(queue) as u64)
    }
}

struct MemoryConsumer {
    inner: Arc<Inner>,
    queue: String,
    id: u64,
    notify: Arc<Notify>,
}

impl MemoryConsumer {
    /// Take the next message if this consumer has prefetch credit; synchronous, so a cancelled
    /// `next()` never loses a message.
    fn try_take(&self) -> Option<Option<Delivery>> {
        let mut state = self.inner.lock();
        let state = &mut *state;
        let Some(q) = state.queues.get_mut(&self.queue) else {
            return Some(None);
        };
        let prefetch = *q.consumers.get(&self.id)?;
        let held = q.unacked.values().filter(|(c, _)| *c == self.id).count();
        if prefetch != 0 && held >= usize::from(prefetch) {
            return None;
        }
        let pending = q.ready.pop_front()?;
        state.next_tag += 1;
        let tag = state.next_tag;
        q.unacked.insert(tag, (self.id, pending.clone()));
        Some(Some(Delivery {
            message: pending.message,
            attempt: pending.attempt,
            acker: Box::new(MemoryAcker {
                inner: self.inner.clone(),
                queue: self.queue.clone(),
                tag,
            }),
        }))
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(taken) = self.try_take() {
                return taken.map(Ok);
            }
            notified.await;
        }
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        let Some(q) = state.queues.get_mut(&self.queue) else {
            return;
        };
        q.consumers.remove(&self.id);
        let mine: Vec<u64> = q
            .unacked
            .iter()
            .filter(|(_, (c, _))| *c == self.id)
            .map(|(tag, _)| *tag)
            .collect();
        // Return in reverse tag order so that push_front restores the original order.
        let returned: Vec<Pending> = mine
            .iter()
            .rev()
            .filter_map(|tag| q.unacked.remove(tag).map(|(_, p)| p))
            .collect();
        for pending in returned {
            self.inner.return_message(&mut state, &self.queue, pending);
        }
    }
}

struct MemoryAcker {
    inner: Arc<Inner>,
    queue: String,
    tag: u64,
}

impl MemoryAcker {
    fn take(&self, state: &mut State) -> Result<Pending, BrokerError> {
        let q = state
            .queues
            .get_mut(&self.queue)
            .ok_or(BrokerError::Closed)?;
        let (_, pending) = q.unacked.remove(&self.tag).ok_or_else(|| {
            BrokerError::Connection(
                "delivery no longer held (already settled, or its consumer was dropped)".into(),
            )
        })?;
        // Credit freed: wake consumers waiting on prefetch.
        q.notify.notify_waiters();
        Ok(pending)
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<(), BrokerError> {
        let mut state = self.inner.lock();
        self.take(&mut state).map(|_| ())
    }

    async fn requeue(&self) -> Result<(), BrokerError> {
        let mut state = self.inner.lock();
        let pending = self.take(&mut state)?;
        self.inner.return_message(&mut state, &self.queue, pending);
        Ok(())
    }
}
