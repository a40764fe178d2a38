//! Publishing the events feed ([`spinescreen_proto::StudyEvent`] on
//! [`spinescreen_proto::EVENTS_QUEUE`]) that the study ledger consumes.
//!
//! Best effort by design: an event nobody consumes (no ledger declared the queue) is dropped by
//! the broker ([`crate::Broker::publish_optional`]), and one that cannot be published (the broker
//! hiccups) is logged at debug level and dropped. Observing a job must never fail it.

use crate::broker::{Broker, BrokerError, Message};
use spinescreen_proto::job::{StudyDone, DONE_LEDGER_QUEUE, DONE_QUEUE};
use spinescreen_proto::{Job, StudyEvent, StudyStatus, StudyUid, EVENTS_QUEUE, SCHEMA_VERSION};
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

/// Announce that `job` is finished with the study's existing result (of `status`, at `uid`'s
/// result key) without redoing it: a re-send that adds nothing, or a copy of a job that another
/// copy already delivered. Whoever waits for the job (`spinescreen analyze`) is answered.
pub async fn announce_existing(
    broker: &dyn Broker,
    job: &Job,
    uid: &StudyUid,
    status: StudyStatus,
) -> Result<(), BrokerError> {
    let done = StudyDone {
        schema_version: SCHEMA_VERSION,
        job_id: job.job_id.clone(),
        study_uid: uid.clone(),
        status,
        result_key: uid.keys().result(),
        end_to_end_ms: now_unix_ms().saturating_sub(job.received_at_unix_ms),
    };
    let body = serde_json::to_vec(&done)
        .map_err(|e| BrokerError::NotConfirmed(format!("announcement not serialised: {e}")))?;
    announce_done(
        broker,
        Message {
            body,
            headers: job.trace_context.clone(),
        },
    )
    .await
}
