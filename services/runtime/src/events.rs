//! Publishing the events feed ([`spinescreen_proto::StudyEvent`] on
//! [`spinescreen_proto::EVENTS_QUEUE`]) that the study ledger consumes.
//!
//! Best effort by design: an event nobody consumes (no ledger declared the queue) is dropped by
//! the broker ([`crate::Broker::publish_optional`]), and one that cannot be published (the broker
//! hiccups) is logged at debug level and dropped. Observing a job must never fail it.

use crate::broker::{Broker, BrokerError, Message};
use spinescreen_proto::job::{DONE_LEDGER_QUEUE, DONE_QUEUE};
use spinescreen_proto::{StudyEvent, EVENTS_QUEUE};
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix epoch milliseconds (0 if the clock is before 1970).
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Publish `event` on the events feed; returns whether the broker confirmed it (both brokers
/// confirm, and drop, an event no queue takes).
pub async fn publish_event(broker: &dyn Broker, event: &StudyEvent) -> bool {
    let message = Message {
        body: event.to_bytes(),
        headers: Default::default(),
    };
    match broker.publish_optional(EVENTS_QUEUE, message).await {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(event = %event.event_id, error = %e, "event not published");
            false
        }
    }
}

/// Announce a finished study ([`spinescreen_proto::StudyDone`] as JSON in `message`) on
/// [`DONE_QUEUE`] and on the ledger's own [`DONE_LEDGER_QUEUE`]. Unlike events, announcements
/// are not best effort: a failure is returned (the job is retried; the ledger's writes are
/// idempotent). The ledger's copy is dropped while no ledger has declared its queue.
pub async fn announce_done(broker: &dyn Broker, message: Message) -> Result<(), BrokerError> {
    broker.declare(DONE_QUEUE).await?;
    broker.publish(DONE_QUEUE, message.clone()).await?;
    broker.publish_optional(DONE_LEDGER_QUEUE, message).await
}
