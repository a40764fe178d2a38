//! Rendering time for a full-size chest CT: 512 × 512 × 400 voxels (0.75 × 0.75 × 0.8 mm),
//! twelve vertebrae along a gently curved 300 mm centreline. Target: < 1 s on one core
//! (both frames, preview PNG and the SC DICOM files).
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array3;
use spinescreen_proto::detection::CentrelinePoint;
use spinescreen_proto::*;
use spinescreen_rendering::{render, secondary_capture_series, RenderingConfig};
use std::collections::BTreeMap;
use std::hint::black_box;

fn study() -> (HuVolume, Detection, StudyResult) {
    let (nx, ny, nz) = (512usize, 512usize, 400usize);
    let (sx, sz) = (0.75, 0.8);
    let header = VolumeHeader {
        schema_version: SCHEMA_VERSION,
        dims: [nx, ny, nz],
        spacing_mm: [sx, sx, sz],
        origin_mm: [-192.0, -192.0, -320.0],
        direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        study: StudyInfo {
            study_instance_uid: "1.2.826.0.1.3680043.8.498.10".into(),
            series_instance_uid: "1.2.826.0.1.3680043.8.498.11".into(),
            sop_instance_uids: (0..nz)
                .map(|i| format!("1.2.826.0.1.3680043.8.498.12.{}", i + 1))
                .collect(),
            ..Default::default()
        },
    };
    // The spine runs along z at x 0, y 40 mm (posterior of the origin), bending in y.
    let spine_y = |z: f64| 40.0 + 15.0 * ((z + 320.0) / 320.0 * std::f64::consts::PI).sin();
    let voxels = Array3::from_shape_fn((nz, ny, nx), |(k, j, i)| {
        let (x, y, z) = (
            -192.0 + i as f64 * sx,
            -192.0 + j as f64 * sx,
            -320.0 + k as f64 * sz,
        );
        let dy = y - spine_y(z);
        let in_body = x.abs() < 20.0 && dy.abs() < 16.0 && (z.rem_euclid(30.0)) < 24.0;
        if in_body {
            300
        } else if x * x + y * y < 160.0 * 160.0 {
            40
        } else {
            -1000
        }
    });
    let volume = HuVolume::new(header, voxels).expect("shape");
    let centreline: Vec<CentrelinePoint> = (0..300)
        .map(|k| {
            let z = -10.0 - k as f64;
            let slope = (spine_y(z + 0.5) - spine_y(z - 0.5)).clamp(-1.0, 1.0);
            let n = (1.0 + slope * slope).sqrt();
            CentrelinePoint {
                position_mm: [0.0, spine_y(z), z],
                cranial_dir: [0.0, slope / n, 1.0 / n],
                anterior_dir: [0.0, -1.0 / n, slope / n],
            }
        })
        .collect();
    let labels = [
        "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1",
    ];
    let mut vertebrae = Vec::new();
    for (i, label) in labels.iter().enumerate().take(10) {
        let bottom = -30.0 - 30.0 * i as f64;
        let top = bottom + 24.0;
        let y = spine_y(bottom + 12.0);
        let kp = Keypoints {
            superior_anterior: [0.0, y - 15.0, top],
            superior_middle: [0.0, y, top],
            superior_posterior: [0.0, y + 15.0, top],
            inferior_anterior: [0.0, y - 15.0, bottom],
            inferior_middle: [0.0, y, bottom],
            inferior_posterior: [0.0, y + 15.0, bottom],
        };
        let grade = if *label == "T12" {
            GenantGrade::Severe
        } else {
            GenantGrade::Normal
        };
        vertebrae.push(VertebraResult {
            label: label.parse().expect("a vertebra level"),
            center_mm: [0.0, y, bottom + 12.0],
            keypoints_mm: kp,
            heights_mm: Heights {
                anterior: 24.0,
                middle: 24.0,
                posterior: 24.0,
            },
            deformity: 0.0,
            deformity_type: DeformityType::None,
            genant_grade: grade,
            trabecular_hu: None,
            confidence: 0.9,
            flags: vec![],
        });
    }
    let detection = Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: "bench".into(),
        vertebrae: vec![],
        centreline,
        notes: vec![],
        spine_region: None,
    };
    let result = StudyResult {
        schema_version: SCHEMA_VERSION,
        study_instance_uid: "1.2.826.0.1.3680043.8.498.10".into(),
        status: StudyStatus::Ok,
        reason: None,
        has_fracture: Some(true),
        fracture_probability: Some(0.9),
        max_deformity: Some(0.45),
        vertebrae,
        bone_density: None,
        timings_ms: BTreeMap::new(),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: "0.1.0".into(),
        },
        detector: "bench".into(),
        notes: vec![],
    };
    (volume, detection, result)
}

fn bench(c: &mut Criterion) {
    let (volume, detection, result) = study();
    let cfg = RenderingConfig::default();
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.bench_function("512x512x400 frames + preview + SC", |b| {
        b.iter(|| {
            let r = render(black_box(&volume), Some(&detection), &result, &cfg).expect("render");
            let files = secondary_capture_series(&r, &volume.header, &result, &cfg).expect("sc");
            black_box(files.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
