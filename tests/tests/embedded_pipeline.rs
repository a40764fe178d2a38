//! The whole pipeline in one process on the embedded runtime — what `spinescreen analyze` does —
//! on phantom studies written as DICOM files, checked against the phantom's ground truth.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen::analyze::{analyze, AnalyzeOptions};
use spinescreen::config::AppConfig;
use spinescreen_phantom::{FractureSpec, FractureType, PhantomSpec};
use spinescreen_proto::{GenantGrade, ReasonCode, StudyStatus};
use std::path::Path;
use std::time::Duration;

fn small_spec(seed: u64, fractures: Vec<FractureSpec>) -> PhantomSpec {
    PhantomSpec {
        seed,
        fractures,
        matrix: 256,
        pixel_spacing_mm: Some(1.4),
        slices: 220,
        slice_thickness_mm: 2.0,
        ..Default::default()
    }
}

fn options(input: &Path, out: &Path) -> AnalyzeOptions {
    AnalyzeOptions {
        input: input.to_path_buf(),
        out: out.to_path_buf(),
        store_dir: None,
        timeout: Duration::from_secs(120),
    }
}

fn run(input: &Path, out: &Path) -> spinescreen::analyze::Analysis {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(analyze(&AppConfig::default(), &options(input, out)))
        .expect("analysis completes")
}

#[test]
fn wedge_fracture_of_l1_is_reported_with_sr_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(
        11,
        vec![FractureSpec {
            label: "L1".into(),
            kind: FractureType::Wedge,
            fraction: 0.45,
        }],
    );
    let phantom = spinescreen_phantom::generate(&spec).unwrap();
    let study = dir.path().join("study");
    spinescreen_phantom::write_dicom_series(&phantom, &study).unwrap();
    let out = dir.path().join("out");

    let analysis = run(&study, &out);
    let r = &analysis.result;
    assert_eq!(r.status, StudyStatus::Ok, "reason: {:?}", r.reason);
    assert_eq!(r.has_fracture, Some(true));
    assert!(r.fracture_probability.unwrap() > 0.5);
    let l1 = r
        .vertebrae
        .iter()
        .find(|v| v.label == "L1")
        .expect("L1 measured");
    assert!(l1.genant_grade >= GenantGrade::Moderate, "L1: {l1:?}");
    assert_eq!(r.study_instance_uid, phantom.truth.study_instance_uid);
    for stage in [
        "ingest",
        "inference",
        "morphometry",
        "rendering",
        "publisher",
        "end_to_end",
    ] {
        assert!(r.timings_ms.contains_key(stage), "no timing for {stage}");
    }
    assert!(out.join("result.json").is_file());
    assert!(out.join("sr.dcm").is_file());
    assert!(out.join("preview.png").is_file());
    let sc = std::fs::read_dir(out.join("sc")).unwrap().count();
    assert!(sc >= 1, "no secondary capture written");
}

#[test]
fn healthy_phantom_is_negative() {
    let dir = tempfile::tempdir().unwrap();
    let phantom = spinescreen_phantom::generate(&small_spec(12, vec![])).unwrap();
    let study = dir.path().join("study");
    spinescreen_phantom::write_dicom_series(&phantom, &study).unwrap();
    let analysis = run(&study, &dir.path().join("out"));
    let r = &analysis.result;
    assert_eq!(r.status, StudyStatus::Ok, "reason: {:?}", r.reason);
    assert_eq!(r.has_fracture, Some(false), "vertebrae: {:#?}", r.vertebrae);
    assert!(r.fracture_probability.unwrap() < 0.5);
    assert!(
        r.vertebrae.len() >= 10,
        "only {} vertebrae",
        r.vertebrae.len()
    );
}

#[test]
fn a_directory_without_dicom_is_a_technical_defect_that_still_gets_an_sr() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    std::fs::create_dir_all(&study).unwrap();
    std::fs::write(study.join("notes.txt"), b"not a DICOM file").unwrap();
    let out = dir.path().join("out");
    let analysis = run(&study, &out);
    assert_eq!(analysis.result.status, StudyStatus::TechnicalDefect);
    assert_eq!(
        analysis.result.reason.as_ref().map(|r| r.code.as_str()),
        Some(ReasonCode::NO_DICOM)
    );
    assert!(
        out.join("sr.dcm").is_file(),
        "a defect must still produce its SR"
    );
}
