//! Endplates of one vertebral body in the straightened image.
//!
//! The body's antero-posterior extent is measured at mid-height (osteophytes at the endplate rims
//! beyond the anterior cortex line therefore never widen it). Sub-columns every 5 % of that depth
//! give one profile each along the arc; on each, the endplate's outer surface is the innermost
//! strong bone-to-disc drop, located at the half level between the endplate and the disc. The
//! six keypoints sit on the posterior (15 %), middle (50 %) and anterior (85 %) columns. A narrow
//! focal pit (< 1/3 of the depth) is a Schmorl node, not a biconcave deformity: it is flagged and
//! the middle keypoint is placed on the endplate line around it.

use crate::{config::ClassicalConfig, profile, straighten::Straightened};

/// A cement deposit's flanks end where the profile stops falling or reaches this level (the
/// marrow of even an osteoporotic body lies near or below it; the disc far below).
pub(crate) const CEMENT_FLANK_FLOOR_HU: f64 = 150.0;

/// A sub-column this far (mm) from its endplate's median position is a stray edge.
const STRAY_MM: f64 = 7.0;

/// Longest run of sub-columns at a rim (15 % of the depth) dropped when it steps outward.
const RIM_RUN: usize = 3;

/// Step (mm) between neighbouring sub-columns beyond which a rim run is not this endplate.
const RIM_STEP_MM: f64 = 3.0;

/// A lone sub-column this far (mm) off both neighbours is a stray edge.
const SPIKE_MM: f64 = 2.0;

/// A Schmorl node's steepest wall, as a fraction of its depth, between neighbouring sub-columns
/// (5 % of the depth apart).
const SCHMORL_WALL_FRACTION: f64 = 0.5;

/// How far (mm) an endplate may read beyond the line joining its rims before it is taken for
/// something in the disc.
const RIM_TOLERANCE_MM: f64 = 1.0;

/// Depth fractions of the sub-columns read from the narrow mid-sagittal band (the middle of a
/// concave endplate).
const CENTRAL_FRACTIONS: std::ops::RangeInclusive<f64> = 0.3..=0.7;

/// Below this a profile beyond an endplate is not a disc (the scan's edge, air).
const DISC_FLOOR_HU: f64 = -200.0;

/// How far (mm) beyond a dense focus inside the body the search for the cortex goes on.
const BONE_ISLAND_REACH_MM: f64 = 14.0;

/// Length (mm) beyond a cortex over which soft tissue must read low.
const SOFT_TISSUE_RUN_MM: f64 = 3.0;

/// Column fractions of the antero-posterior depth, from the posterior cortex.
pub const COLUMNS: [f64; 3] = [0.15, 0.5, 0.85];

/// Depth fractions of the sub-columns, from the posterior cortex: every 5 % from 10 to 90 %.
/// Each is the `f64` nearest its decimal (computed as a ratio of integers, not by repeated
/// addition), so range tests such as [`CENTRAL_FRACTIONS`] and [`COLUMNS`] match exactly.
pub(crate) fn sub_column_fractions() -> Vec<f64> {
    (0..17).map(|i| f64::from(10 + 5 * i) / 100.0).collect()
}

/// Endplates of one body, in straightened coordinates.
#[derive(Debug, Clone)]
pub struct BodyEndplates {
    /// Anterior offsets of the posterior and anterior cortex at mid-height, mm.
    pub u_post: f64,
    /// See `u_post`.
    pub u_ant: f64,
    /// Anterior offset of the posterior, middle and anterior columns, mm.
    pub u_cols: [f64; 3],
    /// Arc length of the superior endplate surface at each column, mm.
    pub s_sup: [f64; 3],
    /// Arc length of the inferior endplate surface at each column, mm.
    pub s_inf: [f64; 3],
    /// Median drop (HU) from endplate to disc over the sub-columns: edge strength.
    pub edge_hu: f64,
    /// Fraction of sub-columns where both endplates were found.
    pub found_fraction: f64,
    /// A Schmorl node was found on the superior or inferior endplate.
    pub schmorl: bool,
    /// Highest HU inside the body (cement, metal).
    pub max_hu: f64,
    /// Anterior offsets of the sub-columns, posterior to anterior, mm.
    pub u_sub: Vec<f64>,
    /// Superior endplate surface on each sub-column (arc length, mm), after repairs.
    pub sup_sub: Vec<Option<f64>>,
    /// Inferior endplate surface on each sub-column (arc length, mm), after repairs.
    pub inf_sub: Vec<Option<f64>>,
}

/// Antero-posterior cortex positions from a profile across the body at mid-height.
pub fn ap_extent(q: &[f64], img: &Straightened, cfg: &ClassicalConfig) -> Option<(f64, f64)> {
    let c0 = img.col_of(0.0);
    let lim = (cfg.body_max_half_depth_mm / img.du) as usize;
    let edge = |dir: isize| -> Option<f64> {
        let end = (c0 as isize + dir * lim as isize).clamp(0, q.len() as isize - 1) as usize;
        // Air (trachea, lung) beyond the soft tissue must not lower the level: clamp at fat.
        let outer = if dir < 0 {
            profile::min_in(q, end as isize, c0 as isize).1
        } else {
            profile::min_in(q, c0 as isize, end as isize).1
        }
        .max(-50.0);
        let mut run_max = q[c0];
        let mut i = c0 as isize;
        let mut first: Option<(isize, f64)> = None;
        let reach = (BONE_ISLAND_REACH_MM / img.du) as isize;
        let beyond = (SOFT_TISSUE_RUN_MM / img.du).ceil() as isize;
        let q_at = |k: isize| q[k.clamp(0, q.len() as isize - 1) as usize];
        while i != end as isize {
            let j = i + dir;
            run_max = run_max.max(q[i as usize]);
            let level = 0.5 * (run_max + outer);
            let (a, b) = (q[i as usize], q[j as usize]);
            if a >= level && b < level && run_max - outer > 60.0 {
                let f = (a - level) / (a - b).max(1e-9);
                let u = img.u0 + (i as f64 + dir as f64 * f) * img.du;
                // A dense focus inside the body (a bone island, sclerosis) raises the level, so
                // the marrow beyond it reads as the outside. Beyond a cortex soft tissue stays
                // low; marrow stays near the body's own level. Then the walk goes on, once and
                // a few mm, with the level of what lies beyond the focus.
                let mut after: Vec<f64> = (1..=beyond).map(|k| q_at(j + dir * k)).collect();
                let mut inside: Vec<f64> = (0..=(i - c0 as isize).abs())
                    .map(|k| q_at(c0 as isize + dir * k))
                    .collect();
                // The marrow's level: the lower quartile (a focus may fill most of the walk).
                inside.sort_by(f64::total_cmp);
                let body = inside[inside.len() / 4];
                let soft = crate::straighten::median(&mut after) < outer + 0.5 * (body - outer);
                match first {
                    None if !soft && dir > 0 => {
                        first = Some((i, u));
                        run_max = b;
                    }
                    Some((_, u_first)) if !soft => return Some(u_first),
                    Some((at, u_first)) => {
                        // What lay between must have been marrow, not soft tissue with a
                        // bright arc in it (a ring artefact beside the cortex).
                        let mut between: Vec<f64> =
                            (0..=(i - at).abs()).map(|k| q_at(at + dir * k)).collect();
                        let marrow =
                            crate::straighten::median(&mut between) >= outer + 0.5 * (body - outer);
                        return Some(if marrow { u } else { u_first });
                    }
                    None => return Some(u),
                }
            }
            if let Some((at, u_first)) = first {
                if (i - at).abs() > reach {
                    return Some(u_first);
                }
            }
            i = j;
        }
        first.map(|(_, u)| u)
    };
    Some((edge(-1)?, edge(1)?))
}

