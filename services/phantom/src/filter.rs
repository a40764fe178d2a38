//! Scanner response applied to the painted slices: slice-sensitivity profile along z, correlated
//! noise, the in-plane point-spread function (Gaussian, σ ≈ 0.7 mm), ring and metal-streak
//! artefacts, then quantisation to i16 HU clipped to the scanner's range.

use crate::scene::{rng, stream, Scene};
use rand::RngCore;

/// In-plane PSF σ, mm (a standard body kernel's ~0.7 mm).
pub const PSF_SIGMA_MM: f64 = 0.7;

/// Normalised discrete Gaussian kernel of σ (in samples); a delta for σ ≈ 0.
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    if sigma < 0.05 {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil() as i64;
    let mut k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k.into_iter().map(|v| v as f32).collect()
}

/// Separable 2-D convolution of a row-major `nx × ny` plane with `k` (clamped edges).
pub fn blur_plane(data: &mut [f32], nx: usize, ny: usize, k: &[f32], scratch: &mut Vec<f32>) {
    if k.len() == 1 {
        return;
    }
    let r = (k.len() / 2) as isize;
    scratch.resize(nx * ny, 0.0);
    // Rows.
    for j in 0..ny {
        let row = &data[j * nx..(j + 1) * nx];
        let out = &mut scratch[j * nx..(j + 1) * nx];
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            if i as isize >= r && (i as isize) + r < nx as isize {
                let base = i - r as usize;
                for (t, kv) in k.iter().enumerate() {
                    acc += row[base + t] * kv;
                }
            } else {
                for (t, kv) in k.iter().enumerate() {
                    let ii = (i as isize + t as isize - r).clamp(0, nx as isize - 1) as usize;
                    acc += row[ii] * kv;
                }
            }
            *o = acc;
        }
    }
    // Columns: accumulate whole rows for cache-friendly access.
    for j in 0..ny {
        let out = &mut data[j * nx..(j + 1) * nx];
        out.fill(0.0);
        for (t, kv) in k.iter().enumerate() {
            let jj = (j as isize + t as isize - r).clamp(0, ny as isize - 1) as usize;
            let src = &scratch[jj * nx..(jj + 1) * nx];
            for (o, s) in out.iter_mut().zip(src) {
                *o += s * kv;
            }
        }
    }
}

/// Fast approximately normal deviates: Irwin–Hall sum of four 16-bit uniforms, scaled to unit
/// variance (tails end at ±3.5σ, which CT noise after reconstruction hardly exceeds).
#[inline]
fn irwin_hall(r: u64) -> f32 {
    let s = (r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48);
    ((s as f32 + 2.0) / 65536.0 - 2.0) * 1.732_050_8
}

/// Turn the painted (z-combined) slice `k` into the scanner's image: noise, PSF, artefacts.
pub fn finish_slice(scene: &Scene, k: usize, plane: &mut [f32], scratch: &mut Vec<f32>) {
    let g = &scene.grid;
    if let Some(p) = &scene.spec.population {
        population_response(scene, p, k, plane, scratch);
    } else {
        let kern = gaussian_kernel(PSF_SIGMA_MM / g.px);
        let gain: f32 = kern.iter().map(|v| v * v).sum();
        if scene.spec.noise_hu > 0.0 {
            let sigma = scene.spec.noise_hu as f32 / gain;
            let mut r = rng(scene.spec.seed, stream::NOISE_BASE + k as u64);
            for p in plane.iter_mut() {
                *p += sigma * irwin_hall(r.next_u64());
            }
        }
        blur_plane(plane, g.nx, g.ny, &kern, scratch);
    }
    let z = g.z(k);
    for ring in &scene.rings {
        let w = 0.9f64.max(g.px * 0.8);
        let (r_in, r_out) = ((ring.radius - 3.0 * w).max(0.0), ring.radius + 3.0 * w);
        for j in 0..g.ny {
            let y = g.y(j);
            if y.abs() > r_out {
                continue;
            }
            // Only the pixels of this row within the annulus r_in..r_out.
            let xo = (r_out * r_out - y * y).max(0.0).sqrt();
            let xi = if y.abs() < r_in {
                (r_in * r_in - y * y).sqrt()
            } else {
                0.0
            };
            for (lo, hi) in [(-xo, -xi), (xi, xo)] {
                let Some((i0, i1)) = g.i_range(lo, hi) else {
                    continue;
                };
                for i in i0..=i1 {
                    let x = g.x(i);
                    let r = (x * x + y * y).sqrt();
                    let d = (r - ring.radius) / w;
                    if d.abs() > 3.0 {
                        continue;
                    }
                    let th = y.atan2(x).rem_euclid(std::f64::consts::TAU);
                    let rel = (th - ring.start).rem_euclid(std::f64::consts::TAU);
                    if rel <= ring.span {
                        plane[j * g.nx + i] += (ring.amplitude * (-0.5 * d * d).exp()) as f32;
                    }
                }
            }
        }
    }
    for s in &scene.streaks {
        let dz = (z - s.centre[2]) / s.half_height;
        if dz.abs() >= 1.0 {
            continue;
        }
        let strength = (1.0 - dz * dz).sqrt();
        for j in 0..g.ny {
            let y = g.y(j) - s.centre[1];
            for i in 0..g.nx {
                let x = g.x(i) - s.centre[0];
                let r = (x * x + y * y).sqrt();
                if !(3.0..=180.0).contains(&r) {
                    continue;
                }
                let mut add = -60.0 * (-r / 12.0).exp();
                for &(a, amp) in &s.angles {
                    let perp = -x * a.sin() + y * a.cos();
                    add += amp * (-(perp / 2.2).powi(2)).exp() * (-r / 90.0).exp();
                }
                plane[j * g.nx + i] += (add * strength) as f32;
            }
        }
    }
}

