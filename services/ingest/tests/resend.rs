//! Issue 23, item 5: a study's reception accumulates across associations and requests, so a
//! re-send or a partial send never degrades a finished result.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use spinescreen_ingest::{IngestConfig, IngestWorker, SourceFile};
use spinescreen_proto::job::DONE_QUEUE;
use spinescreen_proto::{Job, Reason, ReasonCode, ServiceInfo, StudyResult, StudyStatus, StudyUid};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::{StageContext, StageWorker, StudyStore};
use std::sync::Arc;

fn context() -> (StageContext, Arc<MemoryBroker>) {
    let broker = Arc::new(MemoryBroker::new());
    let ctx = StageContext {
        store: StudyStore::new(Arc::new(object_store::memory::InMemory::new())),
        broker: broker.clone(),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "test".into(),
        },
    };
    (ctx, broker)
}

fn worker() -> IngestWorker {
    let mut config = IngestConfig::default();
    config.limits.min_slices = 8;
    IngestWorker::new(&config)
}

/// Store `files` as the reception `batch` and return its job.
async fn receive(ctx: &StageContext, batch: &str, files: &[SourceFile]) -> Job {
    for f in files {
        ctx.store
            .put(&format!("incoming/{batch}/{}", f.name), f.bytes.clone())
            .await
            .unwrap();
    }
    Job::ingest(batch.into(), format!("incoming/{batch}/"), 1)
}

/// What morphometry and the publisher would leave: a finished `ok` result.
async fn finish(ctx: &StageContext, uid: &StudyUid) -> Vec<u8> {
    let mut result = StudyResult::not_analysed(
        uid.to_string(),
        StudyStatus::Ok,
        Reason::new(ReasonCode::INTERNAL_ERROR, "placeholder"),
        ctx.service.clone(),
    );
    result.reason = None;
    result.notes = vec!["15 vertebrae".into()];
    let bytes = serde_json::to_vec_pretty(&result).unwrap();
    ctx.store
        .put(&uid.keys().result(), bytes.clone())
        .await
        .unwrap();
    bytes
}

async fn slices(ctx: &StageContext, uid: &StudyUid) -> usize {
    spinescreen_runtime::volumes::read_volume(&ctx.store, &uid.keys())
        .await
        .unwrap()
        .header
        .dims[2]
}

#[tokio::test]
async fn a_partial_re_send_leaves_the_finished_result_as_it_was() {
    let (ctx, broker) = context();
    let spec = SeriesSpec::default();
    let files = spec.files();
    let out = worker()
        .process(receive(&ctx, "full", &files).await, &ctx)
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, StudyStatus::Ok);
    let uid = out[0].study_uid.clone().unwrap();
    let finished = finish(&ctx, &uid).await;

    // The probe: 3 of its files again.
    let out = worker()
        .process(receive(&ctx, "again", &files[..3]).await, &ctx)
        .await
        .unwrap();
    assert!(out.is_empty(), "nothing new: nothing to re-process");
    assert_eq!(ctx.store.get(&uid.keys().result()).await.unwrap(), finished);
    assert_eq!(slices(&ctx, &uid).await, spec.slices);
    // Whoever waits for the job hears that it is done, with the standing result.
    assert_eq!(broker.queue_len(DONE_QUEUE), 1);

    // New instances that alone are too few, after the first reception's files were deleted
    // (retention): recorded, but the finished result stands.
    for f in &files {
        ctx.store
            .delete(&format!("incoming/full/{}", f.name))
            .await
            .unwrap();
    }
    let other = SeriesSpec {
        series_uid: "1.2.826.0.1.3680043.9.7433.1.1.3".into(),
        series_number: 3,
        ..SeriesSpec::default()
    };
    let out = worker()
        .process(receive(&ctx, "more", &other.files()[..3]).await, &ctx)
        .await
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(ctx.store.get(&uid.keys().result()).await.unwrap(), finished);
    assert_eq!(broker.queue_len(DONE_QUEUE), 2);
}

#[tokio::test]
async fn a_study_sent_in_two_parts_is_analysed_whole() {
    let (ctx, _broker) = context();
    let spec = SeriesSpec::default();
    let files = spec.files();
    // An association that aborted after 3 instances: a technical defect, reported.
    let out = worker()
        .process(receive(&ctx, "part1", &files[..3]).await, &ctx)
        .await
        .unwrap();
    assert_eq!(out[0].status, StudyStatus::TechnicalDefect);
    let uid = out[0].study_uid.clone().unwrap();
    // The rest arrives on another association: processed with the first three.
    let out = worker()
        .process(receive(&ctx, "part2", &files[3..]).await, &ctx)
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, StudyStatus::Ok);
    assert_eq!(out[0].study_uid.as_ref(), Some(&uid));
    assert_eq!(slices(&ctx, &uid).await, spec.slices);
    // The same job delivered again (worker stopped before acknowledging) is processed again.
    let again = worker()
        .process(receive(&ctx, "part2", &[]).await, &ctx)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
}
