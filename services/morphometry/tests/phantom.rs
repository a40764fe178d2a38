//! Morphometry on phantoms with known geometry (issue 6's acceptance figures), fed the phantom's
//! TRUTH keypoints so these tests measure morphometry alone; the detector-in-the-loop version is
//! the end-to-end test.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_morphometry::{deformity_of, measure};
use spinescreen_phantom::truth::Truth;
use spinescreen_phantom::{generate, Confounder, FractureSpec, FractureType, Phantom, PhantomSpec};
use spinescreen_proto::{
    DetectedVertebra, Detection, GenantGrade, ServiceInfo, StudyResult, StudyStatus, VertebraFlag,
    SCHEMA_VERSION,
};

/// Flags a vertebra detector can raise from the image (the phantom's other flags, such as
/// `osteophyte`, are truth-only annotations).
const DETECTOR_FLAGS: [VertebraFlag; 2] = [VertebraFlag::Cement, VertebraFlag::SchmorlNode];

fn detection_from_truth(truth: &Truth, confidence: f64) -> Detection {
    Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: "truth".into(),
        vertebrae: truth
            .vertebrae
            .iter()
            .map(|t| DetectedVertebra {
                label: t.label.parse().unwrap(),
                center_mm: t.center_mm,
                keypoints_mm: t.keypoints_mm,
                anterior_dir: t.anterior_dir,
                cranial_dir: t.cranial_dir,
                confidence,
                flags: t
                    .flags
                    .iter()
                    .map(|f| VertebraFlag::parse(f))
                    .filter(|f| DETECTOR_FLAGS.contains(f))
                    .collect(),
            })
            .collect(),
        centreline: vec![],
        notes: vec![],
        spine_region: None,
    }
}

fn service() -> ServiceInfo {
    ServiceInfo {
        name: "spinescreen".into(),
        version: "test".into(),
    }
}

/// Geometry-only phantoms: coarse voxels (truth keypoints do not depend on them), fast.
fn coarse(seed: u64) -> PhantomSpec {
    PhantomSpec {
        seed,
        matrix: 108,
        slices: 120,
        slice_thickness_mm: 4.0,
        ..Default::default()
    }
}

/// Phantoms for HU: the 256² × 1.25 mm test size (340 slices cover T1–L2 of any seed).
fn fine(seed: u64) -> PhantomSpec {
    PhantomSpec {
        seed,
        matrix: 256,
        slices: 340,
        slice_thickness_mm: 1.25,
        ..Default::default()
    }
}

fn fracture(label: &str, kind: FractureType, fraction: f64) -> FractureSpec {
    FractureSpec {
        label: label.into(),
        kind,
        fraction,
    }
}

fn run(spec: &PhantomSpec) -> (Phantom, StudyResult) {
    let phantom = generate(spec).expect("phantom spec is valid");
    let r = measure(
        &detection_from_truth(&phantom.truth, 0.9),
        &phantom.volume,
        &service(),
    );
    assert_eq!(r.status, StudyStatus::Ok);
    (phantom, r)
}

/// Every fracture type, grades 1–3, levels T4–L2.
fn fracture_specs() -> Vec<PhantomSpec> {
    use FractureType::*;
    let sets = [
        vec![
            fracture("T4", Wedge, 0.32),
            fracture("T10", Biconcave, 0.45),
        ],
        vec![fracture("T6", Crush, 0.30), fracture("L1", Wedge, 0.45)],
        vec![fracture("T8", Wedge, 0.22), fracture("L2", Crush, 0.45)],
        vec![
            fracture("T12", Biconcave, 0.30),
            fracture("T5", Crush, 0.45),
        ],
        vec![fracture("T7", Biconcave, 0.22), fracture("L1", Crush, 0.22)],
        vec![fracture("T11", Wedge, 0.36), fracture("T9", Crush, 0.36)],
    ];
    sets.into_iter()
        .enumerate()
        .map(|(i, fractures)| PhantomSpec {
            fractures,
            ..coarse(100 + i as u64)
        })
        .collect()
}

#[test]
fn truth_keypoints_give_truth_grades_and_ratios() {
    let (mut agree, mut total, mut fractured_agree, mut fractured) = (0, 0, 0, 0);
    let mut worst_ratio_error: f64 = 0.0;
    let mut worst_deformity_error: f64 = 0.0;
    let mut mismatches = vec![];
    for spec in fracture_specs() {
        let (phantom, r) = run(&spec);
        for (t, v) in phantom.truth.vertebrae.iter().zip(&r.vertebrae) {
            assert_eq!(t.label, v.label);
            total += 1;
            if t.genant_grade == v.genant_grade {
                agree += 1;
            } else {
                mismatches.push(format!(
                    "seed {} {}: truth {:?} {:.3}, measured {:?} {:.3}",
                    spec.seed, t.label, t.genant_grade, t.deformity, v.genant_grade, v.deformity
                ));
            }
            if t.fracture.is_some() {
                fractured += 1;
                fractured_agree += usize::from(t.genant_grade == v.genant_grade);
            }
            // Within-body ratios from the measured heights vs the phantom's.
            let d = deformity_of(&v.heights_mm, None, false);
            worst_ratio_error = worst_ratio_error
                .max((d.wedge - t.ratios.wedge).abs())
                .max((d.biconcave - t.ratios.biconcave).abs());
            worst_deformity_error = worst_deformity_error.max((v.deformity - t.deformity).abs());
        }
    }
    let share = agree as f64 / total as f64;
    eprintln!(
        "grade agreement {agree}/{total} = {share:.3}; fractured {fractured_agree}/{fractured}; \
         worst wedge/biconcave ratio error {worst_ratio_error:.4}; worst deformity error \
         {worst_deformity_error:.4}; mismatches: {mismatches:#?}"
    );
    assert!(share >= 0.90, "grade agreement {share}");
    assert!(worst_ratio_error <= 0.03, "{worst_ratio_error}");
    assert!(worst_deformity_error <= 0.03, "{worst_deformity_error}");
    assert!(fractured_agree as f64 >= 0.9 * fractured as f64);
}

