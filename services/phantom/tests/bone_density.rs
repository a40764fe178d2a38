//! The truth's trabecular HU is what a central ROI of the body reads back.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use spinescreen_phantom::{Phantom, TruthVertebra};

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Mean HU in a box in the body's centre: ≥ 4 mm inside the lateral walls and the endplates,
/// the posterior 40 % of the depth (basivertebral vein) excluded, sampled every 1 mm.
fn roi_mean(ph: &Phantom, v: &TruthVertebra) -> f64 {
    let (w, a) = (v.cranial_dir, v.anterior_dir);
    let u = cross(w, a);
    let half_u = v.width_mm / 2.0 * 0.5;
    let (v_lo, v_hi) = (-0.1 * v.depth_mm / 2.0, 0.55 * v.depth_mm / 2.0);
    let half_w = v.heights_mm.middle / 2.0 - 4.0;
    let (mut sum, mut n) = (0.0, 0.0);
    let mut du = -half_u;
    while du <= half_u {
        let mut dv = v_lo;
        while dv <= v_hi {
            let mut dw = -half_w;
            while dw <= half_w {
                let p: Vec<f64> = (0..3)
                    .map(|k| v.center_mm[k] + u[k] * du + a[k] * dv + w[k] * dw)
                    .collect();
                if let Some(x) = ph.volume.sample_patient([p[0], p[1], p[2]]) {
                    sum += x as f64;
                    n += 1.0;
                }
                dw += 1.0;
            }
            dv += 1.0;
        }
        du += 1.0;
    }
    sum / n
}

#[test]
fn trabecular_hu_matches_a_central_roi() {
    for (seed, osteoporotic) in [(31, false), (32, true)] {
        let ph = common::small(seed, |s| s.osteoporotic = osteoporotic);
        for v in &ph.truth.vertebrae {
            let m = roi_mean(&ph, v);
            assert!(
                (m - v.trabecular_hu).abs() < 5.0,
                "{} truth {:.1} ROI {m:.1}",
                v.label,
                v.trabecular_hu
            );
            if osteoporotic {
                assert!(
                    (70.0..=100.0).contains(&v.trabecular_hu),
                    "{}",
                    v.trabecular_hu
                );
            } else {
                assert!(
                    (175.0..=245.0).contains(&v.trabecular_hu),
                    "{}",
                    v.trabecular_hu
                );
            }
        }
    }
}
