//! The morphometry stage against a real (local-directory) study store.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use ndarray::Array3;
use spinescreen_morphometry::MorphometryWorker;
use spinescreen_proto::{
    DetectedVertebra, Detection, HuVolume, Job, Keypoints, Reason, ReasonCode, ServiceInfo, Stage,
    StudyInfo, StudyResult, StudyStatus, StudyUid, VolumeHeader, SCHEMA_VERSION,
};
use spinescreen_runtime::broker::{BrokerError, Consumer};
use spinescreen_runtime::{Broker, Message, StageContext, StageError, StageWorker, StudyStore};
use std::sync::Arc;

/// The morphometry worker never talks to the broker; this one refuses everything.
struct NoBroker;

#[async_trait]
impl Broker for NoBroker {
    async fn declare(&self, _: &str) -> Result<(), BrokerError> {
        Err(BrokerError::Closed)
    }
    async fn publish(&self, _: &str, _: Message) -> Result<(), BrokerError> {
        Err(BrokerError::Closed)
    }
    async fn consume(&self, _: &str, _: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        Err(BrokerError::Closed)
    }
}

fn context(dir: &std::path::Path) -> StageContext {
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap();
    StageContext {
        store: StudyStore::new(Arc::new(fs)),
        broker: Arc::new(NoBroker),
        service: ServiceInfo {
            name: "spinescreen-test".into(),
            version: "9.9".into(),
        },
    }
}

const UID: &str = "1.2.826.0.1.3680043.2.1125.1";

fn job(status: StudyStatus) -> Job {
    let mut j = Job::ingest("job-1".into(), "incoming/b1/".into(), 0);
    j.study_uid = Some(StudyUid::new(UID).unwrap());
    j.status = status;
    j.timings_ms.insert("ingest".into(), 120);
    j.timings_ms.insert("inference".into(), 900);
    j
}

fn vertebra(label: &str, z: f64, ha: f64, hp: f64) -> DetectedVertebra {
    DetectedVertebra {
        label: label.parse().unwrap(),
        center_mm: [0.0, 0.0, z],
        keypoints_mm: Keypoints {
            superior_anterior: [0.0, -15.0, z + ha / 2.0],
            superior_middle: [0.0, 0.0, z + hp / 2.0],
            superior_posterior: [0.0, 15.0, z + hp / 2.0],
            inferior_anterior: [0.0, -15.0, z - ha / 2.0],
            inferior_middle: [0.0, 0.0, z - hp / 2.0],
            inferior_posterior: [0.0, 15.0, z - hp / 2.0],
        },
        anterior_dir: [0.0, -1.0, 0.0],
        cranial_dir: [0.0, 0.0, 1.0],
        confidence: 0.95,
        flags: vec![],
    }
}

fn detection() -> Detection {
    Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: "classical 0.1".into(),
        vertebrae: vec![
            vertebra("T12", 0.0, 23.5, 23.5),
            vertebra("L1", -33.0, 15.0, 25.0),
            vertebra("L2", -67.0, 26.0, 26.0),
        ],
        centreline: vec![],
        notes: vec!["12 rib pairs".into()],
        spine_region: None,
    }
}

async fn put_inputs(ctx: &StageContext, det: &Detection) {
    let keys = StudyUid::new(UID).unwrap().keys();
    let header = VolumeHeader {
        schema_version: SCHEMA_VERSION,
        dims: [8, 8, 8],
        spacing_mm: [1.0; 3],
        origin_mm: [300.0, 300.0, 300.0],
        direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        study: StudyInfo {
            study_instance_uid: UID.into(),
            ..Default::default()
        },
    };
    let vol = HuVolume::new(header, Array3::zeros((8, 8, 8))).unwrap();
    ctx.store
        .put(&keys.volume_header(), vol.header_bytes())
        .await
        .unwrap();
    ctx.store
        .put(&keys.volume_voxels(), vol.voxel_bytes())
        .await
        .unwrap();
    ctx.store
        .put(&keys.detection(), serde_json::to_vec(det).unwrap())
        .await
        .unwrap();
}

async fn stored_result(ctx: &StageContext) -> StudyResult {
    let keys = StudyUid::new(UID).unwrap().keys();
    serde_json::from_slice(&ctx.store.get(&keys.result()).await.unwrap()).unwrap()
}

