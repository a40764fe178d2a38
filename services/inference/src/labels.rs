//! Naming the vertebrae: ribs and the lumbosacral junction.
//!
//! - The lowest vertebra with a rib longer than a few centimetres is T12. Ribs are found as thin,
//!   elongated bone components of the coarse grid beyond an exclusion radius around the canal
//!   (which removes the vertebra and its transverse processes), and assigned to the vertebra at
//!   the level (the centreline's normal plane, see [`level_of`]) where they come closest to the
//!   spine.
//! - The sacrum is the body whose sides are bone (the sacral alae) rather than psoas: S1, with
//!   L5 above it.
//! - When both are seen and disagree (11 or 13 rib pairs, or a transitional lumbosacral vertebra,
//!   together 5–10 % of people) labels are counted from the lumbosacral junction and every
//!   vertebra is flagged `label_uncertain`; with neither, labels come from fitting the height
//!   sequence to the normal growth of body height from T1 to L5, also flagged.

use crate::{canal::CanalTrack, centreline::Centreline, config::ClassicalConfig, geom, grid::Grid};
use spinescreen_proto::VertebraLevel;

/// A body to be named: its arc-length span and centre, and its mean height.
#[derive(Debug, Clone, Copy)]
pub struct BodySpan {
    /// Arc length of the body centre, mm.
    pub s_center: f64,
    /// Mean height, mm.
    pub height: f64,
    /// Arc length of the top of its superior endplate, mm.
    pub s_top: f64,
}

/// How far (mm) above a body's superior endplate a rib may reach the spine and still be that
/// body's: the heads of ribs 2–9 articulate at the disc above their body, so the rib's level
/// (followed inward, [`RIB_INWARD_MM`]) can lie at that disc; a rib further up belongs to the
/// body above.
pub(crate) const RIB_ABOVE_TOP_MM: f64 = 9.0;

/// Where a rib is expected to reach the spine (followed inward, [`RIB_INWARD_MM`]), in body
/// heights above its body's centre. On the real chest CT the 10th–12th ribs reach it at their
/// centre, the 2nd–9th 4–13 mm above; 0.4 (fitted to the phantom's old ribs, which left the
/// spine near their body's top) gave the abdominal CT's one rib to L1 and set its anchors one
/// level apart. On the population set with ribs as on real CT, 0.2 names 74.1 % of the bodies
/// right against 73.3 % at 0.4 (docs/detection.md).
pub(crate) const RIB_LEVEL_ABOVE_CENTRE: f64 = 0.2;

/// Shortest bone component beyond the rib cut that [`find_ribs`] returns: a rib cut short by the
/// scan's edge. Only ribs of `rib_min_length_mm` name levels; a shorter one only says that the
/// level it leaves the spine at may bear a rib.
pub const RIB_STUB_MIN_MM: f64 = 10.0;

/// One rib found on the coarse grid.
#[derive(Debug, Clone, Copy)]
pub struct Rib {
    /// Arc length of the point where the rib is closest to the spine, mm.
    pub s: f64,
    /// Length of the rib beyond the exclusion radius (bounding-box diagonal), mm.
    pub length: f64,
    /// +1 patient left, −1 right.
    pub side: i8,
}

/// Largest gap (mm) along the spine between a left and a right rib of one level.
const RIB_PAIR_MM: f64 = 20.0;

/// Streak artefacts from a dense deposit (vertebroplasty cement, a screw) radiate across the rib
/// cut and read as a short rib on one side. A rib that leaves the spine within one of the `dense`
/// arc-length ranges (bodies carrying such material), has no partner on the other side and is
/// under half as long as the nearest rib above it is such a streak, and is dropped: taken for the
/// last rib, it would name the cemented L1 "T12" and every level above one too high. A cemented
/// T12 keeps its own ribs, which come in pairs and are as long as T11's.
pub fn drop_streaks(ribs: &[Rib], dense: &[(f64, f64)]) -> Vec<Rib> {
    ribs.iter()
        .filter(|r| {
            let in_dense = dense.iter().any(|&(a, b)| (a..=b).contains(&r.s));
            let paired = ribs
                .iter()
                .any(|o| o.side != r.side && (o.s - r.s).abs() < RIB_PAIR_MM);
            let above = ribs
                .iter()
                .filter(|o| o.s < r.s - RIB_PAIR_MM)
                .max_by(|a, b| a.s.total_cmp(&b.s));
            let short = above.is_some_and(|o| r.length < 0.5 * o.length);
            !(in_dense && !paired && short)
        })
        .copied()
        .collect()
}

/// The naming decision.
#[derive(Debug, Clone)]
pub struct Naming {
    /// Index into [`VertebraLevel::ALL`] of each body (may fall outside T1…S1
    /// when the anchors place bodies beyond the labelled range; callers drop those).
    pub label_index: Vec<isize>,
    /// Confidence multiplier for labels (1 when two anchors agree).
    pub confidence: f64,
    /// Labels are uncertain: flag every vertebra.
    pub uncertain: bool,
    /// Study-level notes explaining how labels were counted.
    pub notes: Vec<String>,
}

/// What [`find_ribs`] saw beyond the rib cut.
#[derive(Debug, Clone, Default)]
pub struct RibSearch {
    /// Ribs and rib stubs.
    pub ribs: Vec<Rib>,
    /// Arc-length spans where bone of a joined component (ribs with the clavicle, scapula or
    /// sternum) crosses the shell beyond the cut but could not be resolved into ribs: a rib may
    /// leave the spine there unseen.
    pub unresolved: Vec<(f64, f64)>,
}

