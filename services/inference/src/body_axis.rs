//! Each body's own axis: heights measured perpendicular to its endplates, in patient space.
//!
//! The straightened reformation stands a vertebra upright only as well as the centreline's
//! tangent follows the body. On a real lordotic spine the body centres do not lie on one smooth
//! curve (a body slips a few mm forward of its neighbours, a 3 mm slice shifts a centroid), and a
//! tangent tilted 20° from a body's axis reads its heights 1/cos 20° ≈ 6 % too tall, while the
//! fixed-offset columns of a curved frame fan out. So the endplate surfaces found on the
//! sub-columns are taken back to patient space, projected onto the body's sagittal plane, and
//! each column is drawn parallel to the body's own axis (perpendicular to the mean direction of
//! its two endplates; a wedge's axis bisects them). The keypoints are where the columns cross the
//! endplate surfaces.

use crate::geom::{self, Vec3};

/// Largest tilt (slope) of a body against its frame that is believed: beyond ~27° the
/// endplates were misread, not the centreline.
const MAX_SLOPE: f64 = 0.5;

/// How far (mm) a column may cross an endplate beyond its outermost sub-column: the
/// sub-columns span 10–90 % of the depth at mid-height, and a body tilted 25° against its frame
/// meets the anterior and posterior columns up to ~6 mm beyond them.
const MAX_REACH_MM: f64 = 7.0;

/// How far (mm) a point may lie beyond both its neighbours before it is taken for a stray.
const STRAY_POINT_MM: f64 = 1.0;

/// Points at an end of an endplate whose robust line is extrapolated beyond it.
const END_FIT_POINTS: usize = 4;

/// A point in the body's sagittal plane: `x` along the frame's anterior axis, `y` along its
/// cranial tangent, mm from the frame origin.
type P2 = (f64, f64);

/// The body's sagittal plane: origin and in-plane axes.
#[derive(Debug, Clone, Copy)]
pub struct SagittalPlane {
    /// Origin, patient mm (the centreline at the body's mid-height).
    pub origin: Vec3,
    /// Anterior unit axis.
    pub anterior: Vec3,
    /// Cranial unit axis.
    pub cranial: Vec3,
}

impl SagittalPlane {
    fn in_plane(&self, p: Vec3) -> P2 {
        let d = geom::sub(p, self.origin);
        (geom::dot(d, self.anterior), geom::dot(d, self.cranial))
    }

    fn in_patient(&self, (x, y): P2) -> Vec3 {
        geom::axpy(geom::axpy(self.origin, x, self.anterior), y, self.cranial)
    }
}

/// One endplate surface as found: patient-space points on consecutive sub-columns, posterior to
/// anterior (`None` where the sub-column found no edge).
pub type Surface = Vec<Option<Vec3>>;

/// Keypoints of one body along its own axis: (posterior, middle, anterior) on the superior and
/// on the inferior endplate, patient mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisKeypoints {
    /// Superior endplate: posterior, middle, anterior.
    pub superior: [Vec3; 3],
    /// Inferior endplate: posterior, middle, anterior.
    pub inferior: [Vec3; 3],
    /// Tilt of the body's axis against the frame's tangent, degrees (+ = top leaning anterior).
    pub tilt_deg: f64,
}

/// Keypoints on columns parallel to the body's own axis, through the points at `fractions` of
/// the way from `posterior_wall` to `anterior_wall` (both at mid-height, patient mm). `None`
/// when an endplate has fewer than three points or a column misses a surface.
pub fn keypoints(
    plane: &SagittalPlane,
    superior: &Surface,
    inferior: &Surface,
    posterior_wall: Vec3,
    anterior_wall: Vec3,
    fractions: [f64; 3],
) -> Option<AxisKeypoints> {
    let sup = projected(plane, superior);
    let inf = projected(plane, inferior);
    if sup.len() < 3 || inf.len() < 3 {
        return None;
    }
    let slope = 0.5 * (theil_sen(&sup)? + theil_sen(&inf)?);
    tracing::debug!("body axis slope {slope:.2}");
    if slope.abs() > MAX_SLOPE {
        return None;
    }
    // Column direction: perpendicular to the endplates' mean direction (1, slope).
    let n = 1.0 / (1.0 + slope * slope).sqrt();
    let axis = (-slope * n, n);
    let (wp, wa) = (
        plane.in_plane(posterior_wall),
        plane.in_plane(anterior_wall),
    );
    let mut superior_pts = [[0.0; 3]; 3];
    let mut inferior_pts = [[0.0; 3]; 3];
    for (c, &f) in fractions.iter().enumerate() {
        let base = (wp.0 + f * (wa.0 - wp.0), wp.1 + f * (wa.1 - wp.1));
        let (Some(a), Some(b)) = (crossing(&sup, base, axis), crossing(&inf, base, axis)) else {
            tracing::debug!("body axis: column {c} misses an endplate");
            return None;
        };
        superior_pts[c] = plane.in_patient(a);
        inferior_pts[c] = plane.in_patient(b);
    }
    Some(AxisKeypoints {
        superior: superior_pts,
        inferior: inferior_pts,
        tilt_deg: -slope.atan().to_degrees(),
    })
}

