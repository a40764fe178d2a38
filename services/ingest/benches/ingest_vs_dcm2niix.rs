//! Ingest wall time against dcm2niix on the same 512 × 512 × 400 phantom CT series.
//!
//! Both start from the files on disk (page cache warm) and end with the volume on disk: ours
//! reads the files, builds and validates the HU volume and writes it as the worker does
//! (`volume.zst` + `volume.json`, volume format 2, into a local store);
//! dcm2niix runs `dcm2niix -z n -o OUT DIR` (uncompressed NIfTI). The two are run alternately five
//! times; the fastest wall times are compared (`ratio = ingest / dcm2niix`, goal ≤ 1.0), and so
//! are the CPU seconds (user + system, from `/proc/self/stat`), which a busy machine disturbs
//! less than wall time.
//!
//! Run: `cargo bench -p spinescreen-ingest --bench ingest_vs_dcm2niix`.
//! `SPINESCREEN_BENCH_SLICES` overrides the slice count (default 400).
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_ingest::{build_volume, IngestLimits, SourceFile};
use spinescreen_phantom::{generate, write_dicom_series, PhantomSpec};
use spinescreen_proto::StudyUid;
use spinescreen_runtime::volumes::write_volume;
use spinescreen_runtime::{StoreConfig, StudyStore};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CPU seconds used so far by this process and by its waited-for children (Linux only).
fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the parenthesised command name; utime, stime, cutime, cstime are 14–17.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / tick;
    (get(14) + get(15), get(16) + get(17))
}

fn ours(rt: &tokio::runtime::Runtime, dir: &Path, out: &StudyStore) -> Duration {
    let start = Instant::now();
    let files = SourceFile::read_dir(dir).expect("read series");
    // By value, as the worker does: each file is freed once decoded.
    let volume = build_volume(files, &IngestLimits::default()).expect("volume");
    let keys = StudyUid::new(&volume.header.study.study_instance_uid)
        .expect("uid")
        .keys();
    rt.block_on(write_volume(out, &keys, Arc::new(volume)))
        .expect("write volume");
    start.elapsed()
}

fn dcm2niix(dir: &Path, out: &Path) -> Option<Duration> {
    let start = Instant::now();
    let status = Command::new("dcm2niix")
        .args(["-z", "n", "-o"])
        .arg(out)
        .arg(dir)
        .output()
        .ok()?;
    status.status.success().then(|| start.elapsed())
}

fn main() {
    let slices: usize = std::env::var("SPINESCREEN_BENCH_SLICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let tmp = tempfile::tempdir().expect("tempdir");
    let series = tmp.path().join("series");
    let spec = PhantomSpec {
        seed: 3,
        matrix: 512,
        slices,
        slice_thickness_mm: 400.0 / slices as f64,
        ..Default::default()
    };
    eprintln!("generating a 512 × 512 × {slices} phantom series…");
    let phantom = generate(&spec).expect("phantom");
    write_dicom_series(&phantom, &series).expect("write series");
    // truth.json is not part of the series: keep the two inputs identical.
    let _ = std::fs::remove_file(series.join("truth.json"));
    let out_ours = StudyStore::from_config(&StoreConfig::Local {
        root: tmp.path().join("ours"),
    })
    .expect("store");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let out_ref = tmp.path().join("dcm2niix");
    std::fs::create_dir_all(&out_ref).expect("mkdir");
    // Warm the page cache for both.
    let _ = SourceFile::read_dir(&series);

    let mut t_ours = vec![];
    let mut t_ref = vec![];
    let (mut cpu_ours, mut cpu_ref) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        let (own0, _) = cpu_seconds();
        t_ours.push(ours(&rt, &series, &out_ours));
        let (own1, child0) = cpu_seconds();
        cpu_ours = cpu_ours.min(own1 - own0);
        if let Some(t) = dcm2niix(&series, &out_ref) {
            t_ref.push(t);
            let (_, child1) = cpu_seconds();
            cpu_ref = cpu_ref.min(child1 - child0);
        }
    }
    let fmt = |v: &[Duration]| {
        v.iter()
            .map(|t| format!("{:.3}", t.as_secs_f64()))
            .collect::<Vec<_>>()
    };
    let best_ours = t_ours.iter().min().copied().unwrap_or_default();
    println!(
        "ingest   512x512x{slices}: best {:.3} s wall, {cpu_ours:.2} s CPU (runs: {:?})",
        best_ours.as_secs_f64(),
        fmt(&t_ours)
    );
    match t_ref.iter().min() {
        Some(best_ref) => {
            println!(
                "dcm2niix 512x512x{slices}: best {:.3} s wall, {cpu_ref:.2} s CPU (runs: {:?})",
                best_ref.as_secs_f64(),
                fmt(&t_ref)
            );
            println!(
                "ratio = ingest / dcm2niix = {:.2} wall, {:.2} CPU (goal <= 1.0)",
                best_ours.as_secs_f64() / best_ref.as_secs_f64(),
                cpu_ours / cpu_ref
            );
        }
        None => println!("dcm2niix not available: no ratio"),
    }
}