/// Ribs: thin elongated bone beyond `rib_cut_mm` of the canal, 26-connected on the coarse grid,
/// down to [`RIB_STUB_MIN_MM`] long (callers take the long ones as ribs).
pub fn find_ribs(
    g: &Grid,
    track: &CanalTrack,
    cl: &Centreline,
    cfg: &ClassicalConfig,
) -> RibSearch {
    let [nx, ny, _] = g.dims;
    let s = g.spacing;
    let k0 = track.k_start;
    let k1 = k0 + track.points.len();
    let cut2 = cfg.rib_cut_mm * cfg.rib_cut_mm;
    let far2 = 160.0f64 * 160.0;
    let plane = nx * ny;
    let mut mask = vec![false; plane * (k1 - k0)];
    for k in k0..k1 {
        let (cx, cy, _, _) = track.points[k - k0];
        for y in 0..ny {
            let py = g.origin[1] + y as f64 * s;
            for x in 0..nx {
                let px = g.origin[0] + x as f64 * s;
                let d2 = (px - cx).powi(2) + (py - cy).powi(2);
                if d2 > cut2 && d2 < far2 && g.at(x, y, k) > cfg.rib_hu {
                    mask[(k - k0) * plane + y * nx + x] = true;
                }
            }
        }
    }
    let nz = k1 - k0;
    let mut seen = vec![false; mask.len()];
    let mut found = RibSearch::default();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut count = 0usize;
        let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
        let mut nearest = (f64::INFINITY, [0.0f64; 3]);
        // Voxels where the component leaves the spine: the roots of its ribs.
        let mut shell: Vec<(f64, [f64; 3])> = Vec::new();
        while let Some(i) = stack.pop() {
            count += 1;
            let (z, y, x) = (i / plane, (i % plane) / nx, i % nx);
            for (a, v) in [x, y, z].into_iter().enumerate() {
                lo[a] = lo[a].min(v);
                hi[a] = hi[a].max(v);
            }
            let (cx, cy, _, _) = track.points[z];
            let p = g.to_patient(x as f64, y as f64, (z + k0) as f64);
            let d = (p[0] - cx).hypot(p[1] - cy);
            if d < nearest.0 {
                nearest = (d, p);
            }
            if d < cfg.rib_cut_mm + RIB_ROOT_SHELL_MM {
                shell.push((d, p));
            }
            for (xx, yy, zz) in neighbours26((x, y, z), [nx, ny, nz]) {
                let j = zz * plane + yy * nx + xx;
                if mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        let ext: [f64; 3] = std::array::from_fn(|a| (hi[a] - lo[a] + 1) as f64 * s);
        let diag = geom::norm(ext);
        let section = count as f64 * s * s * s / diag.max(1.0);
        if diag < RIB_STUB_MIN_MM || nearest.0 > cfg.rib_cut_mm + 20.0 {
            continue;
        }
        if section > 180.0 {
            // Several ribs joined far from the spine (by the scapula lying on them, calcified
            // costal cartilage and the sternum): each still leaves the spine on its own.
            let (roots, unresolved) = rib_roots(cl, &shell);
            found.unresolved.extend(unresolved);
            // One root alone is no series of ribs: some other bone or organ touching the shell.
            let roots = if roots.len() >= 2 { roots } else { Vec::new() };
            tracing::trace!(
                "joined ribs (diag {diag:.0}, section {section:.0}): roots at {:?}",
                roots.iter().map(|r| r.s.round()).collect::<Vec<_>>()
            );
            found
                .ribs
                .extend(roots.into_iter().map(|r| Rib { length: diag, ..r }));
            continue;
        }
        let sp = level_of(cl, nearest.1);
        let canal = cl.canal_at(sp);
        let frame = cl.frame_at(sp);
        // Ribs leave the spine beside or behind the body, not in front of it.
        let ap = geom::dot(geom::sub(nearest.1, canal), frame.a);
        if ap > 30.0 {
            continue;
        }
        let sp = match follow_inward(g, track, &shell, cfg) {
            Some(p) => level_of(cl, p),
            None => sp,
        };
        let side = if geom::dot(geom::sub(nearest.1, canal), frame.l) > 0.0 {
            1
        } else {
            -1
        };
        found.ribs.push(Rib {
            s: sp,
            length: diag,
            side,
        });
    }
    found
}

/// How far (mm) inside the rib cut a rib is followed towards its head. The lower ribs slope
/// down steeply beside the spine (real chest CT: the 12th leaves the 55 mm cut 13 mm below its
/// body's centre, level with the next body's top); 15 mm further in they lie near their own
/// body's level, still clear of the body (its anterior cortex lies 40–45 mm from the canal).
const RIB_INWARD_MM: f64 = 15.0;

/// Most voxels a rib's inward follow may add before it is taken for more than a rib (a joined
/// transverse process, a bridging osteophyte): then the level at the cut stands.
const RIB_INWARD_MAX_VOXELS: usize = 400;

/// The rib's bone followed inward from its voxels near the cut (`shell`) to at most
/// [`RIB_INWARD_MM`] inside the cut: the point nearest the canal it reaches, if it went further
/// in than the cut.
fn follow_inward(
    g: &Grid,
    track: &CanalTrack,
    shell: &[(f64, [f64; 3])],
    cfg: &ClassicalConfig,
) -> Option<[f64; 3]> {
    let [nx, ny, _] = g.dims;
    let k0 = track.k_start;
    let nz = track.points.len();
    let inner = cfg.rib_cut_mm - RIB_INWARD_MM;
    let dist = |x: usize, y: usize, z: usize| {
        let (cx, cy, _, _) = track.points[z];
        let p = g.to_patient(x as f64, y as f64, (z + k0) as f64);
        ((p[0] - cx).hypot(p[1] - cy), p)
    };
    let to_index = |p: [f64; 3]| -> Option<(usize, usize, usize)> {
        let v = g.to_index(p).map(|c| c.round() as isize);
        Some((
            usize::try_from(v[0]).ok()?,
            usize::try_from(v[1]).ok()?,
            usize::try_from(v[2] - k0 as isize).ok()?,
        ))
    };
    let mut stack: Vec<(usize, usize, usize)> =
        shell.iter().filter_map(|&(_, p)| to_index(p)).collect();
    let mut seen: std::collections::HashSet<(usize, usize, usize)> =
        stack.iter().copied().collect();
    let mut best: Option<(f64, [f64; 3])> = None;
    let mut added = 0usize;
    while let Some(voxel) = stack.pop() {
        for (x, y, z) in neighbours26(voxel, [nx, ny, nz]) {
            if seen.contains(&(x, y, z)) {
                continue;
            }
            let (d, p) = dist(x, y, z);
            if d < inner || d >= cfg.rib_cut_mm || g.at(x, y, z + k0) <= cfg.rib_hu {
                continue;
            }
            seen.insert((x, y, z));
            added += 1;
            if added > RIB_INWARD_MAX_VOXELS {
                return None;
            }
            if best.is_none_or(|b| d < b.0) {
                best = Some((d, p));
            }
            stack.push((x, y, z));
        }
    }
    best.map(|b| b.1)
}

/// The up to 26 neighbours of voxel `(x, y, z)` inside a box of `dims` voxels.
fn neighbours26(
    (x, y, z): (usize, usize, usize),
    dims: [usize; 3],
) -> impl Iterator<Item = (usize, usize, usize)> {
    (-1isize..=1)
        .flat_map(|dz| (-1isize..=1).flat_map(move |dy| (-1isize..=1).map(move |dx| (dx, dy, dz))))
        .filter(|&step| step != (0, 0, 0))
        .filter_map(move |(dx, dy, dz)| {
            let (xx, yy, zz) = (
                x.checked_add_signed(dx)?,
                y.checked_add_signed(dy)?,
                z.checked_add_signed(dz)?,
            );
            (xx < dims[0] && yy < dims[1] && zz < dims[2]).then_some((xx, yy, zz))
        })
}

/// Thickness (mm) of the shell beyond the rib cut in which a component's voxels count as the
/// roots of its ribs.
const RIB_ROOT_SHELL_MM: f64 = 6.0;

/// Gap (mm along the spine) that separates two rib roots on one side.
const RIB_ROOT_GAP_MM: f64 = 4.0;

/// Longest span (mm along the spine) of one rib's root: a rib crosses the shell in 10–15 mm;
/// a plate of bone crossing it further (an iliac wing) is no rib.
const RIB_ROOT_MAX_SPAN_MM: f64 = 20.0;

/// Largest extent (bounding-box diagonal, mm) of one rib's root: a rib 6–12 mm thick crossing
/// a 6 mm shell. Broader bright patches in the shell are organs (a contrast-enhanced kidney's
/// cortex reads as bone on the coarse grid), not ribs.
const RIB_ROOT_MAX_EXTENT_MM: f64 = 25.0;

/// The ribs of a component that joins several (`shell`: its voxels near the rib cut, with their
/// distance to the canal): its shell voxels grouped by side and by level, each group one rib
/// leaving the spine at the level of its voxel nearest the canal. Lengths are left to the caller.
/// Also returns the arc-length spans of the groups too broad or too tall to be one rib's root.
fn rib_roots(cl: &Centreline, shell: &[(f64, [f64; 3])]) -> (Vec<Rib>, Vec<(f64, f64)>) {
    // (side, level, distance to the canal, position)
    type Placed = (i8, f64, f64, [f64; 3]);
    let mut placed: Vec<Placed> = shell
        .iter()
        .filter_map(|&(d, p)| {
            let sp = level_of(cl, p);
            let canal = cl.canal_at(sp);
            let frame = cl.frame_at(sp);
            let rel = geom::sub(p, canal);
            let side = if geom::dot(rel, frame.l) > 0.0 { 1 } else { -1 };
            // Ribs leave the spine beside or behind the body, not in front of it.
            (geom::dot(rel, frame.a) <= 30.0).then_some((side, sp, d, p))
        })
        .collect();
    placed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut roots = Vec::new();
    let mut unresolved = Vec::new();
    let mut group: Vec<Placed> = Vec::new();
    let mut flush = |group: &mut Vec<Placed>, roots: &mut Vec<Rib>| {
        if let (Some(first), Some(last)) = (group.first(), group.last()) {
            let (lo, hi) = group.iter().fold(
                ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]),
                |(lo, hi), v| {
                    (
                        std::array::from_fn(|a| lo[a].min(v.3[a])),
                        std::array::from_fn(|a| hi[a].max(v.3[a])),
                    )
                },
            );
            let extent = geom::dist(lo, hi);
            tracing::trace!(
                "root group side {} s {:.0}..{:.0} extent {extent:.0} n {}",
                first.0,
                first.1,
                last.1,
                group.len()
            );
            if last.1 - first.1 <= RIB_ROOT_MAX_SPAN_MM && extent <= RIB_ROOT_MAX_EXTENT_MM {
                let nearest = group
                    .iter()
                    .min_by(|a, b| a.2.total_cmp(&b.2))
                    .unwrap_or(first);
                roots.push(Rib {
                    s: nearest.1,
                    length: 0.0,
                    side: first.0,
                });
            } else {
                unresolved.push((first.1, last.1));
            }
        }
        group.clear();
    };
    for v in placed {
        if group
            .last()
            .is_some_and(|g| g.0 != v.0 || v.1 - g.1 > RIB_ROOT_GAP_MM)
        {
            flush(&mut group, &mut roots);
        }
        group.push(v);
    }
    flush(&mut group, &mut roots);
    (roots, unresolved)
}