/// Present points projected into the plane; where both neighbouring sub-columns are present and
/// a point lies more than [`STRAY_POINT_MM`] from the median of the three, it takes the median
/// (a lone stray edge is ignored; an end point keeps its own, so the end segments still
/// extrapolate the surface).
fn projected(plane: &SagittalPlane, surface: &Surface) -> Vec<P2> {
    let pts: Vec<Option<P2>> = surface
        .iter()
        .map(|p| p.filter(|p| geom::is_finite(*p)).map(|p| plane.in_plane(p)))
        .collect();
    (0..pts.len())
        .filter_map(|k| {
            let (x, y) = pts[k]?;
            let (Some(before), Some(after)) = (
                k.checked_sub(1).and_then(|j| pts[j]),
                pts.get(k + 1).copied().flatten(),
            ) else {
                return Some((x, y));
            };
            let mut ys = [before.1, y, after.1];
            let m = crate::straighten::median(&mut ys);
            // Only a stray is replaced: the bottom of a smooth bowl (a concave endplate) lies
            // a fraction of a mm beyond both its neighbours and must stay.
            Some((x, if (y - m).abs() > STRAY_POINT_MM { m } else { y }))
        })
        .collect()
}

/// Theil–Sen slope dy/dx (median of pairwise slopes; robust to a pit or a stray edge).
fn theil_sen(pts: &[P2]) -> Option<f64> {
    let mut slopes = Vec::with_capacity(pts.len() * pts.len() / 2);
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            let dx = b.0 - a.0;
            if dx.abs() > 1e-6 {
                slopes.push((b.1 - a.1) / dx);
            }
        }
    }
    (!slopes.is_empty()).then(|| crate::straighten::median(&mut slopes))
}

