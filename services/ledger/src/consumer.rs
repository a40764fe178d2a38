//! `spinescreen worker ledger`: consumes its own copy of the done announcements
//! (`spinescreen.done.ledger`, so it never takes `spinescreen.done` messages from another reader)
//! and the events feed, and writes the ledger.
//!
//! Each delivery is acknowledged only after its write committed, so a crash leads to a
//! redelivery, and the writes are idempotent ([`crate::db`]), so a redelivery adds nothing. A
//! message that cannot be decoded is moved to `<queue>.dlq`; one whose write fails is requeued
//! (after the delivery limit, dead-lettered too).

use crate::config::LedgerConfig;
use crate::db::Ledger;
use crate::metrics::refresh_station_metrics;
use anyhow::Context;
use spinescreen_proto::job::DONE_LEDGER_QUEUE as DONE_QUEUE;
use spinescreen_proto::{
    EventKind, SourceInfo, StudyDone, StudyEvent, StudyResult, StudyUid, EVENTS_QUEUE,
    SCHEMA_VERSION,
};
use spinescreen_runtime::broker::{dlq_name, Delivery, ERROR_HEADER};
use spinescreen_runtime::events::now_unix_ms;
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::{Broker, CancellationToken, StudyStore};
use std::sync::Arc;
use std::time::Duration;

/// Unsettled deliveries per queue.
const PREFETCH: u16 = 16;
/// Attempts at writing one message before it is dead-lettered.
const DELIVERY_LIMIT: u32 = 5;
/// Pause before a failed write is requeued, and the first reconnect pause (doubles to 30 s).
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// What one message asks of the ledger.
enum Outcome {
    Stored,
    Undecodable(String),
    Failed(anyhow::Error),
}