/// Arc length of the centreline's normal plane through `p`: the level of a point far from the
/// spine (a rib, an ala). The nearest centreline point is no such level: 50 mm from the curve a
/// 1 mm wiggle of the curve moves the nearest point by several mm along it. Of several planes
/// through `p` (a strongly curved spine), the one whose curve point is nearest; clamped to the
/// curve's ends.
pub fn level_of(cl: &Centreline, p: [f64; 3]) -> f64 {
    let n = cl.s.len();
    // Signed distance of `p` cranial of sample i's normal plane: negative cranially of p's level.
    let along = |i: usize| geom::dot(geom::sub(p, cl.frames[i].p), cl.frames[i].t);
    let mut best = (f64::INFINITY, None);
    for i in 0..n.saturating_sub(1) {
        let (a, b) = (along(i), along(i + 1));
        if a <= 0.0 && b > 0.0 {
            let f = -a / (b - a);
            let d = geom::dist(p, geom::lerp(cl.frames[i].p, cl.frames[i + 1].p, f));
            if d < best.0 {
                best = (d, Some(cl.s[i] + f * (cl.s[i + 1] - cl.s[i])));
            }
        }
    }
    best.1.unwrap_or_else(|| {
        if n == 0 || along(0) > 0.0 {
            0.0
        } else {
            cl.length()
        }
    })
}

