//! Each fracture type lowers the height it should, in the truth and in the pixels.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{measured_heights, small};
use spinescreen_phantom::{Phantom, TruthVertebra};
use spinescreen_proto::{DeformityType, GenantGrade};

fn vertebra<'a>(ph: &'a Phantom, label: &str) -> &'a TruthVertebra {
    ph.truth
        .vertebrae
        .iter()
        .find(|v| v.label == label)
        .expect("label present")
}

/// (healthy, fractured) phantoms from the same seed, with L1 fractured.
fn pair(kind: &str, fraction: f64) -> (Phantom, Phantom) {
    let healthy = small(21, |_| {});
    let fractured = small(21, |s| {
        s.fractures = vec![format!("L1:{kind}:{fraction}").parse().unwrap()]
    });
    (healthy, fractured)
}

#[test]
fn wedge_35_percent_lowers_the_anterior_height_only_and_is_grade_2() {
    let (h, f) = pair("wedge", 0.35);
    let (a, b) = (vertebra(&h, "L1"), vertebra(&f, "L1"));
    assert!((b.heights_mm.anterior / b.heights_mm.posterior - 0.65).abs() < 1e-3);
    assert!((b.heights_mm.posterior - a.heights_mm.posterior).abs() < 1e-3);
    assert!(b.heights_mm.anterior < a.heights_mm.anterior - 5.0);
    assert_eq!(b.deformity_type, DeformityType::Wedge);
    assert_eq!(b.genant_grade, GenantGrade::Moderate);
    assert!((b.deformity - 0.35).abs() < 1e-3);
    assert!(f.truth.positive && !h.truth.positive);
    // The pixels agree: measured Ha drops, measured Hp does not.
    let (ma, mb) = (
        measured_heights(&h.volume, a),
        measured_heights(&f.volume, b),
    );
    assert!(
        mb[0] < ma[0] - 5.0,
        "measured Ha {:.1} → {:.1}",
        ma[0],
        mb[0]
    );
    assert!(
        (mb[2] - ma[2]).abs() < 0.6,
        "measured Hp {:.1} → {:.1}",
        ma[2],
        mb[2]
    );
}

#[test]
fn biconcave_30_percent_lowers_the_middle_height_only() {
    let (h, f) = pair("biconcave", 0.30);
    let (a, b) = (vertebra(&h, "L1"), vertebra(&f, "L1"));
    assert!((b.heights_mm.middle / b.heights_mm.posterior - 0.70).abs() < 1e-3);
    assert!((b.heights_mm.anterior - a.heights_mm.anterior).abs() < 1e-3);
    assert!((b.heights_mm.posterior - a.heights_mm.posterior).abs() < 1e-3);
    assert_eq!(b.deformity_type, DeformityType::Biconcave);
    assert_eq!(b.genant_grade, GenantGrade::Moderate);
    let (ma, mb) = (
        measured_heights(&h.volume, a),
        measured_heights(&f.volume, b),
    );
    assert!(
        mb[1] < ma[1] - 3.0,
        "measured Hm {:.1} → {:.1}",
        ma[1],
        mb[1]
    );
    assert!((mb[0] - ma[0]).abs() < 0.6 && (mb[2] - ma[2]).abs() < 0.6);
}

#[test]
fn crush_45_percent_lowers_every_height_and_is_grade_3() {
    let (h, f) = pair("crush", 0.45);
    let (a, b) = (vertebra(&h, "L1"), vertebra(&f, "L1"));
    for (x, y) in [
        (a.heights_mm.anterior, b.heights_mm.anterior),
        (a.heights_mm.middle, b.heights_mm.middle),
        (a.heights_mm.posterior, b.heights_mm.posterior),
    ] {
        assert!(y < x * 0.75, "{x:.1} → {y:.1}");
    }
    assert_eq!(b.deformity_type, DeformityType::Crush);
    assert_eq!(b.genant_grade, GenantGrade::Severe);
    assert!((b.ratios.crush - 0.45).abs() < 1e-3);
    let (ma, mb) = (
        measured_heights(&h.volume, a),
        measured_heights(&f.volume, b),
    );
    for c in 0..3 {
        assert!(
            mb[c] < ma[c] * 0.8,
            "column {c}: {:.1} → {:.1}",
            ma[c],
            mb[c]
        );
    }
}

#[test]
fn healthy_spines_stay_below_the_fracture_threshold_with_natural_variation() {
    let mut all = Vec::new();
    for seed in 1..=6 {
        let ph = small(seed, |s| {
            s.matrix = 96;
            s.pixel_spacing_mm = Some(3.6);
            s.slices = 100;
            s.slice_thickness_mm = 4.5;
        });
        assert!(!ph.truth.positive);
        for v in &ph.truth.vertebrae {
            assert!(
                v.deformity < 0.25,
                "{} seed {seed}: {}",
                v.label,
                v.deformity
            );
            assert!(v.fracture.is_none());
            all.push(v.deformity);
            if v.label.starts_with('T') && v.label != "T1" && v.label != "T12" {
                let r = v.heights_mm.anterior / v.heights_mm.posterior;
                assert!((0.80..=1.0).contains(&r), "{} Ha/Hp {r:.3}", v.label);
            }
        }
    }
    all.sort_by(f64::total_cmp);
    let median = all[all.len() / 2];
    let below_20 = all.iter().filter(|d| **d < 0.20).count() as f64 / all.len() as f64;
    assert!(
        (0.05..0.18).contains(&median),
        "median deformity {median:.3}"
    );
    assert!(below_20 > 0.85, "share below 0.20: {below_20:.2}");
    assert!(all[0] != all[all.len() - 1], "no variation");
}
