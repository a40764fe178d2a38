//! The spine centreline: vertebral body (or disc) centroids anterior to the canal, smoothed into a
//! 3-D curve with a local frame (cranial tangent, anterior direction) at every arc length.
//!
//! The canal → body vector gives "anterior" even when the spine is rotated (scoliosis), and the
//! curve is parameterised by arc length so that the straightened reformation stands every
//! vertebra upright whatever the kyphosis or scoliosis.

use crate::{
    canal::CanalTrack,
    config::ClassicalConfig,
    geom::{self, Vec3},
    grid::Grid,
    straighten,
};

/// A local frame of the spine.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Position on the centreline, patient mm.
    pub p: Vec3,
    /// Unit tangent towards the head.
    pub t: Vec3,
    /// Unit anterior direction, perpendicular to `t`.
    pub a: Vec3,
    /// Unit lateral direction `t × a` (towards patient left for an upright, supine spine).
    pub l: Vec3,
}

/// The smoothed centreline, sampled cranial → caudal.
#[derive(Debug, Clone)]
pub struct Centreline {
    /// Arc length of each sample from the cranial end, mm (increasing caudally).
    pub s: Vec<f64>,
    /// Frames at each sample.
    pub frames: Vec<Frame>,
    /// Canal centre (patient mm) at each sample, for posterior-element checks.
    pub canal: Vec<Vec3>,
    /// Fraction of slices where a body or disc centroid was observed.
    pub body_coverage: f64,
}

impl Centreline {
    /// Total arc length, mm.
    pub fn length(&self) -> f64 {
        self.s.last().copied().unwrap_or(0.0)
    }

    /// Frame at arc length `s` (clamped to the curve), interpolated and re-orthonormalised.
    pub fn frame_at(&self, s: f64) -> Frame {
        let n = self.s.len();
        if n == 1 || s <= self.s[0] {
            return self.frames[0];
        }
        if s >= self.s[n - 1] {
            return self.frames[n - 1];
        }
        let i = self.s.partition_point(|&v| v <= s).clamp(1, n - 1) - 1;
        let span = (self.s[i + 1] - self.s[i]).max(1e-9);
        let f = (s - self.s[i]) / span;
        let (a, b) = (&self.frames[i], &self.frames[i + 1]);
        let p = geom::lerp(a.p, b.p, f);
        let t = geom::normalize_or(geom::lerp(a.t, b.t, f), a.t);
        let an = geom::orthogonal_to(geom::lerp(a.a, b.a, f), t, a.a);
        Frame {
            p,
            t,
            a: an,
            l: geom::cross(t, an),
        }
    }

    /// Canal centre at arc length `s`.
    pub fn canal_at(&self, s: f64) -> Vec3 {
        let n = self.s.len();
        let i = self.s.partition_point(|&v| v <= s).clamp(1, n.max(2) - 1) - 1;
        if n < 2 {
            return self.canal[0];
        }
        let span = (self.s[i + 1] - self.s[i]).max(1e-9);
        let f = ((s - self.s[i]) / span).clamp(0.0, 1.0);
        geom::lerp(self.canal[i], self.canal[i + 1], f)
    }

    /// Arc length of the centreline point nearest to `p`.
    pub fn project(&self, p: Vec3) -> (f64, f64) {
        let mut best = (0.0, f64::INFINITY);
        for (s, f) in self.s.iter().zip(&self.frames) {
            let d = geom::dist(f.p, p);
            if d < best.1 {
                best = (*s, d);
            }
        }
        best
    }
}

/// Profile step, mm.
const PROFILE_STEP_MM: f64 = 1.0;

/// HU profile anterior (−y) from the canal's edge on slice `k`, averaged across the central strip
/// (|lateral| ≤ 8 mm), at [`PROFILE_STEP_MM`] out to the deepest body.
fn anterior_profile(
    g: &Grid,
    k: usize,
    cx: f64,
    cy: f64,
    r: f64,
    cfg: &ClassicalConfig,
) -> Vec<f64> {
    let n = (cfg.body_max_depth_mm / PROFILE_STEP_MM) as usize;
    (0..n)
        .map(|i| {
            let u = r + i as f64 * PROFILE_STEP_MM;
            let z = g.origin[2] + k as f64 * g.spacing;
            [-8.0, -4.0, 0.0, 4.0, 8.0]
                .iter()
                .map(|v| g.sample([cx + v, cy - u, z]) as f64)
                .sum::<f64>()
                / 5.0
        })
        .collect()
}

