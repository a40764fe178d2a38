//! From one study's detection and HU volume to its `result.json` ([`StudyResult`]).

use crate::density::{bone_density, measures_density};
use crate::grade::{boundary_confidence, grade_from_deformity, MILD};
use crate::heights::{deformity_of, heights_of, measurable, Deformity};
use crate::levels::{expected_posterior_heights, LevelHeight};
use crate::probability::study_fracture_probability;
use crate::roi::{trabecular_hu, trabecular_roi, BodyFrame};
use spinescreen_proto::{
    DeformityType, DetectedVertebra, Detection, GenantGrade, HuSource, Reason, ReasonCode,
    ServiceInfo, StudyResult, StudyStatus, TrabecularHu, VertebraFlag, VertebraResult,
    SCHEMA_VERSION,
};
use std::collections::BTreeMap;

/// Whether a detected vertebra may be graded (no flag from [`VertebraFlag::NOT_GRADED`]): one that
/// may not is reported with its measured heights and deformity (a geometric fact), but with grade
/// 0, type `none` and its flags kept, and it does not count toward `has_fracture`,
/// `max_deformity` or the study score. Its trabecular HU is not read either (cement and hardware
/// dominate the attenuation).
pub fn is_gradable(v: &DetectedVertebra) -> bool {
    !v.flags.iter().any(VertebraFlag::blocks_grading)
}

/// Measure one study. The detection's status decides whether anything is measured: a detector
/// that abstained gives an `abstained` result carrying its reason. A study in which no vertebra
/// could be graded is `abstained` with [`ReasonCode::TOO_FEW_VERTEBRAE`] (its vertebrae are
/// still listed). `timings_ms` is left empty for the caller (the worker copies the job's).
pub fn measure(
    detection: &Detection,
    volume: &impl HuSource,
    service: &ServiceInfo,
) -> StudyResult {
    let uid = volume.header().study.study_instance_uid.clone();
    if detection.status != StudyStatus::Ok {
        let reason = detection.reason.clone().unwrap_or_else(|| {
            Reason::new(
                ReasonCode::SPINE_NOT_TRACEABLE,
                "the vertebra detector declined to analyse this study",
            )
        });
        let status = if detection.status == StudyStatus::TechnicalDefect {
            StudyStatus::TechnicalDefect
        } else {
            StudyStatus::Abstained
        };
        let mut r = StudyResult::not_analysed(uid, status, reason, service.clone());
        r.detector = detection.detector.clone();
        r.notes = detection.notes.clone();
        return r;
    }

    let mut notes = detection.notes.clone();
    let measured: Vec<Measured> = detection.vertebrae.iter().map(Measured::new).collect();
    let levels: Vec<LevelHeight> = measured
        .iter()
        .map(|m| LevelHeight {
            label: m.v.label,
            posterior_mm: if m.measurable {
                m.heights.posterior
            } else {
                f64::NAN
            },
            reference: m.gradable && m.within_body.value < MILD,
        })
        .collect();
    let expected = expected_posterior_heights(&levels);

    let mut vertebrae = Vec::with_capacity(measured.len());
    let mut graded: Vec<(f64, f64)> = Vec::new();
    for (m, exp) in measured.iter().zip(expected) {
        let v = m.v;
        let d = if m.measurable {
            deformity_of(&m.heights, exp, m.ignore_middle)
        } else {
            m.within_body
        };
        let detection_confidence = clamp_confidence(v.confidence);
        let mut flags = v.flags.clone();
        if !m.measurable {
            flags.push(VertebraFlag::NotMeasurable);
        }
        let graded_here = m.gradable && m.measurable;
        let (grade, kind, confidence) = if graded_here {
            let grade = grade_from_deformity(d.value);
            let kind = if grade == GenantGrade::Normal {
                DeformityType::None
            } else {
                d.kind
            };
            let thoracic_wedge = v.label.is_thoracic() && d.kind == DeformityType::Wedge;
            let conf = detection_confidence * boundary_confidence(d.value, thoracic_wedge);
            graded.push((d.value, detection_confidence));
            (grade, kind, conf)
        } else {
            (
                GenantGrade::Normal,
                DeformityType::None,
                detection_confidence,
            )
        };
        let trabecular = if measures_density(v.label)
            && m.measurable
            && m.gradable
            && !v.flags.contains(&VertebraFlag::RingCorrected)
        {
            trabecular_of(v, volume)
        } else {
            None
        };
        vertebrae.push(VertebraResult {
            label: v.label,
            center_mm: v.center_mm,
            keypoints_mm: v.keypoints_mm,
            heights_mm: m.heights,
            deformity: if m.measurable { d.value } else { 0.0 },
            deformity_type: kind,
            genant_grade: grade,
            trabecular_hu: trabecular,
            confidence,
            flags,
        });
    }

    let contrast = volume.header().study.contrast_agent.clone();
    let density = bone_density(&vertebrae, contrast).map(|(bd, fractured)| {
        if fractured {
            notes.push(format!(
                "bone density read at fractured {} (no unfractured level of T11-L3 measurable)",
                bd.level
            ));
        }
        bd
    });

    let (status, reason, has_fracture, probability, max_deformity) = if graded.is_empty() {
        (
            StudyStatus::Abstained,
            Some(Reason::new(
                ReasonCode::TOO_FEW_VERTEBRAE,
                "no vertebra could be graded (none found, or all flagged or unmeasurable)",
            )),
            None,
            None,
            None,
        )
    } else {
        let has_fracture = vertebrae
            .iter()
            .zip(&measured)
            .any(|(r, m)| m.gradable && m.measurable && r.genant_grade >= GenantGrade::Moderate);
        let max = graded.iter().map(|(d, _)| *d).fold(0.0, f64::max);
        (
            StudyStatus::Ok,
            None,
            Some(has_fracture),
            study_fracture_probability(&graded),
            Some(max),
        )
    };

    StudyResult {
        schema_version: SCHEMA_VERSION,
        study_instance_uid: uid,
        status,
        reason,
        has_fracture,
        fracture_probability: probability,
        max_deformity,
        vertebrae,
        bone_density: density,
        timings_ms: BTreeMap::new(),
        service: service.clone(),
        detector: detection.detector.clone(),
        notes,
    }
}

