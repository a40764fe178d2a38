//! Rendering a phantom CT: the fractured vertebra of the phantom's ground truth is outlined in
//! red on the reformat a radiologist opens.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{detection_from_truth, result_from_truth};
use spinescreen_phantom::{generate, FractureSpec, FractureType, PhantomSpec};
use spinescreen_proto::*;
use spinescreen_rendering::{render, secondary_capture_series, RenderingConfig};

#[test]
fn phantom_l1_wedge_fracture_is_red_on_the_reformat() {
    let spec = PhantomSpec {
        seed: 7,
        fractures: vec![FractureSpec {
            label: "L1".into(),
            kind: FractureType::Wedge,
            fraction: 0.45,
        }],
        scoliosis_mm: 12.0,
        matrix: 256,
        pixel_spacing_mm: Some(1.25),
        slices: 260,
        slice_thickness_mm: 1.5,
        ..Default::default()
    };
    let phantom = generate(&spec).expect("phantom");
    let l1 = phantom
        .truth
        .vertebrae
        .iter()
        .find(|v| v.label == "L1")
        .expect("L1 in truth");
    assert_eq!(l1.genant_grade, GenantGrade::Severe);
    let detection = detection_from_truth(&phantom.truth);
    let result = result_from_truth(
        &phantom.truth,
        &phantom.volume.header.study.study_instance_uid,
    );
    let cfg = RenderingConfig::default();
    let r = render(&phantom.volume, Some(&detection), &result, &cfg).expect("render");
    assert!(r.shows_text("Suspected compression fracture: L1 (Genant 3"));
    for frame in 0..2 {
        let o = r
            .outlines
            .iter()
            .find(|o| o.frame == frame && o.label == "L1")
            .expect("L1 outlined");
        // Mid-points of the superior and inferior endplate lines are red pixels.
        let (a, b) = (o.points[0], o.points[1]);
        let mid = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
        let p = r.frames[frame]
            .get(mid[0] as usize, mid[1] as usize)
            .unwrap();
        assert!(
            p[0] >= 200 && p[1] <= 80 && p[2] <= 80,
            "frame {frame}: {p:?}"
        );
    }
    let files = secondary_capture_series(&r, &phantom.volume.header, &result, &cfg).expect("sc");
    assert_eq!(files.len(), 2);
    if let Ok(dir) = std::env::var("SPINESCREEN_PREVIEW_DIR") {
        std::fs::write(format!("{dir}/phantom-l1-wedge.png"), &r.preview_png).unwrap();
    }
}

#[test]
fn a_negative_study_with_a_level_not_assessed_names_the_levels_assessed() {
    let spec = PhantomSpec {
        seed: 11,
        matrix: 128,
        slices: 120,
        slice_thickness_mm: 3.0,
        ..Default::default()
    };
    let phantom = generate(&spec).expect("phantom");
    let detection = detection_from_truth(&phantom.truth);
    let mut result = result_from_truth(
        &phantom.truth,
        &phantom.volume.header.study.study_instance_uid,
    );
    for v in &mut result.vertebrae {
        v.genant_grade = GenantGrade::Normal;
    }
    let labels: Vec<_> = result.vertebrae.iter().map(|v| v.label).collect();
    assert!(labels.len() >= 6, "{labels:?}");
    result.vertebrae[2].flags.push(VertebraFlag::NotGradable);
    let cfg = RenderingConfig::default();
    let r = render(&phantom.volume, Some(&detection), &result, &cfg).expect("render");
    let expected = format!(
        "Target pathology not detected (assessed: {}, {}, {}–{})",
        labels[0],
        labels[1],
        labels[3],
        labels[labels.len() - 1]
    );
    let shown: Vec<&str> = r
        .texts
        .iter()
        .map(|t| t.text.as_str())
        .filter(|t| t.contains("Target"))
        .collect();
    assert!(
        r.shows_text(&expected),
        "no {expected:?} on the frames: {shown:?}"
    );
    // With every level assessed the headline stands alone.
    result.vertebrae[2].flags.clear();
    let r = render(&phantom.volume, Some(&detection), &result, &cfg).expect("render");
    assert!(r.shows_text("Target pathology not detected"));
    assert!(!r.shows_text("(assessed:"));
}