/// Where the line through `base` along `dir` crosses the polyline `pts` (ordered along x).
/// Beyond the polyline's ends the end segment is extended by at most [`MAX_REACH_MM`].
fn crossing(pts: &[P2], base: P2, dir: P2) -> Option<P2> {
    // Signed offset of each point across the line.
    let side = |p: &P2| (p.0 - base.0) * dir.1 - (p.1 - base.1) * dir.0;
    let along = |a: &P2, b: &P2| -> P2 {
        let (da, db) = (side(a), side(b));
        let t = da / (da - db);
        (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
    };
    for w in pts.windows(2) {
        let (da, db) = (side(&w[0]), side(&w[1]));
        if da == 0.0 {
            return Some(w[0]);
        }
        if (da < 0.0) != (db < 0.0) || db == 0.0 {
            return Some(along(&w[0], &w[1]));
        }
    }
    // Off one end: extrapolate a little along the line through the end's last few points (a
    // Theil–Sen slope: one end segment alone can tilt wildly where a sub-column caught a rim).
    let near_first = side(&pts[0]).abs() < side(pts.last()?).abs();
    let k = pts.len().min(END_FIT_POINTS);
    let end: Vec<P2> = if near_first {
        pts[..k].to_vec()
    } else {
        pts[pts.len() - k..].to_vec()
    };
    let slope = theil_sen(&end)?;
    let b = if near_first { end[0] } else { end[k - 1] };
    let mut ys: Vec<f64> = end.iter().map(|q| q.1 - slope * (q.0 - b.0)).collect();
    let b = (b.0, crate::straighten::median(&mut ys));
    let a = (b.0 - 1.0, b.1 - slope);
    if (side(&a) - side(&b)).abs() < 1e-9 {
        return None;
    }
    let p = along(&a, &b);
    let reach = ((p.0 - b.0).powi(2) + (p.1 - b.1).powi(2)).sqrt();
    (reach <= MAX_REACH_MM).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rectangular body `h` tall and 30 mm deep, tilted by `deg` in the plane x/y = (a, t),
    /// sampled on 17 sub-columns that run along the frame's x axis.
    fn tilted_body(h: f64, deg: f64) -> (SagittalPlane, Surface, Surface, Vec3, Vec3) {
        let plane = SagittalPlane {
            origin: [0.0, 0.0, 0.0],
            anterior: [0.0, -1.0, 0.0],
            cranial: [0.0, 0.0, 1.0],
        };
        let slope = (-deg.to_radians()).tan();
        // Endplate lines y = ±h/2 / cos + slope·x (perpendicular separation h).
        let off = 0.5 * h * (1.0 + slope * slope).sqrt();
        let surf = |sign: f64| -> Surface {
            (0..17)
                .map(|k| {
                    let x = -12.0 + 1.5 * k as f64;
                    Some(plane.in_patient((x, sign * off + slope * x)))
                })
                .collect()
        };
        let wp = plane.in_patient((-15.0, -15.0 * slope));
        let wa = plane.in_patient((15.0, 15.0 * slope));
        (plane, surf(1.0), surf(-1.0), wp, wa)
    }

    #[test]
    fn heights_of_a_tilted_body_are_its_true_heights() {
        for deg in [-20.0, 0.0, 12.0, 25.0] {
            let (plane, sup, inf, wp, wa) = tilted_body(26.0, deg);
            let k = keypoints(&plane, &sup, &inf, wp, wa, [0.15, 0.5, 0.85]).unwrap();
            for c in 0..3 {
                let h = geom::dist(k.superior[c], k.inferior[c]);
                assert!((h - 26.0).abs() < 0.05, "{deg}°: column {c} height {h}");
            }
            assert!((k.tilt_deg - deg).abs() < 0.1, "{} vs {deg}", k.tilt_deg);
        }
    }

    #[test]
    fn a_wedge_keeps_its_anterior_height_loss() {
        // Upright wedge: posterior 26 mm, anterior 14 mm over 30 mm depth (x = −15 … 15).
        let plane = SagittalPlane {
            origin: [0.0, 0.0, 0.0],
            anterior: [1.0, 0.0, 0.0],
            cranial: [0.0, 0.0, 1.0],
        };
        let sup: Surface = (0..17)
            .map(|k| {
                let x = -12.0 + 1.5 * k as f64;
                Some(plane.in_patient((x, 13.0 - 6.0 * (x + 15.0) / 30.0)))
            })
            .collect();
        let inf: Surface = (0..17)
            .map(|k| {
                let x = -12.0 + 1.5 * k as f64;
                Some(plane.in_patient((x, -13.0 + 6.0 * (x + 15.0) / 30.0)))
            })
            .collect();
        let k = keypoints(
            &plane,
            &sup,
            &inf,
            [-15.0, 0.0, 0.0],
            [15.0, 0.0, 0.0],
            [0.15, 0.5, 0.85],
        )
        .unwrap();
        let h: Vec<f64> = (0..3)
            .map(|c| geom::dist(k.superior[c], k.inferior[c]))
            .collect();
        assert!((h[0] - 24.2).abs() < 0.05, "{h:?}");
        assert!((h[1] - 20.0).abs() < 0.05, "{h:?}");
        assert!((h[2] - 15.8).abs() < 0.05, "{h:?}");
    }

    #[test]
    fn too_few_points_or_an_implausible_tilt_give_none() {
        let (plane, sup, inf, wp, wa) = tilted_body(26.0, 0.0);
        let sparse: Surface = sup
            .iter()
            .enumerate()
            .map(|(k, p)| p.filter(|_| k < 2))
            .collect();
        assert!(keypoints(&plane, &sparse, &inf, wp, wa, [0.15, 0.5, 0.85]).is_none());
        let (plane, sup, inf, wp, wa) = tilted_body(26.0, 40.0);
        assert!(keypoints(&plane, &sup, &inf, wp, wa, [0.15, 0.5, 0.85]).is_none());
    }

    #[test]
    fn a_stray_end_reading_does_not_tilt_the_extrapolated_column() {
        // A flat endplate at y = 10 on sub-columns from x = −5 to 12 (the posterior ones
        // missing), whose last posterior reading caught a rim 3 mm off. The posterior column at
        // x = −9 lies beyond the readings: it must follow the endplate, not the stray segment.
        let pts: Vec<P2> = (0..13)
            .map(|k| {
                let x = -5.0 + 1.5 * k as f64;
                (x, if k == 0 { 13.0 } else { 10.0 })
            })
            .collect();
        let p = crossing(&pts, (-9.0, 0.0), (0.0, 1.0)).expect("crossing within reach");
        assert!((p.1 - 10.0).abs() < 1.0, "extrapolated to y = {:.1}", p.1);
    }

    #[test]
    fn a_bowl_bottom_is_kept_but_a_lone_stray_is_not() {
        let plane = SagittalPlane {
            origin: [0.0, 0.0, 0.0],
            anterior: [0.0, -1.0, 0.0],
            cranial: [0.0, 0.0, 1.0],
        };
        // A concave superior endplate: 3 mm deep at the centre, sub-columns 1.5 mm apart.
        let bowl = |x: f64| 10.0 - 3.0 * (1.0 - (x / 9.0).powi(2)).max(0.0).powi(2);
        let mut surface: Surface = (0..17)
            .map(|k| {
                let x = -12.0 + 1.5 * k as f64;
                Some(plane.in_patient((x, bowl(x))))
            })
            .collect();
        let bottom = projected(&plane, &surface)[8];
        assert!(
            (bottom.1 - 7.0).abs() < 1e-9,
            "bowl bottom moved to {:.2}",
            bottom.1
        );
        // A lone reading 3 mm off on a flat stretch is replaced by its neighbours' level.
        surface[2] = Some(plane.in_patient((-9.0, bowl(-9.0) + 3.0)));
        let stray = projected(&plane, &surface)[2];
        assert!(
            (stray.1 - bowl(-9.0)).abs() < 0.5,
            "stray kept at {:.2}",
            stray.1
        );
    }
}
