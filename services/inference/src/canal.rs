//! Spinal canal tracking: the canal is found first because it is the most distinctive structure
//! of the spine on an axial slice — a round low-density hole (CSF and cord, −50…+80 HU, 12–22 mm
//! across) enclosed, or nearly, by bone, posterior to the vertebral body and near the body
//! outline's midline. Candidates from each slice are linked across slices by dynamic programming
//! with a continuity cost, which tolerates slices where the bony ring is open (intervertebral
//! foramina) and ignores isolated look-alikes (a hole in a rib, bowel gas in the pelvis). Below
//! L5 the canal swings posteriorly into the sacrum faster than that continuity allows; the track
//! is then followed caudally on its own terms (see `extend_caudally`), so that the centreline
//! reaches S1.

use crate::{
    config::ClassicalConfig,
    grid::Grid,
    mask2d::{self, Mask},
};

/// One canal candidate on one axial slice of the coarse grid.
#[derive(Debug, Clone, Copy)]
pub struct CanalCandidate {
    /// Slice index in the coarse grid.
    pub k: usize,
    /// Patient x (left), mm.
    pub x: f64,
    /// Patient y (posterior), mm.
    pub y: f64,
    /// Equivalent radius, mm.
    pub radius: f64,
    /// Plausibility 0–1.
    pub score: f64,
}

/// The linked canal track: one position per slice from `k_start` to `k_end` (inclusive), with
/// gaps interpolated.
#[derive(Debug, Clone)]
pub struct CanalTrack {
    /// First slice of the track.
    pub k_start: usize,
    /// `(x, y, radius, observed)` per slice from `k_start`.
    pub points: Vec<(f64, f64, f64, bool)>,
    /// Longest run of slices without an observed candidate, mm.
    pub longest_gap_mm: f64,
}

/// Body outline of one slice: bounding box and centroid of the largest component above −400 HU.
struct Outline {
    cx: f64,
    y_min: f64,
    y_max: f64,
}

fn outline(g: &Grid, slice: &[f32]) -> Option<Outline> {
    let (w, h) = (g.dims[0], g.dims[1]);
    let m = Mask::threshold(slice, w, h, -400.0);
    let comps = mask2d::components(&m, true);
    let big = comps.iter().max_by_key(|r| r.pixels.len())?;
    if (big.pixels.len() as f64) * g.spacing * g.spacing < 2000.0 {
        return None;
    }
    let (cx, _) = big.centroid(w);
    let (mut y0, mut y1) = (usize::MAX, 0);
    for &p in &big.pixels {
        y0 = y0.min(p / w);
        y1 = y1.max(p / w);
    }
    Some(Outline {
        cx: g.origin[0] + cx * g.spacing,
        y_min: g.origin[1] + y0 as f64 * g.spacing,
        y_max: g.origin[1] + y1 as f64 * g.spacing,
    })
}

/// Pixels that could be canal: soft-tissue density, not bone, and enclosed by bone in at least
/// 6 of 8 directions within 18 mm (the ring may be open at the foramina or between laminae).
fn enclosure_mask(g: &Grid, slice: &[f32], body: &Outline, cfg: &ClassicalConfig) -> Mask {
    let (w, h) = (g.dims[0], g.dims[1]);
    let s = g.spacing;
    let mut px = vec![false; w * h];
    let bone = |x: isize, y: isize| -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && slice[y as usize * w + x as usize] > cfg.bone_hu
    };
    let dirs: [(isize, isize); 8] = [
        (1, 0),
        (1, 1),
        (0, 1),
        (-1, 1),
        (-1, 0),
        (-1, -1),
        (0, -1),
        (1, -1),
    ];
    let reach = |d: (isize, isize)| -> isize {
        let step = if d.0 != 0 && d.1 != 0 {
            s * std::f64::consts::SQRT_2
        } else {
            s
        };
        (18.0 / step).round() as isize
    };
    let reaches: Vec<isize> = dirs.iter().map(|&d| reach(d)).collect();
    // Region of interest: posterior part of the body outline, within 80 mm of its midline.
    let x0 = (((body.cx - 80.0 - g.origin[0]) / s).floor().max(0.0) as usize).min(w);
    let x1 = (((body.cx + 80.0 - g.origin[0]) / s).ceil().max(0.0) as usize).min(w);
    let ymid = body.y_min + 0.35 * (body.y_max - body.y_min);
    let y0 = (((ymid - g.origin[1]) / s).floor().max(0.0) as usize).min(h);
    let y1 = (((body.y_max - g.origin[1]) / s).ceil().max(0.0) as usize).min(h);
    for y in y0..y1 {
        for x in x0..x1 {
            let v = slice[y * w + x];
            if !(-120.0..=cfg.canal_max_hu as f32).contains(&v) {
                continue;
            }
            let mut hits = 0;
            for (d, &r) in dirs.iter().zip(&reaches) {
                if (1..=r).any(|k| bone(x as isize + d.0 * k, y as isize + d.1 * k)) {
                    hits += 1;
                }
            }
            px[y * w + x] = hits >= 6;
        }
    }
    Mask { w, h, px }
}

