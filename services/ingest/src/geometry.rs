//! Validation of the chosen series' geometry, and the slice order of the volume.
//!
//! Slices are ordered by their position along the slice normal — the projection of Image
//! Position (Patient) on row × column cosines (PS3.3 C.7.6.2.1.1) — never by Instance Number,
//! which scanners and PACS renumber freely. The stack must then be a regular grid: one
//! orientation, matrix and pixel spacing; no two slices at one position; evenly spaced (a gap
//! of two steps is a missing slice); stacked along the normal (else the gantry was tilted and
//! the voxels are sheared, PS3.3 C.8.2.1.1 Gantry/Detector Tilt).

use crate::config::IngestLimits;
use crate::instance::{Frame, Instance, Pixels};
use crate::select::{slice_normal, FrameRef, Series};
use spinescreen_proto::volume::Vec3;
use spinescreen_proto::{Reason, ReasonCode};

/// Orientation cosines may differ by this much between slices.
const ORIENTATION_TOL: f64 = 1e-3;
/// Relative tolerance on pixel spacing between slices.
const SPACING_REL_TOL: f64 = 1e-3;
/// Slices closer than this along the normal are at one position, mm.
const DUPLICATE_MM: f64 = 0.01;
/// A gap may differ from the median gap by this fraction.
const GAP_REL_TOL: f64 = 0.1;
/// The stacking direction may deviate from the normal by this angle before it is a tilt, degrees.
const TILT_TOL_DEG: f64 = 0.5;

/// A validated, ordered stack of frames and its geometry.
#[derive(Debug, Clone)]
pub(crate) struct Stack {
    /// Frames in volume order (increasing position along `direction[2]`).
    pub frames: Vec<FrameRef>,
    /// Rows of each image.
    pub rows: usize,
    /// Columns of each image.
    pub columns: usize,
    /// `[column spacing, row spacing, slice spacing]`, mm.
    pub spacing: Vec3,
    /// Position of the first voxel of the first slice.
    pub origin: Vec3,
    /// Row direction, column direction, slice direction.
    pub direction: [Vec3; 3],
}

fn defect(code: &str, text: impl Into<String>) -> Reason {
    Reason::new(code, text)
}

const REQUIRED: [&str; 7] = [
    "Rows",
    "Columns",
    "BitsAllocated",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "NumberOfFrames",
];

fn dot(a: &Vec3, b: &Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Check a series and order its slices: readable attributes, a bounded and uniform matrix,
/// one orientation and pixel spacing, then positions that form an evenly spaced stack along the
/// slice normal. The first failing check gives the study's defect.
pub(crate) fn validate(
    series: &Series,
    instances: &[Instance],
    limits: &IngestLimits,
) -> Result<Stack, Reason> {
    let first = series
        .frames
        .first()
        .map(|&(i, _)| &instances[i])
        .ok_or_else(|| defect(ReasonCode::TOO_FEW_SLICES, "the series has no images"))?;
    check_attributes_readable(series, instances)?;
    let (rows, columns) = matrix(first, series, limits)?;
    check_instances_agree(series, instances, first, (rows, columns))?;
    let frames: Vec<_> = series
        .frames
        .iter()
        .map(|&r| (r, &instances[r.0].frames[r.1]))
        .collect();
    let (orientation, pixel_spacing) = common_plane(&frames, instances)?;
    let (row, col, n) = axes(&orientation)?;
    let order = ordered_slices(&frames, n, instances, limits)?;
    let extent = order[order.len() - 1].0 - order[0].0;
    let gaps: Vec<f64> = order.windows(2).map(|w| w[1].0 - w[0].0).collect();
    check_not_tilted(&order, n, first)?;
    check_even_spacing(&gaps)?;
    let p_first = order[0].2;
    Ok(Stack {
        frames: order.iter().map(|o| o.1).collect(),
        rows: rows as usize,
        columns: columns as usize,
        // PixelSpacing is (row spacing = between rows, column spacing = between columns).
        spacing: [
            pixel_spacing[1],
            pixel_spacing[0],
            extent / (order.len() - 1) as f64,
        ],
        origin: p_first,
        direction: [row, col, n],
    })
}

/// One frame of the series with where it comes from.
type FrameOf<'a> = (FrameRef, &'a Frame);

/// A slice in stack order: its position along the normal, its frame, its Image Position.
type Slice = (f64, FrameRef, Vec3);

fn norm(v: Vec3) -> Vec3 {
    let l = dot(&v, &v).sqrt();
    v.map(|x| x / l)
}

