//! Ring artefact correction before measuring.
//!
//! A faulty detector channel adds the same arc, at the same radius about the isocentre, to every
//! slice of a scan (Barrett & Keat, RadioGraphics 2004). Pooled over a sample of slices, the
//! median over angle of each pixel's radial high-pass (its value minus the median of samples 3 to
//! 10 pixels inward and outward along the ray from the isocentre) is the ring's own profile:
//! anatomy is not concentric with the isocentre and cancels in the median. Where that profile
//! holds a coherent arc (≥ 67°, at most 2.5 pixels half width, not on a tissue interface such as
//! the fat under the skin), one radial profile per arc is subtracted from every slice (the
//! polar-domain correction of Sijbers & Postnov, Phys Med Biol 2004), so that an arc through a
//! body neither mimics nor hides an endplate. Bodies a corrected ring crosses are flagged
//! `ring_corrected` (morphometry does not read their attenuation from the uncorrected volume);
//! rings the correction leaves behind are still found and flagged per body (`artefacts`).

use crate::straighten::median;
use spinescreen_proto::{volume::Vec3, HuVolume};

/// Pixels pooled for the ring profile (24 slices of 256²), and the bounds on the slices used.
const POOLED_PIXELS: usize = 24 * 256 * 256;
const MIN_SLICES: usize = 8;
const MAX_SLICES: usize = 24;
/// Radial bin of the profile, pixels.
const BIN_PX: f64 = 0.5;
/// Angular bins of the profile (5.6° each: a partial arc ends within one bin).
const ANGLES: usize = 64;
/// Distances (pixels) inward and outward along the ray of the samples a pixel is compared with:
/// beyond a ring's width, inside the same anatomy, spread so that a ring (≤ 2 pixels wide) on
/// each side moves no more than a third of them.
const RADIAL_OFFSETS_PX: [f64; 6] = [3.0, 4.5, 6.0, 7.5, 9.0, 10.5];
/// Fewest pooled samples that give a profile value.
const MIN_SAMPLES: usize = 16;
/// Shortest arc corrected, in angular bins (67°, as the per-slice ring finder asks).
const MIN_ARC_BINS: usize = 12;
/// Longest gap (angular bins, 45°) bridged between two stretches of one ring.
const MAX_GAP_BINS: usize = 8;
/// Fraction of a ring's typical strength at which it is still seen across a gap.
const BRIDGE_FRACTION: f64 = 0.4;
/// Largest half width at half maximum (pixels) of a ring.
const MAX_HALF_WIDTH_PX: f64 = 2.5;
/// Half width (pixels) of the band corrected about a ring's peak.
const HALF_WIDTH_PX: f64 = 3.0;
/// Innermost radius (pixels) analysed.
const MIN_RADIUS_PX: f64 = 6.0;

/// The study's rings, as a correction to subtract from every slice.
#[derive(Debug, Clone)]
pub struct RingCorrection {
    /// Correction per radial bin and angular bin, HU (zero off the rings).
    profile: Vec<[f32; ANGLES]>,
    /// The rings found: radius (mm) and signed peak amplitude (HU).
    pub rings: Vec<(f64, f64)>,
}

/// In-plane geometry of a volume about its isocentre (the centre of the matrix).
struct Polar {
    nx: usize,
    ny: usize,
    cx: f64,
    cy: f64,
    sx: f64,
    sy: f64,
    /// Radial bin, mm.
    bin_mm: f64,
    bins: usize,
}

impl Polar {
    fn of(volume: &HuVolume) -> Option<Self> {
        let [nx, ny, _] = volume.header.dims;
        let (sx, sy) = (
            volume.header.spacing_mm[0].abs(),
            volume.header.spacing_mm[1].abs(),
        );
        if nx < 16 || ny < 16 || !(sx > 1e-3 && sy > 1e-3) {
            return None;
        }
        let px = sx.min(sy);
        let bin_mm = BIN_PX * px;
        let r_max = 0.5 * ((nx as f64 * sx).hypot(ny as f64 * sy));
        Some(Self {
            nx,
            ny,
            cx: (nx as f64 - 1.0) / 2.0,
            cy: (ny as f64 - 1.0) / 2.0,
            sx,
            sy,
            bin_mm,
            bins: (r_max / bin_mm).ceil() as usize + 2,
        })
    }