/// Canal candidates on slice `k`.
pub fn candidates(g: &Grid, k: usize, cfg: &ClassicalConfig) -> Vec<CanalCandidate> {
    let w = g.dims[0];
    let s = g.spacing;
    let slice = g.slice(k);
    let Some(body) = outline(g, slice) else {
        return vec![];
    };
    let enclosed = enclosure_mask(g, slice, &body, cfg);
    let mut out = Vec::new();
    for hole in mask2d::components(&enclosed, true) {
        let area = hole.pixels.len() as f64 * s * s;
        if !(cfg.canal_area_mm2.0..=cfg.canal_area_mm2.1).contains(&area) {
            continue;
        }
        let mean: f64 =
            hole.pixels.iter().map(|&p| slice[p] as f64).sum::<f64>() / hole.pixels.len() as f64;
        if !(-150.0..=cfg.canal_max_hu).contains(&mean) {
            continue;
        }
        let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
        for &p in &hole.pixels {
            x0 = x0.min(p % w);
            x1 = x1.max(p % w);
            y0 = y0.min(p / w);
            y1 = y1.max(p / w);
        }
        let (bw, bh) = ((x1 - x0 + 1) as f64, (y1 - y0 + 1) as f64);
        if bw.max(bh) / bw.min(bh) > 3.0 {
            continue;
        }
        // Fill ratio: a round hole fills ~π/4 of its box; slivers between ribs do not.
        if (hole.pixels.len() as f64) < 0.45 * bw * bh {
            continue;
        }
        let (cxp, cyp) = hole.centroid(w);
        let (x, y) = (g.origin[0] + cxp * s, g.origin[1] + cyp * s);
        let depth = (body.y_max - body.y_min).max(1.0);
        let post = (y - body.y_min) / depth;
        if post < 0.45 {
            continue;
        }
        let radius = (area / std::f64::consts::PI).sqrt();
        // Something solid (vertebral body or disc) directly anterior; lung or gas is not.
        let solid = mean_box(g, k, x - 6.0, x + 6.0, y - radius - 20.0, y - radius - 3.0);
        if solid < -200.0 {
            continue;
        }
        let dx = (x - body.cx) / 60.0;
        let size = ((area - 250.0) / 450.0).abs();
        let score = (1.0 - 0.5 * dx * dx - 0.5 * size + if solid > 60.0 { 0.3 } else { 0.0 })
            .clamp(0.05, 1.3);
        out.push(CanalCandidate {
            k,
            x,
            y,
            radius,
            score,
        });
    }
    out
}

/// Mean HU of slice `k` in an axis-aligned patient-space box (x0..x1, y0..y1 mm).
pub fn mean_box(g: &Grid, k: usize, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    let s = g.spacing;
    let ix0 = ((x0 - g.origin[0]) / s).round().max(0.0) as usize;
    let ix1 = (((x1 - g.origin[0]) / s).round().max(0.0) as usize).min(g.dims[0] - 1);
    let iy0 = ((y0 - g.origin[1]) / s).round().max(0.0) as usize;
    let iy1 = (((y1 - g.origin[1]) / s).round().max(0.0) as usize).min(g.dims[1] - 1);
    let (mut sum, mut n) = (0.0, 0usize);
    for y in iy0..=iy1 {
        for x in ix0..=ix1 {
            sum += g.at(x, y, k) as f64;
            n += 1;
        }
    }
    if n == 0 || ix0 > ix1 || iy0 > iy1 {
        -1000.0
    } else {
        sum / n as f64
    }
}