/// Attributes present but of the wrong type or unparsable.
fn check_attributes_readable(series: &Series, instances: &[Instance]) -> Result<(), Reason> {
    for &i in &series.instances {
        if let Some(bad) = instances[i].malformed.iter().find(|m| REQUIRED.contains(m)) {
            return Err(defect(
                ReasonCode::MISSING_ATTRIBUTE,
                format!(
                    "{bad} is present but unreadable (wrong VR or malformed value) in {}",
                    instances[i].source
                ),
            ));
        }
    }
    Ok(())
}

/// The first image's matrix, within the configured limits for the whole series.
fn matrix(first: &Instance, series: &Series, limits: &IngestLimits) -> Result<(u32, u32), Reason> {
    let (rows, columns) = match (first.rows, first.columns) {
        (Some(r), Some(c)) if r > 0 && c > 0 => (r, c),
        _ => {
            return Err(defect(
                ReasonCode::MISSING_ATTRIBUTE,
                "Rows or Columns missing or zero",
            ))
        }
    };
    if rows > limits.max_matrix || columns > limits.max_matrix {
        return Err(defect(
            ReasonCode::OVERSIZE,
            format!(
                "{rows}×{columns} matrix exceeds the limit of {}",
                limits.max_matrix
            ),
        ));
    }
    let voxels = rows as u64 * columns as u64 * series.frames.len() as u64;
    if voxels > limits.max_total_voxels {
        return Err(defect(
            ReasonCode::OVERSIZE,
            format!(
                "{voxels} voxels exceed the limit of {}",
                limits.max_total_voxels
            ),
        ));
    }
    Ok((rows, columns))
}