/// Posterior wall on a profile: the first bone sample within 8 mm of the canal's edge.
fn posterior_wall(prof: &[f64], cfg: &ClassicalConfig) -> Option<usize> {
    prof.iter().take(9).position(|&v| v > cfg.bone_hu as f64)
}

/// Marrow reached from the posterior wall: 3–12 mm in front of it (past the wall's blur, short
/// of the shallowest body's front).
const MARROW_WINDOW_MM: (usize, usize) = (3, 12);

/// The study's marrow level: the median over slices of the median HU in [`MARROW_WINDOW_MM`]
/// in front of the posterior wall. Bodies fill most slices, so discs do not move it.
fn marrow_level(profiles: &[Vec<f64>], cfg: &ClassicalConfig) -> Option<f64> {
    let mut levels: Vec<f64> = profiles
        .iter()
        .filter_map(|prof| {
            let start = posterior_wall(prof, cfg)?;
            let (a, b) = (start + MARROW_WINDOW_MM.0, start + MARROW_WINDOW_MM.1);
            let mut window = prof.get(a..b.min(prof.len()))?.to_vec();
            (!window.is_empty()).then(|| straighten::median(&mut window))
        })
        .collect();
    (!levels.is_empty()).then(|| straighten::median(&mut levels))
}

/// A body's run on a profile: from its posterior wall to the last sample above `body_hu` before
/// 4 consecutive mm below it. `None` without a posterior wall.
fn body_run(prof: &[f64], cfg: &ClassicalConfig) -> Option<(usize, usize)> {
    let start = posterior_wall(prof, cfg)?;
    let mut end = start;
    let mut low = 0;
    for (i, &v) in prof.iter().enumerate().skip(start) {
        if v > cfg.body_hu {
            end = i;
            low = 0;
        } else {
            low += 1;
            if low >= 4 {
                break;
            }
        }
    }
    Some((start, end))
}

/// How much deeper than the study's median body run (as a factor) a run must be before it is
/// searched for an anterior cortex with soft tissue in front ([`anterior_cortex_before_tissue`]).
const DEEP_RUN_FACTOR: f64 = 1.3;

/// The depth (mm) beyond which a body's run is suspected of running on past its front:
/// [`DEEP_RUN_FACTOR`] times the median depth of the runs at least `body_min_depth_mm` deep.
fn deep_run_mm(profiles: &[Vec<f64>], cfg: &ClassicalConfig) -> f64 {
    let mut depths: Vec<f64> = profiles
        .iter()
        .filter_map(|p| body_run(p, cfg))
        .map(|(a, b)| (b - a) as f64 * PROFILE_STEP_MM)
        .filter(|&d| d >= cfg.body_min_depth_mm)
        .collect();
    if depths.is_empty() {
        return f64::INFINITY;
    }
    DEEP_RUN_FACTOR * straighten::median(&mut depths)
}

