//! Helpers shared by the phantom's integration tests.
#![allow(dead_code)]

use spinescreen_phantom::{generate, Phantom, PhantomSpec, TruthVertebra};
use spinescreen_proto::HuVolume;

/// A small but anatomically complete study: 256² at 1.25 mm, 320 slices of 1.25 mm (T1–L2).
pub fn small_spec(seed: u64) -> PhantomSpec {
    PhantomSpec {
        seed,
        matrix: 256,
        pixel_spacing_mm: Some(1.25),
        slices: 320,
        slice_thickness_mm: 1.25,
        ..PhantomSpec::default()
    }
}

pub fn small(seed: u64, f: impl FnOnce(&mut PhantomSpec)) -> Phantom {
    let mut spec = small_spec(seed);
    f(&mut spec);
    generate(&spec).expect("phantom generates")
}

fn add(a: [f64; 3], b: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] + b[0] * s, a[1] + b[1] * s, a[2] + b[2] * s]
}

/// Height measured back from the pixels at one column, as a reader of the images would: the
/// column's line (along the vertebra's axis through the truth keypoints) is sampled where it
/// crosses each slice (bilinear in-plane, averaged over ±1 mm laterally against noise); each
/// endplate's outer edge is where the profile crosses half-way between the disc just outside
/// and the bright endplate band just inside (half maximum), interpolated linearly between slices.
pub fn measured_height(vol: &HuVolume, v: &TruthVertebra, bottom: [f64; 3], top: [f64; 3]) -> f64 {
    let axis = v.cranial_dir;
    let ant = v.anterior_dir;
    let lat = [
        axis[1] * ant[2] - axis[2] * ant[1],
        axis[2] * ant[0] - axis[0] * ant[2],
        axis[0] * ant[1] - axis[1] * ant[0],
    ];
    let h = &vol.header;
    let d = [top[0] - bottom[0], top[1] - bottom[1], top[2] - bottom[2]];
    let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    // Samples (s along the axis from `bottom`, HU) at every slice the extended line crosses.
    let ext = 5.0;
    let z_at = |s: f64| bottom[2] + axis[2] * s;
    let k_lo = h.patient_to_index([0.0, 0.0, z_at(-ext)])[2].ceil() as i64;
    let k_hi = h.patient_to_index([0.0, 0.0, z_at(len + ext)])[2].floor() as i64;
    let mut prof: Vec<(f64, f64)> = Vec::new();
    for k in k_lo..=k_hi {
        let z = h.index_to_patient([0.0, 0.0, k as f64])[2];
        let s = (z - bottom[2]) / axis[2];
        let p = add(bottom, axis, s);
        let mut acc = 0.0;
        let mut n = 0.0;
        for du in [-1.0, -0.5, 0.0, 0.5, 1.0] {
            // Stay in the slice plane: move laterally, then correct z back onto the slice.
            let mut q = add(p, lat, du);
            q[2] = z;
            let idx = h.patient_to_index(q);
            if let Some(x) = vol.sample_index([idx[0], idx[1], k as f64]) {
                acc += x as f64;
                n += 1.0;
            }
        }
        if n > 0.0 {
            prof.push((s, acc / n));
        }
    }
    let mean_in = |a: f64, b: f64| {
        let v: Vec<f64> = prof
            .iter()
            .filter(|(s, _)| *s >= a && *s <= b)
            .map(|p| p.1)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let max_in = |a: f64, b: f64| {
        prof.iter()
            .filter(|(s, _)| *s >= a && *s <= b)
            .map(|p| p.1)
            .fold(f64::MIN, f64::max)
    };
    let crossing = |thr: f64, from: f64, to: f64| -> f64 {
        // First crossing of `thr` walking from `from` towards `to`.
        let mut pts: Vec<(f64, f64)> = prof
            .iter()
            .cloned()
            .filter(|(s, _)| *s >= from.min(to) && *s <= from.max(to))
            .collect();
        if from > to {
            pts.reverse();
        }
        for w in pts.windows(2) {
            let ((s0, v0), (s1, v1)) = (w[0], w[1]);
            if v0 < thr && v1 >= thr {
                return s0 + (thr - v0) / (v1 - v0) * (s1 - s0);
            }
        }
        f64::NAN
    };
    let disc_lo = mean_in(-3.5, -2.0);
    let thr_lo = (disc_lo + max_in(-1.5, 3.0)) / 2.0;
    let lo = crossing(thr_lo, -3.0, 3.0);
    let disc_hi = mean_in(len + 2.0, len + 3.5);
    let thr_hi = (disc_hi + max_in(len - 3.0, len + 1.5)) / 2.0;
    let hi = crossing(thr_hi, len + 3.0, len - 3.0);
    hi - lo
}

/// (anterior, middle, posterior) heights measured from the pixels.
pub fn measured_heights(vol: &HuVolume, v: &TruthVertebra) -> [f64; 3] {
    let k = &v.keypoints_mm;
    [
        measured_height(vol, v, k.inferior_anterior, k.superior_anterior),
        measured_height(vol, v, k.inferior_middle, k.superior_middle),
        measured_height(vol, v, k.inferior_posterior, k.superior_posterior),
    ]
}
