//! Accuracy of the classical detector on phantoms: vertebrae found (centre within 3 mm),
//! correctly labelled, and keypoint heights. Reduced size so the test stays fast; the full sweep
//! is `#[ignore]`d (run with `cargo test --release -p spinescreen-inference -- --ignored`).
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use spinescreen_inference::ClassicalDetector;
use spinescreen_phantom::{Confounder, PhantomSpec};
use spinescreen_proto::VertebraFlag;
use support::accuracy::{evaluate, Tally};

fn small(seed: u64) -> PhantomSpec {
    PhantomSpec {
        seed,
        matrix: 200,
        pixel_spacing_mm: Some(1.8),
        slices: 200,
        slice_thickness_mm: 2.0,
        ..Default::default()
    }
}

#[test]
fn finds_labels_and_measures_vertebrae_on_small_phantoms() {
    let det = ClassicalDetector::default();
    let mut t = Tally::default();
    for seed in [11, 12] {
        t.add(&evaluate(&det, &small(seed), false));
    }
    eprintln!(
        "found {:.3} labelled {:.3} height MAE {:.2} mm over {} vertebrae",
        t.found_rate(),
        t.label_rate(),
        t.height_mae(),
        t.total
    );
    assert!(t.found_rate() >= 0.80, "found {:.3}", t.found_rate());
    assert!(t.label_rate() >= 0.80, "labelled {:.3}", t.label_rate());
    assert!(t.height_mae() <= 1.0, "height MAE {:.2}", t.height_mae());
}

#[test]
fn cement_is_flagged_not_gradable_and_no_study_abstains_for_it() {
    let det = ClassicalDetector::default();
    let spec = PhantomSpec {
        confounders: vec![Confounder::Cement],
        ..small(13)
    };
    let ph = spinescreen_phantom::generate(&spec).expect("phantom");
    let d = spinescreen_inference::Detector::detect(&det, &ph.volume);
    assert_eq!(d.status, spinescreen_proto::StudyStatus::Ok);
    assert!(
        d.vertebrae
            .iter()
            .any(|v| v.flags.contains(&VertebraFlag::Cement)
                && v.flags.contains(&VertebraFlag::NotGradable)),
        "no vertebra flagged cement: {:?}",
        d.vertebrae
            .iter()
            .map(|v| (&v.label, &v.flags))
            .collect::<Vec<_>>()
    );
}

#[test]
#[ignore = "sweep over many seeds and variants; minutes in release"]
fn sweep_many_seeds_and_variants() {
    let det = ClassicalDetector::default();
    let mut t = Tally::default();
    for seed in 0..10u64 {
        let variants = [
            PhantomSpec {
                seed,
                ..small(seed)
            },
            PhantomSpec {
                seed,
                osteoporotic: true,
                noise_hu: 30.0,
                ..small(seed)
            },
            PhantomSpec {
                seed,
                scoliosis_mm: 25.0,
                ..small(seed)
            },
            PhantomSpec {
                seed,
                kyphosis_deg: Some(60.0),
                ..small(seed)
            },
            PhantomSpec {
                seed,
                confounders: vec![
                    Confounder::CalcifiedDisc,
                    Confounder::Osteophyte,
                    Confounder::Schmorl,
                ],
                ..small(seed)
            },
        ];
        for v in &variants {
            t.add(&evaluate(&det, v, false));
        }
    }
    eprintln!(
        "sweep: found {:.3} labelled {:.3} height MAE {:.2} mm over {} vertebrae, {} abstained",
        t.found_rate(),
        t.label_rate(),
        t.height_mae(),
        t.total,
        t.abstained
    );
    assert!(t.found_rate() >= 0.80 && t.label_rate() >= 0.80 && t.height_mae() <= 1.0);
}

/// A faulty detector channel draws rings through the spine (the seed's services read them as
/// fractures). They are corrected before measuring: the bodies are found, measured to within a
/// millimetre and none reads a deformity of Genant grade 2 (a loss of 25 % or more).
#[test]
fn ring_artefacts_are_corrected_and_do_not_become_fractures() {
    let det = ClassicalDetector::default();
    let mut t = Tally::default();
    for seed in [21, 24] {
        let spec = PhantomSpec {
            confounders: vec![Confounder::Ring],
            ..small(seed)
        };
        let ph = spinescreen_phantom::generate(&spec).expect("phantom");
        let d = spinescreen_inference::Detector::detect(&det, &ph.volume);
        assert_eq!(
            d.status,
            spinescreen_proto::StudyStatus::Ok,
            "{:?}",
            d.reason
        );
        assert!(
            d.notes
                .iter()
                .any(|n| n.starts_with("ring artefacts about the isocentre corrected")),
            "no ring correction: {:?}",
            d.notes
        );
        for v in d
            .vertebrae
            .iter()
            .filter(|v| !v.flags.contains(&VertebraFlag::NotGradable))
        {
            let h = v.keypoints_mm.heights();
            let h = [h.anterior, h.middle, h.posterior];
            let loss = 1.0
                - h.iter().copied().fold(f64::MAX, f64::min)
                    / h.iter().copied().fold(0.0, f64::max);
            assert!(loss < 0.25, "seed {seed} {}: {h:?} ({loss:.2})", v.label);
        }
        t.add(&evaluate(&det, &spec, false));
    }
    assert!(t.found_rate() >= 0.9, "found {:.3}", t.found_rate());
    assert!(t.height_mae() <= 1.0, "height MAE {:.2}", t.height_mae());
}

/// Thick slices (3 mm isotropic, as the real abdominal CT): the disc between two blurred
/// endplates reads thinner than any body, and a disc chain locked onto mid-body dips must still
/// be re-phased onto the discs. Seed 1 lost T1–T6 that way.
#[test]
fn three_millimetre_slices_keep_the_upper_thoracic_spine() {
    let det = ClassicalDetector::default();
    let mut t = Tally::default();
    for seed in [1, 3] {
        t.add(&evaluate(
            &det,
            &PhantomSpec {
                seed,
                matrix: 128,
                pixel_spacing_mm: Some(3.0),
                slices: 140,
                slice_thickness_mm: 3.0,
                ..Default::default()
            },
            false,
        ));
    }
    assert!(t.found_rate() >= 0.9, "found {:.3}", t.found_rate());
    assert!(t.label_rate() >= 0.9, "labelled {:.3}", t.label_rate());
    assert!(t.height_mae() <= 1.5, "height MAE {:.2}", t.height_mae());
}

/// Calibration-like confounder phantom (seed 104 of `accuracy_table`) whose L1 cement throws a
/// 32 mm streak on one side, across the rib cut: read as a rib, it made L1 the last rib-bearing
/// vertebra and named every level one too high.
#[test]
fn cement_streaks_are_not_taken_for_the_last_rib() {
    let spec = PhantomSpec {
        seed: 104,
        matrix: 256,
        pixel_spacing_mm: Some(1.4),
        slices: 330,
        slice_thickness_mm: 1.25,
        confounders: vec![
            Confounder::CalcifiedDisc,
            Confounder::Osteophyte,
            Confounder::Schmorl,
            Confounder::Cement,
        ],
        ..Default::default()
    };
    let t = evaluate(&ClassicalDetector::default(), &spec, false);
    assert!(t.found_rate() >= 0.95, "found {:.3}", t.found_rate());
    assert_eq!(
        t.labelled, t.found,
        "{} of {} found vertebrae named right",
        t.labelled, t.found
    );
}
