//! Curved planar reformation (CPR) along the spine centreline (Kanitsar et al., "CPR — Curved
//! Planar Reformation", IEEE Visualization 2002: the "stretched" variant, which keeps lengths
//! along the curve so vertebral heights are not distorted).
//!
//! Each image row is one sample of the centreline, resampled at equal arc-length steps, cranial
//! row first. A row is sampled along a *column direction* through the centreline point and
//! averaged (or maximum-projected) across a slab along a *slab direction*:
//!
//! - sagittal: columns run along −anterior (anterior on the viewer's left, as a sagittal image is
//!   displayed), the slab is the lateral direction `cranial × anterior` (patient left);
//! - coronal: the centreline's lateral deviation is *not* followed — each row keeps the mean
//!   lateral position and samples along one fixed left–right axis (patient right on the viewer's
//!   left) — so a scoliotic curve shows as a curve; the slab runs anterior–posterior through the
//!   vertebral bodies, following kyphosis and lordosis.

use crate::config::{Projection, RenderingConfig};
use spinescreen_proto::detection::CentrelinePoint;
use spinescreen_proto::vec3::{add, cross, dot, lerp, norm, normalize as unit, scale, sub, Vec3};
use spinescreen_proto::HuSource;

/// Which reformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Curved sagittal: anterior left, posterior right, head up.
    Sagittal,
    /// Curved coronal: patient right on the left, head up, lateral curvature preserved.
    Coronal,
}

/// Longest centreline accepted (mm); anything longer is a broken detection, not a spine.
pub const MAX_CENTRELINE_MM: f64 = 2000.0;
/// Finest pixel spacing used (mm): finer only magnifies interpolation blur.
pub const MIN_PIXEL_MM: f64 = 0.3;

/// The sampling frame of one image row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowFrame {
    /// Centre of the row (column centre), patient mm.
    pub centre: Vec3,
    /// Unit direction towards the head along the curve.
    pub tangent: Vec3,
    /// Unit direction of increasing column.
    pub column_dir: Vec3,
    /// Unit direction across the slab.
    pub slab_dir: Vec3,
}

/// The curved surface an image was sampled on: maps patient points to image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvedPlane {
    /// Which view.
    pub view: View,
    /// One frame per image row, cranial first.
    pub rows: Vec<RowFrame>,
    /// Columns.
    pub columns: usize,
    /// Pixel spacing along rows and columns, mm (isotropic).
    pub pixel_mm: f64,
    /// Axis removed before finding the nearest row (coronal: the fixed lateral axis).
    flatten: Option<Vec3>,
}

/// A reformatted, windowed grey image and the surface it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reformat {
    /// Windowed grey values, row-major, `plane.rows.len() × plane.columns`.
    pub grey: Vec<u8>,
    /// Geometry.
    pub plane: CurvedPlane,
}

/// Why a centreline cannot be reformatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CentrelineError {
    /// Fewer than two points.
    #[error("the spine centreline has fewer than two points")]
    TooShort,
    /// NaN/infinite coordinates or zero-length direction vectors.
    #[error("the spine centreline has non-finite or degenerate points")]
    Degenerate,
    /// Implausibly long.
    #[error("the spine centreline is longer than {MAX_CENTRELINE_MM} mm")]
    TooLong,
}

/// `a` with its component along unit `axis` removed.
fn reject(a: Vec3, axis: Vec3) -> Vec3 {
    sub(a, scale(axis, dot(a, axis)))
}

/// A cleaned centreline: finite, unit-orthogonal directions, cranial first.
fn clean(centreline: &[CentrelinePoint]) -> Result<Vec<CentrelinePoint>, CentrelineError> {
    if centreline.len() < 2 {
        return Err(CentrelineError::TooShort);
    }
    let mut out = Vec::with_capacity(centreline.len());
    for p in centreline {
        if !p.position_mm.iter().all(|v| v.is_finite()) {
            return Err(CentrelineError::Degenerate);
        }
        let t = unit(p.cranial_dir).ok_or(CentrelineError::Degenerate)?;
        let a = unit(reject(p.anterior_dir, t)).ok_or(CentrelineError::Degenerate)?;
        out.push(CentrelinePoint {
            position_mm: p.position_mm,
            cranial_dir: t,
            anterior_dir: a,
        });
    }
    // The contract says cranial to caudal; accept the reverse rather than draw upside down.
    let first = out[0].position_mm;
    let last = out[out.len() - 1].position_mm;
    let mean_t = out.iter().fold([0.0; 3], |s, p| add(s, p.cranial_dir));
    if dot(sub(last, first), mean_t) > 0.0 {
        out.reverse();
    }
    Ok(smooth(&out))
}

