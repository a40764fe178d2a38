//! Discs along the straightened spine: minima of a band-averaged profile through the middle of
//! the bodies, chosen by dynamic programming under a smooth-height prior (vertebral pitch, body
//! plus disc, varies slowly from T1 ≈ 19 mm to L3 ≈ 37 mm), which splits merged bodies and
//! rejects impossible ones such as a calcified disc read as a squashed vertebra.

use crate::{config::ClassicalConfig, profile, straighten::Straightened};

/// One disc chosen along the arc.
#[derive(Debug, Clone, Copy)]
pub struct Disc {
    /// Arc length of the disc centre, mm.
    pub s: f64,
    /// Contrast of the disc against the bodies beside it, HU.
    pub contrast: f64,
}

/// How a disc reads against the marrow of the bodies beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscReading {
    /// Darker than the endplates beside it (thick discs, thin slices; every phantom).
    Dark,
    /// Dark, or one bright band where a thin disc between two sclerotic endplates is blurred by
    /// thick slices or crossed obliquely (real chest CT of older patients); the anterior
    /// flare at the rims tells such a band from a body's middle.
    DarkOrBright,
}

/// Find discs cranial → caudal, read as dark (the established reading).
pub fn discs(img: &Straightened, cfg: &ClassicalConfig) -> Vec<Disc> {
    discs_read(img, cfg, DiscReading::Dark)
}