    /// Radius (mm), fractional radial bin and angular bin of pixel (x, y).
    fn at(&self, x: usize, y: usize) -> (f64, f64, usize) {
        let (dx, dy) = (
            (x as f64 - self.cx) * self.sx,
            (y as f64 - self.cy) * self.sy,
        );
        let r = dx.hypot(dy);
        let a = dy.atan2(dx).rem_euclid(std::f64::consts::TAU);
        let q = ((a / std::f64::consts::TAU * ANGLES as f64) as usize).min(ANGLES - 1);
        (r, r / self.bin_mm, q)
    }
}

/// Pooled medians per (radial bin, angular bin); NaN where too few samples (air, outside the
/// matrix).
struct Pooled {
    /// A pixel's value minus its background along the ray.
    residual: Vec<[f64; ANGLES]>,
    /// Outward minus inward mean: the step of a tissue interface.
    step: Vec<[f64; ANGLES]>,
}

/// Pool the radial high-pass and the interface step of a sample of slices.
fn pooled_profile(volume: &HuVolume, g: &Polar) -> Option<Pooled> {
    let nz = volume.header.dims[2];
    let all = volume.voxels.as_slice()?;
    if nz == 0 || all.len() != g.nx * g.ny * nz {
        return None;
    }
    // The geometry of each pixel is the same on every slice: its cell and the pixels nearest
    // to the samples along its ray, inward then outward (`u32::MAX`: outside the matrix).
    const K: usize = RADIAL_OFFSETS_PX.len();
    let px = g.bin_mm / BIN_PX;
    let geometry: Vec<(usize, usize, [[u32; K]; 2])> = (0..g.ny)
        .flat_map(|y| (0..g.nx).map(move |x| (x, y)))
        .filter_map(|(x, y)| {
            let (r, f, q) = g.at(x, y);
            let b = f.round() as usize;
            if f * BIN_PX < MIN_RADIUS_PX || b >= g.bins {
                return None;
            }
            let (ux, uy) = ((x as f64 - g.cx) * px / r, (y as f64 - g.cy) * px / r);
            let at = |side: f64, d: f64| -> u32 {
                let (sx, sy) = (
                    (x as f64 + side * d * ux).round(),
                    (y as f64 + side * d * uy).round(),
                );
                if sx < 0.0 || sy < 0.0 || sx >= g.nx as f64 || sy >= g.ny as f64 {
                    u32::MAX
                } else {
                    (sy as usize * g.nx + sx as usize) as u32
                }
            };
            let samples = [-1.0, 1.0].map(|side| RADIAL_OFFSETS_PX.map(|d| at(side, d)));
            Some((y * g.nx + x, b * ANGLES + q, samples))
        })
        .collect();
    let mut cells: Vec<Vec<(f32, f32)>> = vec![Vec::new(); g.bins * ANGLES];
    // About the same number of pixels whatever the matrix: fewer slices of a large one.
    let n = (POOLED_PIXELS / (g.nx * g.ny))
        .clamp(MIN_SLICES, MAX_SLICES)
        .min(nz);
    for i in 0..n {
        let z = (i * nz + nz / 2) / n;
        let sl = &all[z * g.nx * g.ny..(z + 1) * g.nx * g.ny];
        for (at, cell, samples) in &geometry {
            let v = sl[*at];
            // Body only: air, lung and the skin edge are not analysed.
            if !(-300..=1500).contains(&v) {
                continue;
            }
            // Air (lung, outside the body) is left out; each side needs half its samples.
            let mut sides = [[0f64; K]; 2];
            let mut per_side = [0usize; 2];
            for j in 0..2 {
                for &k in &samples[j] {
                    if let Some(&s) = sl.get(k as usize) {
                        if s >= -300 {
                            sides[j][per_side[j]] = f64::from(s);
                            per_side[j] += 1;
                        }
                    }
                }
            }
            if 2 * per_side[0].min(per_side[1]) < K {
                continue;
            }
            let mut all = [0f64; 2 * K];
            let n = per_side[0] + per_side[1];
            all[..per_side[0]].copy_from_slice(&sides[0][..per_side[0]]);
            all[per_side[0]..n].copy_from_slice(&sides[1][..per_side[1]]);
            let background = median(&mut all[..n]);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let step = mean(&sides[1][..per_side[1]]) - mean(&sides[0][..per_side[0]]);
            cells[*cell].push(((f64::from(v) - background) as f32, step as f32));
        }
    }
    let median_cells = |pick: fn(&(f32, f32)) -> f32| -> Vec<[f64; ANGLES]> {
        (0..g.bins)
            .map(|b| {
                std::array::from_fn(|q| {
                    let c = &cells[b * ANGLES + q];
                    if c.len() < MIN_SAMPLES {
                        return f64::NAN;
                    }
                    let mut v: Vec<f64> = c.iter().map(|p| f64::from(pick(p))).collect();
                    median(&mut v)
                })
            })
            .collect()
    };
    let residual = median_cells(|p| p.0);
    let step = median_cells(|p| p.1);
    Some(Pooled { residual, step })
}
/// Whether angular bin `q` at radial bin `b` holds a ring peak of `sign` at least `min_hu`
/// strong: `Some(false)` no, `None` unknown (too few samples).
fn peak_state(prof: &[[f64; ANGLES]], b: usize, q: usize, sign: f64, min_hu: f64) -> Option<bool> {
    let w = (HALF_WIDTH_PX / BIN_PX) as usize;
    let at = |b: usize| {
        let v = prof[b][q];
        if v.is_nan() {
            f64::NEG_INFINITY
        } else {
            sign * v
        }
    };
    if prof[b][q].is_nan() {
        return None;
    }
    // The peak may sit one bin either side of `b` (noise moves it from one angle to the next).
    let near = b.saturating_sub(1)..=(b + 1).min(prof.len() - 1);
    let here = near.clone().map(at).fold(f64::NEG_INFINITY, f64::max);
    let around = (b.saturating_sub(w)..=(b + w).min(prof.len() - 1))
        .filter(|k| !near.contains(k))
        .map(at)
        .fold(f64::NEG_INFINITY, f64::max);
    Some(here >= min_hu && here >= around)
}

