//! Peak resident memory (VmHWM) and wall time of ingesting one DICOM series, the way the ingest
//! worker does it: every received file read into memory, the source's headers read, the volume
//! built and validated (each file freed once decoded), and the volume written as `volume.zst` + `volume.json` into a local store.
//!
//! `cargo run --release -p spinescreen-ingest --example ingest_peak -- DIR` ingests `DIR` (e.g.
//! written by `spinescreen phantom --out DIR --seed 1`, 512² × 400, 200 MiB of int16 voxels).
//! Without `DIR` it writes that phantom into a temporary directory and measures in a fresh child
//! process, so the phantom's own memory is not counted. The series is ingested twice, the second
//! time as a long-running worker would; `DIR --glibc-default` leaves glibc's mmap threshold
//! dynamic (see `spinescreen_runtime::allocator`). Linux only (`/proc/self/status`).
// Example code: a failed unwrap is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_ingest::{build_volume_with_report, IngestLimits, SourceFile, SourceHeaders};
use spinescreen_proto::StudyUid;
use spinescreen_runtime::volumes::write_volume;
use spinescreen_runtime::{StoreConfig, StudyStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Resident memory (`VmRSS`) and its peak (`VmHWM`) now, MiB (NaN where unreadable).
fn memory_mib() -> (f64, f64) {
    spinescreen_runtime::process_memory::read_own().map_or((f64::NAN, f64::NAN), |(rss, hwm)| {
        (rss as f64 / 1048576.0, hwm as f64 / 1048576.0)
    })
}

fn measure(dir: &Path) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = StudyStore::from_config(&StoreConfig::Local {
        root: tmp.path().to_path_buf(),
    })
    .expect("store");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let before = memory_mib().1;
    let start = Instant::now();
    let files = SourceFile::read_dir(dir).expect("read series");
    let n = files.len();
    let headers = SourceHeaders::read(&files);
    let (result, report) = build_volume_with_report(files, &IngestLimits::default());
    let volume = result.expect("volume");
    let chosen = volume.header.study.series_instance_uid.as_str();
    let source = headers.choose(report.study_uid.as_deref(), Some(chosen));
    assert!(source.is_some(), "no source read");
    let build = start.elapsed();
    let keys = StudyUid::new(&volume.header.study.study_instance_uid)
        .expect("uid")
        .keys();
    let dims = volume.header.dims;
    rt.block_on(write_volume(&store, &keys, Arc::new(volume)))
        .expect("write volume");
    let total = start.elapsed();
    println!(
        "ingest of {n} files, {}x{}x{} voxels ({:.0} MiB int16): read+build {:.3} s, \
         with write {:.3} s; peak resident (VmHWM) {:.0} MiB (before: {before:.0} MiB)",
        dims[0],
        dims[1],
        dims[2],
        (dims[0] * dims[1] * dims[2] * 2) as f64 / (1 << 20) as f64,
        build.as_secs_f64(),
        total.as_secs_f64(),
        memory_mib().1,
    );
}

fn main() {
    if let Some(dir) = std::env::args().nth(1) {
        // As `worker ingest` runs (see `spinescreen_runtime::allocator`), unless asked not to.
        let glibc_default = std::env::args().any(|a| a == "--glibc-default");
        if !glibc_default {
            spinescreen_runtime::allocator::fix_mmap_threshold();
        }
        // Twice, as a long-running worker does: the second ingest shows the steady state,
        // with the allocator already warmed by the first.
        measure(Path::new(&dir));
        measure(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let series = tmp.path().join("series");
    let spec = spinescreen_phantom::PhantomSpec {
        seed: 1,
        matrix: 512,
        slices: 400,
        slice_thickness_mm: 1.0,
        ..Default::default()
    };
    eprintln!("generating a 512 × 512 × 400 phantom series…");
    let phantom = spinescreen_phantom::generate(&spec).expect("phantom");
    spinescreen_phantom::write_dicom_series(&phantom, &series).expect("write series");
    drop(phantom);
    let _ = std::fs::remove_file(series.join("truth.json"));
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .arg(&series)
        .status()
        .expect("child");
    assert!(status.success(), "measurement failed: {status}");
}
