//! The inference stage end to end on an in-memory store: detection stored, status carried.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_inference::{InferenceConfig, InferenceWorker};
use spinescreen_phantom::{generate, PhantomSpec};
use spinescreen_proto::{Detection, HuSource, Job, RegionBox, ServiceInfo, StudyStatus, StudyUid};
use spinescreen_runtime::volumes::read_spine_region;
use spinescreen_runtime::{broker::MemoryBroker, StageContext, StageWorker, StudyStore};
use std::sync::Arc;

fn ctx() -> StageContext {
    StageContext {
        store: StudyStore::new(Arc::new(object_store::memory::InMemory::new())),
        broker: Arc::new(MemoryBroker::new()),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "test".into(),
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_stores_detection_and_passes_defects_through() {
    let ctx = ctx();
    let worker = InferenceWorker::new(&InferenceConfig::default()).expect("classical worker");
    let uid = StudyUid::new("1.2.3.4").unwrap();
    let ph = generate(&PhantomSpec {
        seed: 21,
        matrix: 200,
        pixel_spacing_mm: Some(1.8),
        slices: 200,
        slice_thickness_mm: 2.0,
        ..Default::default()
    })
    .expect("phantom");
    let keys = uid.keys();
    ctx.store
        .put(&keys.volume_header(), ph.volume.header_bytes())
        .await
        .unwrap();
    ctx.store
        .put(&keys.volume_voxels(), ph.volume.voxel_bytes())
        .await
        .unwrap();
    let mut job = Job::ingest("j1".into(), "incoming/b1/".into(), 0);
    job.study_uid = Some(uid.clone());
    let out = worker.process(job.clone(), &ctx).await.expect("processed");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, StudyStatus::Ok);
    let det: Detection =
        serde_json::from_slice(&ctx.store.get(&keys.detection()).await.unwrap()).unwrap();
    assert!(
        det.vertebrae.len() >= 10,
        "{} vertebrae",
        det.vertebrae.len()
    );
    assert!(det.centreline.len() > 100);

    // The spine region: the box of the detection's points, stored before the detection, holding
    // exactly the volume's voxels there, in the volume's grid.
    let region = det
        .spine_region
        .expect("a detection names its spine region");
    assert_eq!(
        Some(region),
        RegionBox::for_detection(&det, &ph.volume.header)
    );
    assert!(
        region.voxel_count() < ph.volume.header.voxel_count() * 3 / 4,
        "region {region:?} of {:?}",
        ph.volume.header.dims
    );
    let held = read_spine_region(&ctx.store, &keys, region).await.unwrap();
    assert_eq!(held.header(), &ph.volume.header);
    let [ox, oy, oz] = region.offset;
    let [nx, ny, nz] = region.dims;
    for (x, y, z) in [
        (ox, oy, oz),
        (ox + nx - 1, oy + ny - 1, oz + nz - 1),
        (ox + nx / 2, oy + 3, oz + nz / 3),
    ] {
        let (x, y, z) = (x as isize, y as isize, z as isize);
        assert_eq!(held.get(x, y, z), ph.volume.get(x, y, z));
    }
    assert_eq!(held.misses(), 0);

    // A technical defect passes through untouched and nothing is written.
    let uid2 = StudyUid::new("1.2.3.5").unwrap();
    let mut defect = job;
    defect.study_uid = Some(uid2.clone());
    defect.status = StudyStatus::TechnicalDefect;
    let out = worker.process(defect.clone(), &ctx).await.unwrap();
    assert_eq!(out, vec![defect]);
    assert!(!ctx.store.exists(&uid2.keys().detection()).await.unwrap());
}

#[tokio::test]
async fn a_volume_of_air_is_abstained_with_no_spine() {
    let ctx = ctx();
    let worker = InferenceWorker::new(&InferenceConfig::default()).unwrap();
    let uid = StudyUid::new("1.2.3.6").unwrap();
    let header = spinescreen_proto::VolumeHeader {
        schema_version: spinescreen_proto::SCHEMA_VERSION,
        dims: [64, 64, 40],
        spacing_mm: [2.0, 2.0, 2.0],
        origin_mm: [0.0; 3],
        direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        study: Default::default(),
    };
    let vol = spinescreen_proto::HuVolume::new(
        header,
        ndarray::Array3::from_elem((40, 64, 64), -1000i16),
    )
    .unwrap();
    ctx.store
        .put(&uid.keys().volume_header(), vol.header_bytes())
        .await
        .unwrap();
    ctx.store
        .put(&uid.keys().volume_voxels(), vol.voxel_bytes())
        .await
        .unwrap();
    let mut job = Job::ingest("j2".into(), "incoming/b2/".into(), 0);
    job.study_uid = Some(uid.clone());
    let out = worker.process(job, &ctx).await.unwrap();
    assert_eq!(out[0].status, StudyStatus::Abstained);
    let det: Detection =
        serde_json::from_slice(&ctx.store.get(&uid.keys().detection()).await.unwrap()).unwrap();
    assert_eq!(
        det.reason.unwrap().code,
        spinescreen_proto::ReasonCode::NO_SPINE
    );
    // Nothing found, no region: later stages read the full volume (and nothing after an
    // abstention reads HU).
    assert_eq!(det.spine_region, None);
    assert!(!ctx
        .store
        .exists(&uid.keys().spine_region_header())
        .await
        .unwrap());
    // An unknown detector name is a configuration error, not a panic.
    assert!(InferenceWorker::new(&InferenceConfig {
        detector: "magic".into(),
        onnx_manifest: None
    })
    .is_err());
}