/// Find discs cranial → caudal under one reading of their brightness.
pub fn discs_read(img: &Straightened, cfg: &ClassicalConfig, reading: DiscReading) -> Vec<Disc> {
    let ds = img.ds;
    let band = cfg.disc_band_mm;
    // Median across the band resists a calcified nucleus or a Schmorl pit in one column.
    let mut raw = Vec::with_capacity(img.rows);
    let (c0, c1) = (img.col_of(-band), img.col_of(band));
    let mut buf = Vec::new();
    for r in 0..img.rows {
        buf.clear();
        buf.extend((c0..=c1).map(|c| img.at(r, c) as f64));
        raw.push(crate::straighten::median(&mut buf));
    }
    // Cortical walls: bright along a body, absent at a disc — so an osteoporotic body, whose
    // interior is as dark as a disc, still reads as bone between its endplates.
    let walls = depth_along(img, cfg);
    if walls.len() >= 3 {
        for (r, v) in raw.iter_mut().enumerate() {
            let s_r = r as f64 * ds;
            let (Some(up), Some(ua)) = (wall_at(&walls, s_r, 1), wall_at(&walls, s_r, 2)) else {
                continue;
            };
            let band_max = |a: f64, b: f64| -> f64 {
                (img.col_of(a)..=img.col_of(b))
                    .map(|c| img.at(r, c) as f64)
                    .fold(f64::NEG_INFINITY, f64::max)
            };
            let w = 0.5 * (band_max(up - 1.0, up + 2.5) + band_max(ua - 2.5, ua + 1.0));
            *v = 0.5 * (*v + w);
        }
    }
    let b = profile::smooth(&raw, 1.5 / ds);
    let win = (cfg.disc_flank_mm / ds) as isize;
    let depth: Vec<(f64, f64)> = walls.iter().map(|w| (w.0, w.2 - w.1)).collect();
    let flare = match reading {
        DiscReading::Dark => vec![0.0; img.rows],
        DiscReading::DarkOrBright => anterior_flare(img, cfg),
    };
    let narrowness_at = |i: usize, contrast: f64, b: &[f64]| match depth_at(&depth, i as f64 * ds) {
        Some(pitch) => disc_narrowness(b, i, contrast, ds, pitch),
        None => 1.0,
    };
    // Dark discs: minima of the profile between brighter endplates (row, contrast).
    let dark: Vec<(usize, f64)> = profile::local_minima(&b)
        .into_iter()
        .filter_map(|i| {
            let ii = i as isize;
            let up = profile::max_in(&b, ii - win, ii).1;
            let down = profile::max_in(&b, ii, ii + win).1;
            let contrast = up.min(down) - b[i];
            (contrast > cfg.disc_min_contrast_hu).then_some((i, contrast))
        })
        .collect();
    let mut cands: Vec<(usize, f64)> = dark
        .iter()
        .map(|&(i, contrast)| {
            let w = narrowness_at(i, contrast, &b) * flare_weight(flare_near(&flare, i, ds));
            (i, contrast * w)
        })
        .collect();
    // Bright discs: a thin disc between two sclerotic endplates, blurred by thick slices or
    // crossed obliquely, reads as one bright band brighter than the marrow on both sides. Only
    // where the column's anterior surface flares (the rims at a disc) is such a band a disc
    // candidate; elsewhere it is an endplate or a bone island.
    let inverted: Vec<f64> = b.iter().map(|v| -v).collect();
    let bright_rows = match reading {
        DiscReading::Dark => vec![],
        DiscReading::DarkOrBright => profile::local_minima(&inverted),
    };
    for i in bright_rows {
        let near = flare_near(&flare, i, ds);
        if near < FLARE_MIN_BRIGHT_DISC_MM {
            continue;
        }
        let ii = i as isize;
        let up = profile::min_in(&b, ii - win, ii).1;
        let down = profile::min_in(&b, ii, ii + win).1;
        let contrast = b[i] - up.max(down);
        if contrast <= cfg.disc_min_contrast_hu {
            continue;
        }
        // A bright endplate beside a dark disc is not a disc itself.
        let pitch = depth_at(&depth, i as f64 * ds).unwrap_or(DEFAULT_PITCH_MM);
        let reach = BRIGHT_DISC_DARK_EXCLUSION * pitch / ds;
        if dark
            .iter()
            .any(|&(j, c)| (j as f64 - i as f64).abs() < reach && c >= 0.5 * contrast)
        {
            continue;
        }
        let score = contrast * narrowness_at(i, contrast, &inverted) * flare_weight(near);
        cands.push((i, score));
    }
    cands.sort_by_key(|c| c.0);
    if tracing::enabled!(tracing::Level::TRACE) {
        for (i, (f, v)) in flare.iter().zip(&b).enumerate().step_by(2) {
            tracing::trace!("PROFILE {:.1} {:.2} {:.0}", i as f64 * ds, f, v);
        }
    }
    if cands.len() < 2 {
        return vec![];
    }
    // Normalise contrast by a typical strong disc so the prior's weight is study independent.
    let mut cs: Vec<f64> = cands.iter().map(|c| c.1).collect();
    cs.sort_by(|a, b| b.total_cmp(a));
    let typical = cs[(cs.len() / 4).min(cs.len() - 1)].max(1.0);
    for c in cands.iter_mut() {
        c.1 = (c.1 / typical).min(1.5);
    }
    tracing::debug!(
        "disc candidates {:?}",
        cands
            .iter()
            .map(|c| format!("{:.1}:{:.2}", c.0 as f64 * ds, c.1))
            .collect::<Vec<_>>()
    );
    let n = cands.len();
    let pos: Vec<f64> = cands.iter().map(|c| c.0 as f64 * ds).collect();
    let (pmin, pmax) = cfg.pitch_range_mm;
    // Pitch (body + disc) is about the body's antero-posterior depth from T1 to L5.
    let prior = |a: f64, b: f64| -> f64 {
        match depth_at(&depth, 0.5 * (a + b)) {
            Some(d) => cfg.pitch_depth_weight * ((b - a) / d).ln().powi(2),
            None => 0.0,
        }
    };
    // V[i][j]: best chain ending with discs i < j.
    let neg = f64::NEG_INFINITY;
    let mut v = vec![neg; n * n];
    let mut back = vec![usize::MAX; n * n];
    for j in 0..n {
        for i in 0..j {
            let p = pos[j] - pos[i];
            if p < pmin || p > pmax {
                continue;
            }
            let pp = prior(pos[i], pos[j]);
            let mut best = cands[i].1 + cands[j].1 - pp;
            let mut arg = usize::MAX;
            for h in 0..i {
                let vh = v[h * n + i];
                if vh == neg {
                    continue;
                }
                let q = pos[i] - pos[h];
                let pen = cfg.pitch_smoothness * (p / q).ln().powi(2);
                let val = vh + cands[j].1 - pen - pp;
                if val > best {
                    best = val;
                    arg = h;
                }
            }
            v[i * n + j] = best;
            back[i * n + j] = arg;
        }
    }
    let mut best = (neg, 0, 0);
    for i in 0..n {
        for j in i + 1..n {
            if v[i * n + j] > best.0 {
                best = (v[i * n + j], i, j);
            }
        }
    }
    if best.0 == neg {
        return vec![];
    }
    let (mut i, mut j) = (best.1, best.2);
    let mut chain = vec![j, i];
    while back[i * n + j] != usize::MAX {
        let h = back[i * n + j];
        chain.push(h);
        j = i;
        i = h;
    }
    chain.reverse();
    split_crushed(&mut chain, &pos, &cands);
    let typical_hu = typical;
    chain
        .into_iter()
        .map(|k| Disc {
            s: pos[k],
            contrast: cands[k].1 * typical_hu,
        })
        .collect()
}

/// Smallest flare of the anterior surface (mm beyond its local trend) at which a bright band is
/// taken for a disc candidate: the rims of two bodies and the disc between them stand 1–3 mm
/// in front of the concave waist of a body (real chest and abdominal CT).
const FLARE_MIN_BRIGHT_DISC_MM: f64 = 0.3;