/// Run the ledger consumer until `shutdown`: connect (and migrate), declare and consume both
/// queues, keep the station metrics fresh. Reconnects with backoff after a database or broker
/// failure.
pub async fn run_ledger(
    config: &LedgerConfig,
    broker: Arc<dyn Broker>,
    store: StudyStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let url = config.database_url()?;
    spinescreen_runtime::metrics::register_all();
    let refresher = tokio::spawn(refresh_loop(url.clone(), config.clone(), shutdown.clone()));
    let mut backoff = RETRY_DELAY;
    while !shutdown.is_cancelled() {
        match session(&url, config, &broker, &store, &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                spinescreen_runtime::http::set_stage_ready("ledger", false);
                tracing::warn!(error = %format!("{e:#}"), "ledger session failed; starting again");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    refresher.abort();
    Ok(())
}

async fn refresh_loop(url: String, config: LedgerConfig, shutdown: CancellationToken) {
    let every = Duration::from_secs(config.metrics_refresh_secs.max(1));
    let mut ledger: Option<Ledger> = None;
    loop {
        if ledger.as_ref().is_none_or(Ledger::is_closed) {
            ledger = Ledger::connect(&url, &config.schema).await.ok();
        }
        if let Some(l) = &ledger {
            if let Err(e) = refresh_station_metrics(l, now_unix_ms()).await {
                tracing::warn!(error = %e, "refreshing the station metrics failed");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn session(
    url: &str,
    config: &LedgerConfig,
    broker: &Arc<dyn Broker>,
    store: &StudyStore,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut ledger = Ledger::connect(url, &config.schema).await?;
    for queue in [DONE_QUEUE, EVENTS_QUEUE] {
        broker
            .declare(queue)
            .await
            .with_context(|| format!("declaring {queue}"))?;
    }
    let mut done = broker.consume(DONE_QUEUE, PREFETCH).await?;
    let mut events = broker.consume(EVENTS_QUEUE, PREFETCH).await?;
    spinescreen_runtime::http::set_stage_ready("ledger", true);
    tracing::info!(queues = ?[DONE_QUEUE, EVENTS_QUEUE], "ledger consuming");
    loop {
        let (queue, delivery) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            d = done.next() => (DONE_QUEUE, d),
            d = events.next() => (EVENTS_QUEUE, d),
        };
        let delivery = match delivery {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the broker closed the {queue} consumer"),
        };
        let outcome = if queue == DONE_QUEUE {
            on_done(&mut ledger, store, &delivery.message.body).await
        } else {
            on_event(&mut ledger, store, &delivery.message.body).await
        };
        settle(broker.as_ref(), queue, delivery, outcome, shutdown).await?;
        if ledger.is_closed() {
            anyhow::bail!("the ledger database connection was lost");
        }
    }
}

async fn settle(
    broker: &dyn Broker,
    queue: &str,
    delivery: Delivery,
    outcome: Outcome,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let Delivery {
        mut message,
        attempt,
        acker,
    } = delivery;
    let dead = match outcome {
        Outcome::Stored => {
            acker.ack().await?;
            return Ok(());
        }
        Outcome::Undecodable(why) => why,
        Outcome::Failed(e) if attempt < DELIVERY_LIMIT => {
            tracing::warn!(queue, attempt, error = %format!("{e:#}"), "ledger write failed; requeueing");
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(RETRY_DELAY) => {}
            }
            acker.requeue().await?;
            return Ok(());
        }
        Outcome::Failed(e) => format!("{e:#} (attempt {attempt} of {DELIVERY_LIMIT})"),
    };
    tracing::warn!(queue, error = %dead, "dead-lettering a ledger message");
    message.headers.insert(ERROR_HEADER.into(), dead);
    broker.publish(&dlq_name(queue), message).await?;
    acker.ack().await?;
    Ok(())
}

/// A JSON object from the store, `None` when it does not exist or cannot be read as `T`.
async fn read_json<T: serde::de::DeserializeOwned>(
    store: &StudyStore,
    key: &str,
) -> anyhow::Result<Option<T>> {
    match store.get(key).await {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::warn!(key, error = %e, "unreadable object; the ledger goes without it");
                Ok(None)
            }
        },
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn record_source_of(
    ledger: &mut Ledger,
    store: &StudyStore,
    uid: &StudyUid,
) -> anyhow::Result<()> {
    if let Some(mut source) = read_json::<SourceInfo>(store, &uid.keys().source()).await? {
        source.study_instance_uid = uid.to_string();
        ledger.record_source(&source).await?;
    }
    Ok(())
}

async fn on_done(ledger: &mut Ledger, store: &StudyStore, body: &[u8]) -> Outcome {
    let done: StudyDone = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(e) => return Outcome::Undecodable(format!("malformed done message: {e}")),
    };
    if done.schema_version != SCHEMA_VERSION {
        return Outcome::Undecodable(format!(
            "done message schema version {} is not supported",
            done.schema_version
        ));
    }
    let write = async {
        let result = read_json::<StudyResult>(store, &done.result_key)
            .await?
            .filter(|r| r.study_instance_uid == done.study_uid.as_str());
        let updated = ledger
            .record_done(&done, result.as_ref(), now_unix_ms())
            .await?;
        record_source_of(ledger, store, &done.study_uid).await?;
        tracing::info!(study = %done.study_uid, status = done.status.as_str(), updated, "study recorded");
        anyhow::Ok(())
    };
    match write.await {
        Ok(()) => Outcome::Stored,
        Err(e) => Outcome::Failed(e),
    }
}

async fn on_event(ledger: &mut Ledger, store: &StudyStore, body: &[u8]) -> Outcome {
    let event = match StudyEvent::from_bytes(body) {
        Ok(e) => e,
        Err(e) => return Outcome::Undecodable(e.to_string()),
    };
    let write = async {
        ledger.record_event(&event).await?;
        // Idempotent, and repeated on a redelivery in case the first try stored only the event.
        if event.kind == EventKind::Received {
            if let Some(uid) = &event.study_uid {
                record_source_of(ledger, store, uid).await?;
            }
        }
        anyhow::Ok(())
    };
    match write.await {
        Ok(()) => Outcome::Stored,
        Err(e) => Outcome::Failed(e),
    }
}
