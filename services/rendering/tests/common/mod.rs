//! A synthetic lumbar spine for the rendering tests: five vertebral bodies (L1–L5) along a
//! straight or gently curved centreline, with the detection and the result that describe them.
#![allow(dead_code)]

use ndarray::Array3;
use spinescreen_phantom::Truth;
use spinescreen_proto::detection::CentrelinePoint;
use spinescreen_proto::*;
use std::collections::BTreeMap;

pub const LABELS: [&str; 5] = ["L1", "L2", "L3", "L4", "L5"];
/// Body height, disc height, half depth (AP) and half width (lateral), mm.
pub const BODY_H: f64 = 24.0;
pub const DISC_H: f64 = 8.0;
pub const HALF_DEPTH: f64 = 16.0;
pub const HALF_WIDTH: f64 = 20.0;

pub struct Spine {
    pub volume: HuVolume,
    pub detection: Detection,
    pub result: StudyResult,
}

pub fn service() -> ServiceInfo {
    ServiceInfo {
        name: "spinescreen".into(),
        version: "0.1.0".into(),
    }
}

pub fn study_info(n_slices: usize) -> StudyInfo {
    StudyInfo {
        patient_name: "Иванов^Иван".into(),
        patient_id: "TEST-42".into(),
        patient_birth_date: "19500101".into(),
        patient_sex: "M".into(),
        patient_age: "074Y".into(),
        study_instance_uid: "1.2.826.0.1.3680043.8.498.1".into(),
        study_date: "20240102".into(),
        study_time: "101500".into(),
        study_id: "1".into(),
        accession_number: "ACC1".into(),
        referring_physician_name: "".into(),
        study_description: "CT chest".into(),
        series_instance_uid: "1.2.826.0.1.3680043.8.498.2".into(),
        series_number: "3".into(),
        frame_of_reference_uid: "1.2.826.0.1.3680043.8.498.3".into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uids: (0..n_slices)
            .map(|i| format!("1.2.826.0.1.3680043.8.498.4.{}", i + 1))
            .collect(),
        contrast_agent: None,
    }
}

/// Lateral offset (mm) of the centreline at height `z`: zero, or an S-curve for scoliosis.
fn lateral(z: f64, scoliosis_mm: f64, z_top: f64, z_bottom: f64) -> f64 {
    scoliosis_mm * ((z - z_bottom) / (z_top - z_bottom) * std::f64::consts::PI).sin()
}

