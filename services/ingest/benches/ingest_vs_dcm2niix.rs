//! Ingest wall time against dcm2niix on the same 512 × 512 × 400 phantom CT series.
//!
//! Both start from the files on disk (page cache warm) and end with the volume on disk: ours
//! reads the files, builds and validates the HU volume and writes `volume.i16` + `volume.json`;
//! dcm2niix runs `dcm2niix -z n -o OUT DIR` (uncompressed NIfTI). Each is run three times and the
//! fastest run is compared. Prints `ratio = ingest / dcm2niix` (goal ≤ 1.0).
//!
//! Run: `cargo bench -p spinescreen-ingest --bench ingest_vs_dcm2niix`.
//! `SPINESCREEN_BENCH_SLICES` overrides the slice count (default 400).

use spinescreen_ingest::{build_volume, voxel_bytes, IngestLimits, SourceFile};
use spinescreen_phantom::{generate, write_dicom_series, PhantomSpec};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn ours(dir: &Path, out: &Path) -> Duration {
    let start = Instant::now();
    let files = SourceFile::read_dir(dir).expect("read series");
    let volume = build_volume(&files, &IngestLimits::default()).expect("volume");
    std::fs::write(out.join("volume.i16"), voxel_bytes(&volume)).expect("write voxels");
    std::fs::write(out.join("volume.json"), volume.header_bytes()).expect("write header");
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
    let out_ours = tmp.path().join("ours");
    let out_ref = tmp.path().join("dcm2niix");
    std::fs::create_dir_all(&out_ours).expect("mkdir");
    std::fs::create_dir_all(&out_ref).expect("mkdir");
    // Warm the page cache for both.
    let _ = SourceFile::read_dir(&series);

    let mut t_ours = vec![];
    let mut t_ref = vec![];
    for _ in 0..3 {
        t_ours.push(ours(&series, &out_ours));
        if let Some(t) = dcm2niix(&series, &out_ref) {
            t_ref.push(t);
        }
    }
    let best_ours = t_ours.iter().min().copied().unwrap_or_default();
    println!(
        "ingest   512x512x{slices}: best {:.3} s (runs: {:?})",
        best_ours.as_secs_f64(),
        t_ours
            .iter()
            .map(|t| format!("{:.3}", t.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    match t_ref.iter().min() {
        Some(best_ref) => {
            println!(
                "dcm2niix 512x512x{slices}: best {:.3} s (runs: {:?})",
                best_ref.as_secs_f64(),
                t_ref
                    .iter()
                    .map(|t| format!("{:.3}", t.as_secs_f64()))
                    .collect::<Vec<_>>()
            );
            println!(
                "ratio = ingest / dcm2niix = {:.2} (goal <= 1.0)",
                best_ours.as_secs_f64() / best_ref.as_secs_f64()
            );
        }
        None => println!("dcm2niix not available: no ratio"),
    }
}