/// Steepest in-plane drift of the canal per mm of z between linked candidates, before the
/// [`CANAL_OVERLAP`] allowance. A steeper limit alone (1.3) linked a stray candidate on an
/// acceptance phantom and made a false Genant 3 (see docs/detection.md).
const MAX_CANAL_SLOPE: f64 = 0.8;

/// Share of the smaller canal radius a link may drift beyond [`MAX_CANAL_SLOPE`]: neighbouring
/// slices' canal cross-sections still overlap. At the cervicothoracic junction of a patient lying
/// with the neck flexed the canal runs forward by about as much as it rises (real chest CT: 45 mm
/// over 50 mm from T2 to C6); the slope limit alone stopped the track below T2 there.
const CANAL_OVERLAP: f64 = 0.5;

/// Link candidates of all slices into the best-scoring continuous track (longest path in the DAG
/// of candidates ordered by slice, edges up to `max_gap` slices apart).
pub fn track(g: &Grid, cands: &[CanalCandidate], cfg: &ClassicalConfig) -> Option<CanalTrack> {
    if cands.is_empty() {
        return None;
    }
    let s = g.spacing;
    let max_gap = ((cfg.canal_max_gap_mm / s).ceil() as usize).max(1);
    let n = cands.len();
    // Candidates are produced slice by slice, so `cands` is sorted by k.
    let mut best = vec![0.0f64; n];
    let mut prev = vec![usize::MAX; n];
    let mut first_of_slice = vec![0usize; g.dims[2] + 1];
    {
        let mut i = 0;
        for (k, first) in first_of_slice.iter_mut().enumerate() {
            while i < n && cands[i].k < k {
                i += 1;
            }
            *first = i;
        }
    }
    for j in 0..n {
        let cj = cands[j];
        let reward = cj.score * s;
        best[j] = reward;
        let k_lo = cj.k.saturating_sub(max_gap);
        for i in first_of_slice[k_lo]..first_of_slice[cj.k] {
            let ci = cands[i];
            let dk = (cj.k - ci.k) as f64;
            let d2 = (cj.x - ci.x).powi(2) + (cj.y - ci.y).powi(2);
            let allowed = MAX_CANAL_SLOPE * dk * s + CANAL_OVERLAP * ci.radius.min(cj.radius);
            if d2 > allowed * allowed || d2 > 25.0 * 25.0 {
                continue;
            }
            let cost = cfg.canal_gap_cost * (dk - 1.0) * s + 0.2 * d2 / dk;
            let v = best[i] + reward - cost;
            if v > best[j] {
                best[j] = v;
                prev[j] = i;
            }
        }
    }
    let (mut j, _) = best.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let mut chain = vec![j];
    while prev[j] != usize::MAX {
        j = prev[j];
        chain.push(j);
    }
    chain.reverse();
    let chain = extend_caudally(cands, &first_of_slice, chain, s, cfg);
    let k_start = cands[chain[0]].k;
    let k_end = cands[*chain.last()?].k;
    let mut points = Vec::with_capacity(k_end - k_start + 1);
    let mut longest_gap = 0usize;
    for w in chain.windows(2) {
        let (a, b) = (cands[w[0]], cands[w[1]]);
        let dk = b.k - a.k;
        longest_gap = longest_gap.max(dk - 1);
        for step in 0..dk {
            let f = step as f64 / dk as f64;
            points.push((
                a.x + f * (b.x - a.x),
                a.y + f * (b.y - a.y),
                a.radius + f * (b.radius - a.radius),
                step == 0,
            ));
        }
    }
    let last = cands[*chain.last()?];
    points.push((last.x, last.y, last.radius, true));
    Some(CanalTrack {
        k_start,
        points,
        longest_gap_mm: longest_gap as f64 * s,
    })
}