/// Fraction of bone lateral to the body centre at both sides (sacral alae vs psoas).
pub fn lateral_bone_fraction(g: &Grid, cl: &Centreline, s_center: f64, thr: f32) -> f64 {
    let f = cl.frame_at(s_center);
    let mut frac = [0.0f64; 2];
    for (k, side) in [-1.0f64, 1.0].into_iter().enumerate() {
        let (mut n, mut b) = (0, 0);
        for v in (26..=56).step_by(2) {
            for u in [-6.0, -3.0, 0.0, 3.0] {
                for t in [-3.0, 0.0, 3.0] {
                    let p = geom::axpy(
                        geom::axpy(geom::axpy(f.p, side * v as f64, f.l), u, f.a),
                        t,
                        f.t,
                    );
                    n += 1;
                    if g.sample(p) > thr {
                        b += 1;
                    }
                }
            }
        }
        frac[k] = b as f64 / n as f64;
    }
    frac[0].min(frac[1])
}

/// Normal body height by label index (T1…L5; Panjabi et al. 1991/1992 style means, mm).
fn normal_height(idx: usize) -> Option<f64> {
    let t1 = VertebraLevel::T1.index();
    let l5 = VertebraLevel::L5.index();
    if idx < t1 || idx > l5 {
        return None;
    }
    // T1 15 mm rising to L3 27 mm, flat to L5.
    let l3 = VertebraLevel::L3.index();
    let k = idx.min(l3) - t1;
    Some(15.0 + 12.0 * k as f64 / (l3 - t1) as f64)
}

/// Whether the level beyond each end of the named bodies is in view far enough to show a rib
/// (a body beyond the chain's end, measured or cut by the scan's edge): then a rib-free level
/// there confirms the first or last rib.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeenBeyond {
    /// The level above the first body.
    pub above: bool,
    /// The level below the last body.
    pub below: bool,
}

/// Name the bodies (cranial → caudal). `unresolved_bone`: see [`RibSearch::unresolved`];
/// `carina`: the tracheal carina's arc length ([`crate::carina`]), when seen.
pub fn name(
    bodies: &[BodySpan],
    ribs: &[Rib],
    unresolved_bone: &[(f64, f64)],
    sacrum: Option<usize>,
    beyond: SeenBeyond,
    carina: Option<f64>,
    cfg: &ClassicalConfig,
) -> Naming {
    let n = bodies.len();
    let t1 = VertebraLevel::T1.index() as isize;
    let t12 = VertebraLevel::T12.index() as isize;
    let s1 = VertebraLevel::S1.index() as isize;
    let mut notes = Vec::new();
    // Which body each rib belongs to: the one whose expected rib level
    // ([`RIB_LEVEL_ABOVE_CENTRE`]) lies nearest the rib's. Virtual bodies one pitch above the first and below the last stand
    // for vertebrae in view but not measured (a body cut by the edge of the scan), so their ribs
    // are not given to a neighbour.
    let mut rib_bodies = vec![0u8; n + 2];
    let mut all = Vec::with_capacity(n + 2);
    if let (Some(&first), Some(&last)) = (bodies.first(), bodies.last()) {
        let pitch = |b: &BodySpan| b.height * 1.25;
        let virtual_at = |b: &BodySpan, s_center: f64| BodySpan {
            s_center,
            height: b.height,
            s_top: s_center - 0.5 * b.height,
        };
        all.push(virtual_at(&first, first.s_center - pitch(&first)));
        all.extend_from_slice(bodies);
        all.push(virtual_at(&last, last.s_center + pitch(&last)));
        let long: Vec<&Rib> = ribs
            .iter()
            .filter(|r| r.length >= cfg.rib_min_length_mm)
            .collect();
        for r in &long {
            // A left and right rib of one level: use their mean (one side may run lower).
            let partner = long
                .iter()
                .filter(|o| o.side != r.side && (o.s - r.s).abs() < RIB_PAIR_MM)
                .min_by(|a, b| (a.s - r.s).abs().total_cmp(&(b.s - r.s).abs()));
            let s_r = partner.map_or(r.s, |o| 0.5 * (o.s + r.s));
            let mut best = (f64::INFINITY, usize::MAX);
            for (j, b) in all.iter().enumerate() {
                // A rib leaving the spine above a body's top (in the disc above or higher) is
                // not that body's.
                if s_r < b.s_top - RIB_ABOVE_TOP_MM {
                    continue;
                }
                let d = (b.s_center - s_r - RIB_LEVEL_ABOVE_CENTRE * b.height).abs();
                if d < best.0 {
                    best = (d, j);
                }
            }
            if best.1 != usize::MAX && best.0 < 30.0 {
                rib_bodies[best.1] |= if r.side > 0 { 1 } else { 2 };
            }
        }
    }
    // Index in `all` → index in `bodies` (−1 = the virtual body above).
    let lowest_rib = (0..n + 2)
        .rev()
        .find(|&j| rib_bodies[j] != 0)
        .map(|j| j as isize - 1);
    // Levels are counted by position, not by body: a body left unmeasured between two measured
    // ones (a ring arc across it, a misread endplate) still takes a level.
    let ordinal = level_ordinals(bodies);
    let ordinal_of = |j: isize| -> isize {
        match (ordinal.first(), ordinal.last()) {
            (Some(&first), _) if j < 0 => first - 1,
            (_, Some(&last)) if j >= n as isize => last + 1,
            _ => ordinal.get(j as usize).copied().unwrap_or(j),
        }
    };

    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(
            "DBG bodies {:?}",
            bodies
                .iter()
                .map(|b| format!("{:.0}/{:.0}", b.s_center, b.height))
                .collect::<Vec<_>>()
        );
        tracing::debug!(
            "DBG ribs {:?}",
            ribs.iter()
                .map(|r| format!("{:.0}:{:.0}:{}", r.s, r.length, r.side))
                .collect::<Vec<_>>()
        );
        tracing::debug!("DBG rib sides per body (virtual above first, below last) {rib_bodies:?}");
    }
    // The lowest rib is only an anchor when a rib-free body is seen below it; the highest only
    // when a rib-free body is seen above it (the first rib → T1).
    let highest_rib = (0..n + 2)
        .find(|&j| rib_bodies[j] != 0)
        .map(|j| j as isize - 1);
    let rib_anchor = lowest_rib
        .filter(|&j| j + 1 < n as isize || (j + 1 == n as isize && beyond.below))
        .map(|j| t12 - ordinal_of(j));
    let first_rib_anchor = highest_rib
        .filter(|&j| (j >= 1 || (j == 0 && beyond.above)) && j < n as isize)
        .map(|j| t1 - ordinal_of(j));
    // Bone crossing the rib shell at the level above the first rib, not resolved into ribs (the
    // first rib joined to the clavicle or scapula): the first rib seen may be the second.
    let first_rib_doubtful = highest_rib
        .and_then(|j| usize::try_from(j).ok())
        .and_then(|j| all.get(j))
        .is_some_and(|above| {
            let (lo, hi) = (above.s_top, above.s_top + above.height);
            unresolved_bone.iter().any(|&(a, b)| a <= hi && b >= lo)
        });
    let sac_anchor = sacrum.map(|j| s1 - ordinal_of(j as isize));
    // The carina is taken to lie between T5's centre and T6's: the body whose centre lies
    // next above it (measured or virtual) is T5.
    let carina_anchor = carina.map(|s| {
        let j = all.iter().rposition(|b| b.s_center <= s).unwrap_or(0);
        CARINA_BELOW.index() as isize - ordinal_of(j as isize - 1)
    });
    let ribbed: Vec<bool> = rib_bodies[1..=n].iter().map(|&b| b != 0).collect();
    let (offset, confidence, uncertain) = match vote(
        Anchors {
            first_rib: first_rib_anchor,
            first_rib_doubtful,
            last_rib: rib_anchor,
            sacrum: sac_anchor,
        },
        &mut notes,
    ) {
        Some((offset, confidence, uncertain)) => {
            // The carina lies at T4–T7: an anchored count that puts it two levels or more
            // from T5–T6 has probably taken a rib for another.
            let off_by = carina_anchor.map_or(0, |c| (c - offset).abs());
            if off_by >= 2 {
                notes.push(format!(
                    "labels: by this count the tracheal carina lies {off_by} levels from T5–T6, \
                     where it lies in most adults"
                ));
            }
            (offset, confidence, uncertain || off_by >= 2)
        }
        None => {
            let fit = LevelFit {
                bodies,
                ordinal: &ordinal,
                ribbed: &ribbed,
                ribbed_beyond: (rib_bodies[0] != 0, rib_bodies[n + 1] != 0),
            };
            match carina_anchor {
                Some(c) => {
                    notes.push("labels: neither the first nor the last rib nor the lumbosacral junction seen; counted from the tracheal carina (taken to lie between T5's and T6's centres, as it does in most adults; one level either way in others); uncertain".into());
                    (fit.near(c), 0.45, true)
                }
                None => {
                    notes.push("labels: neither a last rib nor the lumbosacral junction seen; labels estimated from vertebral heights and uncertain".into());
                    (fit.by_heights(), 0.3, true)
                }
            }
        }
    };
    let ribbed = ribbed.iter().filter(|&&b| b).count();
    if ribbed > 0 {
        notes.push(format!("{ribbed} rib-bearing vertebra(e) in view"));
    }
    Naming {
        label_index: ordinal.iter().map(|&o| offset + o).collect(),
        confidence,
        uncertain,
        notes,
    }
}