/// Every instance: the first one's matrix, frame of reference and bit depth, with pixel data.
fn check_instances_agree(
    series: &Series,
    instances: &[Instance],
    first: &Instance,
    (rows, columns): (u32, u32),
) -> Result<(), Reason> {
    for &i in &series.instances {
        let inst = &instances[i];
        if inst.rows != Some(rows) || inst.columns != Some(columns) {
            return Err(defect(
                ReasonCode::INCONSISTENT_GEOMETRY,
                format!(
                    "matrix differs within the series: {rows}×{columns} and {}×{}",
                    inst.rows.unwrap_or(0),
                    inst.columns.unwrap_or(0)
                ),
            ));
        }
        if inst.bits_allocated.is_none() {
            return Err(defect(
                ReasonCode::MISSING_ATTRIBUTE,
                format!("BitsAllocated missing in {}", inst.source),
            ));
        }
        if inst.frame_of_reference_uid != first.frame_of_reference_uid {
            return Err(defect(
                ReasonCode::INCONSISTENT_GEOMETRY,
                "Frame of Reference UID differs within the series",
            ));
        }
        if inst.bits_allocated != first.bits_allocated {
            return Err(defect(
                ReasonCode::INCONSISTENT_GEOMETRY,
                "BitsAllocated differs within the series",
            ));
        }
        match inst.pixels {
            Pixels::Missing => {
                return Err(defect(
                    ReasonCode::MISSING_PIXEL_DATA,
                    format!("no Pixel Data in {}", inst.source),
                ))
            }
            Pixels::Truncated => {
                return Err(defect(
                    ReasonCode::DECODE_FAILURE,
                    format!("Pixel Data of {} is truncated", inst.source),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The orientation and pixel spacing every frame shares (each frame also has a position).
fn common_plane(
    frames: &[FrameOf],
    instances: &[Instance],
) -> Result<([f64; 6], [f64; 2]), Reason> {
    let missing = |what: &str, r: FrameRef| {
        defect(
            ReasonCode::MISSING_ATTRIBUTE,
            format!(
                "{what} missing for frame {} of {}",
                r.1 + 1,
                instances[r.0].source
            ),
        )
    };
    let (r0, f0) = frames[0];
    let orientation = f0
        .orientation
        .ok_or_else(|| missing("ImageOrientationPatient", r0))?;
    let pixel_spacing = f0
        .pixel_spacing
        .ok_or_else(|| missing("PixelSpacing", r0))?;
    for &(r, f) in frames {
        let o = f
            .orientation
            .ok_or_else(|| missing("ImageOrientationPatient", r))?;
        if o.iter()
            .zip(&orientation)
            .any(|(a, b)| (a - b).abs() > ORIENTATION_TOL)
        {
            return Err(defect(
                ReasonCode::INCONSISTENT_GEOMETRY,
                "image orientation differs within the series",
            ));
        }
        let s = f.pixel_spacing.ok_or_else(|| missing("PixelSpacing", r))?;
        if s.iter()
            .zip(&pixel_spacing)
            .any(|(a, b)| (a - b).abs() > SPACING_REL_TOL * b.abs().max(1e-6))
        {
            return Err(defect(
                ReasonCode::INCONSISTENT_GEOMETRY,
                "pixel spacing differs within the series",
            ));
        }
        f.position
            .ok_or_else(|| missing("ImagePositionPatient", r))?;
    }
    if pixel_spacing.iter().any(|s| *s <= 1e-4) {
        return Err(defect(
            ReasonCode::ZERO_SPACING,
            format!("pixel spacing {:?} is zero or negative", pixel_spacing),
        ));
    }
    Ok((orientation, pixel_spacing))
}

/// Row, column and slice directions from orthonormal orientation cosines; slices run toward the
/// head (or along the dominant positive axis), so the canonical reorientation never has to
/// reverse them.
fn axes(orientation: &[f64; 6]) -> Result<(Vec3, Vec3, Vec3), Reason> {
    let row: Vec3 = [orientation[0], orientation[1], orientation[2]];
    let col: Vec3 = [orientation[3], orientation[4], orientation[5]];
    if (dot(&row, &row).sqrt() - 1.0).abs() > 0.01
        || (dot(&col, &col).sqrt() - 1.0).abs() > 0.01
        || dot(&row, &col).abs() > 0.01
    {
        return Err(defect(
            ReasonCode::INCONSISTENT_GEOMETRY,
            "image orientation cosines are not orthonormal",
        ));
    }
    let mut n = slice_normal(orientation);
    let dominant = (0..3)
        .max_by(|&a, &b| n[a].abs().total_cmp(&n[b].abs()))
        .unwrap_or(2);
    if n[dominant] < 0.0 {
        n = n.map(|v| -v);
    }
    Ok((norm(row), norm(col), n))
}

/// The slices sorted along the normal: enough of them, not all at one position, no two at one.
fn ordered_slices(
    frames: &[FrameOf],
    n: Vec3,
    instances: &[Instance],
    limits: &IngestLimits,
) -> Result<Vec<Slice>, Reason> {
    let mut order: Vec<Slice> = frames
        .iter()
        .filter_map(|&(r, f)| f.position.map(|p| (dot(&p, &n), r, p)))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    if order.len() < limits.min_slices.max(2) {
        return Err(defect(
            ReasonCode::TOO_FEW_SLICES,
            format!(
                "{} slices; at least {} are needed",
                order.len(),
                limits.min_slices.max(2)
            ),
        ));
    }
    let extent = order[order.len() - 1].0 - order[0].0;
    if extent < DUPLICATE_MM {
        return Err(defect(
            ReasonCode::ZERO_SPACING,
            format!(
                "all {} slices are at one position: slice spacing is zero",
                order.len()
            ),
        ));
    }
    if let Some(i) = (0..order.len() - 1).find(|&i| order[i + 1].0 - order[i].0 < DUPLICATE_MM) {
        return Err(defect(
            ReasonCode::DUPLICATE_SLICES,
            format!(
                "two slices at one position ({:.2} mm along the normal), e.g. {} and {}",
                order[i].0,
                instances[order[i].1 .0].source,
                instances[order[i + 1].1 .0].source
            ),
        ));
    }
    Ok(order)
}

/// Stacking direction vs normal: a tilted gantry shears the stack.
fn check_not_tilted(order: &[Slice], n: Vec3, first: &Instance) -> Result<(), Reason> {
    let (p_first, p_last) = (order[0].2, order[order.len() - 1].2);
    let stack = norm([
        p_last[0] - p_first[0],
        p_last[1] - p_first[1],
        p_last[2] - p_first[2],
    ]);
    let angle = dot(&stack, &n).clamp(-1.0, 1.0).acos().to_degrees();
    if angle > TILT_TOL_DEG {
        let tilt = first
            .gantry_tilt
            .map(|t| format!(" (Gantry/Detector Tilt {t}°)"))
            .unwrap_or_default();
        return Err(defect(
            ReasonCode::GANTRY_TILT,
            format!("slices are stacked {angle:.1}° off their normal{tilt}: the volume is sheared"),
        ));
    }
    Ok(())
}

/// Every gap within [`GAP_REL_TOL`] of the median gap (a gap of two steps is a missing slice).
fn check_even_spacing(gaps: &[f64]) -> Result<(), Reason> {
    let mut sorted = gaps.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let step = sorted[sorted.len() / 2];
    if let Some((i, g)) = gaps
        .iter()
        .enumerate()
        .find(|(_, g)| (**g - step).abs() > GAP_REL_TOL * step)
    {
        let missing = (g / step).round() as i64 - 1;
        let hint = if missing >= 1 && ((g / step) - (g / step).round()).abs() < GAP_REL_TOL {
            format!(" — about {missing} slice(s) missing")
        } else {
            String::new()
        };
        return Err(defect(
            ReasonCode::NON_UNIFORM_SPACING,
            format!(
                "gap of {g:.2} mm after slice {} where the spacing is {step:.2} mm{hint}",
                i + 1
            ),
        ));
    }
    Ok(())
}
