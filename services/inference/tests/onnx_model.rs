//! The ONNX detector with the committed toy model. Runs only when `ORT_DYLIB_PATH` names an ONNX
//! Runtime library (≥ 1.31, e.g. `libonnxruntime.so.1.*` from the PyPI `onnxruntime` wheel);
//! otherwise prints why it was skipped.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_inference::{onnx::OnnxDetector, Detector, InferenceConfig, InferenceWorker};
use spinescreen_phantom::{generate, Confounder, Phantom, PhantomSpec};
use std::path::PathBuf;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/toy_bodymap.json")
}

/// A small, quick phantom (200² × 200 slices of 2 mm) with the given confounders.
fn small_phantom(confounders: Vec<Confounder>) -> Phantom {
    generate(&PhantomSpec {
        seed: 31,
        matrix: 200,
        pixel_spacing_mm: Some(1.8),
        slices: 200,
        slice_thickness_mm: 2.0,
        confounders,
        ..Default::default()
    })
    .expect("phantom")
}

fn runtime_present() -> bool {
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        eprintln!("skipped: ORT_DYLIB_PATH not set (no ONNX Runtime library)");
        return false;
    }
    true
}

#[test]
fn toy_model_marks_bone_and_drives_detection() {
    if !runtime_present() {
        return;
    }
    let det = OnnxDetector::from_manifest(&manifest()).expect("toy model loads");
    assert_eq!(det.name(), "onnx:toy-bodymap");
    let ph = small_phantom(vec![]);
    // The toy model is "bone probability": high in a vertebral body, low in soft tissue.
    let g = spinescreen_inference::grid::coarse_grid(&ph.volume, 2.0).unwrap();
    let p = det.probability(&g).expect("model runs");
    let mid = &ph.truth.vertebrae[6];
    let i = g.to_index(mid.center_mm);
    let at = |dx: f64, dy: f64| {
        p[g.idx(
            (i[0] + dx).round() as usize,
            (i[1] + dy).round() as usize,
            i[2].round() as usize,
        )]
    };
    assert!(at(0.0, 0.0) > 0.5, "body centre {}", at(0.0, 0.0));
    assert!(
        at(0.0, -40.0) < 0.5,
        "anterior soft tissue {}",
        at(0.0, -40.0)
    );
    let d = det.detect(&ph.volume);
    assert_eq!(d.detector, "onnx:toy-bodymap");
    eprintln!(
        "onnx toy: status {:?} {:?}, {} vertebrae",
        d.status,
        d.reason,
        d.vertebrae.len()
    );
    assert!(d.vertebrae.len() >= 8, "{} vertebrae", d.vertebrae.len());
}

#[test]
fn worker_builds_the_onnx_detector_from_config() {
    let cfg = InferenceConfig {
        detector: "onnx".into(),
        onnx_manifest: None,
    };
    assert!(
        InferenceWorker::new(&cfg).is_err(),
        "a manifest is required"
    );
    if !runtime_present() {
        return;
    }
    let cfg = InferenceConfig {
        detector: "onnx".into(),
        onnx_manifest: Some(manifest()),
    };
    assert!(InferenceWorker::new(&cfg).is_ok());
}

#[test]
fn onnx_detector_corrects_ring_artefacts_too() {
    if !runtime_present() {
        return;
    }
    let det = OnnxDetector::from_manifest(&manifest()).expect("toy model loads");
    let ph = small_phantom(vec![Confounder::Ring]);
    let d = det.detect(&ph.volume);
    assert!(
        d.notes
            .iter()
            .any(|n| n.starts_with("ring artefacts about the isocentre corrected")),
        "{:?} {:?}: {:?}",
        d.status,
        d.reason,
        d.notes
    );
    assert!(d.vertebrae.len() >= 8, "{} vertebrae", d.vertebrae.len());
}