/// One endplate on one profile: walking from the body centre `mid` towards the disc at `disc`
/// (row indices), the innermost position where the step from the bright side (max within 3 mm
/// inward) to the dark side (min within 3 mm outward) reaches 60 % of the strongest step in the
/// window; refined to the half-level crossing between that endplate peak and the disc.
/// Returns (row, step in HU).
///
/// In a short body (crushed, or the middle column of a biconcave one) the opposite endplate's
/// subchondral layer lies within a few mm of the centre and reads as this endplate's bright side,
/// so the first strong step falls right at the centre. Then the search is repeated with the
/// bright side stopping at the centre. (Not always: a dark basivertebral channel at the centre
/// of an osteoporotic body would then read as a step.)
pub(crate) fn endplate_edge(
    p: &[f64],
    mid: usize,
    disc: usize,
    min_drop: f64,
) -> Option<(f64, f64)> {
    match edge_search(p, mid, disc, min_drop, false) {
        Some((e, _, _)) if (e - mid as isize).abs() < 6 => {
            edge_search(p, mid, disc, min_drop, true).map(|(_, x, d)| (x, d))
        }
        found => found.map(|(_, x, d)| (x, d)),
    }
}

/// [`endplate_edge`]'s walk; `clip` stops the bright side at the centre. Returns (first strong
/// step row, refined row, step in HU).
fn edge_search(
    p: &[f64],
    mid: usize,
    disc: usize,
    min_drop: f64,
    clip: bool,
) -> Option<(isize, f64, f64)> {
    let dir: isize = if disc >= mid { 1 } else { -1 };
    let n = p.len() as isize;
    let w = 6isize;
    let m = if clip { mid as isize } else { -dir * n };
    let step = |i: isize| -> f64 {
        let (inner, outer) = if dir > 0 {
            (
                profile::max_in(p, (i - w).max(m), i).1,
                profile::min_in(p, i, i + w).1,
            )
        } else {
            (
                profile::max_in(p, i, (i + w).min(m)).1,
                profile::min_in(p, i - w, i).1,
            )
        };
        inner - outer
    };
    let stop = (disc as isize + dir * 3).clamp(0, n - 1);
    let mut steps = Vec::new();
    let mut i = mid as isize;
    while i != stop {
        steps.push((i, step(i)));
        i += dir;
    }
    let strongest = steps.iter().map(|s| s.1).fold(0.0f64, f64::max);
    if strongest < min_drop {
        return None;
    }
    let &(e, step_at_e) = steps.iter().find(|s| s.1 >= 0.6 * strongest)?;
    // Half level between the endplate peak just inside and the disc just outside.
    let r = 8isize;
    let (ip, inner) = if dir > 0 {
        profile::max_in(p, (e - r).max(m), e + 2)
    } else {
        profile::max_in(p, e - 2, (e + r).min(m))
    };
    // The disc just outside the peak. Under a thick sclerotic endplate (a dense layer several
    // mm deep) the peak lies far inside and that window stays in the dense layer (its drop is a
    // fraction of the step found): then the disc is sought from the step instead.
    let outside = |from: isize| {
        if dir > 0 {
            profile::min_in(p, from, from + r)
        } else {
            profile::min_in(p, from - r, from)
        }
    };
    let (mut op, mut outer) = outside(ip as isize);
    if inner - outer < 0.5 * step_at_e {
        let from_step = outside(if dir > 0 {
            e.max(ip as isize)
        } else {
            e.min(ip as isize)
        });
        // Only a soft-tissue disc: not the scan's edge (samples outside the volume) or air.
        if from_step.1 > DISC_FLOOR_HU {
            (op, outer) = from_step;
        }
    }
    let level = 0.5 * (inner + outer);
    let x = profile::first_fall_below(p, ip, op, level)?;
    Some((e, x, inner - outer))
}

/// Least-squares quadratic through `(x, y)` pairs; returns coefficients (c0, c1, c2).
fn fit_quadratic(pts: &[(f64, f64)]) -> Option<[f64; 3]> {
    if pts.len() < 3 {
        return None;
    }
    let mut m = [[0.0f64; 4]; 3];
    for &(x, y) in pts {
        let b = [1.0, x, x * x];
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] += b[r] * b[c];
            }
            m[r][3] += b[r] * y;
        }
    }
    for col in 0..3 {
        let piv = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        m.swap(col, piv);
        if m[col][col].abs() < 1e-12 {
            return None;
        }
        for r in 0..3 {
            if r != col {
                let f = m[r][col] / m[col][col];
                let pivot = m[col];
                for (c, v) in m[r].iter_mut().enumerate().skip(col) {
                    *v -= f * pivot[c];
                }
            }
        }
    }
    Some([m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]])
}

/// Forget sub-columns that read more than `stray` mm from the endplate's median position: even a
/// severe wedge tilts an endplate by less, so such a reading is an edge inside the body or the
/// disc (the keypoint columns then take their neighbours'). Needs at least five readings.
fn drop_strays(e: &mut [Option<f64>], stray: f64) {
    let mut v: Vec<f64> = e.iter().flatten().copied().collect();
    if v.len() < 5 {
        return;
    }
    let median = crate::straighten::median(&mut v);
    for x in e.iter_mut() {
        if x.is_some_and(|x| (x - median).abs() > stray) {
            *x = None;
        }
    }
}