/// Build the spine. `anterior_heights[i]` is the anterior height of vertebra i (posterior and
/// middle stay [`BODY_H`]); `grades[i]` its Genant grade in the result.
pub fn spine(anterior_heights: [f64; 5], grades: [u8; 5], scoliosis_mm: f64) -> Spine {
    // 1 mm voxels, 128 × 128 × 180, origin at 0: x → left, y → posterior, z → head.
    let (nx, ny, nz) = (128usize, 128usize, 180usize);
    let (cx, cy) = (64.0, 60.0);
    let z_top = 165.0;
    // Vertebra i spans z in [top_i - BODY_H, top_i].
    let tops: Vec<f64> = (0..5)
        .map(|i| z_top - i as f64 * (BODY_H + DISC_H))
        .collect();
    let z_bottom = tops[4] - BODY_H;
    let header = VolumeHeader {
        schema_version: SCHEMA_VERSION,
        dims: [nx, ny, nz],
        spacing_mm: [1.0, 1.0, 1.0],
        origin_mm: [0.0, 0.0, 0.0],
        direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        study: study_info(nz),
    };
    let voxels = Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        let (x, y, z) = (x as f64, y as f64, z as f64);
        let lx = cx + lateral(z, scoliosis_mm, z_top, z_bottom);
        for (i, top) in tops.iter().enumerate() {
            // Wedge: the superior endplate slopes down anteriorly (anterior is −y).
            let t = ((cy + HALF_DEPTH - y) / (2.0 * HALF_DEPTH)).clamp(0.0, 1.0); // 0 post → 1 ant
            let height = BODY_H + (anterior_heights[i] - BODY_H) * t;
            let bottom = top - BODY_H;
            let inside = (x - lx).abs() <= HALF_WIDTH
                && (y - cy).abs() <= HALF_DEPTH
                && z >= bottom
                && z <= bottom + height;
            if inside {
                let shell = (x - lx).abs() > HALF_WIDTH - 2.0
                    || (y - cy).abs() > HALF_DEPTH - 2.0
                    || z < bottom + 2.0
                    || z > bottom + height - 2.0;
                return if shell { 900 } else { 250 };
            }
        }
        // Soft tissue around the spine, air outside a body contour.
        if (x - 64.0).powi(2) + (y - 64.0).powi(2) < 60.0f64.powi(2) {
            40
        } else {
            -1000
        }
    });
    let volume = HuVolume::new(header, voxels).expect("shape matches");
    let centreline: Vec<CentrelinePoint> = (0..=((z_top - z_bottom + 10.0) as usize))
        .map(|k| {
            let z = z_top + 5.0 - k as f64;
            let x = cx + lateral(z, scoliosis_mm, z_top, z_bottom);
            let dxdz = (lateral(z + 0.5, scoliosis_mm, z_top, z_bottom)
                - lateral(z - 0.5, scoliosis_mm, z_top, z_bottom))
            .clamp(-1.0, 1.0);
            let n = (1.0 + dxdz * dxdz).sqrt();
            CentrelinePoint {
                position_mm: [x, cy, z],
                cranial_dir: [dxdz / n, 0.0, 1.0 / n],
                anterior_dir: [0.0, -1.0, 0.0],
            }
        })
        .collect();
    let mut det_vertebrae = Vec::new();
    let mut res_vertebrae = Vec::new();
    for (i, top) in tops.iter().enumerate() {
        let bottom = top - BODY_H;
        let zc = bottom + BODY_H / 2.0;
        let x = cx + lateral(zc, scoliosis_mm, z_top, z_bottom);
        let (ya, ym, yp) = (cy - HALF_DEPTH + 1.0, cy, cy + HALF_DEPTH - 1.0);
        let ha = anterior_heights[i];
        let hm = (BODY_H + ha) / 2.0;
        let kp = Keypoints {
            superior_anterior: [x, ya, bottom + ha],
            superior_middle: [x, ym, bottom + hm],
            superior_posterior: [x, yp, bottom + BODY_H],
            inferior_anterior: [x, ya, bottom],
            inferior_middle: [x, ym, bottom],
            inferior_posterior: [x, yp, bottom],
        };
        det_vertebrae.push(DetectedVertebra {
            label: LABELS[i].parse().unwrap(),
            center_mm: [x, cy, zc],
            keypoints_mm: kp,
            anterior_dir: [0.0, -1.0, 0.0],
            cranial_dir: [0.0, 0.0, 1.0],
            confidence: 0.9,
            flags: vec![],
        });
        let grade = GenantGrade::try_from(grades[i]).expect("grade 0-3");
        res_vertebrae.push(VertebraResult {
            label: LABELS[i].parse().unwrap(),
            center_mm: [x, cy, zc],
            keypoints_mm: kp,
            heights_mm: Heights {
                anterior: ha,
                middle: hm,
                posterior: BODY_H,
            },
            deformity: 1.0 - ha / BODY_H,
            deformity_type: if grade as u8 >= 1 {
                DeformityType::Wedge
            } else {
                DeformityType::None
            },
            genant_grade: grade,
            trabecular_hu: None,
            confidence: 0.9,
            flags: vec![],
        });
    }
    let has_fracture = grades.iter().any(|g| *g >= 2);
    let detection = Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: "synthetic".into(),
        vertebrae: det_vertebrae,
        centreline,
        notes: vec![],
        spine_region: None,
    };
    let result = StudyResult {
        schema_version: SCHEMA_VERSION,
        study_instance_uid: "1.2.826.0.1.3680043.8.498.1".into(),
        status: StudyStatus::Ok,
        reason: None,
        has_fracture: Some(has_fracture),
        fracture_probability: Some(if has_fracture { 0.9 } else { 0.1 }),
        max_deformity: Some(
            res_vertebrae
                .iter()
                .map(|v| v.deformity)
                .fold(0.0, f64::max),
        ),
        vertebrae: res_vertebrae,
        bone_density: Some(BoneDensity {
            level: VertebraLevel::L1,
            hu: 250.0,
            iscd_category: "not_suggested".into(),
            pickhardt_category: "normal".into(),
            contrast_agent: None,
        }),
        timings_ms: BTreeMap::new(),
        service: service(),
        detector: "synthetic".into(),
        notes: vec![],
    };
    Spine {
        volume,
        detection,
        result,
    }
}

/// L1 with a severe anterior wedge (anterior height 11 of 24 mm: 54 %, Genant 3).
pub fn fractured() -> Spine {
    spine([11.0, 24.0, 24.0, 24.0, 24.0], [3, 0, 0, 0, 0], 0.0)
}

/// No fracture.
pub fn normal() -> Spine {
    spine([24.0; 5], [0; 5], 0.0)
}

fn lerp(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// A detection as a perfect detector would give it: truth keypoints, and a centreline through
/// the body centres at 1 mm steps, extended 15 mm past the end vertebrae.
pub fn detection_from_truth(truth: &Truth) -> Detection {
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
        spine_region: None,
    }
}

pub fn result_from_truth(truth: &Truth, study_uid: &str) -> StudyResult {
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