/// Angles on an arc: known peaks, unknown angles, and gaps of at most [`MAX_GAP_BINS`] between
/// peaks where the ring is still `seen` at three angles in four (anatomy at the ring's radius
/// hides its peak there).
fn bridged(state: &[Option<bool>], seen: &[bool]) -> Vec<bool> {
    let n = state.len();
    let mut on: Vec<bool> = state.iter().map(|s| *s != Some(false)).collect();
    if on.iter().all(|&o| !o) || on.iter().all(|&o| o) {
        return on;
    }
    let first_on = on.iter().position(|&o| o).unwrap_or(0);
    // Walk once round the circle from an angle that is on, measuring each gap.
    let mut k = 0;
    while k < n {
        let q = (first_on + k) % n;
        if on[q] {
            k += 1;
            continue;
        }
        let gap = (0..n).take_while(|&j| !on[(q + j) % n]).count();
        let seen_in_gap = (0..gap).filter(|&j| seen[(q + j) % n]).count();
        if gap <= MAX_GAP_BINS && 4 * seen_in_gap >= 3 * gap {
            for j in 0..gap {
                on[(q + j) % n] = true;
            }
        }
        k += gap;
    }
    on
}

/// Whether the arc lies on a tissue interface (fat under muscle, concentric enough with the
/// isocentre over many slices): the tissue on its two sides differs by half its amplitude or
/// more, where a ring crosses whatever lies in its way.
fn on_an_interface(step: &[[f64; ANGLES]], b: usize, state: &[Option<bool>], peak: f64) -> bool {
    let mut v: Vec<f64> = (0..ANGLES)
        .filter(|&q| state[q] == Some(true))
        .map(|q| step[b][q])
        .filter(|v| !v.is_nan())
        .collect();
    v.is_empty() || median(&mut v).abs() >= 0.5 * peak.abs()
}

