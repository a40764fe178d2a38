//! A vertebral body cut by the edge of the scan: the body beyond the last disc of the chain,
//! whose far endplate lies outside the scanned range (T12 at the top of an abdominal CT, L1 or
//! L2 at the bottom of a chest CT).
//!
//! Such a body is found and named like the others, so the radiologist sees the level it was,
//! but its heights are lower bounds: it is reported with the `truncated` and `not_gradable`
//! flags, its near endplate measured and its cut side's keypoints on the scan's edge.

use crate::{
    config::ClassicalConfig,
    endplates::{self, COLUMNS},
    profile,
    straighten::{self, Straightened},
};

/// Least part of a body (mm) that must be in view to report it.
pub const MIN_VISIBLE_MM: f64 = 8.0;

/// Least median HU of the body's core in view (above soft tissue; osteoporotic marrow reads
/// little more than a disc, so the endplate must also be found).
const MIN_CORE_HU: f64 = 60.0;

/// Least fraction of the sub-columns on which the near endplate must be found.
const MIN_FOUND_FRACTION: f64 = 0.6;

/// A body seen only up to the scan's edge.
#[derive(Debug, Clone)]
pub struct CutBody {
    /// Anterior offsets of the posterior and anterior cortex, mm.
    pub u_post: f64,
    /// See `u_post`.
    pub u_ant: f64,
    /// Anterior offsets of the posterior, middle and anterior columns, mm.
    pub u_cols: [f64; 3],
    /// Arc length of the endplate facing the chain's last disc, per column, mm.
    pub s_endplate: [f64; 3],
    /// Arc length of the scan's edge, mm.
    pub s_edge: f64,
    /// Median drop (HU) from endplate to disc over the sub-columns.
    pub edge_hu: f64,
    /// Fraction of sub-columns on which the endplate was found.
    pub found_fraction: f64,
}

/// Measure the body between the scan's edge at arc length `s_edge` and the disc at `s_disc`
/// (either may be the smaller: the cut may be cranial or caudal). `None` when less than
/// [`MIN_VISIBLE_MM`] is in view, no body depth is found, its core is not bone, or the near
/// endplate is found on too few sub-columns.
pub fn measure(
    img: &Straightened,
    s_edge: f64,
    s_disc: f64,
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> Option<CutBody> {
    let visible = (s_disc - s_edge).abs();
    if visible < MIN_VISIBLE_MM {
        return None;
    }
    // The endplate lies a few mm from the disc; the body's core is the middle of what is seen.
    let s_mid = 0.5 * (s_edge + s_disc);
    let (r0, r1) = {
        let (a, b) = (
            img.row_of(s_mid - 0.25 * visible),
            img.row_of(s_mid + 0.25 * visible),
        );
        (a.min(b), a.max(b))
    };
    let q = profile::smooth(&img.row_band_median(r0, r1), 0.6 / img.du);
    let (u_post, u_ant) = endplates::ap_extent(&q, img, cfg)?;
    let depth = u_ant - u_post;
    tracing::debug!("cut body {s_edge:.0}-{s_disc:.0}: depth {depth:.1}");
    if depth < cfg.body_min_depth_mm {
        return None;
    }
    let mut core_hu =
        q[img.col_of(u_post + 0.3 * depth)..=img.col_of(u_ant - 0.3 * depth)].to_vec();
    if core_hu.is_empty() || straighten::median(&mut core_hu) < MIN_CORE_HU {
        return None;
    }
    let (mid, disc) = (img.row_of(s_mid), img.row_of(s_disc));
    let outward = if s_disc > s_edge { 1.0 } else { -1.0 };
    let half_w = (0.04 * depth).max(0.75);
    let fr = endplates::sub_column_fractions();
    let mut found: Vec<Option<f64>> = Vec::with_capacity(fr.len());
    let mut drops = Vec::new();
    for &f in &fr {
        let u = u_post + f * depth;
        let mut p = profile::smooth(&img.profile(u - half_w, u + half_w), 0.5 / img.ds);
        profile::flatten_bumps_above(&mut p, cfg.cement_hu, endplates::CEMENT_FLANK_FLOOR_HU);
        let edge = endplates::endplate_edge(&p, mid, disc, cfg.endplate_min_drop_hu);
        found.push(edge.map(|(x, dr)| {
            drops.push(dr);
            x * img.ds + outward * edge_bias
        }));
    }
    let found_fraction = found.iter().flatten().count() as f64 / fr.len() as f64;
    tracing::debug!("cut body {s_edge:.0}-{s_disc:.0}: endplate {found:.1?}");
    if found_fraction < MIN_FOUND_FRACTION {
        return None;
    }
    let mut s_endplate = [0.0; 3];
    for (c, &f) in COLUMNS.iter().enumerate() {
        let k = fr.iter().position(|&x| (x - f).abs() < 1e-6)?;
        let mut near: Vec<f64> = (k.saturating_sub(2)..(k + 3).min(fr.len()))
            .filter_map(|i| found[i])
            .collect();
        if near.is_empty() {
            return None;
        }
        s_endplate[c] = straighten::median(&mut near);
        // The endplate must lie between the edge and the disc, with some body in view.
        if (s_endplate[c] - s_edge).abs() < 0.5 * MIN_VISIBLE_MM {
            return None;
        }
    }
    Some(CutBody {
        u_post,
        u_ant,
        u_cols: COLUMNS.map(|f| u_post + f * depth),
        s_endplate,
        s_edge,
        edge_hu: straighten::median(&mut drops),
        found_fraction,
    })
}