/// Sharp kernel: edge overshoot as an unsharp mask, `out = I + GAIN·(I − G_σ * I)`; σ and gain
/// give the ~10–15 % overshoot and ~1 mm undershoot band of a bone kernel at a cortex.
const OVERSHOOT_SIGMA_MM: f64 = 1.2;
/// Gain of the unsharp mask.
const OVERSHOOT_GAIN: f32 = 0.6;
/// Filtered back-projection noise is band-pass (ramp × apodisation): a difference of
/// Gaussians of σ and `NPS_RATIO`·σ, σ the kernel's noise grain (soft ~1.0 mm, sharp ~0.5 mm).
const NPS_RATIO: f64 = 3.0;

/// A population study's scanner response: the kernel's PSF, a sharp kernel's overshoot, and
/// band-pass (correlated) noise of SD `noise_hu` added after the PSF.
fn population_response(
    scene: &Scene,
    p: &crate::population::Population,
    k: usize,
    plane: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    use crate::population::Kernel;
    let g = &scene.grid;
    let (nx, ny) = (g.nx, g.ny);
    blur_plane(
        plane,
        nx,
        ny,
        &gaussian_kernel(p.psf_sigma_mm() / g.px),
        scratch,
    );
    if p.kernel == Kernel::Sharp {
        let mut wide = plane.to_vec();
        blur_plane(
            &mut wide,
            nx,
            ny,
            &gaussian_kernel(OVERSHOOT_SIGMA_MM / g.px),
            scratch,
        );
        for (v, w) in plane.iter_mut().zip(&wide) {
            *v += OVERSHOOT_GAIN * (*v - w);
        }
    }
    if scene.spec.noise_hu <= 0.0 {
        return;
    }
    let grain_mm = match p.kernel {
        Kernel::Soft => 1.0,
        Kernel::Sharp => 0.5,
    };
    let k1 = gaussian_kernel((grain_mm / g.px).max(0.3));
    let k2 = gaussian_kernel(NPS_RATIO * (grain_mm / g.px).max(0.3));
    let gain = dog_gain(&k1, &k2);
    let mut r = rng(scene.spec.seed, stream::NOISE_BASE + k as u64);
    let mut a: Vec<f32> = (0..nx * ny).map(|_| irwin_hall(r.next_u64())).collect();
    let mut b = a.clone();
    blur_plane(&mut a, nx, ny, &k1, scratch);
    blur_plane(&mut b, nx, ny, &k2, scratch);
    let s = scene.spec.noise_hu as f32 / gain;
    for ((v, x), y) in plane.iter_mut().zip(&a).zip(&b) {
        *v += s * (x - y);
    }
}

/// Standard deviation of the difference of two separable Gaussian blurs of unit white noise.
fn dog_gain(k1: &[f32], k2: &[f32]) -> f32 {
    let n = k1.len().max(k2.len());
    let pad = |k: &[f32]| {
        let o = (n - k.len()) / 2;
        let mut v = vec![0f64; n];
        for (i, x) in k.iter().enumerate() {
            v[o + i] = *x as f64;
        }
        v
    };
    let (a, b) = (pad(k1), pad(k2));
    let mut var = 0.0;
    for i in 0..n {
        for j in 0..n {
            let d = a[i] * a[j] - b[i] * b[j];
            var += d * d;
        }
    }
    (var.sqrt() as f32).max(1e-6)
}

/// Quantise to the stored HU range of a 12-bit CT (−1024 … 3071).
pub fn quantise(plane: &[f32], out: &mut [i16]) {
    for (o, &p) in out.iter_mut().zip(plane) {
        *o = p.round().clamp(-1024.0, 3071.0) as i16;
    }
}