/// Whether the arc's radial profile falls below half its peak within [`MAX_HALF_WIDTH_PX`] on
/// both sides: a ring is a line a detector channel wide; a layer (subcutaneous fat under the
/// skin, concentric enough with the isocentre) is broad.
fn narrow(prof: &[[f64; ANGLES]], b: usize, state: &[Option<bool>], peak: f64) -> bool {
    let k = (MAX_HALF_WIDTH_PX / BIN_PX).round() as usize;
    if b < k + 1 || b + k + 1 >= prof.len() {
        return false;
    }
    let median_at = |bb: usize| -> Option<f64> {
        let mut v: Vec<f64> = (0..ANGLES)
            .filter(|&q| state[q] == Some(true))
            .map(|q| prof[bb][q])
            .filter(|v| !v.is_nan())
            .collect();
        (!v.is_empty()).then(|| median(&mut v))
    };
    // The peak may sit a bin either side of `b`: look just beyond.
    [b - k - 1, b + k + 1]
        .into_iter()
        .all(|bb| median_at(bb).is_some_and(|v| v * peak.signum() < 0.5 * peak.abs()))
}

impl RingCorrection {
    /// The study's rings, or `None` when no coherent arc of at least `min_hu` is found.
    pub fn estimate(volume: &HuVolume, min_hu: f64) -> Option<Self> {
        let g = Polar::of(volume)?;
        let pooled = pooled_profile(volume, &g)?;
        let prof = &pooled.residual;
        let w = (HALF_WIDTH_PX / BIN_PX) as usize;
        let mut profile = vec![[0f32; ANGLES]; g.bins];
        let mut rings = Vec::new();
        for b in 1..g.bins.saturating_sub(1) {
            for sign in [1.0f64, -1.0] {
                let state: Vec<Option<bool>> = (0..ANGLES)
                    .map(|q| peak_state(prof, b, q, sign, min_hu))
                    .collect();
                // Where the ring is still seen at a fraction of its strength, a gap between two
                // stretches is bridged; where the profile falls to nothing, the arc has ended.
                let mut strengths: Vec<f64> = (0..ANGLES)
                    .filter(|&q| state[q] == Some(true))
                    .map(|q| sign * prof[b][q])
                    .collect();
                if strengths.is_empty() {
                    continue;
                }
                let typical = median(&mut strengths);
                let seen: Vec<bool> = (0..ANGLES)
                    .map(|q| {
                        let near = (b - 1..=b + 1).map(|k| prof[k][q]);
                        near.clone().all(f64::is_nan)
                            || near
                                .filter(|v| !v.is_nan())
                                .any(|v| sign * v >= BRIDGE_FRACTION * typical)
                    })
                    .collect();
                let on = bridged(&state, &seen);
                let on = |q: usize| on[q % ANGLES];
                let arcs: Vec<(usize, usize)> = if (0..ANGLES).all(on) {
                    vec![(0, ANGLES)]
                } else {
                    (0..ANGLES)
                        .filter(|&s| on(s) && !on(s + ANGLES - 1))
                        .map(|s| (s, (0..ANGLES).take_while(|&k| on(s + k)).count()))
                        .collect()
                };
                for (start, len) in arcs {
                    let known: Vec<f64> = (0..len)
                        .map(|k| (start + k) % ANGLES)
                        .filter(|&q| state[q] == Some(true))
                        .map(|q| prof[b][q])
                        .collect();
                    if known.len() < MIN_ARC_BINS {
                        continue;
                    }
                    let peak = known.iter().sum::<f64>() / known.len() as f64;
                    if !narrow(prof, b, &state, peak)
                        || on_an_interface(&pooled.step, b, &state, peak)
                    {
                        continue;
                    }
                    let radius = b as f64 * g.bin_mm;
                    // The same ring passes at the bins either side of its peak: report it once.
                    match rings.iter_mut().find(|(r, a): &&mut (f64, f64)| {
                        (*r - radius).abs() <= 2.5 * g.bin_mm && a.signum() == sign
                    }) {
                        Some(ring) if ring.1.abs() < peak.abs() => *ring = (radius, peak),
                        Some(_) => {}
                        None => rings.push((radius, peak)),
                    }
                    // One radial profile for the whole arc: the median over its angles. A
                    // ring's amplitude is the same all along it, while anatomy that bends the
                    // high-pass (a vertebral body at the ring's radius) sits at a few angles.
                    let arc: Vec<usize> = (0..len).map(|k| (start + k) % ANGLES).collect();
                    for bb in b.saturating_sub(w)..=(b + w).min(g.bins - 1) {
                        let mut vals: Vec<f64> = arc
                            .iter()
                            .filter(|&&q| state[q] == Some(true))
                            .map(|&q| prof[bb][q])
                            .filter(|v| !v.is_nan())
                            .collect();
                        if vals.is_empty() {
                            continue;
                        }
                        let v = median(&mut vals);
                        if sign * v <= 0.0 {
                            continue;
                        }
                        for &q in &arc {
                            if v.abs() > f64::from(profile[bb][q].abs()) {
                                profile[bb][q] = v as f32;
                            }
                        }
                    }
                }
            }
        }
        if rings.is_empty() {
            return None;
        }
        Some(Self { profile, rings })
    }

