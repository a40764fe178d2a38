//! Peak resident memory (VmHWM) and wall time of the morphometry and rendering workers on one
//! study, reading the full volume (a detection without `spine_region`, as before regions
//! existed) and reading the spine region inference stored; plus the region's size.
//!
//! `cargo run --release -p spinescreen --example spine_region_peak` generates the phantom of
//! `spinescreen phantom --seed 1` (512² × 400, 200 MiB of int16 voxels), stores its volume in a
//! local store, runs the inference worker on it (classical detector: detection.json and the
//! spine region), then runs each worker's `process` in fresh child processes, three times per
//! stage and source, alternating. Linux only (`/proc/self/status`).
// Example code: a failed unwrap is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_inference::{InferenceConfig, InferenceWorker};
use spinescreen_morphometry::{measure, MorphometryWorker};
use spinescreen_proto::{Detection, Job, ServiceInfo, StudyStatus, StudyUid};
use spinescreen_rendering::{render, RenderingConfig, RenderingWorker};
use spinescreen_runtime::broker::MemoryBroker;
use spinescreen_runtime::volumes::{read_spine_volume, write_volume};
use spinescreen_runtime::{StageContext, StageWorker, StoreConfig, StudyStore};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

fn context(root: &Path) -> StageContext {
    StageContext {
        store: StudyStore::from_config(&StoreConfig::Local {
            root: root.to_path_buf(),
        })
        .unwrap(),
        broker: Arc::new(MemoryBroker::new()),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "measure".into(),
        },
    }
}

fn job(uid: &StudyUid) -> Job {
    let mut job = Job::ingest("measure".into(), "incoming/measure/".into(), 0);
    job.study_uid = Some(uid.clone());
    job.status = StudyStatus::Ok;
    job
}

/// Child: run one stage once on the study in `root`, print `seconds peak_mib`.
fn child(stage: &str, root: &Path, uid: &str) {
    let uid = StudyUid::new(uid).unwrap();
    let ctx = context(root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let worker: Box<dyn StageWorker> = match stage {
        "morphometry" => Box::new(MorphometryWorker::new()),
        "rendering" => Box::new(RenderingWorker::new(RenderingConfig::default())),
        other => panic!("unknown stage {other}"),
    };
    let start = Instant::now();
    rt.block_on(worker.process(job(&uid), &ctx)).unwrap();
    println!(
        "{:.3} {:.0}",
        start.elapsed().as_secs_f64(),
        spinescreen_runtime::process_memory::read_own()
            .map_or(f64::NAN, |(_, hwm)| hwm as f64 / 1048576.0)
    );
}

fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64 / (1 << 20) as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "child" {
        child(&args[2], Path::new(&args[3]), &args[4]);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ctx = context(root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    eprintln!("generating the 512 × 512 × 400 phantom of seed 1…");
    let spec = spinescreen_phantom::PhantomSpec {
        seed: 1,
        matrix: 512,
        slices: 400,
        slice_thickness_mm: 1.0,
        ..Default::default()
    };
    let phantom = spinescreen_phantom::generate(&spec).unwrap();
    let uid = StudyUid::new(&phantom.volume.header.study.study_instance_uid).unwrap();
    let keys = uid.keys();
    let dims = phantom.volume.header.dims;
    rt.block_on(write_volume(&ctx.store, &keys, Arc::new(phantom.volume)))
        .unwrap();
    eprintln!("inference (classical detector, spine region)…");
    let start = Instant::now();
    let inference = InferenceWorker::new(&InferenceConfig::default()).unwrap();
    rt.block_on(inference.process(job(&uid), &ctx)).unwrap();
    let inference_s = start.elapsed().as_secs_f64();
    let with_region = rt.block_on(ctx.store.get(&keys.detection())).unwrap();
    let detection: Detection = serde_json::from_slice(&with_region).unwrap();
    let region = detection
        .spine_region
        .expect("the detection names a spine region");
    let mut without = detection.clone();
    without.spine_region = None;
    let without = serde_json::to_vec_pretty(&without).unwrap();
    let mib = |n: usize| (n * 2) as f64 / (1 << 20) as f64;
    println!(
        "volume {}x{}x{}: {:.0} MiB raw, volume.zst {:.1} MiB; spine region {}x{}x{} at {:?}: \
         {:.1} MiB raw ({:.1} %), spine_region.zst {:.1} MiB; inference {:.2} s, {} vertebrae",
        dims[0],
        dims[1],
        dims[2],
        mib(dims.iter().product()),
        file_mib(&root.join(keys.volume_frames())),
        region.dims[0],
        region.dims[1],
        region.dims[2],
        region.offset,
        mib(region.voxel_count()),
        100.0 * region.voxel_count() as f64 / dims.iter().product::<usize>() as f64,
        file_mib(&root.join(keys.spine_region_frames())),
        inference_s,
        detection.vertebrae.len(),
    );
    // Whether this study's reads stay inside the region (else the workers redo them on the
    // full volume, and the "spine region" runs below include that fallback).
    let held = rt
        .block_on(read_spine_volume(&ctx.store, &keys, Some(region)))
        .unwrap();
    let result = measure(&detection, &held, &ctx.service);
    render(
        &held,
        Some(&detection),
        &result,
        &RenderingConfig::default(),
    )
    .unwrap();
    println!(
        "reads outside the region (morphometry + rendering): {}",
        held.misses()
    );
    drop(held);
    let exe = std::env::current_exe().unwrap();
    for stage in ["morphometry", "rendering"] {
        for run in 0..3 {
            for (source, bytes) in [
                ("full volume", &without[..]),
                ("spine region", &with_region),
            ] {
                rt.block_on(ctx.store.put(&keys.detection(), bytes.to_vec()))
                    .unwrap();
                let out = Command::new(&exe)
                    .args(["child", stage])
                    .arg(root)
                    .arg(uid.as_str())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{stage}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = String::from_utf8_lossy(&out.stdout);
                let mut f = line.split_whitespace();
                let (secs, peak) = (f.next().unwrap(), f.next().unwrap());
                println!("{stage:<12} {source:<13} run {run}: {secs} s, peak {peak} MiB");
            }
        }
    }
}
