//! A chest CT whose view shows neither the first rib with the level above it nor the last rib
//! with the level below it (T2/T3 to T11/T12, common for a routine chest CT) is named from the
//! tracheal carina, and the names are those of the truth — not a count from vertebral heights,
//! which named such views two to four levels off.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_inference::{ClassicalDetector, Detector};
use spinescreen_phantom::{generate, population};

#[test]
fn a_view_without_rib_anchors_is_named_from_the_carina() {
    // Population patients as the calibration set draws them (256 matrix), no fracture; their
    // drawn views (T3–T12 and T2–T11, 1 mm slices) show no rib anchor.
    for seed in [5006, 5052] {
        let mut spec = population::draw(seed);
        spec.fractures.clear();
        spec.matrix = 256;
        let fov = spec.population.as_ref().unwrap().display_fov_mm;
        spec.pixel_spacing_mm = Some(fov / 256.0);
        let ph = generate(&spec).expect("phantom");
        let d = ClassicalDetector::default().detect(&ph.volume);
        assert!(
            d.notes.iter().any(|n| n.contains("tracheal carina")),
            "seed {seed}: {:?}",
            d.notes
        );
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
        assert!(found >= 6, "seed {seed}: {found} bodies found");
        assert_eq!(named, found, "seed {seed}: {:?}", d.notes);
    }
}
