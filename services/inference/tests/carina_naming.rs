//! A chest CT whose view shows neither the first rib with the level above it nor the last rib
//! with the level below it (T2/T3 to T11/T12, common for a routine chest CT) is named from the
//! tracheal carina, and the names are those of the truth — not a count from vertebral heights,
//! which named such views two to four levels off.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_inference::{ClassicalDetector, Detector};
use spinescreen_phantom::{generate, population};

/// The population patient of `seed` as the calibration set draws it (256 matrix), without its
/// fracture, and what the detector makes of it.
fn detect(seed: u64) -> (spinescreen_phantom::Phantom, spinescreen_proto::Detection) {
    let mut spec = population::draw(seed);
    spec.fractures.clear();
    spec.matrix = 256;
    let fov = spec.population.as_ref().unwrap().display_fov_mm;
    spec.pixel_spacing_mm = Some(fov / 256.0);
    let ph = generate(&spec).expect("phantom");
    let d = ClassicalDetector::default().detect(&ph.volume);
    (ph, d)
}

/// Bodies found within 8 mm of a truth body, and how many of them carry its name.
fn found_and_named(
    ph: &spinescreen_phantom::Phantom,
    d: &spinescreen_proto::Detection,
) -> (usize, usize) {
    let (mut found, mut named) = (0, 0);
    for v in &d.vertebrae {
        let nearest = ph
            .truth
            .vertebrae
            .iter()
            .map(|t| {
                let d2: f64 = (0..3)
                    .map(|a| (t.center_mm[a] - v.center_mm[a]).powi(2))
                    .sum();
                (d2.sqrt(), t)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("truth vertebrae");
        if nearest.0 <= 8.0 {
            found += 1;
            named += usize::from(nearest.1.label == v.label.as_str());
        }
    }
    (found, named)
}

#[test]
fn a_view_without_rib_anchors_is_named_from_the_carina() {
    // Drawn views T3–T12 and T2–T11, 1 mm slices: no rib anchor in view.
    for seed in [5006, 5052] {
        let (ph, d) = detect(seed);
        assert!(
            d.notes.iter().any(|n| n.contains("tracheal carina")),
            "seed {seed}: {:?}",
            d.notes
        );
        let (found, named) = found_and_named(&ph, &d);
        assert!(found >= 6, "seed {seed}: {found} bodies found");
        assert_eq!(named, found, "seed {seed}: {:?}", d.notes);
    }
}

#[test]
fn a_body_cut_below_a_rib_it_does_not_show_is_not_taken_for_l1() {
    // Drawn view C7–T10, 1.5 mm slices: the scan cuts T10 through, below T10's rib head, and
    // T10's rib reaches the rib cut below the scan. Counted as if the cut body were rib-free,
    // the lowest rib seen (T9's) was taken for the 12th and every body named three levels low.
    let (ph, d) = detect(5039);
    assert!(
        !d.notes
            .iter()
            .any(|n| n.contains("lowest rib-bearing vertebra (T12)")),
        "{:?}",
        d.notes
    );
    let (found, named) = found_and_named(&ph, &d);
    assert!(found >= 6, "{found} bodies found");
    assert_eq!(named, found, "{:?}", d.notes);
}