/// Forget a run of at most [`RIM_RUN`] sub-columns at either rim that steps more than
/// [`RIM_STEP_MM`] beyond its inner neighbour, `outward` (+1: towards larger arc length, the
/// inferior endplate; −1 the superior): an endplate does not jump a disc's height between
/// sub-columns 5 % of the depth apart, so that run is the next body's endplate across the disc
/// (or a marginal osteophyte). A wedge, a crush or a pit moves the endplate inward and stays.
fn drop_outward_rim_steps(e: &mut [Option<f64>], outward: f64) {
    let n = e.len();
    for from_end in [false, true] {
        let idx = |k: usize| if from_end { n - 1 - k } else { k };
        for run in 1..=RIM_RUN.min(n.saturating_sub(2)) {
            let (Some(edge), Some(inner)) = (e[idx(run - 1)], e[idx(run)]) else {
                continue;
            };
            if outward * (edge - inner) > RIM_STEP_MM {
                for k in 0..run {
                    e[idx(k)] = None;
                }
                break;
            }
        }
    }
}

/// Median over the sub-columns of the height between two endplate lines (0 when none).
fn median_height(sup: &[Option<f64>], inf: &[Option<f64>]) -> f64 {
    let mut h: Vec<f64> = sup
        .iter()
        .zip(inf)
        .filter_map(|(a, b)| Some((*b)? - (*a)?))
        .collect();
    if h.is_empty() {
        return 0.0;
    }
    crate::straighten::median(&mut h)
}

/// Replace a lone sub-column that reads more than `spike` mm off both its neighbours, on the same
/// side, by their mean: one stray edge is not a pit (a Schmorl node spans several sub-columns).
fn despike(e: &mut [Option<f64>], spike: f64) {
    for k in 1..e.len().saturating_sub(1) {
        let (Some(a), Some(v), Some(b)) = (e[k - 1], e[k], e[k + 1]) else {
            continue;
        };
        if (v - a).abs() > spike && (v - b).abs() > spike && (v - a).signum() == (v - b).signum() {
            e[k] = Some(0.5 * (a + b));
        }
    }
}