/// Follow the canal caudally beyond the linked track into the sacral canal. Below L5 the canal
/// bends posteriorly (lumbosacral angle) more steeply than the track's continuity cost allows, and
/// the thin sacral roof leaves slices without candidates. From the caudal end of `chain` (indices
/// into `cands`, cranial-ward ascending k), step to the nearest lower slice within
/// `canal_caudal_max_gap_mm` holding a candidate that stays near the midline (lateral drift
/// ≤ 0.3 mm/mm plus 2.5 voxels) and moves anteriorly little but posteriorly up to
/// `canal_caudal_posterior_slope` mm per mm; stop after `canal_caudal_extension_mm`.
fn extend_caudally(
    cands: &[CanalCandidate],
    first_of_slice: &[usize],
    mut chain: Vec<usize>,
    spacing: f64,
    cfg: &ClassicalConfig,
) -> Vec<usize> {
    let Some(&start) = chain.first() else {
        return chain;
    };
    let k_end = cands[start].k as f64;
    let max_gap = ((cfg.canal_caudal_max_gap_mm / spacing).round() as usize).max(1);
    let tol = 2.5 * spacing;
    let mut cur = start;
    loop {
        let c = cands[cur];
        if (k_end - c.k as f64) * spacing >= cfg.canal_caudal_extension_mm {
            break;
        }
        let mut next = None;
        for k in (c.k.saturating_sub(max_gap)..c.k).rev() {
            let dz = (c.k - k) as f64 * spacing;
            let reach = 0.3 * dz + tol;
            next = (first_of_slice[k]..first_of_slice[k + 1])
                .filter(|&i| {
                    let dx = (cands[i].x - c.x).abs();
                    let dy = cands[i].y - c.y;
                    dx <= reach && dy >= -reach && dy <= cfg.canal_caudal_posterior_slope * dz + tol
                })
                .min_by(|&a, &b| {
                    let off = |i: usize| (cands[i].x - c.x).abs() - 0.5 * cands[i].score * tol;
                    off(a).total_cmp(&off(b))
                });
            if next.is_some() {
                break;
            }
        }
        match next {
            Some(i) => {
                chain.insert(0, i);
                cur = i;
            }
            None => break,
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(k: usize, x: f64, y: f64) -> CanalCandidate {
        CanalCandidate {
            k,
            x,
            y,
            radius: 7.0,
            score: 1.0,
        }
    }

    #[test]
    fn track_follows_a_canal_running_forward_as_fast_as_it_rises() {
        // The cervicothoracic bend of a patient lying with the neck flexed: over k 0–9 (2 mm
        // slices) the canal runs forward 1.8 mm per slice (0.9 mm per mm, beyond the 0.8 slope
        // limit alone) and then straight down the thorax over k 10–39.
        let g = Grid {
            dims: [4, 4, 40],
            spacing: 2.0,
            origin: [0.0; 3],
            data: vec![0.0; 4 * 4 * 40],
        };
        let mut cands: Vec<CanalCandidate> = (10..40).map(|k| cand(k, 0.0, 0.0)).collect();
        cands.splice(0..0, (0..10).map(|k| cand(k, 0.0, -1.8 * (10 - k) as f64)));
        let t = track(&g, &cands, &ClassicalConfig::default()).expect("a track");
        assert_eq!(t.k_start, 0, "the bend is followed to the top");
        assert!(
            t.points.iter().all(|p| p.3),
            "every slice's candidate linked"
        );
    }

    #[test]
    fn track_follows_the_canal_posteriorly_into_the_sacrum_but_not_to_look_alikes() {
        let g = Grid {
            dims: [4, 4, 40],
            spacing: 2.0,
            origin: [0.0; 3],
            data: vec![0.0; 4 * 4 * 40],
        };
        // Lumbar canal straight over k 20–39; below it the sacral canal swings 25 mm posteriorly
        // over 16 mm of z with missing slices, beside a lateral and an anterior look-alike.
        let mut cands: Vec<CanalCandidate> = vec![
            cand(12, 1.0, 25.0),
            cand(15, 0.0, 15.0),
            cand(16, 0.0, 12.0),
            cand(17, 0.0, -15.0),
            cand(18, 30.0, 0.0),
        ];
        cands.extend((20..40).map(|k| cand(k, 0.0, 0.0)));
        let cfg = ClassicalConfig::default();
        let t = track(&g, &cands, &cfg).expect("a track");
        assert_eq!(t.k_start, 12);
        assert_eq!(t.points.len(), 28);
        let at = |k: usize| t.points[k - t.k_start];
        assert!(at(16).3 && at(16).1 == 12.0);
        // The look-alikes are passed over: k 17 and 18 are interpolated between k 16 and 20.
        assert!(!at(17).3 && !at(18).3 && at(18).0.abs() < 1e-9 && at(17).1 > 0.0);
        // Without the caudal extension the steep swing is not followed.
        let cfg = ClassicalConfig {
            canal_caudal_extension_mm: 0.0,
            ..ClassicalConfig::default()
        };
        assert_eq!(track(&g, &cands, &cfg).expect("a track").k_start, 20);
    }
}
