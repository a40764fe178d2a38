//! The publisher stage end to end: object store in, DCMTK storescp and a directory out, the
//! done announcement on the broker, and the runtime's retry → dead-letter path.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use object_store::memory::InMemory;
use spinescreen_proto::job::{StudyDone, DONE_QUEUE};
use spinescreen_proto::{Job, Stage, StudyResult, StudyStatus, StudyUid, VolumeHeader};
use spinescreen_publisher::{Destination, PublisherConfig, PublisherWorker, RetryPolicy};
use spinescreen_runtime::broker::{MemoryBroker, ERROR_HEADER};
use spinescreen_runtime::{
    metrics, run_stage, Broker, CancellationToken, LoopOptions, Message, StageContext, StageError,
    StageWorker, StudyStore,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(destinations: Vec<Destination>) -> PublisherConfig {
    PublisherConfig {
        destinations,
        retry: RetryPolicy {
            attempts: 2,
            initial_backoff_ms: 10,
            max_backoff_ms: 20,
        },
        timeout_s: 5,
        ..Default::default()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn job(received_ms_ago: u64) -> Job {
    let mut job = Job::ingest(
        "job-1".into(),
        "incoming/b1/".into(),
        now_ms() - received_ms_ago,
    );
    job.study_uid = Some(StudyUid::new(STUDY_UID).unwrap());
    job.timings_ms = BTreeMap::from([
        ("ingest".to_string(), 1000),
        ("inference".to_string(), 2000),
        ("morphometry".to_string(), 300),
        ("rendering".to_string(), 400),
    ]);
    job.trace_context = BTreeMap::from([(
        "traceparent".to_string(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string(),
    )]);
    job
}

async fn seeded_store(result: Option<&StudyResult>, with_volume: bool, sc: usize) -> StudyStore {
    let store = StudyStore::new(Arc::new(InMemory::new()));
    let keys = StudyUid::new(STUDY_UID).unwrap().keys();
    if let Some(r) = result {
        store
            .put(&keys.result(), serde_json::to_vec(r).unwrap())
            .await
            .unwrap();
    }
    if with_volume {
        let header = VolumeHeader {
            schema_version: spinescreen_proto::SCHEMA_VERSION,
            dims: [64, 64, 40],
            spacing_mm: [1.0, 1.0, 1.25],
            origin_mm: [0.0, 0.0, 0.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: study_info(40),
        };
        store
            .put(&keys.volume_header(), serde_json::to_vec(&header).unwrap())
            .await
            .unwrap();
    }
    for i in 0..sc {
        store
            .put(&keys.secondary_capture(i), sc_file(i))
            .await
            .unwrap();
    }
    if sc > 0 {
        store
            .put(&keys.preview_png(), b"\x89PNG fake".to_vec())
            .await
            .unwrap();
    }
    store
}

fn context(store: StudyStore, broker: &MemoryBroker) -> StageContext {
    StageContext {
        store,
        broker: Arc::new(broker.clone()),
        service: service(),
    }
}

async fn next_done(broker: &MemoryBroker) -> (StudyDone, BTreeMap<String, String>) {
    let mut consumer = broker.consume(DONE_QUEUE, 1).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    d.acker.ack().await.unwrap();
    (
        serde_json::from_slice(&d.message.body).unwrap(),
        d.message.headers.clone(),
    )
}

#[tokio::test]
async fn worker_delivers_sr_and_sc_records_sla_timings_and_announces_done() {
    let scp = StoreScp::start(&[]);
    let out = tempfile::tempdir().unwrap();
    let store = seeded_store(Some(&positive_result()), true, 2).await;
    let broker = MemoryBroker::new();
    let ctx = context(store.clone(), &broker);
    let worker = PublisherWorker::new(config(vec![
        scp.destination(),
        Destination::Directory {
            path: out.path().to_path_buf(),
        },
    ]))
    .unwrap();
    assert_eq!(worker.stage(), Stage::Publisher);
    let latency_before = metrics::STUDY_LATENCY.get_sample_count();

    let next = worker.process(job(5_000), &ctx).await.unwrap();
    assert!(next.is_empty(), "the publisher is the last stage");

    // The PACS got 2 SC + 1 SR; the SR is the one stored in the study prefix.
    let keys = StudyUid::new(STUDY_UID).unwrap().keys();
    let sr = store.get(&keys.structured_report()).await.unwrap();
    let sr = spinescreen_publisher::Instance::from_part10(sr, "sr.dcm").unwrap();
    let received = scp.received();
    assert_eq!(received.len(), 3);
    assert!(received.contains(&sr.sop_instance_uid));

    // timings_ms: the stage timings, the publisher's own, and end-to-end ≥ the 5 s head start.
    let result: StudyResult =
        serde_json::from_slice(&store.get(&keys.result()).await.unwrap()).unwrap();
    for k in [
        "ingest",
        "inference",
        "morphometry",
        "rendering",
        "publisher",
        "end_to_end",
    ] {
        assert!(
            result.timings_ms.contains_key(k),
            "no {k} in {:?}",
            result.timings_ms
        );
    }
    let e2e = result.timings_ms["end_to_end"];
    assert!((5_000..60_000).contains(&e2e), "{e2e}");
    let dir_result: StudyResult = serde_json::from_slice(
        &std::fs::read(out.path().join(STUDY_UID).join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dir_result.timings_ms["end_to_end"], e2e);
    assert!(metrics::STUDY_LATENCY.get_sample_count() > latency_before);

    let (done, headers) = next_done(&broker).await;
    assert_eq!(done.job_id, "job-1");
    assert_eq!(done.status, StudyStatus::Ok);
    assert_eq!(done.end_to_end_ms, e2e);
    assert_eq!(done.result_key, keys.result());
    assert!(headers["traceparent"].starts_with("00-0af7"));

    // A redelivered job republishes the same instances: nothing new at the PACS.
    worker.process(job(6_000), &ctx).await.unwrap();
    assert_eq!(scp.received(), received);
}

#[tokio::test]
async fn technical_defect_without_volume_still_gets_an_sr_saying_why() {
    let scp = StoreScp::start(&[]);
    let store = seeded_store(Some(&defect_result()), false, 0).await;
    let broker = MemoryBroker::new();
    let worker = PublisherWorker::new(config(vec![scp.destination()])).unwrap();
    let mut j = job(1_000);
    j.status = StudyStatus::TechnicalDefect;
    worker
        .process(j, &context(store.clone(), &broker))
        .await
        .unwrap();
    assert_eq!(scp.received().len(), 1);
    let sr_path = std::fs::read_dir(scp.dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dump = dsrdump(&sr_path);
    assert!(dump.contains("NO_CT_SERIES"), "{dump}");
    assert!(dump.contains("Technical defect"), "{dump}");
    let (done, _) = next_done(&broker).await;
    assert_eq!(done.status, StudyStatus::TechnicalDefect);
}

#[tokio::test]
async fn missing_result_json_is_published_as_an_internal_error_not_dropped() {
    let store = seeded_store(None, true, 0).await;
    let broker = MemoryBroker::new();
    let worker = PublisherWorker::new(config(vec![])).unwrap();
    worker
        .process(job(1_000), &context(store.clone(), &broker))
        .await
        .unwrap();
    let keys = StudyUid::new(STUDY_UID).unwrap().keys();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sr.dcm");
    std::fs::write(&p, store.get(&keys.structured_report()).await.unwrap()).unwrap();
    let dump = dsrdump(&p);
    assert!(dump.contains("INTERNAL_ERROR"), "{dump}");
    let (done, _) = next_done(&broker).await;
    assert_eq!(done.status, StudyStatus::TechnicalDefect);
}

fn dsrdump(path: &Path) -> String {
    let out = Command::new("dsrdump")
        .args(["+Pl"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn refusing_pacs_makes_a_transient_error() {
    let scp = StoreScp::start(&["--abort-after"]);
    let store = seeded_store(Some(&positive_result()), true, 1).await;
    let broker = MemoryBroker::new();
    let worker = PublisherWorker::new(config(vec![scp.destination()])).unwrap();
    let err = worker
        .process(job(1_000), &context(store, &broker))
        .await
        .unwrap_err();
    assert!(matches!(err, StageError::Transient(_)), "{err}");
    assert!(err.to_string().contains("2 attempt(s)"), "{err}");
    assert!(scp.received().is_empty());
    assert_eq!(
        broker.queue_len(DONE_QUEUE),
        0,
        "no done announcement for an undelivered study"
    );
}

#[tokio::test]
async fn refusing_pacs_ends_in_the_dead_letter_queue_with_the_reason() {
    let scp = StoreScp::start(&["--abort-after"]);
    let store = seeded_store(Some(&positive_result()), true, 1).await;
    let broker = MemoryBroker::new();
    let worker: Arc<dyn StageWorker> =
        Arc::new(PublisherWorker::new(config(vec![scp.destination()])).unwrap());
    let queue = Stage::Publisher.queue();
    let dlq = format!("{queue}.dlq");
    broker.declare(queue).await.unwrap();
    broker
        .publish(
            queue,
            Message {
                body: job(1_000).to_bytes(),
                headers: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let opts = LoopOptions {
        delivery_limit: 2,
        retry_delay: Duration::from_millis(10),
        shutdown_grace: Duration::from_secs(5),
        ..LoopOptions::default()
    };
    let ctx = context(store, &broker);
    let loop_task = tokio::spawn(run_stage(worker, ctx, opts, shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while broker.queue_len(&dlq) == 0 {
        assert!(Instant::now() < deadline, "job never reached {dlq}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    loop_task.await.unwrap().unwrap();
    let mut consumer = broker.consume(&dlq, 1).await.unwrap();
    let d = consumer.next().await.unwrap().unwrap();
    let reason = &d.message.headers[ERROR_HEADER];
    assert!(reason.contains("cstore STORESCP@127.0.0.1"), "{reason}");
    assert!(reason.contains("attempt(s)"), "{reason}");
    assert_eq!(Job::from_bytes(&d.message.body).unwrap().job_id, "job-1");
    assert!(scp.received().is_empty());
}

#[tokio::test]
async fn retention_deletes_received_files_and_voxels_after_delivery_and_keeps_the_record() {
    let keys = StudyUid::new(STUDY_UID).unwrap().keys();
    for (retention, kept) in [
        (PublisherConfig::default().retention, false),
        (
            spinescreen_publisher::Retention {
                delete_received: false,
                delete_intermediates: false,
            },
            true,
        ),
    ] {
        let store = seeded_store(Some(&defect_result()), true, 0).await;
        for key in [
            "incoming/b1/1.2.3.dcm",
            "incoming/b1/1.2.4.dcm",
            "incoming/b2/1.2.5.dcm",
        ] {
            store.put(key, b"DICM".to_vec()).await.unwrap();
        }
        for key in [
            keys.volume_voxels(),
            keys.spine_region_frames(),
            keys.spine_region_header(),
        ] {
            store.put(&key, vec![0u8; 16]).await.unwrap();
        }
        let broker = MemoryBroker::new();
        let worker = PublisherWorker::new(PublisherConfig {
            retention,
            ..config(vec![])
        })
        .unwrap();
        let mut j = job(1_000);
        j.status = StudyStatus::TechnicalDefect;
        worker
            .process(j, &context(store.clone(), &broker))
            .await
            .unwrap();
        let received = store.list("incoming/b1/").await.unwrap();
        assert_eq!(received.len(), if kept { 2 } else { 0 }, "{received:?}");
        for key in [
            keys.volume_voxels(),
            keys.spine_region_frames(),
            keys.spine_region_header(),
        ] {
            assert_eq!(store.exists(&key).await.unwrap(), kept, "{key}");
        }
        // Another reception, and the study's record, are never touched.
        assert_eq!(store.list("incoming/b2/").await.unwrap().len(), 1);
        for key in [
            keys.result(),
            keys.structured_report(),
            keys.volume_header(),
        ] {
            assert!(store.exists(&key).await.unwrap(), "{key}");
        }
    }
    assert!(metrics::render().contains("spinescreen_retention_deleted_total{kind=\"received\"}"));
}

/// The study ledger learns where each study went: `delivered` with the SOP Instance UIDs a
/// destination acknowledged, `delivery_failed` with why.
#[tokio::test]
async fn worker_reports_each_destination_on_the_events_feed() {
    use spinescreen_proto::{EventKind, StudyEvent, EVENTS_QUEUE};
    let out = tempfile::tempdir().unwrap();
    let store = seeded_store(Some(&positive_result()), true, 2).await;
    let broker = MemoryBroker::new();
    broker.declare(EVENTS_QUEUE).await.unwrap();
    let ctx = context(store, &broker);
    let events = |broker: MemoryBroker| async move {
        let mut consumer = broker.consume(EVENTS_QUEUE, 100).await.unwrap();
        let mut got = vec![];
        while let Ok(Some(Ok(d))) =
            tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
        {
            d.acker.ack().await.unwrap();
            got.push(StudyEvent::from_bytes(&d.message.body).unwrap());
        }
        got
    };

    let worker = PublisherWorker::new(config(vec![Destination::Directory {
        path: out.path().to_path_buf(),
    }]))
    .unwrap();
    worker.process(job(1_000), &ctx).await.unwrap();
    let got = events(broker.clone()).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let e = &got[0];
    assert_eq!((e.kind, e.stage), (EventKind::Delivered, Stage::Publisher));
    assert!(e.destination.as_deref().unwrap().starts_with("directory "));
    assert_eq!(e.instances.len(), 3, "two secondary captures and the SR");
    assert_eq!(e.study_uid.as_ref().unwrap().as_str(), STUDY_UID);

    let refused = PublisherWorker::new(config(vec![Destination::Webhook {
        url: "http://127.0.0.1:1/hook".into(),
        fhir: false,
    }]))
    .unwrap();
    assert!(refused.process(job(1_000), &ctx).await.is_err());
    let got = events(broker.clone()).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind, EventKind::DeliveryFailed);
    assert!(got[0].instances.is_empty());
    assert!(
        got[0].reason.as_deref().unwrap().contains("attempt"),
        "{:?}",
        got[0].reason
    );
}