/// The naming anchors seen, each as the label offset it implies (label index of ordinal 0).
struct Anchors {
    /// The highest rib-bearing vertebra with a rib-free one above it is T1.
    first_rib: Option<isize>,
    /// Unresolved bone beside the level above the first rib: the first rib ranks last.
    first_rib_doubtful: bool,
    /// The lowest rib-bearing vertebra with a rib-free one below it is T12.
    last_rib: Option<isize>,
    /// The body with sacral alae is S1.
    sacrum: Option<isize>,
}

/// Combine the anchors into one offset (with its confidence and whether labels are uncertain),
/// noting how: anchors that agree confirm each other; when they disagree (11 or 13 rib pairs, a
/// transitional lumbosacral vertebra, or a rib missed) the first rib wins, as radiologists count
/// thoracic levels down from T1, then the lumbosacral junction, and the labels are flagged
/// uncertain rather than silently shifted. `None` when no anchor is seen.
fn vote(a: Anchors, notes: &mut Vec<String>) -> Option<(isize, f64, bool)> {
    let mut ranked = vec![
        ("first rib (T1)", a.first_rib),
        ("lumbosacral junction (S1)", a.sacrum),
        ("lowest rib-bearing vertebra (T12)", a.last_rib),
    ];
    if a.first_rib_doubtful {
        ranked.rotate_left(1);
    }
    let seen: Vec<(&str, isize)> = ranked
        .into_iter()
        .filter_map(|(name, o)| o.map(|o| (name, o)))
        .collect();
    let (&(first_name, first), rest) = seen.split_first()?;
    let names = |v: &[(&str, isize)]| v.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" and ");
    // An offset two anchors agree on outranks a lone one, whatever its rank.
    let agreed = seen
        .iter()
        .find(|(_, o)| seen.iter().filter(|(_, p)| p == o).count() >= 2)
        .map(|&(_, o)| o);
    let chosen = agreed.unwrap_or(first);
    let (agree, disagree): (Vec<_>, Vec<_>) = seen.iter().partition(|(_, o)| *o == chosen);
    if disagree.is_empty() {
        if rest.is_empty() {
            notes.push(format!(
                "labels: counted from the {first_name}; no second anchor in view"
            ));
            return Some((chosen, 0.85, false));
        }
        notes.push(format!("labels: {} agree", names(&agree)));
        return Some((chosen, 1.0, false));
    }
    let by = disagree
        .iter()
        .map(|(_, o)| (o - chosen).abs())
        .max()
        .unwrap_or(0);
    notes.push(format!(
        "labels: {} and {} disagree by {by} level(s) (11 or 13 rib pairs, a transitional \
         vertebra, or a rib not seen); counted from the {}",
        names(&agree),
        names(&disagree),
        agree.first().map_or(first_name, |(n, _)| *n)
    ));
    Some((chosen, 0.6, true))
}

