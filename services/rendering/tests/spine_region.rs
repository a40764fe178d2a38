//! Rendering from the spine region gives exactly the images the full volume gives, and the
//! worker falls back to the full volume when there is no region or the reformat leaves it.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{detection_from_truth, result_from_truth, service};
use spinescreen_phantom::{generate, FractureSpec, FractureType, Phantom, PhantomSpec};
use spinescreen_proto::{
    Detection, HuSource, HuVolume, Job, RegionBox, RegionVolume, StudyResult, StudyStatus, StudyUid,
};
use spinescreen_rendering::{render, secondary_capture_series, RenderingConfig, RenderingWorker};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::volumes::{write_spine_region, write_volume};
use spinescreen_runtime::{StageContext, StageWorker, StudyStore};
use std::sync::Arc;

/// A 256² × 1.25 mm phantom with an L1 wedge, its perfect detection and result.
fn phantom() -> (Phantom, Detection, StudyResult) {
    let phantom = generate(&PhantomSpec {
        seed: 7,
        fractures: vec![FractureSpec {
            label: "L1".into(),
            kind: FractureType::Wedge,
            fraction: 0.45,
        }],
        matrix: 256,
        pixel_spacing_mm: Some(1.25),
        slices: 260,
        slice_thickness_mm: 1.5,
        ..Default::default()
    })
    .unwrap();
    let detection = detection_from_truth(&phantom.truth);
    let result = result_from_truth(
        &phantom.truth,
        &phantom.volume.header.study.study_instance_uid,
    );
    (phantom, detection, result)
}

fn region_of(volume: &HuVolume, b: RegionBox) -> RegionVolume {
    RegionVolume::new(volume.header.clone(), b, b.crop(volume).unwrap().voxels).unwrap()
}

#[test]
fn frames_preview_and_series_from_the_region_equal_the_full_volumes() {
    let (phantom, detection, result) = phantom();
    let v = &phantom.volume;
    let b = RegionBox::for_detection(&detection, &v.header).unwrap();
    assert!(
        b.voxel_count() < v.header.voxel_count() * 3 / 4,
        "region {b:?} of {:?}",
        v.header.dims
    );
    let region = region_of(v, b);
    let cfg = RenderingConfig::default();
    let from_region = render(&region, Some(&detection), &result, &cfg).unwrap();
    let from_full = render(v, Some(&detection), &result, &cfg).unwrap();
    assert_eq!(region.misses(), 0);
    assert_eq!(from_region.frames.len(), 2);
    assert_eq!(from_region, from_full);
    assert_eq!(
        secondary_capture_series(&from_region, region.header(), &result, &cfg).unwrap(),
        secondary_capture_series(&from_full, &v.header, &result, &cfg).unwrap()
    );
    // A region the reformat leaves is noticed (the worker then renders from the full volume).
    let small = RegionBox::around(&v.header, [detection.vertebrae[5].center_mm], 10.0).unwrap();
    let small = region_of(v, small);
    render(&small, Some(&detection), &result, &cfg).unwrap();
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

/// Cut `b` out of `volume` and store it as the study's spine region.
async fn put_region(ctx: &StageContext, uid: &StudyUid, volume: &HuVolume, b: RegionBox) {
    write_spine_region(
        &ctx.store,
        &uid.keys(),
        Arc::new(b.crop(volume).unwrap()),
        b,
    )
    .await
    .unwrap();
}

/// Store `detection` naming `region`, run the worker, return the preview and the series.
async fn rendered_with(
    ctx: &StageContext,
    uid: &StudyUid,
    detection: &Detection,
    region: Option<RegionBox>,
) -> Vec<Vec<u8>> {
    let keys = uid.keys();
    let mut detection = detection.clone();
    detection.spine_region = region;
    ctx.store
        .put(&keys.detection(), serde_json::to_vec(&detection).unwrap())
        .await
        .unwrap();
    let mut job = Job::ingest("job-1".into(), "incoming/b1/".into(), 0);
    job.study_uid = Some(uid.clone());
    RenderingWorker::new(RenderingConfig::default())
        .process(job, ctx)
        .await
        .expect("rendered");
    let mut out = vec![ctx.store.get(&keys.preview_png()).await.unwrap().to_vec()];
    for key in ctx
        .store
        .list(&keys.secondary_capture_prefix())
        .await
        .unwrap()
    {
        out.push(ctx.store.get(&key).await.unwrap().to_vec());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_renders_from_the_region_and_falls_back_to_the_full_volume() {
    let (phantom, detection, result) = phantom();
    let v = &phantom.volume;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let uid = StudyUid::new(&result.study_instance_uid).unwrap();
    let keys = uid.keys();
    assert_eq!(result.status, StudyStatus::Ok);
    ctx.store
        .put(&keys.result(), serde_json::to_vec(&result).unwrap())
        .await
        .unwrap();
    write_volume(&ctx.store, &keys, Arc::new(v.clone()))
        .await
        .unwrap();

    // A detection from before spine regions: the full volume.
    let full = rendered_with(&ctx, &uid, &detection, None).await;
    assert_eq!(full.len(), 3, "preview and two instances");
    // With its region: the same preview and instances, byte for byte.
    let b = RegionBox::for_detection(&detection, &v.header).unwrap();
    put_region(&ctx, &uid, v, b).await;
    assert!(rendered_with(&ctx, &uid, &detection, Some(b)).await == full);
    // A region the reformat leaves: the worker notices and renders from the full volume.
    let small = RegionBox::around(&v.header, [detection.vertebrae[5].center_mm], 10.0).unwrap();
    put_region(&ctx, &uid, v, small).await;
    assert!(rendered_with(&ctx, &uid, &detection, Some(small)).await == full);
    // Named but not the stored one, or gone: the full volume.
    assert!(rendered_with(&ctx, &uid, &detection, Some(b)).await == full);
    ctx.store.delete(&keys.spine_region_header()).await.unwrap();
    assert!(rendered_with(&ctx, &uid, &detection, Some(small)).await == full);

    // The region alone suffices: without the full volume's voxels the region path still
    // renders the same images (so it never fetched them).
    put_region(&ctx, &uid, v, b).await;
    ctx.store.delete(&keys.volume_frames()).await.unwrap();
    assert!(rendered_with(&ctx, &uid, &detection, Some(b)).await == full);
}
