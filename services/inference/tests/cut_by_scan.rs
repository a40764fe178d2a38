//! A body that the scan's edge cuts through (T12 at the top of an abdominal CT, L1 or L2 at the
//! bottom of a chest CT) is still found and named, so the report can say which level was only
//! partly seen, but it is flagged `truncated` and `not_gradable`: its heights are lower bounds
//! and must never become a fracture.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ndarray::s;
use spinescreen_inference::{ClassicalDetector, Detector};
use spinescreen_phantom::{generate, PhantomSpec};
use spinescreen_proto::{HuVolume, StudyStatus, VertebraFlag};

/// The slices of `v` whose patient z lies within `[z_lo, z_hi]` (the scan cut to that range).
fn cut(v: &HuVolume, z_lo: f64, z_hi: f64) -> HuVolume {
    let nz = v.header.dims[2];
    let z_of = |k: usize| v.header.index_to_patient([0.0, 0.0, k as f64])[2];
    let keep: Vec<usize> = (0..nz)
        .filter(|&k| (z_lo..=z_hi).contains(&z_of(k)))
        .collect();
    let (k0, k1) = (keep[0], *keep.last().expect("slices kept"));
    let mut header = v.header.clone();
    header.origin_mm = v.header.index_to_patient([0.0, 0.0, k0 as f64]);
    header.dims[2] = k1 - k0 + 1;
    let voxels = v.voxels.slice(s![k0..=k1, .., ..]).to_owned();
    HuVolume::new(header, voxels).expect("cut volume")
}

#[test]
fn bodies_cut_by_the_scan_edges_are_named_and_not_graded() {
    for seed in [31, 32] {
        let ph = generate(&PhantomSpec::coarse(seed)).expect("phantom");
        let z = |label: &str| ph.truth.vertebra(label).expect("truth").center_mm[2];
        // The scan now runs from 3 mm above L2's centre to 3 mm above T3's (z is cranial): a
        // little over half of each body is in view.
        let volume = cut(&ph.volume, z("L2") + 3.0, z("T3") + 3.0);
        let d = ClassicalDetector::default().detect(&volume);
        assert_eq!(d.status, StudyStatus::Ok, "seed {seed}: {:?}", d.reason);
        let labels: Vec<&str> = d.vertebrae.iter().map(|v| v.label.as_str()).collect();
        let truncated: Vec<&str> = d
            .vertebrae
            .iter()
            .filter(|v| v.flags.contains(&VertebraFlag::Truncated))
            .map(|v| v.label.as_str())
            .collect();
        assert_eq!(
            truncated,
            ["T3", "L2"],
            "seed {seed}: {labels:?}, notes {:?}",
            d.notes
        );
        for v in &d.vertebrae {
            let cut = v.flags.contains(&VertebraFlag::Truncated);
            let not_gradable = v.flags.contains(&VertebraFlag::NotGradable);
            assert_eq!(cut, not_gradable, "seed {seed}: {} {:?}", v.label, v.flags);
            // Every body is where the truth has the body of that name.
            let t = ph.truth.vertebra(v.label.as_str()).expect("label in truth");
            let off = (v.center_mm[2] - t.center_mm[2]).abs();
            assert!(
                off <= if cut { 12.0 } else { 3.0 },
                "seed {seed}: {} centre {off:.1} mm from the truth",
                v.label
            );
        }
        assert_eq!(labels.first(), Some(&"T3"), "seed {seed}: {labels:?}");
        assert_eq!(labels.last(), Some(&"L2"), "seed {seed}: {labels:?}");
        assert!(
            d.notes.iter().any(|n| n.contains("L2 partially imaged")),
            "seed {seed}: {:?}",
            d.notes
        );
    }
}

#[test]
fn a_scan_ending_in_a_disc_reports_no_cut_body() {
    let ph = generate(&PhantomSpec::coarse(31)).expect("phantom");
    let (l1, l2) = (
        ph.truth.vertebra("L1").expect("L1"),
        ph.truth.vertebra("L2").expect("L2"),
    );
    // Midway between L1's inferior and L2's superior endplate.
    let disc = 0.5 * (l1.keypoints_mm.inferior_middle[2] + l2.keypoints_mm.superior_middle[2]);
    let top = ph.volume.header.index_to_patient([0.0, 0.0, 0.0])[2].max(
        ph.volume
            .header
            .index_to_patient([0.0, 0.0, (ph.volume.header.dims[2] - 1) as f64])[2],
    );
    let d = ClassicalDetector::default().detect(&cut(&ph.volume, disc, top));
    let labels: Vec<&str> = d.vertebrae.iter().map(|v| v.label.as_str()).collect();
    assert_eq!(labels.last(), Some(&"L1"), "{labels:?}");
    assert!(
        d.vertebrae
            .iter()
            .all(|v| !v.flags.contains(&VertebraFlag::Truncated)),
        "{:?}",
        d.vertebrae
            .iter()
            .map(|v| (&v.label, &v.flags))
            .collect::<Vec<_>>()
    );
}