    /// A copy of `volume` with the rings subtracted from every slice.
    pub fn apply(&self, volume: &HuVolume) -> HuVolume {
        let mut out = volume.clone();
        let Some(g) = Polar::of(volume) else {
            return out;
        };
        // The correction of one slice, as (pixel index, HU) where it is not zero.
        let mut plane: Vec<(usize, f32)> = Vec::new();
        for y in 0..g.ny {
            for x in 0..g.nx {
                let (_, f, q) = g.at(x, y);
                let b0 = f.floor() as usize;
                if b0 + 1 >= self.profile.len() {
                    continue;
                }
                let t = (f - b0 as f64) as f32;
                let c = self.profile[b0][q] * (1.0 - t) + self.profile[b0 + 1][q] * t;
                if c != 0.0 {
                    plane.push((y * g.nx + x, c));
                }
            }
        }
        if let Some(all) = out.voxels.as_slice_mut() {
            for sl in all.chunks_exact_mut(g.nx * g.ny) {
                for &(i, c) in &plane {
                    let v = f32::from(sl[i]) - c;
                    sl[i] = v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
                }
            }
        }
        out
    }

    /// Whether a corrected ring passes within `margin_mm` of the region spanned by `points`
    /// (patient mm; a body's keypoints and centre) in radius, at their angles.
    pub fn crosses(&self, volume: &HuVolume, points: &[Vec3], margin_mm: f64) -> bool {
        let Some(g) = Polar::of(volume) else {
            return false;
        };
        let polar: Vec<(f64, usize)> = points
            .iter()
            .map(|&p| {
                let i = volume.header.patient_to_index(p);
                let (dx, dy) = ((i[0] - g.cx) * g.sx, (i[1] - g.cy) * g.sy);
                let a = dy.atan2(dx).rem_euclid(std::f64::consts::TAU);
                let q = ((a / std::f64::consts::TAU * ANGLES as f64) as usize).min(ANGLES - 1);
                (dx.hypot(dy), q)
            })
            .collect();
        let r_lo = polar.iter().map(|p| p.0).fold(f64::MAX, f64::min) - margin_mm;
        let r_hi = polar.iter().map(|p| p.0).fold(0.0, f64::max) + margin_mm;
        let (b_lo, b_hi) = (
            (r_lo.max(0.0) / g.bin_mm).floor() as usize,
            ((r_hi / g.bin_mm).ceil() as usize).min(self.profile.len().saturating_sub(1)),
        );
        polar
            .iter()
            .any(|&(_, q)| (b_lo..=b_hi).any(|b| self.profile[b][q] != 0.0))
    }