/// Range the image is clamped to before the anterior surface is sought: lung or bowel gas in
/// front of a body, or a dense cortex, must not outweigh the bone-to-soft-tissue step itself.
const FLARE_CLAMP_HU: (f64, f64) = (-100.0, 600.0);

/// A bright band within this fraction of the local pitch of a dark disc candidate at least
/// half its contrast is that disc's endplate, not a disc (thick lumbar discs read dark between
/// bright endplates 6–8 mm away; a body's dark middle lies half a pitch from its discs).
const BRIGHT_DISC_DARK_EXCLUSION: f64 = 0.3;

/// Pitch assumed where the bodies' depth is not measured, mm.
const DEFAULT_PITCH_MM: f64 = 25.0;

/// Smallest fall (HU over two columns) that marks the anterior surface.
const FLARE_MIN_FALL_HU: f64 = 20.0;

/// Weight per mm of anterior flare on a disc candidate's score (a candidate on a body's waist,
/// 1–2 mm behind the trend, loses a third to a half of its score).
const FLARE_WEIGHT_PER_MM: f64 = 0.25;

/// Scale along the arc (mm) of the trend the anterior surface's flare is measured from: longer
/// than a body's half height, shorter than the curvature of the column.
const FLARE_TREND_SIGMA_MM: f64 = 8.0;

/// How far from a disc candidate (mm along the arc) its flare is read: the rims' bulge and the
/// disc's brightest row need not coincide.
const FLARE_REACH_MM: f64 = 2.5;

/// Largest flare within [`FLARE_REACH_MM`] of row `i`.
fn flare_near(flare: &[f64], i: usize, ds: f64) -> f64 {
    let reach = (FLARE_REACH_MM / ds).round() as usize;
    flare[i.saturating_sub(reach)..(i + reach + 1).min(flare.len())]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
}

/// Weight of a disc candidate by how far the anterior surface flares near it.
fn flare_weight(flare_mm: f64) -> f64 {
    (1.0 + FLARE_WEIGHT_PER_MM * flare_mm).clamp(0.4, 1.6)
}

/// How far (mm) the column's anterior surface stands in front of its local trend, per row. A
/// vertebral body is waisted: its anterior cortex is concave between the rims, and the rims,
/// the disc's annulus and any marginal osteophytes bulge forward at the disc. That holds whether
/// the disc reads darker than the marrow (thick discs, young bone) or brighter (thin discs
/// between sclerotic endplates at thick slices), so it tells discs from mid-body dips where
/// brightness cannot. Zero where no anterior wall is found.
fn anterior_flare(img: &Straightened, cfg: &ClassicalConfig) -> Vec<f64> {
    let ds = img.ds;
    let half_rows = (1.0 / ds).round().max(1.0) as usize;
    let (c0, c1) = (img.col_of(0.0), img.col_of(cfg.body_max_half_depth_mm));
    let mut surface: Vec<Option<f64>> = Vec::with_capacity(img.rows);
    let mut row = vec![0.0; img.cols];
    for r in 0..img.rows {
        let (r0, r1) = (
            r.saturating_sub(half_rows),
            (r + half_rows).min(img.rows - 1),
        );
        for (c, v) in row.iter_mut().enumerate() {
            *v = (r0..=r1)
                .map(|rr| (img.at(rr, c) as f64).clamp(FLARE_CLAMP_HU.0, FLARE_CLAMP_HU.1))
                .sum::<f64>()
                / (r1 - r0 + 1) as f64;
        }
        let q = profile::smooth(&row, 0.7 / img.du);
        // The steepest fall in front of the centreline: bone (or disc) to soft tissue or lung.
        let mut best = (FLARE_MIN_FALL_HU, None);
        for c in c0.max(1)..c1.min(q.len() - 1) {
            let fall = q[c - 1] - q[c + 1];
            if fall > best.0 {
                best = (fall, Some(img.u0 + c as f64 * img.du));
            }
        }
        surface.push(best.1);
    }
    let known: Vec<f64> = surface.iter().map(|u| u.unwrap_or(0.0)).collect();
    let weight: Vec<f64> = surface
        .iter()
        .map(|u| if u.is_some() { 1.0 } else { 0.0 })
        .collect();
    let fine_w = profile::smooth(&weight, 1.5 / ds);
    let fine = profile::smooth(&known, 1.5 / ds);
    let trend_w = profile::smooth(&weight, FLARE_TREND_SIGMA_MM / ds);
    let trend = profile::smooth(&known, FLARE_TREND_SIGMA_MM / ds);
    (0..img.rows)
        .map(|r| {
            if fine_w[r] < 0.5 || trend_w[r] < 0.5 {
                0.0
            } else {
                fine[r] / fine_w[r] - trend[r] / trend_w[r]
            }
        })
        .collect()
}

