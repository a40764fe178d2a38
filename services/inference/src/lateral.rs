//! The body's own mid-sagittal plane.
//!
//! The straightened image is sampled in the centreline's mid-sagittal plane, and the centreline
//! comes from body centroids on the coarse grid: scoliosis (the body rotates and slides beside
//! the canal) and ring artefacts (bright arcs pull a centroid) leave it a few millimetres to one
//! side of a body. Heights do not change under a sideways shift, but the keypoints should lie
//! in the vertebra's own mid-sagittal plane. Across the body at mid-height, the left and right
//! cortices are the outermost falls from bone to the soft tissue (psoas, pleura) beside it; the
//! plane lies midway between them.

use crate::{centreline::Frame, geom, grid::VolumeSampler, profile};

/// Sample step across the body, mm.
const STEP_MM: f64 = 0.5;
/// Farthest lateral reach from the centreline, mm (a lumbar body is ≤ 25 mm half-wide).
const REACH_MM: f64 = 40.0;
/// Largest correction believed, mm.
const MAX_SHIFT_MM: f64 = 8.0;

/// Lateral offset (mm along `frame.l`) of the body's mid-sagittal plane from the frame's, from
/// a lateral profile through `centre` (the body's centre on the centreline plane) averaged over
/// a small antero-posterior and cranio-caudal band. `None` when either cortex is not found or
/// the body reads implausibly narrow or far off.
pub fn midplane_offset(sampler: &VolumeSampler, frame: &Frame, centre: geom::Vec3) -> Option<f64> {
    let n = (REACH_MM / STEP_MM) as isize;
    let q: Vec<f64> = (-n..=n)
        .map(|i| {
            let v = i as f64 * STEP_MM;
            let mut sum = 0.0;
            let mut count = 0.0;
            for da in [-3.0, 0.0, 3.0] {
                for dt in [-2.0, 0.0, 2.0] {
                    let p = geom::axpy(
                        geom::axpy(geom::axpy(centre, v, frame.l), da, frame.a),
                        dt,
                        frame.t,
                    );
                    sum += sampler.sample(p) as f64;
                    count += 1.0;
                }
            }
            sum / count
        })
        .collect();
    let q = profile::smooth(&q, 0.7 / STEP_MM);
    let (left, right) = cortex_pair(&q, n as usize)?;
    let half_width = 0.5 * (right - left) * STEP_MM;
    if half_width < 8.0 {
        return None;
    }
    let offset = (0.5 * (left + right) - n as f64) * STEP_MM;
    (offset.abs() <= MAX_SHIFT_MM).then_some(offset)
}

/// Walking out from `c` both ways, the first fall from bone to the tissue beside it: the level
/// halfway between the running maximum and the outer minimum (clamped at fat, so air or lung
/// beyond does not lower it). Returns fractional indices (negative side, positive side).
fn cortex_pair(q: &[f64], c: usize) -> Option<(f64, f64)> {
    let edge = |dir: isize| -> Option<f64> {
        let end = if dir < 0 { 0 } else { q.len() as isize - 1 };
        let outer = if dir < 0 {
            profile::min_in(q, 0, c as isize).1
        } else {
            profile::min_in(q, c as isize, end).1
        }
        .max(-50.0);
        let mut run_max = q[c];
        let mut i = c as isize;
        while i != end {
            let j = i + dir;
            run_max = run_max.max(q[i as usize]);
            let level = 0.5 * (run_max + outer);
            let (a, b) = (q[i as usize], q[j as usize]);
            if run_max - outer > 80.0 && a >= level && b < level {
                return Some(i as f64 + dir as f64 * (a - level) / (a - b).max(1e-9));
            }
            i = j;
        }
        None
    };
    Some((edge(-1)?, edge(1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cortices_of_an_off_centre_body_are_found_and_air_beyond_is_ignored() {
        // 161 samples at 0.5 mm, centre index 80. Body (cortex 500, marrow 150) from index 70 to
        // 130 — its middle is at 100, i.e. +10 mm; psoas (45 HU) around it, lung on the far left.
        let q: Vec<f64> = (0..161)
            .map(|i| match i {
                0..=20 => -800.0,
                70 | 71 | 129 | 130 => 500.0,
                72..=128 => 150.0,
                _ => 45.0,
            })
            .collect();
        let (l, r) = cortex_pair(&q, 80).unwrap();
        assert!((l - 69.5).abs() < 0.6, "{l}");
        assert!((r - 130.5).abs() < 0.6, "{r}");
    }

    #[test]
    fn no_bone_no_cortex() {
        let q = vec![40.0; 161];
        assert!(cortex_pair(&q, 80).is_none());
    }
}