/// The level whose body's centre lies next above the tracheal carina. On CT (in inspiration)
/// the carina projects onto T5–T6 in most adults, T4–T7 in nearly all; on the real chest CT it
/// lies at the T6/T7 disc, one level lower.
const CARINA_BELOW: VertebraLevel = VertebraLevel::T5;

/// Naming with no rib or sacral anchor: what the bodies and their ribs allow.
struct LevelFit<'a> {
    bodies: &'a [BodySpan],
    ordinal: &'a [isize],
    /// Whether each body bears a rib.
    ribbed: &'a [bool],
    /// Whether the level above the first body and the level below the last bear a rib (then
    /// the first body is T2 or lower, the last T11 or higher).
    ribbed_beyond: (bool, bool),
}

impl LevelFit<'_> {
    /// Rib-bearing levels that offset `off` would name outside T1–T12.
    fn misplaced_ribs(&self, off: isize) -> usize {
        let t1 = VertebraLevel::T1.index() as isize;
        let t12 = VertebraLevel::T12.index() as isize;
        let (first, last) = (
            self.ordinal.first().copied().unwrap_or(0),
            self.ordinal.last().copied().unwrap_or(0),
        );
        let beyond = [
            (self.ribbed_beyond.0, off + first - 1),
            (self.ribbed_beyond.1, off + last + 1),
        ];
        let bodies = self
            .ribbed
            .iter()
            .zip(self.ordinal)
            .map(|(&rib, &o)| (rib, off + o));
        beyond
            .into_iter()
            .chain(bodies)
            .filter(|&(rib, idx)| rib && !(t1..=t12).contains(&idx))
            .count()
    }

    /// Of the carina's offset and its neighbours (one level either way), the nearest that
    /// names no rib-bearing level outside T1–T12.
    fn near(&self, carina: isize) -> isize {
        [carina, carina + 1, carina - 1]
            .into_iter()
            .min_by_key(|&off| (self.misplaced_ribs(off), (off - carina).abs()))
            .unwrap_or(carina)
    }

    /// The offset whose normal heights (T1 → L3 growth) fit the bodies best, never naming a
    /// rib-bearing level outside T1–T12.
    fn by_heights(&self) -> isize {
        let n = self.bodies.len();
        let t1 = VertebraLevel::T1.index() as isize;
        let mut best = (f64::INFINITY, 0isize);
        for off in (t1 - n as isize + 3)..=(VertebraLevel::L5.index() as isize - 2) {
            let (mut sse, mut cnt) = (0.0, 0);
            for (b, &o) in self.bodies.iter().zip(self.ordinal) {
                let Some(h) = usize::try_from(off + o).ok().and_then(normal_height) else {
                    continue;
                };
                sse += (b.height - h).powi(2);
                cnt += 1;
            }
            if cnt >= n.min(3) && cnt > 0 {
                let m = sse / cnt as f64
                    + 20.0 * (n - cnt) as f64
                    + 100.0 * self.misplaced_ribs(off) as f64;
                if m < best.0 {
                    best = (m, off);
                }
            }
        }
        best.1
    }
}