    /// One line for the study's notes.
    pub fn note(&self) -> String {
        let radii: Vec<String> = self
            .rings
            .iter()
            .map(|(r, a)| format!("{r:.0} mm ({a:+.0} HU)"))
            .collect();
        format!(
            "ring artefacts about the isocentre corrected before measuring: {}",
            radii.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use spinescreen_proto::{StudyInfo, VolumeHeader, SCHEMA_VERSION};

    /// A soft-tissue disc (radius 90 px) holding an off-centre bone disc, 1 mm pixels, with an
    /// optional ring of `amp` HU at `ring_r` mm over angles [0, `span`).
    fn phantom(ring: Option<(f64, f64, f64)>) -> HuVolume {
        let (n, nz) = (200usize, 24usize);
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [n, n, nz],
            spacing_mm: [1.0, 1.0, 2.0],
            origin_mm: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let c = (n as f64 - 1.0) / 2.0;
        let mut noise = 12345u64;
        let voxels = Array3::from_shape_fn((nz, n, n), |(z, y, x)| {
            let (dx, dy) = (x as f64 - c, y as f64 - c);
            let r = dx.hypot(dy);
            if r > 90.0 {
                return -1000;
            }
            noise = noise
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut v = 40.0 + ((noise >> 40) as f64 / 16777216.0 - 0.5) * 40.0;
            // The bone moves from slice to slice, as a spine does along the scan.
            if (dx - 10.0).hypot(dy - 40.0 - 0.5 * z as f64) < 18.0 {
                v += 250.0;
            }
            if let Some((rr, amp, span)) = ring {
                let a = dy.atan2(dx).rem_euclid(std::f64::consts::TAU);
                if a < span {
                    v += amp * (-0.5 * ((r - rr) / 1.0).powi(2)).exp();
                }
            }
            v.round() as i16
        });
        HuVolume::new(header, voxels).expect("consistent volume")
    }

    fn worst_difference(a: &HuVolume, b: &HuVolume) -> i32 {
        a.voxels
            .iter()
            .zip(b.voxels.iter())
            .map(|(&x, &y)| (i32::from(x) - i32::from(y)).abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_full_ring_through_bone_is_subtracted() {
        let clean = phantom(None);
        let ringed = phantom(Some((45.0, -150.0, std::f64::consts::TAU)));
        let corr = RingCorrection::estimate(&ringed, 40.0).expect("ring found");
        assert!(
            corr.rings
                .iter()
                .any(|(r, a)| (r - 45.0).abs() < 1.0 && *a < -80.0),
            "{:?}",
            corr.rings
        );
        let fixed = corr.apply(&ringed);
        assert!(worst_difference(&ringed, &clean) >= 140);
        let left = worst_difference(&fixed, &clean);
        assert!(left <= 45, "largest residue {left} HU");
    }

    #[test]
    fn a_partial_arc_is_subtracted_without_painting_the_rest_of_the_circle() {
        let clean = phantom(None);
        let ringed = phantom(Some((60.0, 180.0, 2.0)));
        let corr = RingCorrection::estimate(&ringed, 40.0).expect("arc found");
        let fixed = corr.apply(&ringed);
        let n = 200usize;
        let c = (n as f64 - 1.0) / 2.0;
        let (mut on_arc, mut worst_on_arc, mut changed_off_arc) = (Vec::new(), 0, 0);
        for z in 0..fixed.header.dims[2] {
            for y in 0..n {
                for x in 0..n {
                    let (dx, dy) = (x as f64 - c, y as f64 - c);
                    let a = dy.atan2(dx).rem_euclid(std::f64::consts::TAU);
                    if (dx.hypot(dy) - 60.0).abs() > 4.0 {
                        continue;
                    }
                    let residue =
                        i32::from(fixed.voxels[[z, y, x]]) - i32::from(clean.voxels[[z, y, x]]);
                    // Away from the arc's ends by more than one angular bin (5.6°).
                    if (0.1..1.9).contains(&a) {
                        on_arc.push(residue);
                        worst_on_arc = worst_on_arc.max(residue.abs());
                    } else if (2.15..6.18).contains(&a)
                        && fixed.voxels[[z, y, x]] != ringed.voxels[[z, y, x]]
                    {
                        changed_off_arc += 1;
                    }
                }
            }
        }
        let mean = on_arc.iter().sum::<i32>() as f64 / on_arc.len() as f64;
        assert!(mean.abs() < 8.0, "mean residue on the arc {mean:.1} HU");
        assert!(
            worst_on_arc <= 60,
            "largest residue on the arc {worst_on_arc} HU"
        );
        assert_eq!(changed_off_arc, 0, "pixels changed off the arc");
    }

    #[test]
    fn anatomy_without_rings_is_left_alone() {
        assert!(RingCorrection::estimate(&phantom(None), 40.0).is_none());
        // Subcutaneous fat under the skin, centred on the isocentre: a layer, not a ring.
        let mut fat = phantom(None);
        let c = 99.5;
        for ((_, y, x), v) in fat.voxels.indexed_iter_mut() {
            let r = (x as f64 - c).hypot(y as f64 - c);
            if (76.0..=90.0).contains(&r) {
                *v -= 140;
            }
        }
        assert!(RingCorrection::estimate(&fat, 40.0).is_none());
    }
}