/// Body centre anterior to the canal on a slice, from its [`anterior_profile`] `prof`: the body
/// runs from its posterior wall to the last sample above the body threshold before soft tissue;
/// its centre is the midpoint. In a study whose marrow is darker than that threshold
/// (an old patient's 60 HU) the run ends at the posterior wall, and the body then
/// reaches to its anterior cortex. In a brighter study a run deeper than `deep_mm`
/// ([`deep_run_mm`]) stops at the anterior cortex when soft tissue brighter than that threshold
/// lies in front of it ([`anterior_cortex_before_tissue`]). `marrow` is the study's
/// [`marrow_level`]. `None` at disc levels (no bone).
fn body_centroid(
    g: &Grid,
    k: usize,
    (cx, cy, r): (f64, f64, f64),
    prof: &[f64],
    (marrow, deep_mm): (Option<f64>, f64),
    cfg: &ClassicalConfig,
) -> Option<(f64, f64)> {
    let step = PROFILE_STEP_MM;
    let (start, mut end) = body_run(prof, cfg)?;
    let run_mm = (end - start) as f64 * step;
    match marrow {
        Some(m) if m < cfg.body_hu && run_mm < cfg.body_min_depth_mm => {
            end = anterior_cortex_beyond(prof, end, cfg).unwrap_or(end);
        }
        Some(m) if m >= cfg.body_hu && run_mm > deep_mm => {
            end = anterior_cortex_before_tissue(prof, (start, end), m, cfg).unwrap_or(end);
        }
        _ => {}
    }
    let depth = (end - start) as f64 * step;
    if depth < cfg.body_min_depth_mm {
        return None;
    }
    let u_mid = r + (start + end) as f64 * 0.5 * step;
    // Lateral centre at mid-depth: the body may sit beside the canal in a rotated, scoliotic spine.
    let z = g.origin[2] + k as f64 * g.spacing;
    let y = cy - u_mid;
    let lateral = |sign: f64| -> f64 {
        let mut last = 0.0;
        let mut low = 0;
        for i in 0..40 {
            let v = i as f64;
            if g.sample([cx + sign * v, y, z]) as f64 > cfg.body_hu {
                last = v;
                low = 0;
            } else {
                low += 1;
                if low >= 3 {
                    break;
                }
            }
        }
        last
    };
    let (left, right) = (lateral(1.0), lateral(-1.0));
    Some((cx + 0.5 * (left - right), y))
}

/// Widest bright run (mm at 1 mm steps) taken for a body's anterior cortex: the shell is 1–2 mm
/// thick and blurs to 3–4; a wider bright run is something else (contrast in the aorta, a rib).
const ANTERIOR_CORTEX_MAX_MM: usize = 4;

/// HU below which a profile sample is fat or air, outside any vertebral body.
const OUTSIDE_BODY_HU: f64 = 0.0;

/// Index of the anterior cortex of a body whose marrow is darker than `body_hu`, searching the
/// anteriorward profile beyond `from`: the first bright run (above `bone_hu`) no wider than
/// [`ANTERIOR_CORTEX_MAX_MM`] and followed by soft tissue, reached without crossing fat or air.
/// `None` when fat, air or a wide bright structure comes first.
fn anterior_cortex_beyond(prof: &[f64], from: usize, cfg: &ClassicalConfig) -> Option<usize> {
    let bone = cfg.bone_hu as f64;
    let mut j = from + 1;
    while j < prof.len() {
        if prof[j] < OUTSIDE_BODY_HU {
            return None;
        }
        if prof[j] > bone {
            let run = prof[j..].iter().take_while(|&&v| v > bone).count();
            let after = j + run;
            let ends = after < prof.len() && prof[after] < cfg.body_hu;
            return (run <= ANTERIOR_CORTEX_MAX_MM && ends).then_some(after - 1);
        }
        j += 1;
    }
    None
}

/// How far (HU) above the study's marrow level a sample must read to be taken for a cortex.
const CORTEX_ABOVE_MARROW_HU: f64 = 80.0;

/// How far (HU) below the study's marrow level a sample in front of a cortex reads as soft
/// tissue rather than marrow.
const TISSUE_BELOW_MARROW_HU: f64 = 25.0;

/// Samples (mm) of soft tissue that must follow a cortex for it to be the body's front.
const TISSUE_RUN_MM: usize = 4;