/// Each body's level counted from the first (0, 1, 2 …), with a skipped level wherever the
/// centre-to-centre distance to the next body is at least 1.6 × that of its neighbouring pairs
/// (the typical pitch there; the heights themselves are not used, a crushed body reads short).
pub fn level_ordinals(bodies: &[BodySpan]) -> Vec<isize> {
    let gaps: Vec<f64> = bodies
        .windows(2)
        .map(|w| w[1].s_center - w[0].s_center)
        .collect();
    let mut ordinal = Vec::with_capacity(bodies.len());
    let mut level = 0isize;
    for j in 0..bodies.len() {
        if j > 0 {
            let k = j - 1;
            let mut around: Vec<f64> = [k.checked_sub(1), Some(k + 1)]
                .into_iter()
                .flatten()
                .filter_map(|i| gaps.get(i).copied())
                .collect();
            let steps = if around.is_empty() {
                1
            } else {
                let ratio = gaps[k] / crate::straighten::median(&mut around).max(1.0);
                if ratio < 1.6 {
                    1
                } else {
                    (ratio.round() as isize).max(2)
                }
            };
            level += steps;
        }
        ordinal.push(level);
    }
    ordinal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::centreline::Frame;

    fn spans(centres: &[f64]) -> Vec<BodySpan> {
        centres
            .iter()
            .map(|&s| BodySpan {
                s_center: s,
                height: 18.0,
                s_top: s - 9.0,
            })
            .collect()
    }

    #[test]
    fn a_rib_above_a_bodys_top_is_not_that_bodys() {
        // Bodies every 30 mm, 24 mm tall; a rib leaves the spine at s = 14, 12 mm above the top
        // of the first measured body (centre 38): it belongs to the body above (T12), so the
        // first measured body is L1.
        let bodies: Vec<BodySpan> = [38.0, 76.0, 112.0]
            .iter()
            .map(|&c| BodySpan {
                s_center: c,
                height: 24.0,
                s_top: c - 12.0,
            })
            .collect();
        let rib = |side| Rib {
            s: 14.0,
            length: 120.0,
            side,
        };
        let naming = name(
            &bodies,
            &[rib(1), rib(-1)],
            &[],
            None,
            SeenBeyond::default(),
            None,
            &ClassicalConfig::default(),
        );
        assert_eq!(
            naming.label_index[0],
            VertebraLevel::L1.index() as isize,
            "{:?}",
            naming.notes
        );
    }

    /// Bodies every 22 mm (20 mm tall) and a rib pair leaving the spine at the top of each body
    /// listed in `ribbed` (indices).
    fn ribbed_spine(n: usize, ribbed: &[usize]) -> (Vec<BodySpan>, Vec<Rib>) {
        let bodies: Vec<BodySpan> = (0..n)
            .map(|j| BodySpan {
                s_center: 30.0 + 22.0 * j as f64,
                height: 20.0,
                s_top: 20.0 + 22.0 * j as f64,
            })
            .collect();
        let ribs = ribbed
            .iter()
            .flat_map(|&j| {
                [1, -1].map(|side| Rib {
                    s: bodies[j].s_top - 1.0,
                    length: 120.0,
                    side,
                })
            })
            .collect();
        (bodies, ribs)
    }

    #[test]
    fn with_no_rib_anchor_the_body_above_the_carina_is_t5() {
        // Seven rib-bearing bodies, with rib-bearing levels above and below them: no rib
        // anchor. The carina lies between the third and fourth bodies' centres.
        let (bodies, ribs) = ribbed_spine(9, &(0..9).collect::<Vec<_>>());
        let inner = &bodies[1..8];
        let cfg = ClassicalConfig::default();
        let carina = Some(0.5 * (inner[2].s_center + inner[3].s_center));
        let naming = name(inner, &ribs, &[], None, SeenBeyond::default(), carina, &cfg);
        assert!(naming.uncertain, "{:?}", naming.notes);
        assert_eq!(naming.label_index[2], VertebraLevel::T5.index() as isize);
        assert!(naming.notes.iter().any(|n| n.contains("carina")));
        // Without it the count falls back on the heights (all bodies 20 mm: another count).
        let by_heights = name(inner, &ribs, &[], None, SeenBeyond::default(), None, &cfg);
        assert_ne!(by_heights.label_index, naming.label_index);
    }

    #[test]
    fn a_rib_free_body_cut_by_the_scan_below_the_last_rib_confirms_t12() {
        // Six bodies, all rib-bearing; below the last one the scan cuts a rib-free body.
        let (bodies, ribs) = ribbed_spine(6, &[0, 1, 2, 3, 4, 5]);
        let cfg = ClassicalConfig::default();
        let unseen = name(&bodies, &ribs, &[], None, SeenBeyond::default(), None, &cfg);
        assert!(unseen.uncertain, "no anchor without the level below");
        let below = SeenBeyond {
            above: false,
            below: true,
        };
        let seen = name(&bodies, &ribs, &[], None, below, None, &cfg);
        assert!(!seen.uncertain, "{:?}", seen.notes);
        assert_eq!(seen.label_index[5], VertebraLevel::T12.index() as isize);
    }

    #[test]
    fn first_rib_outranks_a_last_rib_one_level_off_and_flags_the_labels() {
        // C7 (no rib), then eleven rib-bearing bodies, then two rib-free ones: eleven rib pairs
        // (or a twelfth rib not seen). Counted from the first rib, the third body below the
        // last rib is L2, and the labels are flagged uncertain.
        let (bodies, ribs) = ribbed_spine(14, &(1..12).collect::<Vec<_>>());
        let naming = name(
            &bodies,
            &ribs,
            &[],
            None,
            SeenBeyond::default(),
            None,
            &ClassicalConfig::default(),
        );
        assert_eq!(
            naming.label_index[1],
            VertebraLevel::T1.index() as isize,
            "{:?}",
            naming.notes
        );
        assert!(naming.uncertain);
        assert!(naming.notes.iter().any(|n| n.contains("disagree by 1")));
    }

    #[test]
    fn a_first_rib_with_unresolved_bone_above_it_yields_to_the_last_rib() {
        // The same spine, but bone joined to the clavicle crosses the rib shell beside the
        // rib-free body above the first rib seen: that rib may be the second, so the last rib
        // names the levels.
        let (bodies, ribs) = ribbed_spine(14, &(1..12).collect::<Vec<_>>());
        let beside_body_0 = [(bodies[0].s_top + 2.0, bodies[0].s_top + 8.0)];
        let naming = name(
            &bodies,
            &ribs,
            &beside_body_0,
            None,
            SeenBeyond::default(),
            None,
            &ClassicalConfig::default(),
        );
        assert_eq!(
            naming.label_index[11],
            VertebraLevel::T12.index() as isize,
            "{:?}",
            naming.notes
        );
        assert!(naming.uncertain);
        // Bone elsewhere (a kidney beside L2) leaves the first rib its rank.
        let beside_l2 = [(bodies[13].s_top, bodies[13].s_top + 5.0)];
        let naming = name(
            &bodies,
            &ribs,
            &beside_l2,
            None,
            SeenBeyond::default(),
            None,
            &ClassicalConfig::default(),
        );
        assert_eq!(naming.label_index[1], VertebraLevel::T1.index() as isize);
    }

    #[test]
    fn a_cement_streak_is_not_the_last_rib() {
        let rib = |s, length, side| Rib { s, length, side };
        // T12's pair at s = 264, T11's above; a 32 mm one-sided "rib" at s = 297 from the cement
        // in L1 (spanning s 285–310).
        let ribs = [
            rib(234.0, 124.0, -1),
            rib(240.0, 122.0, 1),
            rib(264.0, 98.0, -1),
            rib(261.0, 96.0, 1),
            rib(297.0, 32.0, -1),
        ];
        let kept = drop_streaks(&ribs, &[(285.0, 310.0)]);
        assert_eq!(kept.len(), 4);
        assert!(kept.iter().all(|r| r.s < 290.0));
        // Not in a dense body: a short lone rib stays (a hypoplastic 12th rib).
        assert_eq!(drop_streaks(&ribs, &[]).len(), 5);
        // A cemented T12 keeps its own pair.
        assert_eq!(drop_streaks(&ribs, &[(250.0, 280.0)]).len(), 5);
    }

    #[test]
    fn an_unmeasured_body_keeps_its_level() {
        // Pitch 22 mm; the body at 88 was not measured, the one at 22 is crushed (short pitch
        // to it is still one level).
        let ord = level_ordinals(&spans(&[0.0, 22.0, 44.0, 66.0, 110.0, 132.0, 154.0]));
        assert_eq!(ord, vec![0, 1, 2, 3, 5, 6, 7]);
        let ord = level_ordinals(&spans(&[0.0, 16.0, 40.0, 62.0, 84.0]));
        assert_eq!(ord, vec![0, 1, 2, 3, 4]);
    }

    /// A vertical centreline from z = 100 (s = 0) down to z = 0, with a 1 mm posterior kink at
    /// z = 44 (s = 56).
    fn kinked_centreline() -> Centreline {
        let mut s = Vec::new();
        let mut frames = Vec::new();
        let mut canal = Vec::new();
        for i in 0..=50 {
            let z = 100.0 - 2.0 * i as f64;
            let y = if i == 28 { 1.0 } else { 0.0 };
            s.push(2.0 * i as f64);
            frames.push(Frame {
                p: [0.0, y, z],
                t: [0.0, 0.0, 1.0],
                a: [0.0, -1.0, 0.0],
                l: [1.0, 0.0, 0.0],
            });
            canal.push([0.0, y + 25.0, z]);
        }
        Centreline {
            s,
            frames,
            canal,
            body_coverage: 1.0,
        }
    }

    #[test]
    fn joined_ribs_leave_the_spine_one_root_each_but_a_broad_patch_is_none() {
        let cl = kinked_centreline();
        // Canal at (0, y + 25, z); shell points 56 mm to the patient's left, behind the canal.
        let at = |z: f64, dx: f64, dz: f64| {
            let p = [56.0 + dx, 30.0, z + dz];
            (56.0 + dx, p)
        };
        let mut shell = Vec::new();
        for z in [80.0, 55.0] {
            for (dx, dz) in [(0.0, 0.0), (2.0, 2.0), (2.0, -2.0), (4.0, 4.0)] {
                shell.push(at(z, dx, dz));
            }
        }
        let (roots, unresolved) = rib_roots(&cl, &shell);
        assert!(unresolved.is_empty());
        let mut levels: Vec<f64> = roots.iter().map(|r| r.s).collect();
        levels.sort_by(f64::total_cmp);
        assert_eq!(levels, vec![20.0, 45.0], "{roots:?}");
        assert!(roots.iter().all(|r| r.side == roots[0].side));
        // A patch 40 mm across in the shell (an enhanced kidney) at one level: no root.
        let patch: Vec<(f64, [f64; 3])> = (0..20)
            .map(|k| {
                let p = [56.0, 10.0 + 2.0 * k as f64, 30.0];
                (56.0, p)
            })
            .collect();
        let (roots, unresolved) = rib_roots(&cl, &patch);
        assert!(roots.is_empty());
        assert_eq!(unresolved.len(), 1, "the patch is bone no rib accounts for");
    }

    #[test]
    fn a_voxel_has_26_neighbours_inside_the_box_and_fewer_at_its_faces() {
        assert_eq!(neighbours26((1, 1, 1), [3, 3, 3]).count(), 26);
        assert_eq!(neighbours26((0, 0, 0), [3, 3, 3]).count(), 7);
        assert_eq!(neighbours26((2, 1, 1), [3, 3, 3]).count(), 17);
        assert!(neighbours26((1, 1, 1), [3, 3, 3]).all(|v| v != (1, 1, 1)));
    }

    #[test]
    fn a_rib_sloping_down_from_the_spine_is_followed_inward_towards_its_head() {
        // Canal at x = y = 0 on every slice of a 2 mm grid; a rib leaves the spine to the left,
        // dropping 0.6 mm per mm outward (the 11th and 12th ribs beside the spine): at the 55 mm
        // cut it lies 9 mm below where it is 15 mm further in.
        let (nx, ny, nz) = (50, 3, 60);
        let mut g = Grid {
            dims: [nx, ny, nz],
            spacing: 2.0,
            origin: [0.0, -2.0, 0.0],
            data: vec![0.0; nx * ny * nz],
        };
        let rib_z = |x: f64| 80.0 - 0.6 * (x - 30.0);
        for ix in 15..nx {
            let x = ix as f64 * 2.0;
            let iz = (rib_z(x) / 2.0).round() as usize;
            for dz in 0..2 {
                let i = g.idx(ix, 1, iz + dz);
                g.data[i] = 400.0;
            }
        }
        let track = CanalTrack {
            k_start: 0,
            points: vec![(0.0, 0.0, 7.0, true); nz],
            longest_gap_mm: 0.0,
        };
        let cfg = ClassicalConfig::default();
        let shell: Vec<(f64, [f64; 3])> = (0..g.data.len())
            .filter(|&i| g.data[i] > 0.0)
            .map(|i| {
                let (z, y, x) = (i / (nx * ny), (i / nx) % ny, i % nx);
                let p = g.to_patient(x as f64, y as f64, z as f64);
                (p[0].hypot(p[1]), p)
            })
            .filter(|&(d, _)| (cfg.rib_cut_mm..cfg.rib_cut_mm + RIB_ROOT_SHELL_MM).contains(&d))
            .collect();
        let head = follow_inward(&g, &track, &shell, &cfg).expect("followed inward");
        let inner = cfg.rib_cut_mm - RIB_INWARD_MM;
        assert!(
            (inner..inner + 2.5).contains(&head[0]),
            "reached x {}",
            head[0]
        );
        assert!(
            head[2] > rib_z(cfg.rib_cut_mm) + 7.0,
            "z {} not above the cut's {}",
            head[2],
            rib_z(cfg.rib_cut_mm)
        );
        // A broad plate of bone inside the cut (a bridging osteophyte) is no rib to follow.
        for ix in 20..28 {
            for iz in 0..nz {
                for iy in 0..ny {
                    let i = g.idx(ix, iy, iz);
                    g.data[i] = 400.0;
                }
            }
        }
        assert!(follow_inward(&g, &track, &shell, &cfg).is_none());
    }

    #[test]
    fn level_of_a_far_point_is_its_normal_plane_not_the_nearest_curve_point() {
        let cl = kinked_centreline();
        // A rib 55 mm lateral and 50 mm posterior at z = 50 lies at s = 50; the kink 6 mm below
        // pulls the nearest curve point down to it.
        let rib = [55.0, 50.0, 50.0];
        assert!((cl.project(rib).0 - 56.0).abs() < 1e-9);
        assert!((level_of(&cl, rib) - 50.0).abs() < 1e-9);
        // Beyond the ends: clamped.
        assert_eq!(level_of(&cl, [60.0, 0.0, 130.0]), 0.0);
        assert_eq!(level_of(&cl, [60.0, 0.0, -30.0]), 100.0);
    }
}
