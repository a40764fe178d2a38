//! Rendering a phantom CT: the fractured vertebra of the phantom's ground truth is outlined in
//! red on the reformat a radiologist opens.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_phantom::{generate, FractureSpec, FractureType, PhantomSpec, Truth};
use spinescreen_proto::detection::CentrelinePoint;
use spinescreen_proto::*;
use spinescreen_rendering::{render, secondary_capture_series, RenderingConfig};
use std::collections::BTreeMap;

fn lerp(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// A detection as a perfect detector would give it: truth keypoints, and a centreline through
/// the body centres at 1 mm steps, extended 15 mm past the end vertebrae.
fn detection_from_truth(truth: &Truth) -> Detection {
    let v = &truth.vertebrae;
    let mut centreline = Vec::new();
    let first = &v[0];
    let last = &v[v.len() - 1];
    let ext_top = lerp(first.center_mm, [0.0; 3], 0.0);
    let ext_top = [
        ext_top[0] + 15.0 * first.cranial_dir[0],
        ext_top[1] + 15.0 * first.cranial_dir[1],
        ext_top[2] + 15.0 * first.cranial_dir[2],
    ];
    let ext_bottom = [
        last.center_mm[0] - 15.0 * last.cranial_dir[0],
        last.center_mm[1] - 15.0 * last.cranial_dir[1],
        last.center_mm[2] - 15.0 * last.cranial_dir[2],
    ];
    let mut knots: Vec<([f64; 3], [f64; 3], [f64; 3])> =
        vec![(ext_top, first.cranial_dir, first.anterior_dir)];
    knots.extend(
        v.iter()
            .map(|t| (t.center_mm, t.cranial_dir, t.anterior_dir)),
    );
    knots.push((ext_bottom, last.cranial_dir, last.anterior_dir));
    for w in knots.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = ((b.0[0] - a.0[0]).powi(2) + (b.0[1] - a.0[1]).powi(2) + (b.0[2] - a.0[2]).powi(2))
            .sqrt();
        let n = d.ceil().max(1.0) as usize;
        for i in 0..n {
            let t = i as f64 / n as f64;
            centreline.push(CentrelinePoint {
                position_mm: lerp(a.0, b.0, t),
                cranial_dir: lerp(a.1, b.1, t),
                anterior_dir: lerp(a.2, b.2, t),
            });
        }
    }
    Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: "truth".into(),
        vertebrae: v
            .iter()
            .map(|t| DetectedVertebra {
                label: t.label.parse().unwrap(),
                center_mm: t.center_mm,
                keypoints_mm: t.keypoints_mm,
                anterior_dir: t.anterior_dir,
                cranial_dir: t.cranial_dir,
                confidence: 1.0,
                flags: t.flags.iter().map(|f| VertebraFlag::parse(f)).collect(),
            })
            .collect(),
        centreline,
        notes: vec![],
    }
}

fn result_from_truth(truth: &Truth, study_uid: &str) -> StudyResult {
    StudyResult {
        schema_version: SCHEMA_VERSION,
        study_instance_uid: study_uid.to_string(),
        status: StudyStatus::Ok,
        reason: None,
        has_fracture: Some(truth.positive),
        fracture_probability: Some(if truth.positive { 0.9 } else { 0.1 }),
        max_deformity: Some(truth.max_deformity),
        vertebrae: truth
            .vertebrae
            .iter()
            .map(|t| VertebraResult {
                label: t.label.parse().unwrap(),
                center_mm: t.center_mm,
                keypoints_mm: t.keypoints_mm,
                heights_mm: t.heights_mm,
                deformity: t.deformity,
                deformity_type: t.deformity_type,
                genant_grade: t.genant_grade,
                trabecular_hu: None,
                confidence: 1.0,
                flags: t.flags.iter().map(|f| VertebraFlag::parse(f)).collect(),
            })
            .collect(),
        bone_density: None,
        timings_ms: BTreeMap::new(),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "0.1.0".into(),
        },
        detector: "truth".into(),
        notes: vec![],
    }
}

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