/// The anterior end of a body whose run (`start..=end`, samples above `body_hu`) went on past
/// its anterior cortex: soft tissue brighter than `body_hu` (contrast-enhanced crura and
/// vessels in front of T11–L1, 110–125 HU) continued it 15–20 mm, and the body's centre moved
/// forward with it. The front is the first cortex (above `bone_hu` and
/// [`CORTEX_ABOVE_MARROW_HU`] over the study's `marrow`), at least `body_min_depth_mm` in front
/// of the posterior wall, followed by [`TISSUE_RUN_MM`] mm below the marrow by
/// [`TISSUE_BELOW_MARROW_HU`]; the index returned is the cortex's last sample above that level.
/// `None` when no such cortex lies within the run.
fn anterior_cortex_before_tissue(
    prof: &[f64],
    (start, end): (usize, usize),
    marrow: f64,
    cfg: &ClassicalConfig,
) -> Option<usize> {
    let cortex = (cfg.bone_hu as f64).max(marrow + CORTEX_ABOVE_MARROW_HU);
    let tissue = marrow - TISSUE_BELOW_MARROW_HU;
    let mut j = start + (cfg.body_min_depth_mm / PROFILE_STEP_MM).ceil() as usize;
    while j < end {
        if prof[j] <= cortex {
            j += 1;
            continue;
        }
        // The cortex and its blur, down to the tissue level.
        let mut last = j;
        while last < end && prof[last + 1] >= tissue {
            last += 1;
        }
        let after = prof.get(last + 1..last + 1 + TISSUE_RUN_MM)?;
        if after.len() == TISSUE_RUN_MM && after.iter().all(|&v| v < tissue) {
            return Some(last);
        }
        j = last + 1;
    }
    None
}

/// Local linear regression of samples `(z, value)` at `z0` with a Gaussian kernel of `sigma`:
/// returns (value, slope).
fn local_linear(samples: &[(f64, f64)], z0: f64, sigma: f64) -> Option<(f64, f64)> {
    let (mut sw, mut sz, mut sv, mut szz, mut szv) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(z, v) in samples {
        let d = z - z0;
        if d.abs() > 3.0 * sigma {
            continue;
        }
        let w = (-0.5 * (d / sigma).powi(2)).exp();
        sw += w;
        sz += w * d;
        sv += w * v;
        szz += w * d * d;
        szv += w * d * v;
    }
    if sw < 1e-6 {
        return None;
    }
    let det = sw * szz - sz * sz;
    if det.abs() < 1e-9 * sw * sw {
        return Some((sv / sw, 0.0));
    }
    let slope = (sw * szv - sz * sv) / det;
    let intercept = (sv - slope * sz) / sw;
    Some((intercept, slope))
}

/// Build the centreline from the canal track.
pub fn build(g: &Grid, track: &CanalTrack, cfg: &ClassicalConfig) -> Option<Centreline> {
    let s = g.spacing;
    let n = track.points.len();
    let z_of = |i: usize| g.origin[2] + (track.k_start + i) as f64 * s;
    let mut bx = Vec::new();
    let mut by = Vec::new();
    let mut cxs = Vec::new();
    let mut cys = Vec::new();
    let mut observed = 0usize;
    let profiles: Vec<Vec<f64>> = track
        .points
        .iter()
        .enumerate()
        .map(|(i, &(cx, cy, r, _))| anterior_profile(g, track.k_start + i, cx, cy, r, cfg))
        .collect();
    let marrow = marrow_level(&profiles, cfg);
    let deep_mm = deep_run_mm(&profiles, cfg);
    for (i, &(cx, cy, r, obs)) in track.points.iter().enumerate() {
        let z = z_of(i);
        if obs {
            cxs.push((z, cx));
            cys.push((z, cy));
        }
        let k = track.k_start + i;
        if let Some((x, y)) = body_centroid(g, k, (cx, cy, r), &profiles[i], (marrow, deep_mm), cfg)
        {
            bx.push((z, x));
            by.push((z, y));
            observed += 1;
        }
    }
    from_samples(g, track.k_start, n, &bx, &by, &cxs, &cys, observed, cfg)
}

