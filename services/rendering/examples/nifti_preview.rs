//! Render a CT stored as NIfTI with a TotalSegmentator-style vertebra label map, for looking at
//! the reformat on real anatomy without the rest of the pipeline:
//!
//! ```text
//! cargo run -p spinescreen-rendering --example nifti_preview -- ct.nii.gz labels.nii.gz out.png [ru]
//! ```
//!
//! The vertebrae, keypoints and grades here come from the label map by a crude rule (body = the
//! anterior 42 % of each vertebra's mask, endplates = its top and bottom in three columns of the
//! mid-sagittal slab); they illustrate the display and are not the service's measurements.

use spinescreen_ingest::read_nifti;
use spinescreen_proto::detection::CentrelinePoint;
use spinescreen_proto::*;
use spinescreen_rendering::{render, Language, RenderingConfig};
use std::collections::BTreeMap;

/// TotalSegmentator v2 vertebra classes 26 (S1) … 50 (C1).
const TS_LABELS: [VertebraLevel; 25] = [
    VertebraLevel::S1,
    VertebraLevel::L5,
    VertebraLevel::L4,
    VertebraLevel::L3,
    VertebraLevel::L2,
    VertebraLevel::L1,
    VertebraLevel::T12,
    VertebraLevel::T11,
    VertebraLevel::T10,
    VertebraLevel::T9,
    VertebraLevel::T8,
    VertebraLevel::T7,
    VertebraLevel::T6,
    VertebraLevel::T5,
    VertebraLevel::T4,
    VertebraLevel::T3,
    VertebraLevel::T2,
    VertebraLevel::T1,
    VertebraLevel::C7,
    VertebraLevel::C6,
    VertebraLevel::C5,
    VertebraLevel::C4,
    VertebraLevel::C3,
    VertebraLevel::C2,
    VertebraLevel::C1,
];

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: nifti_preview ct.nii.gz labels.nii.gz out.png [ru]".into());
    }
    // Read as the product reads NIfTI: reoriented to DICOM LPS.
    let read = |p: &str| read_nifti(std::path::Path::new(p)).map_err(|e| e.to_string());
    let volume = read(&args[1])?;
    let labels = read(&args[2])?;
    if volume.header.dims != labels.header.dims {
        return Err("CT and label map differ in size".into());
    }
    let h = volume.header.clone();
    let [nx, ny, nz] = h.dims;

    // Voxel positions of each vertebra.
    let mut masks: BTreeMap<usize, Vec<[f64; 3]>> = BTreeMap::new();
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let l = labels.voxels[[k, j, i]].max(0) as usize;
                if (26..=50).contains(&l) {
                    masks
                        .entry(l)
                        .or_default()
                        .push(h.index_to_patient([i as f64, j as f64, k as f64]));
                }
            }
        }
    }
    let half_voxel = h.spacing_mm[2] / 2.0;
    let mut found: Vec<(VertebraLevel, [f64; 3], Keypoints)> = Vec::new();
    for (l, pts) in &masks {
        if pts.len() < 200 {
            continue;
        }
        let label = TS_LABELS[l - 26];
        let xc = pts.iter().map(|p| p[0]).sum::<f64>() / pts.len() as f64;
        let (ymin, ymax) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p[1]), a.1.max(p[1])));
        let body: Vec<[f64; 3]> = pts
            .iter()
            .copied()
            .filter(|p| p[1] <= ymin + 0.42 * (ymax - ymin) && (p[0] - xc).abs() <= 6.0)
            .collect();
        if body.len() < 10 {
            continue;
        }
        let (ya, yp) = body
            .iter()
            .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p[1]), a.1.max(p[1])));
        let column = |f: f64| {
            let y = ya + f * (yp - ya);
            let zs: Vec<f64> = body
                .iter()
                .filter(|p| (p[1] - y).abs() <= 3.0)
                .map(|p| p[2])
                .collect();
            let top = zs.iter().copied().fold(f64::MIN, f64::max) + half_voxel;
            let bottom = zs.iter().copied().fold(f64::MAX, f64::min) - half_voxel;
            ([xc, y, top], [xc, y, bottom])
        };
        let (sa, ia) = column(0.1);
        let (sm, im) = column(0.5);
        let (sp, ip) = column(0.9);
        let centre = [
            xc,
            (ya + yp) / 2.0,
            body.iter().map(|p| p[2]).sum::<f64>() / body.len() as f64,
        ];
        found.push((
            label,
            centre,
            Keypoints {
                superior_anterior: sa,
                superior_middle: sm,
                superior_posterior: sp,
                inferior_anterior: ia,
                inferior_middle: im,
                inferior_posterior: ip,
            },
        ));
    }
    found.sort_by(|a, b| b.1[2].total_cmp(&a.1[2])); // cranial first
    if found.len() < 2 {
        return Err("fewer than two vertebrae in the label map".into());
    }
    // Centreline through the body centres, extended 15 mm at both ends, 1 mm steps.
    let mut knots: Vec<[f64; 3]> = found.iter().map(|f| f.1).collect();
    let (a, b) = (knots[0], knots[1]);
    let up = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let n = (up[0] * up[0] + up[1] * up[1] + up[2] * up[2]).sqrt();
    knots.insert(
        0,
        [
            a[0] + 15.0 * up[0] / n,
            a[1] + 15.0 * up[1] / n,
            a[2] + 15.0 * up[2] / n,
        ],
    );
    let (a, b) = (knots[knots.len() - 1], knots[knots.len() - 2]);
    let down = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let n = (down[0] * down[0] + down[1] * down[1] + down[2] * down[2]).sqrt();
    knots.push([
        a[0] + 15.0 * down[0] / n,
        a[1] + 15.0 * down[1] / n,
        a[2] + 15.0 * down[2] / n,
    ]);
    let mut centreline = Vec::new();
    for w in knots.windows(2) {
        let d = [w[0][0] - w[1][0], w[0][1] - w[1][1], w[0][2] - w[1][2]];
        let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let t = [d[0] / len, d[1] / len, d[2] / len];
        // Anterior is −y, made perpendicular to the tangent.
        let dot = -t[1];
        let ant = [-dot * t[0], -1.0 - dot * t[1], -dot * t[2]];
        let m = (ant[0] * ant[0] + ant[1] * ant[1] + ant[2] * ant[2]).sqrt();
        for s in 0..len.ceil() as usize {
            let f = s as f64 / len;
            centreline.push(CentrelinePoint {
                position_mm: [w[0][0] - d[0] * f, w[0][1] - d[1] * f, w[0][2] - d[2] * f],
                cranial_dir: t,
                anterior_dir: [ant[0] / m, ant[1] / m, ant[2] / m],
            });
        }
    }
    let vertebrae: Vec<VertebraResult> = found
        .iter()
        .map(|(label, centre, kp)| {
            let ha = kp.superior_anterior[2] - kp.inferior_anterior[2];
            let hm = kp.superior_middle[2] - kp.inferior_middle[2];
            let hp = kp.superior_posterior[2] - kp.inferior_posterior[2];
            let deformity = (1.0 - ha.min(hm) / hp).max(0.0);
            let grade = match deformity {
                d if d >= 0.40 => GenantGrade::Severe,
                d if d >= 0.25 => GenantGrade::Moderate,
                d if d >= 0.20 => GenantGrade::Mild,
                _ => GenantGrade::Normal,
            };
            VertebraResult {
                label: *label,
                center_mm: *centre,
                keypoints_mm: *kp,
                heights_mm: Heights {
                    anterior: ha,
                    middle: hm,
                    posterior: hp,
                },
                deformity,
                deformity_type: if ha < hm {
                    DeformityType::Wedge
                } else {
                    DeformityType::Biconcave
                },
                genant_grade: grade,
                trabecular_hu: None,
                confidence: 0.5,
                flags: vec![],
            }
        })
        .collect();
    let detection = Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: "label-map".into(),
        vertebrae: vec![],
        centreline,
        notes: vec![],
        spine_region: None,
    };
    let result = StudyResult {
        schema_version: SCHEMA_VERSION,
        study_instance_uid: "1.2.3".into(),
        status: StudyStatus::Ok,
        reason: None,
        has_fracture: None,
        fracture_probability: None,
        max_deformity: None,
        vertebrae,
        bone_density: None,
        timings_ms: BTreeMap::new(),
        service: ServiceInfo {
            name: "spinescreen".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        detector: "label-map".into(),
        notes: vec![],
    };
    let cfg = RenderingConfig {
        language: if args.get(4).map(String::as_str) == Some("ru") {
            Language::Ru
        } else {
            Language::En
        },
        ..Default::default()
    };
    let rendered = render(&volume, Some(&detection), &result, &cfg).map_err(|e| e.to_string())?;
    std::fs::write(&args[3], &rendered.preview_png).map_err(|e| e.to_string())?;
    for v in &result.vertebrae {
        println!(
            "{:4} Ha {:5.1} Hm {:5.1} Hp {:5.1} deformity {:4.0} % grade {}",
            v.label,
            v.heights_mm.anterior,
            v.heights_mm.middle,
            v.heights_mm.posterior,
            v.deformity * 100.0,
            v.genant_grade as u8
        );
    }
    Ok(())
}