/// The straight line joining an endplate's two rims (mean of the sub-columns ≤ 20 % and ≥ 85 %
/// of the depth), as a function of the depth fraction.
fn rim_line(fr: &[f64], e: &[Option<f64>]) -> Option<impl Fn(f64) -> f64> {
    let rim = |lo: f64, hi: f64| -> Option<(f64, f64)> {
        let v: Vec<(f64, f64)> = fr
            .iter()
            .zip(e)
            .filter(|(f, _)| (lo..=hi).contains(*f))
            .filter_map(|(&f, v)| v.map(|v| (f, v)))
            .collect();
        (!v.is_empty()).then(|| {
            let n = v.len() as f64;
            (
                v.iter().map(|p| p.0).sum::<f64>() / n,
                v.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
    };
    let (f0, y0) = rim(0.0, 0.2 + 1e-9)?;
    let (f1, y1) = rim(0.85 - 1e-9, 1.0)?;
    (f1 > f0).then_some(move |f: f64| y0 + (y1 - y0) * (f - f0) / (f1 - f0))
}

/// Keep an endplate inside the line joining its rims. Endplates are flat or concave, never
/// bulging into the disc: a surface read beyond the rim line by more than `tolerance` mm is
/// the far side of something bright in the disc (a calcified disc), not this body's bone. Such
/// a sub-column is searched again with the walk stopped at the rim line (`research` gets the
/// sub-column and the arc length of the line there and returns the surface found, if any);
/// failing that it takes the line. Returns whether any sub-column was confined.
fn confine_to_rim_line(
    fr: &[f64],
    e: &mut [Option<f64>],
    inward: f64,
    tolerance: f64,
    mut research: impl FnMut(usize, f64) -> Option<f64>,
) -> bool {
    let Some(line) = rim_line(fr, e) else {
        return false;
    };
    let outward = |f: f64, v: f64| -inward * (v - line(f)) > tolerance;
    let mut confined = false;
    for (k, &f) in fr.iter().enumerate() {
        let Some(v) = e[k] else { continue };
        if !outward(f, v) {
            continue;
        }
        confined = true;
        e[k] = Some(match research(k, line(f)) {
            Some(again) if !outward(f, again) => again,
            _ => line(f),
        });
    }
    confined
}

/// Whether the endplate's deepest depression, measured from the line through its rim (the
/// outermost sub-columns, ≤ 20 % and ≥ 85 % of the depth), is broad: over 38 % of the depth
/// at a quarter of its depth. A biconcave fracture depresses the whole middle of the endplate;
/// a Schmorl node is a focal pit under ~1/3 of the depth (`shared/DETECTION.md`). The quadratic
/// fit that finds pits absorbs most of a broad depression, leaving a narrow residual peak, so
/// the width is judged against the rim line instead.
fn broad_depression(fr: &[f64], e: &[Option<f64>], inward: f64) -> bool {
    let Some(line) = rim_line(fr, e) else {
        return false;
    };
    let d: Vec<Option<f64>> = fr
        .iter()
        .zip(e)
        .map(|(&f, v)| v.map(|v| inward * (v - line(f))))
        .collect();
    let Some((k, deepest)) = d
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .max_by(|x, y| x.1.total_cmp(&y.1))
    else {
        return false;
    };
    let above = |i: usize| d[i].is_some_and(|v| v >= 0.25 * deepest);
    let (mut a, mut b) = (k, k);
    while a > 0 && above(a - 1) {
        a -= 1;
    }
    while b + 1 < d.len() && above(b + 1) {
        b += 1;
    }
    fr[b] - fr[a] > 0.38
}

/// Replace a narrow focal pit (a Schmorl node) in an endplate line by the line around it.
/// `inward` is +1 when a pit moves the surface to larger arc length. Returns whether one was found.
/// `opposite` is the other endplate of the body: where it is depressed at the same place by at
/// least half as much (and `min_depth`), both endplates are caved in: a biconcave fracture.
fn repair_schmorl(
    fr: &[f64],
    e: &mut [Option<f64>],
    inward: f64,
    opposite: (&[Option<f64>], f64),
    min_depth: f64,
) -> bool {
    let pts: Vec<(f64, f64)> = fr
        .iter()
        .zip(e.iter())
        .filter_map(|(&f, v)| v.map(|v| (f, v)))
        .collect();
    let Some(q) = fit_quadratic(&pts) else {
        return false;
    };
    let res = |f: f64, v: f64| inward * (v - (q[0] + q[1] * f + q[2] * f * f));
    let (mut worst, mut wi) = (0.0, usize::MAX);
    for (i, (&f, v)) in fr.iter().zip(e.iter()).enumerate() {
        if let Some(v) = v {
            let r = res(f, *v);
            if r > worst {
                worst = r;
                wi = i;
            }
        }
    }
    if worst < min_depth * 0.6 || wi == usize::MAX {
        return false;
    }
    let deep = |i: usize| e[i].map(|v| res(fr[i], v) > 0.35 * worst).unwrap_or(false);
    let (mut a, mut b) = (wi, wi);
    while a > 0 && deep(a - 1) {
        a -= 1;
    }
    while b + 1 < e.len() && deep(b + 1) {
        b += 1;
    }
    let width = fr[b] - fr[a];
    if a == 0 || b + 1 == e.len() || width > 0.3 {
        return false;
    }
    if broad_depression(fr, e, inward) {
        return false;
    }
    let rest: Vec<(f64, f64)> = fr
        .iter()
        .zip(e.iter())
        .enumerate()
        .filter(|(i, _)| *i < a || *i > b)
        .filter_map(|(_, (&f, v))| v.map(|v| (f, v)))
        .collect();
    let Some(q2) = fit_quadratic(&rest) else {
        return false;
    };
    let depth = (a..=b)
        .filter_map(|i| {
            e[i].map(|v| inward * (v - (q2[0] + q2[1] * fr[i] + q2[2] * fr[i] * fr[i])))
        })
        .fold(0.0f64, f64::max);
    if depth < min_depth {
        return false;
    }
    // A node is punched out: at least one wall drops by half its depth between neighbouring
    // sub-columns. A fracture's depression slopes in smoothly.
    let steepest_wall = (a.saturating_sub(1)..=b.min(e.len() - 2))
        .filter_map(|i| Some((e[i + 1]? - e[i]?).abs()))
        .fold(0.0f64, f64::max);
    if steepest_wall < SCHMORL_WALL_FRACTION * depth {
        return false;
    }
    let (other, other_inward) = opposite;
    if let Some(line) = rim_line(fr, other) {
        let caved = (a..=b)
            .filter_map(|i| other[i].map(|v| other_inward * (v - line(fr[i]))))
            .fold(0.0f64, f64::max);
        if caved >= min_depth.max(0.5 * depth) {
            return false;
        }
    }
    for i in a..=b {
        e[i] = Some(q2[0] + q2[1] * fr[i] + q2[2] * fr[i] * fr[i]);
    }
    true
}

/// Measure the body between the discs at arc lengths `s_up` and `s_down`.
///
/// `edge_bias` shifts each endplate surface outward (+) or inward (−), mm.
pub fn measure(
    img: &Straightened,
    s_up: f64,
    s_down: f64,
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> Option<BodyEndplates> {
    match measure_or_disc(img, s_up, s_down, edge_bias, cfg) {
        Measured::Body(b) => Some(b),
        _ => None,
    }
}

/// What lies between two discs of the chain.
#[derive(Debug, Clone)]
pub enum Measured {
    /// A vertebral body with both endplates.
    Body(BodyEndplates),
    /// Under half the pitch filled at two of three columns: a disc with its two endplates,
    /// centred at this arc length, when the chain is mis-phased (its "discs" are mid-body dips).
    Disc(f64),
    /// Nothing measurable.
    Nothing,
}

/// A calcified disc carries the middle of an endplate into the disc: confine both endplates to
/// their rim lines, searching again short of the line; unless that confines the body into a
/// sliver (rims misread, a sclerotic focus under a rim), when the walk's own reading stands.
fn confine_to_rims(
    fr: &[f64],
    (sup, inf): (&mut Vec<Option<f64>>, &mut Vec<Option<f64>>),
    profiles: &[Vec<f64>],
    (mid, ds, edge_bias): (usize, f64, f64),
    pitch: f64,
    cfg: &ClassicalConfig,
) {
    let min_drop = cfg.endplate_min_drop_hu;
    let row = |s: f64| (s / ds).round().max(0.0) as usize;
    let (sup_walked, inf_walked) = (sup.clone(), inf.clone());
    confine_to_rim_line(fr, sup, 1.0, RIM_TOLERANCE_MM, |k, s_line| {
        endplate_edge(
            &profiles[k],
            mid,
            row(s_line + edge_bias).min(mid),
            min_drop,
        )
        .map(|(x, _)| x * ds - edge_bias)
    });
    confine_to_rim_line(fr, inf, -1.0, RIM_TOLERANCE_MM, |k, s_line| {
        endplate_edge(
            &profiles[k],
            mid,
            row(s_line - edge_bias).max(mid),
            min_drop,
        )
        .map(|(x, _)| x * ds + edge_bias)
    });
    // Rims misread (a sclerotic focus under a rim) would confine a whole body into a sliver:
    // then the walk's own reading stands.
    if median_height(sup, inf) < cfg.body_min_pitch_fraction * pitch
        && median_height(&sup_walked, &inf_walked) >= cfg.body_min_pitch_fraction * pitch
    {
        *sup = sup_walked;
        *inf = inf_walked;
    }
}

/// Endplate edges found on each sub-column, with their strengths and the profiles they were
/// found on.
struct SubColumnEdges {
    sup: Vec<Option<f64>>,
    inf: Vec<Option<f64>>,
    drops: Vec<f64>,
    profiles: Vec<Vec<f64>>,
}

/// Walk each sub-column (depth fractions `fr` of the body spanning `depth` mm from `u_post`) from
/// the body's middle row up and down to its endplates (`rows`: middle, upper and lower disc).
fn sub_column_edges(
    img: &Straightened,
    fr: &[f64],
    (u_post, depth): (f64, f64),
    (mid, up, down): (usize, usize, usize),
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> SubColumnEdges {
    let ds = img.ds;
    let mut sup = vec![None; fr.len()];
    let mut inf = vec![None; fr.len()];
    let mut drops = Vec::new();
    let half_w = (0.04 * depth).max(0.75);
    let mut profiles = Vec::with_capacity(fr.len());
    for (k, &f) in fr.iter().enumerate() {
        let u = u_post + f * depth;
        // The central sub-columns, where a concave endplate is deepest, read the narrow band
        // (the wide band's shallower sides would fill the bowl in); the rims keep the wide,
        // quieter band.
        let band = if CENTRAL_FRACTIONS.contains(&f) {
            img.narrow_profile(u - half_w, u + half_w)
        } else {
            img.profile(u - half_w, u + half_w)
        };
        let mut p = profile::smooth(&band, 0.5 / ds);
        // Cement inside the body has edges of its own, far stronger than the endplates': the
        // endplates are measured on the profile with the deposit flattened.
        profile::flatten_bumps_above(&mut p, cfg.cement_hu, CEMENT_FLANK_FLOOR_HU);
        if let Some((x, dr)) = endplate_edge(&p, mid, up, cfg.endplate_min_drop_hu) {
            sup[k] = Some(x * ds - edge_bias);
            drops.push(dr);
        }
        if let Some((x, dr)) = endplate_edge(&p, mid, down, cfg.endplate_min_drop_hu) {
            inf[k] = Some(x * ds + edge_bias);
            drops.push(dr);
        }
        profiles.push(p);
    }
    SubColumnEdges {
        sup,
        inf,
        drops,
        profiles,
    }
}

/// How far (mm) inside the line of its central sub-columns a rim-third reading must lie before
/// the stretch beyond it is checked for marrow.
const INNER_READING_MM: f64 = 2.5;

/// How far (HU) below the body's marrow level the stretch beyond an inner reading may read and
/// still be marrow: a depressed endplate has disc beyond it (soft tissue, 40–100 HU, well below
/// the marrow of all but the most osteoporotic bodies).
const MARROW_TOLERANCE_HU: f64 = 40.0;

/// How far (mm) from the central line an edge found beyond an inner reading may lie and still be
/// the endplate it continues.
const CONTINUATION_MM: f64 = 2.5;

/// An endplate read inside its body at a rim third, with marrow rather than disc beyond it, is a
/// line within the body: beside the trachea's air (upper thoracic bodies) and in sclerotic bodies
/// the innermost strong step of a sub-column can be a trabecular plate 4–7 mm inside the real
/// endplate (real chest CT: T2's and T10's anterior inferior endplates). A depressed endplate (a
/// wedge or a step fracture) has disc beyond it, darker than marrow, and keeps its reading.
///
/// For each sub-column outside [`CENTRAL_FRACTIONS`] reading more than [`INNER_READING_MM`] inside
/// the median of the central readings, the search is repeated beyond the reading; an edge found
/// within [`CONTINUATION_MM`] of the central line replaces it when the stretch between reads as
/// marrow (within [`MARROW_TOLERANCE_HU`] of the body's marrow level).
/// `outward` is −1 for the superior endplate, +1 for the inferior.
fn continue_inner_rim_readings(
    fr: &[f64],
    e: &mut [Option<f64>],
    outward: f64,
    profiles: &[Vec<f64>],
    (ds, marrow): (f64, f64),
    research: impl Fn(usize, f64) -> Option<f64>,
) {
    let mut central: Vec<f64> = fr
        .iter()
        .zip(e.iter())
        .filter(|(f, _)| CENTRAL_FRACTIONS.contains(*f))
        .filter_map(|(_, v)| *v)
        .collect();
    if central.len() < 2 {
        return;
    }
    let line = crate::straighten::median(&mut central);
    let row = |s: f64| (s / ds).round().max(0.0) as isize;
    let dbg = tracing::enabled!(tracing::Level::DEBUG);
    for (k, f) in fr.iter().enumerate() {
        if CENTRAL_FRACTIONS.contains(f) {
            continue;
        }
        let Some(v) = e[k] else { continue };
        if (line - v) * outward <= INNER_READING_MM {
            continue;
        }
        let Some(next) = research(k, v + outward * 1.5) else {
            continue;
        };
        if (next - line).abs() > CONTINUATION_MM {
            continue;
        }
        let p = &profiles[k];
        let (a, b) = (row(v + outward * 1.0), row(next - outward * 1.0));
        let mut between: Vec<f64> = (a.min(b)..=a.max(b))
            .filter(|&r| r >= 0 && (r as usize) < p.len())
            .map(|r| p[r as usize])
            .collect();
        if between.is_empty() {
            continue;
        }
        let level = crate::straighten::median(&mut between);
        if dbg {
            tracing::debug!("DBG rim reading {k}: {v:.1} -> {next:.1}, between {level:.0}");
        }
        if level >= marrow - MARROW_TOLERANCE_HU {
            e[k] = Some(next);
        }
    }
}

/// The body's marrow level: the median of the central sub-columns' profiles between their
/// endplate readings, 2 mm inside each.
fn marrow_level(
    fr: &[f64],
    (sup, inf): (&[Option<f64>], &[Option<f64>]),
    profiles: &[Vec<f64>],
    ds: f64,
) -> Option<f64> {
    let mut v: Vec<f64> = Vec::new();
    for (k, f) in fr.iter().enumerate() {
        if !CENTRAL_FRACTIONS.contains(f) {
            continue;
        }
        if let (Some(a), Some(b)) = (sup[k], inf[k]) {
            let (ra, rb) = (((a + 2.0) / ds).round(), ((b - 2.0) / ds).round());
            let p = &profiles[k];
            let mut r = ra.max(0.0) as usize;
            while (r as f64) <= rb && r < p.len() {
                v.push(p[r]);
                r += 1;
            }
        }
    }
    (!v.is_empty()).then(|| crate::straighten::median(&mut v))
}

/// A keypoint column's endplate at depth fraction `f`: the median of its sub-column and the
/// nearest neighbours that were read (up to three either side).
fn column_reading(fr: &[f64], e: &[Option<f64>], f: f64) -> Option<f64> {
    let k = fr.iter().position(|&x| (x - f).abs() < 1e-6)?;
    for reach in 1..=3 {
        let mut v: Vec<f64> = (k.saturating_sub(reach)..(k + reach + 1).min(fr.len()))
            .filter_map(|i| e[i])
            .collect();
        if !v.is_empty() {
            return Some(crate::straighten::median(&mut v));
        }
    }
    None
}

/// Highest HU in the body's core (cement, metal): its middle 80 % of depth between its
/// endplates, 1.5 mm inside them.
fn core_max_hu(
    img: &Straightened,
    (u_post, u_ant): (f64, f64),
    s_sup: &[f64; 3],
    s_inf: &[f64; 3],
) -> f64 {
    let depth = u_ant - u_post;
    let mut max_hu = f64::NEG_INFINITY;
    let (ca, cb) = (
        img.col_of(u_post + 0.1 * depth),
        img.col_of(u_ant - 0.1 * depth),
    );
    let (ra, rb) = (
        img.row_of(s_sup.iter().copied().fold(f64::INFINITY, f64::min) + 1.5),
        img.row_of(s_inf.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 1.5),
    );
    for r in ra..=rb.max(ra) {
        for c in ca..=cb.max(ca) {
            max_hu = max_hu.max(img.at(r, c) as f64);
        }
    }
    max_hu
}

/// Like [`measure`], but says where the disc is when the interval is centred on one.
pub fn measure_or_disc(
    img: &Straightened,
    s_up: f64,
    s_down: f64,
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> Measured {
    let ds = img.ds;
    let pitch = s_down - s_up;
    let s_mid = 0.5 * (s_up + s_down);
    let (r0, r1) = (
        img.row_of(s_mid - 0.2 * pitch),
        img.row_of(s_mid + 0.2 * pitch),
    );
    let q = profile::smooth(&img.row_band_median(r0, r1), 0.6 / img.du);
    let dbg = tracing::enabled!(tracing::Level::DEBUG);
    let Some((u_post, u_ant)) = ap_extent(&q, img, cfg) else {
        if dbg {
            tracing::debug!("DBG {s_up:.0}-{s_down:.0}: no AP extent");
        }
        return Measured::Nothing;
    };
    let depth = u_ant - u_post;
    if depth < cfg.body_min_depth_mm {
        return Measured::Nothing;
    }
    let fr = sub_column_fractions();
    let mid = img.row_of(s_mid);
    let up = img.row_of(s_up);
    let down = img.row_of(s_down);
    let SubColumnEdges {
        mut sup,
        mut inf,
        mut drops,
        profiles,
    } = sub_column_edges(img, &fr, (u_post, depth), (mid, up, down), edge_bias, cfg);
    confine_to_rims(
        &fr,
        (&mut sup, &mut inf),
        &profiles,
        (mid, ds, edge_bias),
        pitch,
        cfg,
    );
    despike(&mut sup, SPIKE_MM);
    despike(&mut inf, SPIKE_MM);
    drop_strays(&mut sup, STRAY_MM);
    drop_strays(&mut inf, STRAY_MM);
    drop_outward_rim_steps(&mut sup, -1.0);
    drop_outward_rim_steps(&mut inf, 1.0);
    if let Some(marrow) = marrow_level(&fr, (&sup, &inf), &profiles, ds) {
        let min_drop = cfg.endplate_min_drop_hu;
        continue_inner_rim_readings(&fr, &mut sup, -1.0, &profiles, (ds, marrow), |k, from| {
            endplate_edge(
                &profiles[k],
                img.row_of(from + edge_bias).max(up),
                up,
                min_drop,
            )
            .map(|(x, _)| x * ds - edge_bias)
        });
        continue_inner_rim_readings(&fr, &mut inf, 1.0, &profiles, (ds, marrow), |k, from| {
            endplate_edge(
                &profiles[k],
                img.row_of(from - edge_bias).min(down),
                down,
                min_drop,
            )
            .map(|(x, _)| x * ds + edge_bias)
        });
    }
    let found = sup
        .iter()
        .zip(&inf)
        .filter(|(a, b)| a.is_some() && b.is_some())
        .count();
    let found_fraction = found as f64 / fr.len() as f64;
    if dbg {
        let show = |e: &[Option<f64>]| {
            e.iter()
                .map(|v| v.map_or("-".to_string(), |v| format!("{v:.1}")))
                .collect::<Vec<_>>()
                .join(" ")
        };
        tracing::debug!(
            "DBG {s_up:.0}-{s_down:.0}: sup [{}] inf [{}]",
            show(&sup),
            show(&inf)
        );
    }
    let min_pit = cfg.schmorl_min_depth_mm;
    let inf_read = inf.clone();
    let schmorl_sup = repair_schmorl(&fr, &mut sup, 1.0, (&inf_read, -1.0), min_pit);
    let sup_read = sup.clone();
    let schmorl_inf = repair_schmorl(&fr, &mut inf, -1.0, (&sup_read, 1.0), min_pit);
    let pick = |e: &[Option<f64>], f: f64| column_reading(&fr, e, f);
    let mut s_sup = [0.0; 3];
    let mut s_inf = [0.0; 3];
    // A column shorter than any body: no body here, but perhaps a disc (below).
    let mut too_short = false;
    for (c, &f) in COLUMNS.iter().enumerate() {
        let (Some(a), Some(b)) = (pick(&sup, f), pick(&inf, f)) else {
            if dbg {
                tracing::debug!(
                    "DBG {s_up:.0}-{s_down:.0}: column {c} missing, u {u_post:.1}..{u_ant:.1}"
                );
            }
            return Measured::Nothing;
        };
        s_sup[c] = a;
        s_inf[c] = b;
        if s_inf[c] - s_sup[c] < cfg.body_min_height_mm {
            if dbg {
                tracing::debug!("DBG {s_up:.0}-{s_down:.0}: column {c} height {:.1}", b - a);
            }
            too_short = true;
        }
    }
    let edge_hu = crate::straighten::median(&mut drops);
    let max_hu = core_max_hu(img, (u_post, u_ant), &s_sup, &s_inf);
    // A chain mis-phased onto mid-body dips (dark osteoporotic interiors) puts a disc at the
    // centre: the "body" measured is then the disc with its two endplates, under half the pitch
    // at every column. A real body, even crushed to half its height, fills more of its pitch
    // at two of its three columns (a wedge lowers one side, a biconcave fracture the middle).
    // A cemented body (not gradable) is kept whatever its edges: cement has edges of its own.
    // At thick slices the disc between two blurred endplates can read thinner than any body
    // (2–3 mm at 3 mm slices): still a disc when the interval is otherwise empty.
    let mut h = [0, 1, 2].map(|c| s_inf[c] - s_sup[c]);
    let median_h = crate::straighten::median(&mut h);
    let disc_like = median_h < cfg.body_min_pitch_fraction * pitch && max_hu <= cfg.cement_hu;
    if too_short
        && !(disc_like
            && h.iter()
                .all(|&v| (0.0..cfg.body_min_pitch_fraction * pitch).contains(&v)))
    {
        return Measured::Nothing;
    }
    if disc_like {
        if dbg {
            tracing::debug!("DBG {s_up:.0}-{s_down:.0}: height {median_h:.1} of pitch {pitch:.1}");
        }
        return Measured::Disc(0.25 * (s_sup[0] + s_sup[2] + s_inf[0] + s_inf[2]));
    }
    Measured::Body(BodyEndplates {
        u_post,
        u_ant,
        u_cols: COLUMNS.map(|f| u_post + f * depth),
        s_sup,
        s_inf,
        edge_hu,
        found_fraction,
        schmorl: schmorl_sup || schmorl_inf,
        max_hu,
        u_sub: fr.iter().map(|f| u_post + f * depth).collect(),
        sup_sub: sup,
        inf_sub: inf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_narrow_band_covers_the_central_sub_columns_symmetrically() {
        let fr = sub_column_fractions();
        let central: Vec<f64> = fr
            .iter()
            .copied()
            .filter(|f| CENTRAL_FRACTIONS.contains(f))
            .collect();
        assert_eq!(central, [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]);
        for c in COLUMNS {
            assert!(fr.contains(&c), "column {c} is a sub-column");
        }
    }

    /// A mid-height profile across a body from u = −45 to 45 mm at 0.5 mm: canal (10 HU) behind
    /// the posterior cortex at −18, marrow 140 HU with 300 HU cortices, anterior cortex at `ant`,
    /// fat (−80) in front; `focus` puts a 6 mm, 600 HU bone island at u ∈ [4, 10].
    fn body_profile(ant: f64, focus: bool) -> (Vec<f64>, Straightened) {
        let img = Straightened {
            ds: 0.5,
            du: 0.5,
            u0: -45.0,
            rows: 1,
            cols: 181,
            data: vec![0.0; 181],
            narrow: vec![0.0; 181],
        };
        let q = (0..181)
            .map(|c| {
                let u = -45.0 + 0.5 * c as f64;
                if u < -18.0 {
                    10.0
                } else if u < -16.0 || (u > ant - 2.0 && u <= ant) {
                    300.0
                } else if u > ant {
                    -80.0
                } else if focus && (4.0..=10.0).contains(&u) {
                    600.0
                } else {
                    140.0
                }
            })
            .collect();
        (q, img)
    }

    #[test]
    fn a_bone_island_does_not_cut_the_body_short() {
        let cfg = ClassicalConfig::default();
        for focus in [false, true] {
            let (q, img) = body_profile(22.0, focus);
            let (post, ant) = ap_extent(&q, &img, &cfg).expect("extent");
            assert!((post + 18.0).abs() < 1.0, "focus {focus}: posterior {post}");
            assert!((ant - 22.0).abs() < 1.0, "focus {focus}: anterior {ant}");
        }
    }

    #[test]
    fn a_thick_sclerotic_endplate_is_read_at_its_outer_surface() {
        // The real CT's L1, middle sub-column, superior disc (row 4) to body centre (row 42), at
        // 0.5 mm per row: the endplate rises from the disc at rows 15–20 into a dense layer
        // ~10 mm deep. The edge is the disc side of the rise, not a crossing inside the layer
        // (which read the middle height 4 mm short: a false 27 % biconcave deformity).
        let p = [
            114.0, 105.0, 97.0, 92.0, 90.0, 90.0, 90.0, 90.0, 91.0, 93.0, 96.0, 101.0, 106.0,
            112.0, 118.0, 129.0, 151.0, 187.0, 231.0, 277.0, 322.0, 362.0, 387.0, 395.0, 394.0,
            391.0, 388.0, 385.0, 385.0, 388.0, 392.0, 397.0, 402.0, 402.0, 388.0, 356.0, 314.0,
            269.0, 225.0, 184.0, 154.0, 139.0, 131.0,
        ];
        let (x, drop) = endplate_edge(&p, 42, 4, 60.0).expect("edge found");
        assert!(
            (16.0..=20.0).contains(&x),
            "edge at row {x:.1}, drop {drop:.0}"
        );
        assert!(drop > 200.0, "drop {drop:.0} is not the endplate's");
    }

    #[test]
    fn smoothly_sloping_central_depression_is_a_fracture_not_a_schmorl_node() {
        // As read on a biconcave T6 (53 % middle height loss): 3 mm deep, 30 % of the depth wide
        // at a quarter of its depth, but sloping in by ≤ 1.3 mm per sub-column.
        let fr = sub_column_fractions();
        let flat = vec![Some(30.0); fr.len()];
        let read = [
            112.3, 112.2, 112.2, 112.1, 112.7, 113.4, 114.5, 115.0, 115.3, 115.3, 115.1, 114.4,
            113.1, 112.9, 112.8, 112.7, 112.6,
        ];
        let mut e: Vec<Option<f64>> = read.iter().map(|&v| Some(v)).collect();
        let before = e.clone();
        assert!(!repair_schmorl(&fr, &mut e, 1.0, (&flat, -1.0), 1.5));
        assert_eq!(e, before);
    }

    #[test]
    fn reading_far_from_the_endplate_is_forgotten_but_a_wedge_tilt_is_kept() {
        // As read on a body at the end of the scan: the posterior sub-column 12 mm into the body.
        let mut e: Vec<Option<f64>> = [
            Some(327.2),
            None,
            None,
            None,
            None,
            Some(309.4),
            Some(313.1),
            Some(314.2),
            Some(315.0),
            Some(315.4),
            Some(315.8),
            Some(315.9),
            Some(316.1),
            Some(316.2),
        ]
        .to_vec();
        drop_strays(&mut e, 7.0);
        assert_eq!(e[0], None);
        assert_eq!(e[5], Some(309.4));
        // A severe wedge: the endplate slopes 8 mm from back to front; nothing is dropped.
        let mut wedge: Vec<Option<f64>> = (0..17).map(|i| Some(100.0 + 0.5 * i as f64)).collect();
        let before = wedge.clone();
        drop_strays(&mut wedge, 7.0);
        assert_eq!(wedge, before);
    }

    #[test]
    fn a_rim_run_stepping_into_the_next_body_is_dropped_but_a_wedge_is_kept() {
        // Inferior endplate at 103 mm; its three posterior sub-columns read the next body's
        // superior endplate across the disc, 4.3 mm further down.
        let mut inf: Vec<Option<f64>> = (0..17)
            .map(|k| Some(if k < 3 { 107.3 } else { 103.0 }))
            .collect();
        drop_outward_rim_steps(&mut inf, 1.0);
        assert_eq!(&inf[..3], &[None, None, None]);
        assert!(inf[3..].iter().all(|v| *v == Some(103.0)));
        // The same reading on a superior endplate is inward (a pit, a wedge): kept.
        let mut sup: Vec<Option<f64>> = (0..17)
            .map(|k| Some(if k < 3 { 107.3 } else { 103.0 }))
            .collect();
        let read = sup.clone();
        drop_outward_rim_steps(&mut sup, -1.0);
        assert_eq!(sup, read);
        // A severe anterior wedge tilts the superior endplate steadily inward: kept.
        let mut wedge: Vec<Option<f64>> = (0..17).map(|k| Some(100.0 + 0.6 * k as f64)).collect();
        let read = wedge.clone();
        drop_outward_rim_steps(&mut wedge, -1.0);
        assert_eq!(wedge, read);
        // A run longer than 15 % of the depth is a tilt of the endplate, not a stray: kept.
        let mut long: Vec<Option<f64>> = (0..17)
            .map(|k| Some(if k < 5 { 107.3 } else { 103.0 }))
            .collect();
        let read = long.clone();
        drop_outward_rim_steps(&mut long, 1.0);
        assert_eq!(long, read);
    }

    #[test]
    fn lone_stray_sub_column_is_replaced_but_a_wide_pit_is_kept() {
        let mut e: Vec<Option<f64>> = [126.8, 126.8, 118.6, 126.9, 127.3]
            .iter()
            .map(|&v| Some(v))
            .collect();
        despike(&mut e, 2.0);
        assert!((e[2].unwrap() - 126.85).abs() < 1e-9);
        let mut pit: Vec<Option<f64>> = [10.0, 10.0, 14.0, 14.0, 14.0, 10.0, 10.0]
            .iter()
            .map(|&v| Some(v))
            .collect();
        let before = pit.clone();
        despike(&mut pit, 2.0);
        assert_eq!(pit, before);
    }

    #[test]
    fn pit_facing_a_caved_in_opposite_endplate_is_a_biconcave_fracture() {
        let fr = sub_column_fractions();
        // Inferior endplate at 30 mm with a sharp 2 mm dip in the middle …
        let pit = |f: f64| (0.42..=0.58).contains(&f);
        let mut inf: Vec<Option<f64>> = fr
            .iter()
            .map(|&f| Some(if pit(f) { 28.0 } else { 30.0 }))
            .collect();
        // … opposite a flat superior endplate: a Schmorl node, repaired.
        let flat_sup = vec![Some(10.0); fr.len()];
        assert!(repair_schmorl(
            &fr,
            &mut inf.clone(),
            -1.0,
            (&flat_sup, 1.0),
            1.5
        ));
        // … opposite a superior endplate caved in by 3 mm at the same place: a fracture, kept.
        let caved: Vec<Option<f64>> = fr
            .iter()
            .map(|&f| Some(10.0 + 3.0 * (1.0 - ((f - 0.5) / 0.33).powi(2)).max(0.0)))
            .collect();
        let before = inf.clone();
        assert!(!repair_schmorl(&fr, &mut inf, -1.0, (&caved, 1.0), 1.5));
        assert_eq!(inf, before);
    }

    /// Inferior endplate profiles at 0.5 mm per row: marrow (130 HU) from the body's centre, a
    /// faint trabecular plate (230 HU) at row 100 (50 mm) on the anterior third only, the
    /// endplate's cortex (400 HU) at rows 112–115 and what lies beyond it from row 116 on: disc
    /// (60 HU). `depressed`: the anterior third's endplate itself sits at row 100, disc beyond.
    fn inferior_profiles(fr: &[f64], depressed: bool) -> Vec<Vec<f64>> {
        fr.iter()
            .map(|&f| {
                (0..140)
                    .map(|r| {
                        let anterior = f > 0.7;
                        match r {
                            98..=101 if anterior => {
                                if depressed {
                                    400.0
                                } else {
                                    230.0
                                }
                            }
                            102..=115 if anterior && depressed => 60.0,
                            112..=115 => 400.0,
                            116.. => 60.0,
                            _ => 130.0,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_inner_line_with_marrow_beyond_is_not_the_endplate_but_a_depressed_one_is() {
        let fr = sub_column_fractions();
        let read = |f: f64| if f > 0.7 { 50.5 } else { 57.5 };
        for (depressed, expect_anterior) in [(false, 57.5), (true, 50.5)] {
            let profiles = inferior_profiles(&fr, depressed);
            let mut e: Vec<Option<f64>> = fr.iter().map(|&f| Some(read(f))).collect();
            // The walk repeated beyond the reading finds the cortex's outer surface where the
            // profile has one: the last 400 HU row before 60 HU.
            let research = |k: usize, from: f64| {
                let p = &profiles[k];
                let start = (from / 0.5).round() as usize;
                (start..p.len() - 1)
                    .find(|&r| p[r] >= 400.0 && p[r + 1] < 100.0)
                    .map(|r| (r as f64 + 0.5) * 0.5)
            };
            continue_inner_rim_readings(&fr, &mut e, 1.0, &profiles, (0.5, 130.0), research);
            for (k, &f) in fr.iter().enumerate() {
                let want = if f > 0.7 { expect_anterior } else { 57.5 };
                let got = e[k].expect("kept");
                assert!(
                    (got - want).abs() < 0.6,
                    "depressed {depressed}: sub-column {f} read {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn endplate_read_into_a_calcified_disc_is_confined_to_the_rim_line() {
        let fr = sub_column_fractions();
        // Superior endplate at 20 mm; in the middle the walk ran on through a calcified nucleus
        // to 14 mm (outward = smaller arc length for a superior endplate).
        let mut e: Vec<Option<f64>> = fr
            .iter()
            .map(|&f| Some(if (0.4..=0.6).contains(&f) { 14.0 } else { 20.0 }))
            .collect();
        let mut asked = Vec::new();
        let confined = confine_to_rim_line(&fr, &mut e, 1.0, 1.0, |k, line| {
            asked.push(k);
            // The second walk, stopped at the line, finds the true surface on one sub-column.
            (k == 7).then_some(line + 0.4)
        });
        assert!(confined);
        assert_eq!(asked.len(), 5);
        assert!((e[7].unwrap() - 20.4).abs() < 1e-9);
        assert!(e.iter().all(|v| (v.unwrap() - 20.0).abs() <= 0.4 + 1e-9));
        // A concave (inward) endplate is left alone.
        let mut concave: Vec<Option<f64>> = fr
            .iter()
            .map(|&f| Some(20.0 + 2.0 * (1.0 - ((f - 0.5) / 0.4).powi(2)).max(0.0)))
            .collect();
        let before = concave.clone();
        assert!(!confine_to_rim_line(&fr, &mut concave, 1.0, 1.0, |_, _| {
            None
        }));
        assert_eq!(concave, before);
    }

    #[test]
    fn narrow_pit_is_repaired_but_broad_depression_is_kept() {
        let fr = sub_column_fractions();
        let flat = vec![Some(30.0); fr.len()];
        // Flat endplate at 10 mm with a 4 mm pit over 15 % of the depth.
        let mut e: Vec<Option<f64>> = fr
            .iter()
            .map(|&f| {
                Some(if (0.45..=0.56).contains(&f) {
                    14.0
                } else {
                    10.0
                })
            })
            .collect();
        assert!(repair_schmorl(&fr, &mut e, 1.0, (&flat, -1.0), 1.5));
        assert!(e.iter().all(|v| (v.unwrap() - 10.0).abs() < 0.5));
        // Biconcave: a smooth broad depression of 4 mm.
        let mut b: Vec<Option<f64>> = fr
            .iter()
            .map(|&f| Some(10.0 + 4.0 * (1.0 - ((f - 0.5) / 0.4).powi(2))))
            .collect();
        let before = b.clone();
        assert!(!repair_schmorl(&fr, &mut b, 1.0, (&flat, -1.0), 1.5));
        assert_eq!(b, before);
    }
}