/// Smooth body and canal samples `(z, value)` over slices `k_start..k_start + n` into the
/// centreline with its frames. `None` with fewer than five body samples.
#[allow(clippy::too_many_arguments)]
pub fn from_samples(
    g: &Grid,
    k_start: usize,
    n: usize,
    bx: &[(f64, f64)],
    by: &[(f64, f64)],
    cxs: &[(f64, f64)],
    cys: &[(f64, f64)],
    observed: usize,
    cfg: &ClassicalConfig,
) -> Option<Centreline> {
    let s = g.spacing;
    let z_of = |i: usize| g.origin[2] + (k_start + i) as f64 * s;
    if bx.len() < 5 {
        return None;
    }
    let sigma = cfg.centreline_sigma_mm;
    let mut pos = Vec::with_capacity(n);
    let mut tan = Vec::with_capacity(n);
    let mut canal = Vec::with_capacity(n);
    // Below the lowest body sample (the canal followed into the sacrum, where axial profiles
    // anterior to the canal find no body) the curve continues straight along the trend of the
    // lowest samples, fitted over a wider window: a local slope from the last two or three
    // samples would swing the extrapolated curve off the spine.
    let z_lo = bx.iter().map(|&(z, _)| z).fold(f64::INFINITY, f64::min);
    let fit = |samples: &[(f64, f64)], z: f64| -> Option<(f64, f64)> {
        if z >= z_lo {
            return local_linear(samples, z, sigma)
                .or_else(|| local_linear(samples, z, 4.0 * sigma));
        }
        let (v, slope) = local_linear(samples, z_lo, 2.0 * sigma)?;
        Some((v + slope * (z - z_lo), slope))
    };
    for i in 0..n {
        let z = z_of(i);
        let (x, dx) = fit(bx, z)?;
        let (y, dy) = fit(by, z)?;
        let (qx, _) = local_linear(cxs, z, sigma * 0.7)
            .or_else(|| local_linear(cxs, z, 4.0 * sigma))
            .unwrap_or((x, 0.0));
        let (qy, _) = local_linear(cys, z, sigma * 0.7)
            .or_else(|| local_linear(cys, z, 4.0 * sigma))
            .unwrap_or((y + 20.0, 0.0));
        pos.push([x, y, z]);
        tan.push(geom::normalize_or([dx, dy, 1.0], [0.0, 0.0, 1.0]));
        canal.push([qx, qy, z]);
    }
    // Anterior: from canal to body, perpendicular to the tangent, smoothed along the spine.
    let raw_a: Vec<Vec3> = (0..n)
        .map(|i| geom::orthogonal_to(geom::sub(pos[i], canal[i]), tan[i], [0.0, -1.0, 0.0]))
        .collect();
    let half = ((sigma / s).round() as usize).max(1);
    let mut frames = Vec::with_capacity(n);
    for i in 0..n {
        let mut acc = [0.0; 3];
        for a in &raw_a[i.saturating_sub(half)..(i + half + 1).min(n)] {
            acc = geom::add(acc, *a);
        }
        let a = geom::orthogonal_to(acc, tan[i], [0.0, -1.0, 0.0]);
        frames.push(Frame {
            p: pos[i],
            t: tan[i],
            a,
            l: geom::cross(tan[i], a),
        });
    }
    // Cranial → caudal, with arc length from the cranial end.
    frames.reverse();
    canal.reverse();
    let mut arc = Vec::with_capacity(n);
    let mut acc = 0.0;
    for i in 0..n {
        if i > 0 {
            acc += geom::dist(frames[i].p, frames[i - 1].p);
        }
        arc.push(acc);
    }
    Some(Centreline {
        s: arc,
        frames,
        canal,
        body_coverage: observed as f64 / n as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile forward from the canal: posterior wall, marrow at `marrow` HU for `depth` mm,
    /// a 2 mm anterior cortex, then `beyond` for the rest.
    fn profile(marrow: f64, depth: usize, beyond: &[f64]) -> Vec<f64> {
        let mut p = vec![400.0, 400.0];
        p.extend(std::iter::repeat_n(marrow, depth));
        p.extend([400.0, 400.0]);
        p.extend_from_slice(beyond);
        p
    }

    #[test]
    fn dark_marrow_reaches_to_the_anterior_cortex() {
        let cfg = ClassicalConfig::default();
        let p = profile(60.0, 24, &[40.0; 10]);
        // The run above `body_hu` ends at the wall (index 1); the cortex ends at 2 + 24 + 1.
        assert_eq!(anterior_cortex_beyond(&p, 1, &cfg), Some(27));
    }

    #[test]
    fn contrast_in_the_aorta_or_fat_first_is_not_a_cortex() {
        let cfg = ClassicalConfig::default();
        // Marrow straight into 15 mm of contrast-filled aorta: too wide for a shell.
        let mut aorta = vec![400.0, 400.0];
        aorta.extend([60.0; 20]);
        aorta.extend([350.0; 15]);
        aorta.extend([40.0; 5]);
        assert_eq!(anterior_cortex_beyond(&aorta, 1, &cfg), None);
        // Fat before any bright shell: the body has ended.
        let mut fat = vec![400.0, 400.0];
        fat.extend([60.0; 5]);
        fat.extend([-100.0; 3]);
        fat.extend([400.0, 400.0]);
        fat.extend([40.0; 5]);
        assert_eq!(anterior_cortex_beyond(&fat, 1, &cfg), None);
    }

    #[test]
    fn a_run_into_bright_soft_tissue_stops_at_the_anterior_cortex() {
        let cfg = ClassicalConfig::default();
        // Marrow at 150 HU for 28 mm, the cortex, then 18 mm of contrast-enhanced crus at
        // 118 HU (above `body_hu`), then fat.
        let mut tissue = vec![118.0; 18];
        tissue.extend([-80.0; 6]);
        let p = profile(150.0, 28, &tissue);
        let (start, end) = body_run(&p, &cfg).expect("a posterior wall");
        assert_eq!(
            (start, end),
            (0, 2 + 28 + 2 + 18 - 1),
            "the run goes on through the crus"
        );
        assert_eq!(
            anterior_cortex_before_tissue(&p, (start, end), 150.0, &cfg),
            Some(2 + 28 + 1)
        );
        // The same body with fat right in front: the run already ends at its cortex.
        let plain = profile(150.0, 28, &[-80.0; 10]);
        let (start, end) = body_run(&plain, &cfg).expect("a posterior wall");
        assert_eq!(end, 2 + 28 + 1);
        assert_eq!(
            anterior_cortex_before_tissue(&plain, (start, end), 150.0, &cfg),
            Some(end)
        );
    }

    #[test]
    fn a_marrow_dip_behind_no_cortex_is_not_the_front() {
        let cfg = ClassicalConfig::default();
        // A young patient's marrow (230 HU) with a darker stretch (190 HU, a basivertebral
        // channel) 12 mm in: no sample there is a cortex above the marrow, so the body goes on.
        let mut p = vec![400.0, 400.0];
        p.extend([230.0; 10]);
        p.extend([260.0; 2]);
        p.extend([190.0; 6]);
        p.extend([230.0; 10]);
        p.extend([400.0, 400.0]);
        p.extend([118.0; 10]);
        let (start, end) = body_run(&p, &cfg).expect("a posterior wall");
        assert_eq!(
            anterior_cortex_before_tissue(&p, (start, end), 230.0, &cfg),
            Some(31)
        );
    }

    #[test]
    fn only_runs_well_past_the_studys_median_depth_are_deep() {
        let cfg = ClassicalConfig::default();
        let bodies = vec![profile(150.0, 28, &[-80.0; 10]); 5];
        let deep = deep_run_mm(&bodies, &cfg);
        assert!((deep - DEEP_RUN_FACTOR * 31.0).abs() < 1e-9, "{deep}");
        assert_eq!(deep_run_mm(&[vec![40.0; 30]], &cfg), f64::INFINITY);
    }

    #[test]
    fn the_marrow_level_is_the_patients() {
        let cfg = ClassicalConfig::default();
        // An old patient's bodies (60 HU) with a disc slice between: darker than `body_hu`.
        let old = vec![
            profile(60.0, 24, &[40.0; 10]),
            profile(60.0, 24, &[40.0; 10]),
            profile(90.0, 24, &[40.0; 10]),
        ];
        assert!(marrow_level(&old, &cfg).is_some_and(|m| m < cfg.body_hu));
        // A young patient's (230 HU) is not.
        let young = vec![profile(230.0, 24, &[40.0; 10]); 3];
        assert!(marrow_level(&young, &cfg).is_some_and(|m| m > cfg.body_hu));
        // No posterior wall anywhere: no level.
        assert_eq!(marrow_level(&[vec![40.0; 30]], &cfg), None);
    }
}
