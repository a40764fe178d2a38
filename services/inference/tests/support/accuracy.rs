//! Accuracy of a detector against phantom truth: found (centre within 3 mm), correctly
//! labelled, and the mean absolute error of the three heights from the six keypoints.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_inference::{geom, Detector};
use spinescreen_phantom::{generate, PhantomSpec};
use spinescreen_proto::{Keypoints, VertebraFlag};

/// Tallies over one or more phantoms.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Truth vertebrae.
    pub total: usize,
    /// Found with centre within 3 mm.
    pub found: usize,
    /// Found and correctly labelled.
    pub labelled: usize,
    /// Sum of absolute height errors over found vertebrae (3 per vertebra).
    pub height_abs_err: f64,
    /// Number of heights compared.
    pub heights: usize,
    /// Found vertebrae flagged `not_gradable` (cement, ring artefact): excluded from the height
    /// error because morphometry does not grade them.
    pub not_gradable: usize,
    /// Studies where the detector abstained.
    pub abstained: usize,
    /// Studies.
    pub studies: usize,
}

impl Tally {
    /// Merge another tally.
    pub fn add(&mut self, o: &Tally) {
        self.total += o.total;
        self.found += o.found;
        self.labelled += o.labelled;
        self.height_abs_err += o.height_abs_err;
        self.heights += o.heights;
        self.not_gradable += o.not_gradable;
        self.abstained += o.abstained;
        self.studies += o.studies;
    }
    /// Fraction found.
    pub fn found_rate(&self) -> f64 {
        self.found as f64 / self.total.max(1) as f64
    }
    /// Fraction correctly labelled (of all truth vertebrae).
    pub fn label_rate(&self) -> f64 {
        self.labelled as f64 / self.total.max(1) as f64
    }
    /// Height MAE, mm.
    pub fn height_mae(&self) -> f64 {
        self.height_abs_err / self.heights.max(1) as f64
    }
}

/// Heights (Ha, Hm, Hp) from six keypoints.
pub fn heights(k: &Keypoints) -> [f64; 3] {
    [
        geom::dist(k.superior_anterior, k.inferior_anterior),
        geom::dist(k.superior_middle, k.inferior_middle),
        geom::dist(k.superior_posterior, k.inferior_posterior),
    ]
}

/// Generate one phantom, detect, and compare.
pub fn evaluate(detector: &dyn Detector, spec: &PhantomSpec, verbose: bool) -> Tally {
    let ph = generate(spec).expect("phantom generates");
    let det = detector.detect(&ph.volume);
    let mut t = Tally {
        studies: 1,
        abstained: usize::from(det.status != spinescreen_proto::StudyStatus::Ok),
        ..Default::default()
    };
    if verbose {
        eprintln!(
            "seed {} status {:?} {:?} notes {:?}",
            spec.seed, det.status, det.reason, det.notes
        );
    }
    for tv in &ph.truth.vertebrae {
        t.total += 1;
        let best = det
            .vertebrae
            .iter()
            .map(|v| (geom::dist(v.center_mm, tv.center_mm), v))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((d, v)) = best else { continue };
        if verbose {
            let h = heights(&v.keypoints_mm);
            eprintln!(
                "  {:4} -> {:4} d {:5.1}  H {:5.1} {:5.1} {:5.1} truth {:5.1} {:5.1} {:5.1} {:?}",
                tv.label,
                v.label,
                d,
                h[0],
                h[1],
                h[2],
                tv.heights_mm.anterior,
                tv.heights_mm.middle,
                tv.heights_mm.posterior,
                v.flags
            );
        }
        if d > 3.0 {
            continue;
        }
        t.found += 1;
        if v.label == tv.label {
            t.labelled += 1;
        }
        if v.flags.contains(&VertebraFlag::NotGradable) {
            t.not_gradable += 1;
            continue;
        }
        let h = heights(&v.keypoints_mm);
        let th = [
            tv.heights_mm.anterior,
            tv.heights_mm.middle,
            tv.heights_mm.posterior,
        ];
        for i in 0..3 {
            t.height_abs_err += (h[i] - th[i]).abs();
            t.heights += 1;
        }
    }
    t
}