/// Points on either side averaged by [`smooth`] (~±4 mm at the contract's 1 mm spacing).
const SMOOTH_HALF_WINDOW: usize = 4;

/// Moving average of positions and directions, so detector jitter does not ripple the
/// reformat; the window narrows towards the ends, which stay fixed.
fn smooth(points: &[CentrelinePoint]) -> Vec<CentrelinePoint> {
    let n = points.len();
    (0..n)
        .map(|i| {
            // Symmetric window, narrowing at the ends so the end points stay where they are.
            let half = SMOOTH_HALF_WINDOW.min(i).min(n - 1 - i);
            let (lo, hi) = (i - half, i + half);
            let w = &points[lo..=hi];
            let k = 1.0 / w.len() as f64;
            let pos = scale(w.iter().fold([0.0; 3], |s, p| add(s, p.position_mm)), k);
            let t = unit(w.iter().fold([0.0; 3], |s, p| add(s, p.cranial_dir)))
                .unwrap_or(points[i].cranial_dir);
            let a_sum = w.iter().fold([0.0; 3], |s, p| add(s, p.anterior_dir));
            let a = unit(reject(a_sum, t)).unwrap_or(points[i].anterior_dir);
            CentrelinePoint {
                position_mm: pos,
                cranial_dir: t,
                anterior_dir: a,
            }
        })
        .collect()
}

/// The fixed left–right axis of the coronal view: the mean of `cranial × anterior` with its
/// component along the mean cranial direction removed.
fn mean_lateral(points: &[CentrelinePoint]) -> Vec3 {
    let l = points.iter().fold([0.0; 3], |s, p| {
        add(s, cross(p.cranial_dir, p.anterior_dir))
    });
    let t = points.iter().fold([0.0; 3], |s, p| add(s, p.cranial_dir));
    let lateral = match unit(t) {
        Some(t) => reject(l, t),
        None => l,
    };
    unit(lateral).unwrap_or([1.0, 0.0, 0.0])
}

/// Largest distance of any centreline point from its mean along `axis`, mm.
fn max_deviation(points: &[CentrelinePoint], axis: Vec3) -> f64 {
    let n = points.len() as f64;
    let mean = points.iter().map(|p| dot(p.position_mm, axis)).sum::<f64>() / n;
    points
        .iter()
        .map(|p| (dot(p.position_mm, axis) - mean).abs())
        .fold(0.0, f64::max)
}