#[test]
fn confounders_fed_truth_keypoints_give_no_grade_2() {
    let specs = [
        PhantomSpec {
            confounders: vec![
                Confounder::Schmorl,
                Confounder::Osteophyte,
                Confounder::CalcifiedDisc,
            ],
            ..coarse(201)
        },
        PhantomSpec {
            confounders: vec![Confounder::Cement, Confounder::Ring],
            ..coarse(202)
        },
        PhantomSpec {
            kyphosis_deg: Some(60.0),
            osteoporotic: true,
            ..coarse(203)
        },
    ];
    for spec in specs {
        let (phantom, r) = run(&spec);
        assert!(!phantom.truth.positive);
        for v in &r.vertebrae {
            assert!(
                v.genant_grade < GenantGrade::Moderate,
                "seed {} {} graded {:?} ({:.3}, flags {:?})",
                spec.seed,
                v.label,
                v.genant_grade,
                v.deformity,
                v.flags
            );
        }
        assert_eq!(r.has_fracture, Some(false), "seed {}", spec.seed);
        if spec.confounders.contains(&Confounder::Cement) {
            assert!(r
                .vertebrae
                .iter()
                .any(|v| v.flags.contains(&VertebraFlag::Cement)));
        }
    }
}

#[test]
fn trabecular_hu_is_within_10_hu_of_truth() {
    let specs = [
        PhantomSpec {
            fractures: vec![fracture("L1", FractureType::Wedge, 0.35)],
            ..fine(301)
        },
        PhantomSpec {
            osteoporotic: true,
            ..fine(302)
        },
    ];
    let mut checked = 0;
    for spec in specs {
        let (phantom, r) = run(&spec);
        for (t, v) in phantom.truth.vertebrae.iter().zip(&r.vertebrae) {
            if !["T11", "T12", "L1", "L2", "L3"].contains(&t.label.as_str()) {
                assert!(v.trabecular_hu.is_none(), "{}", t.label);
                continue;
            }
            let hu = v
                .trabecular_hu
                .unwrap_or_else(|| panic!("no HU at {} (seed {})", t.label, spec.seed));
            eprintln!(
                "seed {} {}: measured {:.1} (median {:.1}, {} voxels), truth {:.1}",
                spec.seed, t.label, hu.mean, hu.median, hu.voxels, t.trabecular_hu
            );
            assert!(
                (hu.mean - t.trabecular_hu).abs() <= 10.0,
                "{} mean {} vs {}",
                t.label,
                hu.mean,
                t.trabecular_hu
            );
            assert!(hu.voxels >= 200);
            checked += 1;
        }
        let bd = r.bone_density.as_ref().expect("bone density");
        if spec.osteoporotic {
            assert_eq!(bd.level, "L1");
            assert_eq!(bd.iscd_category, "osteoporosis_suggested");
        } else {
            // L1 is fractured: the reading moves to L2.
            assert_eq!(bd.level, "L2");
        }
    }
    assert_eq!(checked, 8);
}

/// Mann–Whitney AUC.
fn auc(pos: &[f64], neg: &[f64]) -> f64 {
    let mut s = 0.0;
    for p in pos {
        for n in neg {
            s += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    s / (pos.len() * neg.len()) as f64
}

#[test]
fn fracture_probability_separates_positive_from_negative_phantoms() {
    use FractureType::*;
    let positives = [
        ("T4", Wedge, 0.28),
        ("T6", Biconcave, 0.30),
        ("T8", Crush, 0.33),
        ("T9", Wedge, 0.42),
        ("T11", Crush, 0.50),
        ("T12", Biconcave, 0.45),
        ("L1", Wedge, 0.30),
        ("L2", Crush, 0.28),
    ];
    let mut pos = vec![];
    for (i, (label, kind, f)) in positives.into_iter().enumerate() {
        let (phantom, r) = run(&PhantomSpec {
            fractures: vec![fracture(label, kind, f)],
            ..coarse(400 + i as u64)
        });
        assert!(phantom.truth.positive);
        pos.push(r.fracture_probability.unwrap());
    }
    let negatives = [
        coarse(500),
        coarse(501),
        PhantomSpec {
            fractures: vec![fracture("T7", Wedge, 0.21)],
            ..coarse(502)
        },
        PhantomSpec {
            confounders: vec![Confounder::Schmorl, Confounder::CalcifiedDisc],
            ..coarse(503)
        },
        PhantomSpec {
            confounders: vec![Confounder::Osteophyte, Confounder::Cement],
            ..coarse(504)
        },
        PhantomSpec {
            osteoporotic: true,
            ..coarse(505)
        },
        PhantomSpec {
            kyphosis_deg: Some(55.0),
            ..coarse(506)
        },
        PhantomSpec {
            scoliosis_mm: 25.0,
            ..coarse(507)
        },
    ];
    let mut neg = vec![];
    for spec in negatives {
        let (phantom, r) = run(&spec);
        assert!(!phantom.truth.positive, "seed {}", spec.seed);
        neg.push(r.fracture_probability.unwrap());
    }
    let a = auc(&pos, &neg);
    eprintln!("AUC {a:.4}; positives {pos:.3?}; negatives {neg:.3?}");
    assert!(a >= 0.99, "AUC {a}");
}
