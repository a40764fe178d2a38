//! Morphometry on the spine region gives exactly what it gives on the full volume, and the
//! worker falls back to the full volume when there is no region or the region is too small.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_morphometry::{measure, MorphometryWorker};
use spinescreen_phantom::{generate, FractureSpec, FractureType, Phantom, PhantomSpec};
use spinescreen_proto::{
    DetectedVertebra, Detection, HuVolume, Job, RegionBox, RegionVolume, ServiceInfo, StudyInfo,
    StudyStatus, StudyUid, SCHEMA_VERSION,
};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::volumes::{write_spine_region, write_volume};
use spinescreen_runtime::{StageContext, StageWorker, StudyStore};
use std::sync::Arc;

const UID: &str = "1.2.826.0.1.3680043.2.1125.7";

fn service() -> ServiceInfo {
    ServiceInfo {
        name: "spinescreen".into(),
        version: "test".into(),
    }
}

/// A 256² × 1.25 mm phantom (the HU test size) with a fracture, and the detection a perfect
/// detector would give (truth keypoints, no flags).
fn phantom() -> (Phantom, Detection) {
    let mut phantom = generate(&PhantomSpec {
        seed: 7,
        matrix: 256,
        slices: 340,
        slice_thickness_mm: 1.25,
        fractures: vec![FractureSpec {
            label: "T12".into(),
            kind: FractureType::Wedge,
            fraction: 0.35,
        }],
        ..Default::default()
    })
    .unwrap();
    phantom.volume.header.study = StudyInfo {
        study_instance_uid: UID.into(),
        ..Default::default()
    };
    let detection = Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: "truth".into(),
        vertebrae: phantom
            .truth
            .vertebrae
            .iter()
            .map(|t| DetectedVertebra {
                label: t.label.parse().unwrap(),
                center_mm: t.center_mm,
                keypoints_mm: t.keypoints_mm,
                anterior_dir: t.anterior_dir,
                cranial_dir: t.cranial_dir,
                confidence: 0.9,
                flags: vec![],
            })
            .collect(),
        centreline: vec![],
        notes: vec![],
        spine_region: None,
    };
    (phantom, detection)
}

fn region_of(volume: &HuVolume, b: RegionBox) -> RegionVolume {
    RegionVolume::new(volume.header.clone(), b, b.crop(volume).unwrap().voxels).unwrap()
}

#[test]
fn the_spine_region_gives_the_full_volumes_heights_grades_and_hu() {
    let (phantom, detection) = phantom();
    let v = &phantom.volume;
    let b = RegionBox::for_detection(&detection, &v.header).unwrap();
    assert!(
        b.voxel_count() < v.header.voxel_count() * 3 / 4,
        "region {b:?} of {:?}",
        v.header.dims
    );
    let region = region_of(v, b);
    let on_region = measure(&detection, &region, &service());
    let on_full = measure(&detection, v, &service());
    assert_eq!(region.misses(), 0);
    assert_eq!(on_region, on_full);
    // Not vacuous: HU was read, and a fracture graded.
    let hu = on_full
        .vertebrae
        .iter()
        .filter(|v| v.trabecular_hu.is_some())
        .count();
    assert!(hu >= 4, "{hu} vertebrae with trabecular HU");
    assert_eq!(on_full.has_fracture, Some(true));
    // A region that misses part of a body is noticed (the worker then reads the full volume).
    let small = RegionBox::around(&v.header, [detection.vertebrae[10].center_mm], 5.0).unwrap();
    let small = region_of(v, small);
    measure(&detection, &small, &service());
    assert!(small.misses() > 0);
}

fn context(dir: &std::path::Path) -> StageContext {
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap();
    StageContext {
        store: StudyStore::new(Arc::new(fs)),
        broker: Arc::new(MemoryBroker::new()),
        service: service(),
    }
}

fn job() -> Job {
    let mut j = Job::ingest("job-1".into(), "incoming/b1/".into(), 0);
    j.study_uid = Some(StudyUid::new(UID).unwrap());
    j
}

/// Cut `b` out of `volume` and store it as the study's spine region.
async fn put_region(ctx: &StageContext, volume: &HuVolume, b: RegionBox) {
    let keys = StudyUid::new(UID).unwrap().keys();
    write_spine_region(&ctx.store, &keys, Arc::new(b.crop(volume).unwrap()), b)
        .await
        .unwrap();
}

/// Store `detection` naming `region`, run the worker and return the stored result.json.
async fn result_with(
    ctx: &StageContext,
    detection: &Detection,
    region: Option<RegionBox>,
) -> Vec<u8> {
    let keys = StudyUid::new(UID).unwrap().keys();
    let mut detection = detection.clone();
    detection.spine_region = region;
    ctx.store
        .put(&keys.detection(), serde_json::to_vec(&detection).unwrap())
        .await
        .unwrap();
    let out = MorphometryWorker::new()
        .process(job(), ctx)
        .await
        .expect("measured");
    assert_eq!(out[0].status, StudyStatus::Ok);
    ctx.store.get(&keys.result()).await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_reads_the_region_and_falls_back_to_the_full_volume() {
    let (phantom, detection) = phantom();
    let v = &phantom.volume;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let keys = StudyUid::new(UID).unwrap().keys();
    write_volume(&ctx.store, &keys, Arc::new(v.clone()))
        .await
        .unwrap();

    // A detection from before spine regions: the full volume.
    let full = result_with(&ctx, &detection, None).await;
    // With its region: the same result.json, byte for byte.
    let b = RegionBox::for_detection(&detection, &v.header).unwrap();
    put_region(&ctx, v, b).await;
    assert_eq!(result_with(&ctx, &detection, Some(b)).await, full);
    // A region too small for the ROIs: the worker notices and measures on the full volume.
    let small = RegionBox::around(&v.header, [detection.vertebrae[10].center_mm], 5.0).unwrap();
    put_region(&ctx, v, small).await;
    assert_eq!(result_with(&ctx, &detection, Some(small)).await, full);
    // Named but not the stored one, or gone: the full volume.
    assert_eq!(result_with(&ctx, &detection, Some(b)).await, full);
    ctx.store.delete(&keys.spine_region_header()).await.unwrap();
    assert_eq!(result_with(&ctx, &detection, Some(small)).await, full);

    // The region alone suffices: without the full volume's voxels, the region path still
    // measures (so it never fetched them).
    put_region(&ctx, v, b).await;
    ctx.store.delete(&keys.volume_frames()).await.unwrap();
    assert_eq!(result_with(&ctx, &detection, Some(b)).await, full);
}