/// Build the curved surface for `view` so that it fits `max_rows` image rows; the pixel spacing
/// is the centreline length over `max_rows` (never finer than [`MIN_PIXEL_MM`]).
pub fn plan(
    centreline: &[CentrelinePoint],
    view: View,
    field_mm: f64,
    max_rows: usize,
    max_columns: usize,
) -> Result<CurvedPlane, CentrelineError> {
    let pts = clean(centreline)?;
    let lateral = mean_lateral(&pts);
    // Coronal rows keep the mean lateral position: move every point onto that plane.
    let mean_lat_pos =
        pts.iter().map(|p| dot(p.position_mm, lateral)).sum::<f64>() / pts.len() as f64;
    let lateral_deviation = max_deviation(&pts, lateral);
    let pts: Vec<CentrelinePoint> = match view {
        View::Sagittal => pts,
        View::Coronal => pts
            .iter()
            .map(|p| {
                let off = dot(p.position_mm, lateral) - mean_lat_pos;
                let t = unit(reject(p.cranial_dir, lateral)).unwrap_or(p.cranial_dir);
                let a = unit(reject(reject(p.anterior_dir, lateral), t)).unwrap_or(p.anterior_dir);
                CentrelinePoint {
                    position_mm: sub(p.position_mm, scale(lateral, off)),
                    cranial_dir: t,
                    anterior_dir: a,
                }
            })
            .collect(),
    };
    let field_mm = match view {
        View::Sagittal => field_mm,
        // Wide enough for the lateral curve plus the field on either side of it.
        View::Coronal => (field_mm + 2.0 * lateral_deviation).min(400.0),
    };
    let mut arc = Vec::with_capacity(pts.len());
    let mut s = 0.0;
    arc.push(0.0);
    for w in pts.windows(2) {
        s += norm(sub(w[1].position_mm, w[0].position_mm));
        arc.push(s);
    }
    if !s.is_finite() || s > MAX_CENTRELINE_MM {
        return Err(CentrelineError::TooLong);
    }
    if s < 1.0 {
        return Err(CentrelineError::TooShort);
    }
    let field_mm = if field_mm.is_finite() {
        field_mm.clamp(10.0, 400.0)
    } else {
        120.0
    };
    let pixel_mm = (s / max_rows.max(1) as f64)
        .max(field_mm / max_columns.max(1) as f64)
        .max(MIN_PIXEL_MM);
    let n_rows = ((s / pixel_mm).floor() as usize).clamp(1, max_rows.max(1));
    let columns = ((field_mm / pixel_mm).round() as usize).clamp(1, max_columns.max(1));
    let mut rows = Vec::with_capacity(n_rows);
    let mut seg = 0;
    for k in 0..n_rows {
        let target = (k as f64 + 0.5) * pixel_mm;
        while seg + 2 < arc.len() && arc[seg + 1] < target {
            seg += 1;
        }
        let len = arc[seg + 1] - arc[seg];
        let t = if len > 0.0 {
            ((target - arc[seg]) / len).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (p0, p1) = (&pts[seg], &pts[seg + 1]);
        let centre = lerp(p0.position_mm, p1.position_mm, t);
        let tangent = unit(lerp(p0.cranial_dir, p1.cranial_dir, t)).unwrap_or(p0.cranial_dir);
        let anterior = unit(reject(lerp(p0.anterior_dir, p1.anterior_dir, t), tangent))
            .unwrap_or(p0.anterior_dir);
        let (column_dir, slab_dir) = match view {
            View::Sagittal => (scale(anterior, -1.0), cross(tangent, anterior)),
            View::Coronal => (lateral, anterior),
        };
        rows.push(RowFrame {
            centre,
            tangent,
            column_dir,
            slab_dir,
        });
    }
    Ok(CurvedPlane {
        view,
        rows,
        columns,
        pixel_mm,
        flatten: (view == View::Coronal).then_some(lateral),
    })
}

impl CurvedPlane {
    /// Image rows.
    pub fn height(&self) -> usize {
        self.rows.len()
    }

    /// Half the field width, mm.
    fn half_field(&self) -> f64 {
        self.columns as f64 * self.pixel_mm / 2.0
    }

    /// Fractional pixel position `[column, row]` (pixel centres at `.5`) of a patient point, by
    /// its nearest row; `None` if the surface has no rows.
    pub fn project(&self, p: Vec3) -> Option<[f64; 2]> {
        let offset_of = |row: &RowFrame| {
            let d = sub(p, row.centre);
            match self.flatten {
                Some(axis) => reject(d, axis),
                None => d,
            }
        };
        let (k, _) = self
            .rows
            .iter()
            .enumerate()
            .map(|(k, r)| (k, norm(offset_of(r))))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        let row = &self.rows[k];
        let d = sub(p, row.centre);
        let along = dot(offset_of(row), row.tangent);
        // Rows run cranial → caudal, so moving towards the head is moving up the image.
        let y = k as f64 + 0.5 - along / self.pixel_mm;
        let x = (dot(d, row.column_dir) + self.half_field()) / self.pixel_mm;
        Some([x, y])
    }

    /// Patient position of pixel centre `(column, row)` on the surface's mid-slab.
    pub fn position(&self, column: usize, row: usize) -> Option<Vec3> {
        let r = self.rows.get(row)?;
        let u = (column as f64 + 0.5) * self.pixel_mm - self.half_field();
        Some(add(r.centre, scale(r.column_dir, u)))
    }
}

/// Sample the volume on `plane` across a slab and apply the window.
pub fn sample(volume: &impl HuSource, plane: CurvedPlane, cfg: &RenderingConfig) -> Reformat {
    let h = volume.header();
    let min_spacing = h
        .spacing_mm
        .iter()
        .copied()
        .filter(|s| s.is_finite() && *s > 0.0)
        .fold(f64::INFINITY, f64::min);
    // Sample the slab about once per voxel (at most every 1 mm), symmetric about the surface.
    let step = if min_spacing.is_finite() {
        min_spacing.min(1.0)
    } else {
        1.0
    };
    let slab = if cfg.slab_mm.is_finite() {
        cfg.slab_mm.clamp(0.0, 100.0)
    } else {
        0.0
    };
    let n_slab = ((slab / step).ceil() as usize).max(1);
    let slab_offsets: Vec<f64> = (0..n_slab)
        .map(|i| -slab / 2.0 + (i as f64 + 0.5) * slab / n_slab as f64)
        .collect();
    let lo = cfg.window_center - cfg.window_width / 2.0;
    let width = cfg.window_width.max(1.0);
    let half = plane.half_field();
    let mut grey = vec![0u8; plane.rows.len() * plane.columns];
    let origin_index = h.patient_to_index([0.0; 3]);
    // Index-space image of a patient-space direction (the map is affine).
    let index_dir = |d: Vec3| sub(h.patient_to_index(d), origin_index);
    for (k, row) in plane.rows.iter().enumerate() {
        let base = h.patient_to_index(row.centre);
        let du = index_dir(row.column_dir);
        let ds = index_dir(row.slab_dir);
        let slab_steps: Vec<Vec3> = slab_offsets.iter().map(|&o| scale(ds, o)).collect();
        for c in 0..plane.columns {
            let u = (c as f64 + 0.5) * plane.pixel_mm - half;
            let centre = add(base, scale(du, u));
            let mut acc = 0.0f64;
            let mut max = f64::NEG_INFINITY;
            let mut n = 0usize;
            for s in &slab_steps {
                if let Some(v) = volume.sample_index(add(centre, *s)) {
                    acc += v as f64;
                    max = max.max(v as f64);
                    n += 1;
                }
            }
            let hu = match (n, cfg.projection) {
                (0, _) => -1024.0,
                (_, Projection::Average) => acc / n as f64,
                (_, Projection::Mip) => max,
            };
            let g = ((hu - lo) / width * 255.0).clamp(0.0, 255.0);
            grey[k * plane.columns + c] = g.round() as u8;
        }
    }
    Reformat { grey, plane }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use spinescreen_proto::{HuVolume, StudyInfo, VolumeHeader, SCHEMA_VERSION};

    fn straight_centreline(x: f64, y: f64, z0: f64, z1: f64) -> Vec<CentrelinePoint> {
        let n = (z1 - z0).round() as usize;
        (0..=n)
            .map(|i| CentrelinePoint {
                position_mm: [x, y, z1 - i as f64],
                cranial_dir: [0.0, 0.0, 1.0],
                anterior_dir: [0.0, -1.0, 0.0],
            })
            .collect()
    }

    fn volume_with_bright_cube() -> HuVolume {
        // 1 mm voxels, origin 0; a 1000 HU cube at x 20..30, y 10..20 (anterior half), z 20..30.
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [50, 50, 50],
            spacing_mm: [1.0; 3],
            origin_mm: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let vox = Array3::from_shape_fn((50, 50, 50), |(z, y, x)| {
            if (20..30).contains(&x) && (10..20).contains(&y) && (20..30).contains(&z) {
                1000
            } else {
                0
            }
        });
        HuVolume::new(header, vox).unwrap()
    }

    #[test]
    fn sagittal_puts_anterior_on_the_left_and_head_up() {
        let vol = volume_with_bright_cube();
        // Centreline at x 25, y 20 (cube's posterior face), z 45 → 5.
        let cl = straight_centreline(25.0, 20.0, 5.0, 45.0);
        let plane = plan(&cl, View::Sagittal, 40.0, 40, 100).unwrap();
        assert!((plane.pixel_mm - 1.0).abs() < 1e-9);
        let cfg = RenderingConfig {
            window_center: 500.0,
            window_width: 1000.0,
            ..Default::default()
        };
        let r = sample(&vol, plane, &cfg);
        let w = r.plane.columns;
        // Row of z = 25 is 20 rows below the top (z 45). Column 10 is 10 mm anterior of y 20.
        let at = |row: usize, col: usize| r.grey[row * w + col];
        assert!(
            at(20, 12) > 200,
            "cube anterior of the centreline, left of centre"
        );
        assert!(at(20, 28) < 50, "nothing posterior of the centreline");
        assert!(at(5, 12) < 50, "nothing above z 30");
        // 5 mm anterior of the centreline is 5 columns left of the centre column (20).
        let p = r.plane.project([25.0, 15.0, 25.0]).unwrap();
        assert!(
            (p[0] - 15.0).abs() < 0.6 && (p[1] - 20.0).abs() < 0.6,
            "{p:?}"
        );
    }

    #[test]
    fn coronal_shows_lateral_deviation_instead_of_straightening_it() {
        // An S-shaped centreline in x: a curved-along-the-line reformat would straighten it.
        let cl: Vec<CentrelinePoint> = (0..=40)
            .map(|i| {
                let z = 45.0 - i as f64;
                let x = 25.0 + 8.0 * ((z - 5.0) / 40.0 * std::f64::consts::PI).sin();
                CentrelinePoint {
                    position_mm: [x, 15.0, z],
                    cranial_dir: [0.0, 0.0, 1.0],
                    anterior_dir: [0.0, -1.0, 0.0],
                }
            })
            .collect();
        let plane = plan(&cl, View::Coronal, 40.0, 40, 100).unwrap();
        let top = plane.project(cl[0].position_mm).unwrap();
        let mid = plane.project(cl[20].position_mm).unwrap();
        assert!(
            (mid[0] - top[0]) > 6.0,
            "lateral shift of 8 mm must show: {top:?} {mid:?}"
        );
        // Patient left (+x) is on the viewer's right.
        assert!(plane.rows[0].column_dir[0] > 0.99);
    }

    #[test]
    fn broken_centrelines_are_errors_not_panics() {
        assert_eq!(
            plan(&[], View::Sagittal, 100.0, 100, 100),
            Err(CentrelineError::TooShort)
        );
        let mut cl = straight_centreline(0.0, 0.0, 0.0, 10.0);
        cl[3].position_mm[0] = f64::NAN;
        assert_eq!(
            plan(&cl, View::Sagittal, 100.0, 100, 100),
            Err(CentrelineError::Degenerate)
        );
        let mut cl = straight_centreline(0.0, 0.0, 0.0, 10.0);
        cl[2].anterior_dir = [0.0, 0.0, 1.0]; // parallel to the tangent
        assert_eq!(
            plan(&cl, View::Sagittal, 100.0, 100, 100),
            Err(CentrelineError::Degenerate)
        );
        let far = vec![
            cl[0],
            CentrelinePoint {
                position_mm: [0.0, 0.0, -1e7],
                ..cl[1]
            },
        ];
        assert_eq!(
            plan(&far, View::Sagittal, 100.0, 100, 100),
            Err(CentrelineError::TooLong)
        );
    }

    #[test]
    fn jitter_in_the_centreline_is_smoothed_out() {
        let mut cl = straight_centreline(25.0, 20.0, 5.0, 45.0);
        for (i, p) in cl.iter_mut().enumerate() {
            p.position_mm[1] += if i % 2 == 0 { 1.0 } else { -1.0 };
        }
        let plane = plan(&cl, View::Sagittal, 40.0, 40, 100).unwrap();
        for r in &plane.rows[5..35] {
            assert!((r.centre[1] - 20.0).abs() < 0.25, "{:?}", r.centre);
        }
    }

    #[test]
    fn reversed_centreline_is_still_drawn_head_up() {
        let mut cl = straight_centreline(25.0, 20.0, 5.0, 45.0);
        cl.reverse();
        let plane = plan(&cl, View::Sagittal, 40.0, 40, 100).unwrap();
        assert!(plane.rows[0].centre[2] > plane.rows[39].centre[2]);
    }
}
