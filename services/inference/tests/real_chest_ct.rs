//! The real chest CTs in `shared/data/real`: at 2.5 mm (C5–L3 in view, reference labels and
//! body centres from another tool), every vertebra T1–L1 in view is reported under the name the
//! reference gives it, measured or named as not assessable, with no silent gap; at 5 mm the
//! study is declined with a coded reason. Skipped (with a message) when the data are absent.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use spinescreen_inference::{ClassicalDetector, Detector};
use spinescreen_proto::{
    Detection, HuVolume, ReasonCode, StudyStatus, VertebraFlag, VertebraLevel,
};
use std::path::{Path, PathBuf};

fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/real")
        .join(name)
}

/// Reference class id of a label in the TotalSegmentator v2 scheme the map uses
/// (29 = L3 … 43 = T1, 44 = C7).
fn reference_id(label: VertebraLevel) -> Option<i16> {
    let l3 = VertebraLevel::L3.index() as i16;
    Some(29 + l3 - label.index() as i16)
}

struct Chest {
    det: Detection,
    map: HuVolume,
    /// (label, body centre LPS mm) of the reference vertebrae wholly in view.
    whole: Vec<(String, [f64; 3])>,
}

fn chest_2_5mm() -> Option<Chest> {
    let dir = data_dir("chest-ct-2.5mm");
    let (ct, labels, json) = (
        dir.join("ct.nii.gz"),
        dir.join("reference_labels.nii.gz"),
        dir.join("reference_vertebrae.json"),
    );
    if !ct.exists() || !labels.exists() || !json.exists() {
        eprintln!("skipped: {} not present", dir.display());
        return None;
    }
    let volume = spinescreen_ingest::read_nifti(&ct).expect("CT reads");
    let map = spinescreen_ingest::read_nifti(&labels).expect("labels read");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json reads"))
            .expect("json parses");
    let whole = reference["vertebrae"]
        .as_array()
        .expect("vertebrae")
        .iter()
        .filter(|v| v["fully_in_view"].as_bool() == Some(true))
        .map(|v| {
            let c = &v["body_center_mm_lps"];
            let at = |i: usize| c[i].as_f64().expect("coordinate");
            (
                v["label"].as_str().expect("label").to_string(),
                [at(0), at(1), at(2)],
            )
        })
        .collect();
    let det = ClassicalDetector::default().detect(&volume);
    for n in &det.notes {
        eprintln!("note: {n}");
    }
    Some(Chest { det, map, whole })
}

fn reference_under(map: &HuVolume, p: [f64; 3]) -> Option<i16> {
    let i = map.header.patient_to_index(p);
    map.get(
        i[0].round() as isize,
        i[1].round() as isize,
        i[2].round() as isize,
    )
}

#[test]
fn every_vertebra_in_view_of_the_chest_ct_is_reported_under_the_reference_name() {
    let Some(c) = chest_2_5mm() else { return };
    assert_eq!(c.det.status, StudyStatus::Ok, "{:?}", c.det.reason);
    let mut slips = Vec::new();
    for v in &c.det.vertebrae {
        let under = reference_under(&c.map, v.center_mm);
        eprintln!("{} {:?} at reference {under:?}", v.label, v.flags);
        if under != reference_id(v.label) {
            slips.push(v.label);
        }
    }
    assert!(
        slips.len() <= 1,
        "named otherwise than the reference: {slips:?}"
    );
    // Every reference vertebra wholly in view (T1–L1) is reported, measured or not assessable,
    // T1 and T2 included: the canal track follows the bend towards the neck
    // (`canal::CANAL_OVERLAP`).
    let missing: Vec<&str> = c
        .whole
        .iter()
        .filter(|(label, _)| !c.det.vertebrae.iter().any(|v| &v.label == label))
        .map(|(label, _)| label.as_str())
        .collect();
    assert!(missing.is_empty(), "not reported: {missing:?}");
    // No fracture on this CT: no gradable body reads a wedge (1 − Ha/Hp) or biconcave
    // (1 − Hm/Hp) deformity of 25 % or more, Genant's within-body ratios as morphometry takes
    // them (T1–T2 beside the trachea's air and a sclerotic T10 did before the rim-third check in
    // `endplates`).
    let deformed: Vec<String> = c
        .det
        .vertebrae
        .iter()
        .filter(|v| !v.flags.iter().any(|f| f.blocks_grading()))
        .filter_map(|v| {
            let h = v.keypoints_mm.heights();
            let loss = 1.0 - h.anterior.min(h.middle) / h.posterior;
            (loss >= 0.25).then(|| format!("{} {:.0} %", v.label, 100.0 * loss))
        })
        .collect();
    assert!(deformed.is_empty(), "read as Genant 2–3: {deformed:?}");
    // No silent gap: the reported labels are consecutive levels.
    let idx: Vec<usize> = c.det.vertebrae.iter().map(|v| v.label.index()).collect();
    assert!(
        idx.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap in {:?}",
        c.det
            .vertebrae
            .iter()
            .map(|v| v.label.as_str())
            .collect::<Vec<_>>()
    );
}