#[tokio::test]
async fn measures_and_stores_result_json() {
    let tmp = tempfile_dir();
    let ctx = context(tmp.path());
    put_inputs(&ctx, &detection()).await;
    let w = MorphometryWorker::new();
    assert_eq!(w.stage(), Stage::Morphometry);
    let out = w.process(job(StudyStatus::Ok), &ctx).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, StudyStatus::Ok);
    let r = stored_result(&ctx).await;
    assert_eq!(r.study_instance_uid, UID);
    assert_eq!(r.status, StudyStatus::Ok);
    assert_eq!(r.has_fracture, Some(true)); // L1 wedge 1 − 15/25 = 40 %
    assert_eq!(r.vertebrae[1].genant_grade as u8, 3);
    assert_eq!(r.service.name, "spinescreen-test");
    assert_eq!(r.timings_ms.get("inference"), Some(&900));
    assert_eq!(r.detector, "classical 0.1");
    assert_eq!(r.notes, vec!["12 rib pairs".to_string()]);
    // Idempotent: a redelivery rewrites the same document.
    w.process(job(StudyStatus::Ok), &ctx).await.unwrap();
    assert_eq!(stored_result(&ctx).await, r);
}

#[tokio::test]
async fn detector_abstention_stores_an_abstained_result() {
    let tmp = tempfile_dir();
    let ctx = context(tmp.path());
    let mut det = detection();
    det.status = StudyStatus::Abstained;
    det.reason = Some(Reason::new(
        ReasonCode::SPINE_NOT_TRACEABLE,
        "canal track broken",
    ));
    put_inputs(&ctx, &det).await;
    let out = MorphometryWorker::new()
        .process(job(StudyStatus::Ok), &ctx)
        .await
        .unwrap();
    assert_eq!(out[0].status, StudyStatus::Abstained);
    let r = stored_result(&ctx).await;
    assert_eq!(r.status, StudyStatus::Abstained);
    assert_eq!(r.reason.unwrap().code, ReasonCode::SPINE_NOT_TRACEABLE);
    assert_eq!(r.has_fracture, None);
    assert_eq!(r.timings_ms.get("ingest"), Some(&120));
}

#[tokio::test]
async fn technical_defect_passes_through_untouched() {
    let tmp = tempfile_dir();
    let ctx = context(tmp.path());
    let keys = StudyUid::new(UID).unwrap().keys();
    ctx.store
        .put(&keys.result(), b"{\"from\":\"ingest\"}".to_vec())
        .await
        .unwrap();
    let j = job(StudyStatus::TechnicalDefect);
    let out = MorphometryWorker::new()
        .process(j.clone(), &ctx)
        .await
        .unwrap();
    assert_eq!(out, vec![j]);
    assert_eq!(
        ctx.store.get(&keys.result()).await.unwrap().as_ref(),
        b"{\"from\":\"ingest\"}"
    );
}

#[tokio::test]
async fn bad_inputs_are_permanent_errors() {
    let tmp = tempfile_dir();
    let ctx = context(tmp.path());
    let w = MorphometryWorker::new();
    // No study UID.
    let mut j = job(StudyStatus::Ok);
    j.study_uid = None;
    assert!(matches!(
        w.process(j, &ctx).await,
        Err(StageError::Permanent(_))
    ));
    // No detection.json.
    assert!(matches!(
        w.process(job(StudyStatus::Ok), &ctx).await,
        Err(StageError::Permanent(_))
    ));
    // Malformed detection.json.
    let keys = StudyUid::new(UID).unwrap().keys();
    ctx.store
        .put(&keys.detection(), b"{".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        w.process(job(StudyStatus::Ok), &ctx).await,
        Err(StageError::Permanent(_))
    ));
    // Truncated volume.
    put_inputs(&ctx, &detection()).await;
    ctx.store
        .put(&keys.volume_voxels(), vec![0u8; 3])
        .await
        .unwrap();
    assert!(matches!(
        w.process(job(StudyStatus::Ok), &ctx).await,
        Err(StageError::Permanent(_))
    ));
}

fn tempfile_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