/// Trabecular HU of one vertebra, `None` when its keypoints give no frame or the ROI is too small.
fn trabecular_of(v: &DetectedVertebra, volume: &impl HuSource) -> Option<TrabecularHu> {
    let frame = BodyFrame::from_keypoints(&v.keypoints_mm)?;
    let roi = trabecular_roi(&frame, volume.header());
    trabecular_hu(volume, &roi)
}

fn clamp_confidence(c: f64) -> f64 {
    if c.is_finite() {
        c.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Per-vertebra quantities computed before the neighbour-based crush ratio.
struct Measured<'a> {
    v: &'a DetectedVertebra,
    heights: spinescreen_proto::Heights,
    measurable: bool,
    gradable: bool,
    ignore_middle: bool,
    /// Wedge and biconcave only (no crush yet).
    within_body: Deformity,
}

impl<'a> Measured<'a> {
    fn new(v: &'a DetectedVertebra) -> Self {
        let heights = heights_of(&v.keypoints_mm);
        // A body cut by the scan, or one placed between its discs without traced endplates, has
        // no heights to grade or to compare its neighbours with.
        let measurable = measurable(&v.keypoints_mm, &heights)
            && !v.flags.iter().any(|f| {
                matches!(
                    f,
                    VertebraFlag::Truncated | VertebraFlag::EndplatesNotTraced
                )
            });
        let ignore_middle = v.flags.contains(&VertebraFlag::SchmorlNode);
        let within_body = if measurable {
            deformity_of(&heights, None, ignore_middle)
        } else {
            Deformity {
                wedge: f64::NAN,
                biconcave: f64::NAN,
                crush: None,
                value: 0.0,
                kind: DeformityType::None,
            }
        };
        Self {
            v,
            heights,
            measurable,
            gradable: is_gradable(v),
            ignore_middle,
            within_body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::levels::reference_posterior_height;
    use ndarray::Array3;
    use spinescreen_proto::{HuVolume, Keypoints, StudyInfo, VolumeHeader};

    /// One synthetic body: heights (Ha, Hm, Hp) in mm, centred at `z`, 30 mm deep (anterior is
    /// −y in LPS), keypoints on the outer surface in the mid-sagittal plane x = 0.
    fn body(label: &str, z: f64, ha: f64, hm: f64, hp: f64) -> DetectedVertebra {
        let (ya, ym, yp) = (-15.0, 0.0, 15.0);
        DetectedVertebra {
            label: label.parse().unwrap(),
            center_mm: [0.0, 0.0, z],
            keypoints_mm: Keypoints {
                superior_anterior: [0.0, ya, z + ha / 2.0],
                superior_middle: [0.0, ym, z + hm / 2.0],
                superior_posterior: [0.0, yp, z + hp / 2.0],
                inferior_anterior: [0.0, ya, z - ha / 2.0],
                inferior_middle: [0.0, ym, z - hm / 2.0],
                inferior_posterior: [0.0, yp, z - hp / 2.0],
            },
            anterior_dir: [0.0, -1.0, 0.0],
            cranial_dir: [0.0, 0.0, 1.0],
            confidence: 0.9,
            flags: vec![],
        }
    }

    /// A spine of normal bodies at table height for `labels`, cranial first, with 8 mm discs;
    /// `edit` may change one vertebra's heights as fractions of its table height.
    fn spine(labels: &[&str], edit: &[(&str, f64, f64, f64)]) -> Detection {
        let mut z = 0.0;
        let mut vertebrae = vec![];
        for l in labels {
            let h = reference_posterior_height(l.parse().unwrap()).unwrap();
            let (fa, fm, fp) = edit
                .iter()
                .find(|(e, ..)| e == l)
                .map(|(_, a, m, p)| (*a, *m, *p))
                .unwrap_or((1.0, 1.0, 1.0));
            z -= h / 2.0;
            vertebrae.push(body(l, z, fa * h, fm * h, fp * h));
            z -= h / 2.0 + 8.0;
        }
        Detection {
            schema_version: SCHEMA_VERSION,
            status: StudyStatus::Ok,
            reason: None,
            detector: "test".into(),
            vertebrae,
            centreline: vec![],
            notes: vec!["anchor: test".into()],
            spine_region: None,
        }
    }

    /// A small volume (HU 0) far from the bodies, for tests that do not read HU.
    fn empty_volume() -> HuVolume {
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [4, 4, 4],
            spacing_mm: [1.0; 3],
            origin_mm: [500.0, 500.0, 500.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo {
                study_instance_uid: "1.2.3".into(),
                ..Default::default()
            },
        };
        HuVolume::new(header, Array3::zeros((4, 4, 4))).unwrap()
    }

    fn service() -> ServiceInfo {
        ServiceInfo {
            name: "spinescreen".into(),
            version: "0.1.0".into(),
        }
    }

    fn find<'a>(r: &'a StudyResult, label: &str) -> &'a VertebraResult {
        r.vertebrae.iter().find(|v| v.label == label).unwrap()
    }

    const LEVELS: [&str; 6] = ["T10", "T11", "T12", "L1", "L2", "L3"];

    #[test]
    fn normal_spine_has_no_fracture() {
        let r = measure(&spine(&LEVELS, &[]), &empty_volume(), &service());
        assert_eq!(r.status, StudyStatus::Ok);
        assert_eq!(r.has_fracture, Some(false));
        assert!(r.max_deformity.unwrap() < 1e-9);
        // Confidence 0.9 bounds the score to 0.05–0.95.
        assert!(r.fracture_probability.unwrap() < 0.06);
        assert!(r
            .vertebrae
            .iter()
            .all(|v| v.genant_grade == GenantGrade::Normal
                && v.deformity_type == DeformityType::None));
        assert_eq!(r.study_instance_uid, "1.2.3");
        assert_eq!(r.detector, "test");
        assert_eq!(r.notes, vec!["anchor: test".to_string()]);
    }

    #[test]
    fn wedge_35_percent_is_grade_2() {
        let r = measure(
            &spine(&LEVELS, &[("T12", 0.65, 0.85, 1.0)]),
            &empty_volume(),
            &service(),
        );
        let t12 = find(&r, "T12");
        assert!((t12.deformity - 0.35).abs() < 1e-9);
        assert_eq!(t12.genant_grade, GenantGrade::Moderate);
        assert_eq!(t12.deformity_type, DeformityType::Wedge);
        assert_eq!(r.has_fracture, Some(true));
        assert!(r.fracture_probability.unwrap() > 0.9);
        assert!((r.max_deformity.unwrap() - 0.35).abs() < 1e-9);
    }

    #[test]
    fn uniform_crush_is_measured_against_neighbours() {
        let r = measure(
            &spine(&LEVELS, &[("L1", 0.55, 0.55, 0.55)]),
            &empty_volume(),
            &service(),
        );
        let l1 = find(&r, "L1");
        assert_eq!(l1.deformity_type, DeformityType::Crush);
        assert!((l1.deformity - 0.45).abs() < 1e-9, "{}", l1.deformity);
        assert_eq!(l1.genant_grade, GenantGrade::Severe);
        // Its neighbours are not made to look tall-and-normal-or-crushed by it.
        assert_eq!(find(&r, "T12").genant_grade, GenantGrade::Normal);
        assert_eq!(find(&r, "L2").genant_grade, GenantGrade::Normal);
    }

    #[test]
    fn biconcave_30_percent_is_grade_2() {
        let r = measure(
            &spine(&LEVELS, &[("L2", 1.0, 0.70, 1.0)]),
            &empty_volume(),
            &service(),
        );
        let l2 = find(&r, "L2");
        assert_eq!(l2.deformity_type, DeformityType::Biconcave);
        assert_eq!(l2.genant_grade, GenantGrade::Moderate);
    }

    #[test]
    fn mild_22_percent_wedge_is_grade_1_and_no_fracture() {
        let r = measure(
            &spine(&LEVELS, &[("T11", 0.78, 0.9, 1.0)]),
            &empty_volume(),
            &service(),
        );
        let t11 = find(&r, "T11");
        assert_eq!(t11.genant_grade, GenantGrade::Mild);
        assert_eq!(t11.deformity_type, DeformityType::Wedge);
        assert_eq!(r.has_fracture, Some(false));
        assert!(r.fracture_probability.unwrap() < 0.5);
        // A thoracic wedge 3 points from 25 %: confidence 0.9 × 0.8.
        assert!((t11.confidence - 0.72).abs() < 1e-9, "{}", t11.confidence);
    }

    #[test]
    fn exactly_25_percent_scores_one_half() {
        let r = measure(
            &spine(&LEVELS, &[("L1", 0.75, 0.9, 1.0)]),
            &empty_volume(),
            &service(),
        );
        assert_eq!(find(&r, "L1").genant_grade, GenantGrade::Moderate);
        assert_eq!(r.fracture_probability, Some(0.5));
        assert_eq!(r.has_fracture, Some(true));
    }

    #[test]
    fn cemented_vertebra_is_reported_but_not_graded() {
        let mut d = spine(&LEVELS, &[("L1", 0.5, 0.5, 0.5)]);
        d.vertebrae[3].flags.push(VertebraFlag::Cement);
        let r = measure(&d, &empty_volume(), &service());
        let l1 = find(&r, "L1");
        assert_eq!(l1.genant_grade, GenantGrade::Normal);
        assert_eq!(l1.deformity_type, DeformityType::None);
        assert_eq!(l1.flags, vec![VertebraFlag::Cement]);
        assert_eq!(r.has_fracture, Some(false));
        assert!(r.max_deformity.unwrap() < 1e-9);
        assert!(r.fracture_probability.unwrap() < 0.5);
    }

    #[test]
    fn body_cut_by_the_scan_is_listed_but_neither_graded_nor_measured() {
        // The scan's edge leaves half of L1 in view: its keypoints read a 50 % wedge.
        let mut d = spine(&LEVELS, &[("L1", 0.5, 1.0, 1.0)]);
        d.vertebrae[3].flags = vec![VertebraFlag::Truncated, VertebraFlag::NotGradable];
        let r = measure(&d, &empty_volume(), &service());
        let l1 = find(&r, "L1");
        assert_eq!(l1.genant_grade, GenantGrade::Normal);
        assert_eq!(l1.deformity, 0.0);
        assert!(l1.flags.contains(&VertebraFlag::NotMeasurable));
        assert!(l1.trabecular_hu.is_none());
        assert_eq!(r.has_fracture, Some(false));
    }

    #[test]
    fn a_vertebra_without_traced_endplates_is_neither_graded_nor_a_neighbour() {
        // L2's nominal keypoints only place it between its discs: read as heights, its posterior
        // height would be twice L1's and L3's and make both look crushed.
        let mut d = spine(&LEVELS, &[("L2", 2.0, 2.0, 2.0)]);
        d.vertebrae[4].flags = vec![VertebraFlag::EndplatesNotTraced, VertebraFlag::NotGradable];
        let r = measure(&d, &empty_volume(), &service());
        for label in ["L1", "L2", "L3"] {
            assert_eq!(find(&r, label).genant_grade, GenantGrade::Normal, "{label}");
        }
        assert!(find(&r, "L2").trabecular_hu.is_none());
        assert_eq!(r.has_fracture, Some(false));
    }

    #[test]
    fn schmorl_node_flag_suppresses_biconcave() {
        let mut d = spine(&LEVELS, &[("L2", 1.0, 0.7, 1.0)]);
        d.vertebrae[4].flags.push(VertebraFlag::SchmorlNode);
        let r = measure(&d, &empty_volume(), &service());
        assert_eq!(find(&r, "L2").genant_grade, GenantGrade::Normal);
        assert_eq!(r.has_fracture, Some(false));
    }

    #[test]
    fn abstained_detection_gives_abstained_result_with_reason() {
        let mut d = spine(&LEVELS, &[]);
        d.status = StudyStatus::Abstained;
        d.reason = Some(Reason::new(ReasonCode::SPINE_NOT_TRACEABLE, "scoliosis"));
        let r = measure(&d, &empty_volume(), &service());
        assert_eq!(r.status, StudyStatus::Abstained);
        assert_eq!(r.reason.unwrap().code, ReasonCode::SPINE_NOT_TRACEABLE);
        assert_eq!(r.has_fracture, None);
        assert!(r.vertebrae.is_empty());
    }

    #[test]
    fn nothing_gradable_abstains_with_too_few_vertebrae() {
        let mut d = spine(&["L1"], &[]);
        d.vertebrae[0].flags.push(VertebraFlag::NotGradable);
        let r = measure(&d, &empty_volume(), &service());
        assert_eq!(r.status, StudyStatus::Abstained);
        assert_eq!(r.reason.unwrap().code, ReasonCode::TOO_FEW_VERTEBRAE);
        assert_eq!(r.vertebrae.len(), 1);
        assert_eq!(r.fracture_probability, None);

        let empty = spine(&[], &[]);
        let r = measure(&empty, &empty_volume(), &service());
        assert_eq!(r.status, StudyStatus::Abstained);
    }

    #[test]
    fn collapsed_keypoints_are_flagged_not_measurable() {
        let mut d = spine(&LEVELS, &[]);
        let c = d.vertebrae[2].center_mm;
        let k = &mut d.vertebrae[2].keypoints_mm;
        k.superior_anterior = c;
        k.superior_middle = c;
        k.superior_posterior = c;
        k.inferior_anterior = c;
        k.inferior_middle = c;
        k.inferior_posterior = c;
        let r = measure(&d, &empty_volume(), &service());
        let t12 = find(&r, "T12");
        assert!(t12.flags.contains(&VertebraFlag::NotMeasurable));
        assert_eq!(t12.genant_grade, GenantGrade::Normal);
        assert_eq!(r.has_fracture, Some(false));
    }

    #[test]
    fn bone_density_reads_l1_and_flags_contrast() {
        let d = spine(&LEVELS, &[]);
        // Paint every body's box (40 wide, 30 deep, its height) with a level-specific HU and a
        // 2 mm 700 HU shell; 1 mm voxels.
        let (nx, ny) = (64usize, 64usize);
        let z_min = d.vertebrae.last().unwrap().center_mm[2] - 20.0;
        let nz = (-z_min + 5.0) as usize;
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [nx, ny, nz],
            spacing_mm: [1.0; 3],
            origin_mm: [-32.0, -32.0, z_min],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo {
                study_instance_uid: "1.2.3".into(),
                contrast_agent: Some("IOPAMIDOL".into()),
                ..Default::default()
            },
        };
        let h = header.clone();
        let hu_of = |label: &str| match label {
            "T11" => 140,
            "T12" => 130,
            "L1" => 95,
            "L2" => 120,
            _ => 160,
        };
        let bodies: Vec<(f64, f64, i16)> = d
            .vertebrae
            .iter()
            .map(|v| {
                let hp = reference_posterior_height(v.label).unwrap();
                (v.center_mm[2], hp / 2.0, hu_of(v.label.as_str()))
            })
            .collect();
        let voxels = Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
            let p = h.index_to_patient([x as f64, y as f64, z as f64]);
            for (cz, half, hu) in &bodies {
                let dz = (p[2] - cz).abs();
                if p[0].abs() <= 20.0 && p[1].abs() <= 15.0 && dz <= *half {
                    let shell = p[0].abs() > 18.0 || p[1].abs() > 13.0 || dz > half - 2.0;
                    return if shell { 700 } else { *hu };
                }
            }
            0
        });
        let vol = HuVolume::new(header, voxels).unwrap();
        let r = measure(&d, &vol, &service());
        let bd = r.bone_density.clone().unwrap();
        assert_eq!(bd.level, "L1");
        assert_eq!(bd.hu, 95.0);
        assert_eq!(bd.iscd_category, "osteoporosis_suggested");
        assert_eq!(bd.pickhardt_category, "low");
        assert_eq!(bd.contrast_agent.as_deref(), Some("IOPAMIDOL"));
        for (label, hu) in [("T11", 140.0), ("T12", 130.0), ("L2", 120.0), ("L3", 160.0)] {
            let t = find(&r, label).trabecular_hu.unwrap();
            assert_eq!((t.mean, t.median), (hu, hu), "{label}");
            assert!(t.voxels >= 1000, "{label}: {} voxels", t.voxels);
        }
        assert_eq!(find(&r, "T10").trabecular_hu, None);
        // A ring the detector subtracted crosses L1: its stored attenuation is not read, and
        // the reading moves to L2 (the next eligible level).
        let mut ringed = d.clone();
        ringed
            .vertebrae
            .iter_mut()
            .find(|v| v.label == "L1")
            .unwrap()
            .flags
            .push(VertebraFlag::RingCorrected);
        let r = measure(&ringed, &vol, &service());
        assert_eq!(find(&r, "L1").trabecular_hu, None);
        assert_eq!(find(&r, "L1").genant_grade, GenantGrade::Normal);
        let bd = r.bone_density.unwrap();
        assert_eq!((bd.level.as_str(), bd.hu), ("L2", 120.0));
    }
}