#[test]
fn measured_chest_ct_bodies_lie_within_6_mm_of_the_reference_centres() {
    let Some(c) = chest_2_5mm() else { return };
    let (mut measured, mut far) = (0, Vec::new());
    for (label, centre) in &c.whole {
        let Some(v) = c.det.vertebrae.iter().find(|v| &v.label == label) else {
            continue;
        };
        if v.flags.contains(&VertebraFlag::EndplatesNotTraced) {
            continue;
        }
        let d = spinescreen_inference::geom::dist(v.center_mm, *centre);
        eprintln!("{label}: {d:.1} mm from the reference body centre");
        assert!(d <= 8.0, "{label} lies {d:.1} mm from the reference centre");
        if d > 6.0 {
            far.push(format!("{label} {d:.1} mm"));
        }
        measured += 1;
    }
    // The target is all 13 within 6 mm; T1 and T2 lie 7.4 and 8.1 mm off. The
    // reference's `body_center_mm_lps` is itself 7.1 and 7.6 mm from the body its own label map
    // draws there (the vertebra's voxels in front of the cord; 6.0 at T3, ≤ 3 at T4–L1), while
    // ours lie within 1 mm of it: the next test checks against the map.
    assert!(
        far.iter()
            .all(|f| f.starts_with("T1 ") || f.starts_with("T2 ")),
        "beyond 6 mm: {far:?}"
    );
    assert!(
        measured >= 11,
        "only {measured} of the 13 whole vertebrae measured"
    );
}

/// Reference class id of the spinal cord in the map.
const SPINAL_CORD_ID: i16 = 79;

/// Centre (LPS mm) of each reference vertebra's body, taken from the label map itself: the
/// vertebra's voxels that lie in front of the spinal cord on their axial slice (1.5 mm clear of
/// the cord's most anterior voxel), which leaves out the arch, pedicles and processes.
fn body_centroids_from_map(map: &HuVolume, ids: &[i16]) -> Vec<Option<[f64; 3]>> {
    let [nx, ny, nz] = map.header.dims;
    let mut sums = vec![([0.0f64; 3], 0usize); ids.len()];
    for k in 0..nz {
        let at = |i: usize, j: usize| map.get(i as isize, j as isize, k as isize);
        let p = |i: usize, j: usize| map.header.index_to_patient([i as f64, j as f64, k as f64]);
        // LPS y grows posteriorly: the cord's front is its smallest y.
        let mut cord_front = f64::INFINITY;
        for j in 0..ny {
            for i in 0..nx {
                if at(i, j) == Some(SPINAL_CORD_ID) {
                    cord_front = cord_front.min(p(i, j)[1]);
                }
            }
        }
        if !cord_front.is_finite() {
            continue;
        }
        for j in 0..ny {
            for i in 0..nx {
                let Some(n) = at(i, j).and_then(|v| ids.iter().position(|&id| id == v)) else {
                    continue;
                };
                let q = p(i, j);
                if q[1] < cord_front - 1.5 {
                    let (sum, count) = &mut sums[n];
                    (0..3).for_each(|a| sum[a] += q[a]);
                    *count += 1;
                }
            }
        }
    }
    sums.into_iter()
        .map(|(sum, count)| (count > 0).then(|| sum.map(|v| v / count as f64)))
        .collect()
}

#[test]
fn chest_ct_bodies_lie_on_the_reference_maps_vertebral_bodies() {
    let Some(c) = chest_2_5mm() else { return };
    let levels: Vec<VertebraLevel> = c
        .whole
        .iter()
        .filter_map(|(label, _)| label.parse::<VertebraLevel>().ok())
        .collect();
    let ids: Vec<i16> = levels.iter().filter_map(|&l| reference_id(l)).collect();
    assert_eq!(
        ids.len(),
        c.whole.len(),
        "every whole vertebra has a class id"
    );
    let centres = body_centroids_from_map(&c.map, &ids);
    let mut off = Vec::new();
    for (level, centre) in levels.iter().zip(&centres) {
        let centre = centre.unwrap_or_else(|| panic!("{level}: no body voxels in the map"));
        let v = c
            .det
            .vertebrae
            .iter()
            .find(|v| v.label == *level)
            .unwrap_or_else(|| panic!("{level} not reported"));
        let d = spinescreen_inference::geom::dist(v.center_mm, centre);
        let measured = !v.flags.contains(&VertebraFlag::EndplatesNotTraced)
            && !v.flags.contains(&VertebraFlag::ImplausibleShape);
        eprintln!("{level}: {d:.1} mm from the map's body centre (measured: {measured})");
        // Measured bodies within 3 mm (the 2.5 mm slices); the levels reported not
        // assessable are placed between their neighbours, within 5 mm.
        if d > if measured { 3.0 } else { 5.0 } {
            off.push(format!("{level} {d:.1} mm"));
        }
    }
    assert!(off.is_empty(), "off the reference map's bodies: {off:?}");
}

#[test]
fn the_5_mm_chest_ct_is_declined_as_too_thick_to_grade() {
    let dir = data_dir("chest-ct-5mm");
    let ct = dir.join("ct.nii.gz");
    if !ct.exists() {
        eprintln!("skipped: {} not present", dir.display());
        return;
    }
    let volume = spinescreen_ingest::read_nifti(&ct).expect("CT reads");
    let det = ClassicalDetector::default().detect(&volume);
    assert_eq!(det.status, StudyStatus::Abstained);
    let reason = det.reason.expect("a reason");
    assert_eq!(reason.code, ReasonCode::SLICES_TOO_THICK, "{}", reason.text);
}