/// How disc-like the width of the dip at row `i` is, 0.2–1. A disc is a narrow trough between
/// two endplates, about a quarter of the local pitch (body + disc) at half its contrast; the
/// dark trabecular interior of an osteoporotic body is a broad one, over half the pitch, and
/// is weighed down accordingly.
fn disc_narrowness(b: &[f64], i: usize, contrast: f64, ds: f64, pitch: f64) -> f64 {
    let level = b[i] + 0.5 * contrast;
    // Walk out from the minimum to the half-contrast level on each side.
    let mut lo = i;
    while lo > 0 && b[lo - 1] < level {
        lo -= 1;
    }
    let mut hi = i;
    while hi + 1 < b.len() && b[hi + 1] < level {
        hi += 1;
    }
    let width = (hi - lo + 1) as f64 * ds;
    (1.5 - 2.0 * width / pitch).clamp(0.2, 1.0)
}

/// A pitch far longer than both its neighbours' is two bodies, one of them crushed: the smooth
/// pitch prior prefers skipping the disc below a body lowered to half its height. Split such a
/// pitch at its strongest inner disc candidate that leaves one part of about the neighbours'
/// pitch and the other at least a third of it (a mid-body trabecular dip splits a pitch in
/// halves and so is never chosen). `chain` holds indices into `pos` and `cands`.
fn split_crushed(chain: &mut Vec<usize>, pos: &[f64], cands: &[(usize, f64)]) {
    let mut k = 1;
    while k + 1 < chain.len() {
        let p = |i: usize| pos[chain[i + 1]] - pos[chain[i]];
        let pitch = p(k);
        let mut refs = Vec::new();
        if k >= 1 {
            refs.push(p(k - 1));
        }
        if k + 2 < chain.len() {
            refs.push(p(k + 1));
        }
        let reference = refs.iter().copied().fold(f64::INFINITY, f64::min);
        let longest_ref = refs.iter().copied().fold(0.0f64, f64::max);
        if refs.is_empty() || pitch < 1.35 * longest_ref.max(reference) {
            k += 1;
            continue;
        }
        let (a, b) = (pos[chain[k]], pos[chain[k + 1]]);
        let best = (chain[k] + 1..chain[k + 1])
            .filter(|&c| cands[c].1 >= 0.2)
            .filter(|&c| {
                let (x, y) = (pos[c] - a, b - pos[c]);
                let (short, long) = (x.min(y), x.max(y));
                short >= 0.3 * reference
                    && short <= 0.75 * reference
                    && (0.75 * reference..=1.25 * longest_ref).contains(&long)
            })
            .max_by(|&x, &y| cands[x].1.total_cmp(&cands[y].1));
        match best {
            Some(c) => {
                tracing::debug!("split pitch {a:.1}-{b:.1} at {:.1}", pos[c]);
                chain.insert(k + 1, c);
                k += 2;
            }
            None => k += 1,
        }
    }
}

/// Posterior and anterior cortex along the arc: `(s, u_post, u_ant)` every 5 mm where a body is
/// measured.
fn depth_along(img: &Straightened, cfg: &ClassicalConfig) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    let mut s = 5.0;
    while s < img.rows as f64 * img.ds - 5.0 {
        let (r0, r1) = (img.row_of(s - 5.0), img.row_of(s + 5.0));
        let q = profile::smooth(&img.row_band_median(r0, r1), 0.6 / img.du);
        if let Some((a, b)) = crate::endplates::ap_extent(&q, img, cfg) {
            if b - a >= cfg.body_min_depth_mm {
                out.push((s, a, b));
            }
        }
        s += 5.0;
    }
    out
}

/// Median depth within ±30 mm of arc length `s`.
fn depth_at(depth: &[(f64, f64)], s: f64) -> Option<f64> {
    let mut v: Vec<f64> = depth
        .iter()
        .filter(|(x, _)| (x - s).abs() <= 30.0)
        .map(|(_, d)| *d)
        .collect();
    if v.len() < 3 {
        return None;
    }
    Some(crate::straighten::median(&mut v))
}

/// Median of field `k` (1 = posterior wall, 2 = anterior wall) within ±15 mm of `s`.
fn wall_at(walls: &[(f64, f64, f64)], s: f64, k: usize) -> Option<f64> {
    let mut v: Vec<f64> = walls
        .iter()
        .filter(|w| (w.0 - s).abs() <= 15.0)
        .map(|w| if k == 1 { w.1 } else { w.2 })
        .collect();
    if v.len() < 2 {
        return None;
    }
    Some(crate::straighten::median(&mut v))
}
