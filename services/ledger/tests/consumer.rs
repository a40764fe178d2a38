//! `worker ledger` end to end on the in-memory broker and a local store: events and the done
//! announcement become a ledger record; a replay of the same messages adds nothing; the
//! station gauges report ring artefacts per scanner; a bad message goes to the dead-letter
//! queue instead of blocking the feed.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use spinescreen_ledger::metrics::refresh_station_metrics;
use spinescreen_ledger::query::find;
use spinescreen_ledger::{run_ledger, LedgerConfig};
use spinescreen_proto::job::DONE_LEDGER_QUEUE;
use spinescreen_proto::EVENTS_QUEUE;
use spinescreen_proto::{EventKind, SourceInfo, Stage, StudyEvent, StudyStatus};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::events::{announce_done, now_unix_ms, publish_event};
use spinescreen_runtime::metrics::STATION_DEFECTS_TODAY;
use spinescreen_runtime::{Broker, CancellationToken, Message, StoreConfig, StudyStore};
use std::sync::Arc;
use std::time::Duration;

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_records_studies_once_even_when_the_feed_is_replayed() {
    let Some(db) = test_db().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = StudyStore::from_config(&StoreConfig::Local {
        root: dir.path().into(),
    })
    .unwrap();
    let memory = MemoryBroker::new();
    let broker: Arc<dyn Broker> = Arc::new(memory.clone());
    let config = LedgerConfig {
        url: Some(database_url()),
        schema: db.schema.clone(),
        metrics_refresh_secs: 3600,
    };
    let stop = CancellationToken::new();
    let worker = tokio::spawn({
        let (broker, store, stop) = (broker.clone(), store.clone(), stop.clone());
        async move { run_ledger(&config, broker, store, stop).await }
    });
    let now = now_unix_ms();
    let study = "1.2.840.55";
    let j = job("job-55", study, now - 70_000);
    let keys = j.study_uid.clone().unwrap().keys();
    let source = SourceInfo {
        study_instance_uid: study.into(),
        accession_number: "ACC-55".into(),
        station_name: "CT-3".into(),
        ..Default::default()
    };
    store
        .put(&keys.source(), serde_json::to_vec(&source).unwrap())
        .await
        .unwrap();
    store
        .put(
            &keys.result(),
            serde_json::to_vec(&defect_result(study, "RING_ARTIFACTS")).unwrap(),
        )
        .await
        .unwrap();
    let events = pipeline_events(&j, now - 69_000);
    let announce = Message {
        body: serde_json::to_vec(&done(&j, StudyStatus::TechnicalDefect, 70_000)).unwrap(),
        headers: Default::default(),
    };
    // Until the ledger has declared its queues, events and its done copies are dropped (no
    // ledger, no growth).
    wait_for("the ledger to consume its queues", || async {
        memory.consumer_count(EVENTS_QUEUE) == 1 && memory.consumer_count(DONE_LEDGER_QUEUE) == 1
    })
    .await;
    for e in &events {
        assert!(publish_event(&*broker, e).await);
    }
    announce_done(&*broker, announce.clone()).await.unwrap();
    wait_for("the study and all its events to be recorded", || async {
        find(&db.ledger, "ACC-55")
            .await
            .unwrap()
            .first()
            .is_some_and(|s| s.state == "done")
            && count(&db, "events").await == events.len() as i64
    })
    .await;

    // The same messages again (a crash before the acks), each queue followed by a sentinel;
    // each queue is consumed in order, so once the sentinels are in, the replay was handled.
    for e in &events {
        assert!(publish_event(&*broker, e).await);
    }
    announce_done(&*broker, announce.clone()).await.unwrap();
    let mut other = job("job-56", "1.2.840.56", now);
    let sentinel_done = done(&other, StudyStatus::Ok, 1_000);
    other.study_uid = None;
    let sentinel = StudyEvent::new(&other, Stage::Ingest, EventKind::Started, 1, now);
    assert!(publish_event(&*broker, &sentinel).await);
    let body = serde_json::to_vec(&sentinel_done).unwrap();
    announce_done(
        &*broker,
        Message {
            body,
            headers: Default::default(),
        },
    )
    .await
    .unwrap();
    wait_for("the sentinels", || async {
        !find(&db.ledger, "1.2.840.56").await.unwrap().is_empty()
            && count(&db, "events").await > events.len() as i64
    })
    .await;
    assert_eq!(count(&db, "events").await, events.len() as i64 + 1);
    assert_eq!(count(&db, "studies").await, 2);
    assert_eq!(count(&db, "deliveries").await, 2);
    let s = &find(&db.ledger, "ACC-55").await.unwrap()[0];
    assert_eq!(s.reason_code.as_deref(), Some("RING_ARTIFACTS"));
    assert_eq!(s.station_name, "CT-3");

    // The scanner shows up in the defect gauge the same day.
    refresh_station_metrics(&db.ledger, now).await.unwrap();
    let ring = STATION_DEFECTS_TODAY
        .with_label_values(&["CT-3", "RING_ARTIFACTS", "true"])
        .get();
    assert_eq!(ring, 1);

    // Each consumer has its own queue: the announcements are still on spinescreen.done for
    // another reader (`spinescreen load`), the ledger took only its copies.
    assert_eq!(memory.queue_len(spinescreen_proto::job::DONE_QUEUE), 3);
    assert_eq!(memory.queue_len(DONE_LEDGER_QUEUE), 0);

    // A malformed message is dead-lettered, and the feed keeps flowing.
    broker
        .publish(
            DONE_LEDGER_QUEUE,
            Message {
                body: b"{not json".to_vec(),
                headers: Default::default(),
            },
        )
        .await
        .unwrap();
    wait_for("the bad message to be dead-lettered", || {
        let b = broker.clone();
        async move {
            b.queue_depth(&format!("{DONE_LEDGER_QUEUE}.dlq"))
                .await
                .unwrap_or(0)
                == 1
        }
    })
    .await;

    stop.cancel();
    worker.await.unwrap().unwrap();
}
