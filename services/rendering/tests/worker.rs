//! The rendering stage on a store: what it writes for analysed and for rejected studies.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fractured, service};
use spinescreen_proto::{Job, Reason, ReasonCode, StudyResult, StudyStatus, StudyUid};
use spinescreen_rendering::{RenderingConfig, RenderingWorker};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::{StageContext, StageWorker, StudyStore};
use std::sync::Arc;

fn context() -> (tempfile::TempDir, StageContext) {
    let dir = tempfile::tempdir().unwrap();
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let ctx = StageContext {
        store: StudyStore::new(Arc::new(fs)),
        broker: Arc::new(MemoryBroker::new()),
        service: service(),
    };
    (dir, ctx)
}

fn job(uid: &StudyUid, status: StudyStatus) -> Job {
    let mut job = Job::ingest("job-1".into(), "incoming/b1/".into(), 0);
    job.study_uid = Some(uid.clone());
    job.status = status;
    job
}

#[tokio::test]
async fn analysed_study_gets_preview_and_two_sc_instances() {
    let (_dir, ctx) = context();
    let s = fractured();
    let uid = StudyUid::new(&s.result.study_instance_uid).unwrap();
    let keys = uid.keys();
    ctx.store
        .put(&keys.result(), serde_json::to_vec(&s.result).unwrap())
        .await
        .unwrap();
    ctx.store
        .put(&keys.volume_header(), s.volume.header_bytes())
        .await
        .unwrap();
    ctx.store
        .put(&keys.volume_voxels(), s.volume.voxel_bytes())
        .await
        .unwrap();
    ctx.store
        .put(&keys.detection(), serde_json::to_vec(&s.detection).unwrap())
        .await
        .unwrap();
    // A stale third instance from an earlier run must disappear.
    ctx.store
        .put(&keys.secondary_capture(2), b"stale".to_vec())
        .await
        .unwrap();

    let worker = RenderingWorker::new(RenderingConfig::default());
    let out = worker
        .process(job(&uid, StudyStatus::Ok), &ctx)
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].study_uid.as_ref(), Some(&uid));

    let preview = ctx.store.get(&keys.preview_png()).await.unwrap();
    assert_eq!(&preview[1..4], b"PNG");
    let sc = ctx
        .store
        .list(&keys.secondary_capture_prefix())
        .await
        .unwrap();
    assert_eq!(
        sc,
        vec![keys.secondary_capture(0), keys.secondary_capture(1)]
    );
    let first = ctx.store.get(&keys.secondary_capture(0)).await.unwrap();
    assert_eq!(&first[128..132], b"DICM");

    // Redelivery: identical bytes under identical keys.
    worker
        .process(job(&uid, StudyStatus::Ok), &ctx)
        .await
        .unwrap();
    assert_eq!(
        ctx.store.get(&keys.secondary_capture(0)).await.unwrap(),
        first
    );
}

#[tokio::test]
async fn rejected_study_without_volume_gets_a_preview_but_no_sc() {
    let (_dir, ctx) = context();
    let uid = StudyUid::new("1.2.826.0.1.3680043.8.498.77").unwrap();
    let keys = uid.keys();
    let result = StudyResult::not_analysed(
        uid.to_string(),
        StudyStatus::TechnicalDefect,
        Reason::new(ReasonCode::NO_CT_SERIES, "Only a scout image was received."),
        service(),
    );
    ctx.store
        .put(&keys.result(), serde_json::to_vec(&result).unwrap())
        .await
        .unwrap();
    let worker = RenderingWorker::default();
    worker
        .process(job(&uid, StudyStatus::TechnicalDefect), &ctx)
        .await
        .unwrap();
    assert!(ctx.store.exists(&keys.preview_png()).await.unwrap());
    assert!(ctx
        .store
        .list(&keys.secondary_capture_prefix())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn missing_result_is_a_permanent_error() {
    let (_dir, ctx) = context();
    let uid = StudyUid::new("1.2.3.4").unwrap();
    let err = RenderingWorker::default()
        .process(job(&uid, StudyStatus::Ok), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(err, spinescreen_runtime::StageError::Permanent(_)),
        "{err}"
    );
    let mut no_uid = job(&uid, StudyStatus::Ok);
    no_uid.study_uid = None;
    assert!(RenderingWorker::default()
        .process(no_uid, &ctx)
        .await
        .is_err());
}
