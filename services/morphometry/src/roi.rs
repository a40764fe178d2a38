//! Trabecular attenuation of a vertebral body: a 3-D elliptic-cylinder region of interest in the
//! body's centre, as in opportunistic CT densitometry (Pickhardt et al., Ann Intern Med 2013;
//! ISCD 2023 official positions: trabecular ROI, cortex and focal lesions excluded).
//!
//! The ROI lives in the vertebra's own frame, built from its six keypoints:
//! - cranial axis `u`: from the mean inferior to the mean superior keypoint;
//! - anterior axis `a`: from the posterior to the anterior column, made perpendicular to `u`;
//! - lateral axis `w = u × a`.
//!
//! A voxel centre belongs to the ROI when
//! - along `a` it lies between `posterior column + max(30 % of depth, 5 mm)` — the posterior
//!   third holds the basivertebral venous plexus — and `anterior column − max(20 % of depth,
//!   5 mm)`, inside an ellipse whose lateral semi-axis is 30 % of the depth (vertebral bodies
//!   from T11 to L3 are at least as wide as deep, so ≥ 20 % of the depth, > 5 mm, stays clear
//!   of the lateral cortex);
//! - along `u` it is at least [`ENDPLATE_MARGIN_MM`] inside both endplates, the endplate
//!   surfaces being interpolated between the three columns so wedged and biconcave bodies are
//!   followed;
//! - neither it nor any of its 26 neighbours exceeds [`SCLEROTIC_HU`] (bone islands, cement,
//!   partial volume of the cortex).

use crate::geometry::{cross, dot, midpoint, normalize, scale, sub};
use spinescreen_proto::{volume::Vec3, HuSource, Keypoints, TrabecularHu, VolumeHeader};

/// Minimum distance of ROI voxel centres from each endplate keypoint, mm: keypoints mark the
/// outer (disc-side) surface, so this is 3 mm clear of the endplate plus up to 2 mm for the
/// endplate's own cortical shell and keypoint error.
pub const ENDPLATE_MARGIN_MM: f64 = 5.0;
/// Minimum distance from the anterior and posterior columns, mm (3 mm plus 2 mm of cortex, as
/// for the endplates; applied together with the depth fractions).
pub const CORTEX_MARGIN_MM: f64 = 5.0;
/// Fraction of the antero-posterior depth excluded at the posterior side (basivertebral vein).
pub const POSTERIOR_EXCLUSION: f64 = 0.30;
/// Fraction of the depth excluded at the anterior side.
pub const ANTERIOR_EXCLUSION: f64 = 0.20;
/// Lateral semi-axis of the ROI ellipse as a fraction of the depth.
pub const LATERAL_SEMI_AXIS: f64 = 0.30;
/// Voxels above this (and their neighbours) are sclerotic islands, cement or cortex, not
/// trabecular bone.
pub const SCLEROTIC_HU: i16 = 600;
/// Fewer voxels than this give no reading (a severely crushed body leaves no clear interior).
pub const MIN_ROI_VOXELS: usize = 50;

/// The vertebra's local frame and endplate profile, from its keypoints.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyFrame {
    /// Origin: mean of the six keypoints, patient mm.
    pub origin: Vec3,
    /// Unit cranial axis.
    pub cranial: Vec3,
    /// Unit anterior axis, perpendicular to `cranial`.
    pub anterior: Vec3,
    /// Unit lateral axis.
    pub lateral: Vec3,
    /// Column positions along `anterior` (posterior, middle, anterior), mm from the origin.
    pub column_s: [f64; 3],
    /// Superior endplate position along `cranial` at each column, mm from the origin.
    pub superior_t: [f64; 3],
    /// Inferior endplate position along `cranial` at each column, mm from the origin.
    pub inferior_t: [f64; 3],
}

impl BodyFrame {
    /// Build the frame; `None` when the keypoints do not span a body (coincident columns,
    /// anterior column not in front of the posterior one).
    pub fn from_keypoints(k: &Keypoints) -> Option<Self> {
        let mean = |ps: &[Vec3]| {
            let mut s = [0.0; 3];
            for p in ps {
                for c in 0..3 {
                    s[c] += p[c] / ps.len() as f64;
                }
            }
            s
        };
        let sup = [k.superior_posterior, k.superior_middle, k.superior_anterior];
        let inf = [k.inferior_posterior, k.inferior_middle, k.inferior_anterior];
        let origin = mean(&[sup[0], sup[1], sup[2], inf[0], inf[1], inf[2]]);
        let cranial = normalize(sub(mean(&sup), mean(&inf)))?;
        let ap = sub(
            midpoint(k.superior_anterior, k.inferior_anterior),
            midpoint(k.superior_posterior, k.inferior_posterior),
        );
        let anterior = normalize(sub(ap, scale(cranial, dot(ap, cranial))))?;
        let lateral = cross(cranial, anterior);
        let s_of = |c: usize| dot(sub(midpoint(sup[c], inf[c]), origin), anterior);
        let column_s = [s_of(0), s_of(1), s_of(2)];
        let t_of = |p: Vec3| dot(sub(p, origin), cranial);
        let superior_t = [t_of(sup[0]), t_of(sup[1]), t_of(sup[2])];
        let inferior_t = [t_of(inf[0]), t_of(inf[1]), t_of(inf[2])];
        let depth = column_s[2] - column_s[0];
        if depth.is_nan() || depth <= 1.0 {
            return None;
        }
        Some(Self {
            origin,
            cranial,
            anterior,
            lateral,
            column_s,
            superior_t,
            inferior_t,
        })
    }

    /// Antero-posterior depth between the posterior and anterior columns, mm.
    pub fn depth(&self) -> f64 {
        self.column_s[2] - self.column_s[0]
    }

    /// Endplate position along `cranial` at AP position `s`, interpolated piecewise linearly
    /// through the three columns (constant beyond the outer columns). The middle column is used
    /// only when it lies between the other two.
    fn endplate_at(&self, t: &[f64; 3], s: f64) -> f64 {
        let [sp, sm, sa] = self.column_s;
        let lerp = |s0: f64, t0: f64, s1: f64, t1: f64| {
            let f = ((s - s0) / (s1 - s0)).clamp(0.0, 1.0);
            t0 + f * (t1 - t0)
        };
        if sm > sp && sm < sa {
            if s <= sm {
                lerp(sp, t[0], sm, t[1])
            } else {
                lerp(sm, t[1], sa, t[2])
            }
        } else {
            lerp(sp, t[0], sa, t[2])
        }
    }

    /// Whether a patient-space point lies in the trabecular ROI (geometry only; HU exclusions
    /// are applied by [`trabecular_hu`]).
    pub fn contains(&self, p: Vec3) -> bool {
        let d = sub(p, self.origin);
        let (s, t, w) = (
            dot(d, self.anterior),
            dot(d, self.cranial),
            dot(d, self.lateral),
        );
        let depth = self.depth();
        let s_lo = self.column_s[0] + (POSTERIOR_EXCLUSION * depth).max(CORTEX_MARGIN_MM);
        let s_hi = self.column_s[2] - (ANTERIOR_EXCLUSION * depth).max(CORTEX_MARGIN_MM);
        if s_hi <= s_lo {
            return false;
        }
        let (sc, rs, rw) = (
            (s_lo + s_hi) / 2.0,
            (s_hi - s_lo) / 2.0,
            LATERAL_SEMI_AXIS * depth,
        );
        let e = ((s - sc) / rs).powi(2) + (w / rw).powi(2);
        if e > 1.0 {
            return false;
        }
        let top = self.endplate_at(&self.superior_t, s) - ENDPLATE_MARGIN_MM;
        let bottom = self.endplate_at(&self.inferior_t, s) + ENDPLATE_MARGIN_MM;
        t >= bottom && t <= top
    }

    /// Radius (mm) of a sphere around the origin that contains the whole ROI.
    fn bounding_radius(&self) -> f64 {
        let s = self.column_s[0].abs().max(self.column_s[2].abs());
        let t = self
            .superior_t
            .iter()
            .chain(self.inferior_t.iter())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let w = LATERAL_SEMI_AXIS * self.depth();
        (s * s + t * t + w * w).sqrt()
    }
}

/// Voxel indices `[x, y, z]` whose centres lie in the ROI of a body, before HU exclusions.
pub fn trabecular_roi(frame: &BodyFrame, header: &VolumeHeader) -> Vec<[usize; 3]> {
    let r = frame.bounding_radius();
    if !r.is_finite() {
        return vec![];
    }
    let [nx, ny, nz] = header.dims;
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for corner in 0..8 {
        let off = [
            if corner & 1 == 0 { -r } else { r },
            if corner & 2 == 0 { -r } else { r },
            if corner & 4 == 0 { -r } else { r },
        ];
        let p = [
            frame.origin[0] + off[0],
            frame.origin[1] + off[1],
            frame.origin[2] + off[2],
        ];
        let idx = header.patient_to_index(p);
        for c in 0..3 {
            lo[c] = lo[c].min(idx[c]);
            hi[c] = hi[c].max(idx[c]);
        }
    }
    let range = |c: usize, n: usize| -> Option<(usize, usize)> {
        if !lo[c].is_finite() || !hi[c].is_finite() || n == 0 {
            return None;
        }
        let a = lo[c].floor().max(0.0);
        let b = hi[c].ceil().min((n - 1) as f64);
        (a <= b).then_some((a as usize, b as usize))
    };
    let (Some(rx), Some(ry), Some(rz)) = (range(0, nx), range(1, ny), range(2, nz)) else {
        return vec![];
    };
    let mut out = Vec::new();
    for z in rz.0..=rz.1 {
        for y in ry.0..=ry.1 {
            for x in rx.0..=rx.1 {
                let p = header.index_to_patient([x as f64, y as f64, z as f64]);
                if frame.contains(p) {
                    out.push([x, y, z]);
                }
            }
        }
    }
    out
}

/// Mean and median HU over the ROI voxels, excluding any voxel that is, or touches (26
/// neighbours), a voxel above [`SCLEROTIC_HU`]. `None` when fewer than [`MIN_ROI_VOXELS`] remain.
pub fn trabecular_hu(volume: &impl HuSource, roi: &[[usize; 3]]) -> Option<TrabecularHu> {
    let mut values: Vec<i16> = Vec::with_capacity(roi.len());
    'voxel: for &[x, y, z] in roi {
        let (x, y, z) = (x as isize, y as isize, z as isize);
        for dz in -1..=1 {
            for dy in -1..=1 {
                for dx in -1..=1 {
                    if let Some(v) = volume.get(x + dx, y + dy, z + dz) {
                        if v > SCLEROTIC_HU {
                            continue 'voxel;
                        }
                    }
                }
            }
        }
        if let Some(v) = volume.get(x, y, z) {
            values.push(v);
        }
    }
    if values.len() < MIN_ROI_VOXELS {
        return None;
    }
    let mean = values.iter().map(|v| *v as f64).sum::<f64>() / values.len() as f64;
    values.sort_unstable();
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    };
    Some(TrabecularHu {
        mean,
        median,
        voxels: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use spinescreen_proto::{HuVolume, StudyInfo, SCHEMA_VERSION};

    /// A 1 mm isotropic volume with one box-shaped body: 30 mm deep (y), 40 mm wide (x), 24 mm
    /// tall (z), centred at (0, 0, 0), a 2 mm cortex of 800 HU around 150 HU trabecular bone, in
    /// 0 HU soft tissue. LPS: anterior is −y.
    fn box_body() -> (HuVolume, Keypoints) {
        let dims = [64usize, 64, 48];
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims,
            spacing_mm: [1.0, 1.0, 1.0],
            origin_mm: [-32.0, -32.0, -24.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let h = header.clone();
        let voxels = Array3::from_shape_fn((dims[2], dims[1], dims[0]), |(z, y, x)| {
            let p = h.index_to_patient([x as f64, y as f64, z as f64]);
            let inside = p[0].abs() <= 20.0 && p[1].abs() <= 15.0 && p[2].abs() <= 12.0;
            let core = p[0].abs() <= 18.0 && p[1].abs() <= 13.0 && p[2].abs() <= 10.0;
            if core {
                150
            } else if inside {
                800
            } else {
                0
            }
        });
        let k = Keypoints {
            superior_anterior: [0.0, -15.0, 12.0],
            superior_middle: [0.0, 0.0, 12.0],
            superior_posterior: [0.0, 15.0, 12.0],
            inferior_anterior: [0.0, -15.0, -12.0],
            inferior_middle: [0.0, 0.0, -12.0],
            inferior_posterior: [0.0, 15.0, -12.0],
        };
        (HuVolume::new(header, voxels).unwrap(), k)
    }

    #[test]
    fn roi_avoids_cortex_and_endplates_by_3_mm() {
        let (vol, k) = box_body();
        let frame = BodyFrame::from_keypoints(&k).unwrap();
        let roi = trabecular_roi(&frame, &vol.header);
        assert!(roi.len() > 500, "{} voxels", roi.len());
        for &[x, y, z] in &roi {
            let p = vol.header.index_to_patient([x as f64, y as f64, z as f64]);
            // Distances to the inner cortex surfaces (the trabecular core ends 2 mm in).
            assert!(18.0 - p[0].abs() >= 3.0, "lateral {p:?}");
            assert!(13.0 - p[1].abs() >= 3.0, "AP {p:?}");
            assert!(10.0 - p[2].abs() >= 3.0, "endplate {p:?}");
            // Posterior 30 % of the depth (y > 15 − 9 = 6) is the basivertebral region.
            assert!(p[1] <= 6.0, "basivertebral {p:?}");
        }
        let hu = trabecular_hu(&vol, &roi).unwrap();
        assert_eq!(hu.mean, 150.0);
        assert_eq!(hu.median, 150.0);
        assert_eq!(hu.voxels, roi.len());
    }

    #[test]
    fn sclerotic_island_is_excluded_with_its_rim() {
        let (mut vol, k) = box_body();
        // A 3 mm bone island at 1000 HU in the middle of the ROI (voxel centre of (0,0,0) is
        // index (32,32,24)).
        for z in 23..26 {
            for y in 29..32 {
                for x in 31..34 {
                    vol.voxels[[z, y, x]] = 1000;
                }
            }
        }
        let frame = BodyFrame::from_keypoints(&k).unwrap();
        let roi = trabecular_roi(&frame, &vol.header);
        let hu = trabecular_hu(&vol, &roi).unwrap();
        assert_eq!(hu.mean, 150.0);
        // 5×5×5 voxels (island plus its one-voxel rim) removed.
        assert_eq!(hu.voxels, roi.len() - 125);
    }

    #[test]
    fn roi_follows_a_wedged_anterior_endplate() {
        let (vol, mut k) = box_body();
        // Anterior height 12 mm instead of 24: superior anterior point drops to z = 0.
        k.superior_anterior = [0.0, -15.0, 0.0];
        k.superior_middle = [0.0, 0.0, 6.0];
        let frame = BodyFrame::from_keypoints(&k).unwrap();
        let roi = trabecular_roi(&frame, &vol.header);
        assert!(!roi.is_empty());
        for &[x, y, z] in &roi {
            let p = vol.header.index_to_patient([x as f64, y as f64, z as f64]);
            // The superior endplate runs from (y=15, z=12) to (y=−15, z=0) through (0, 6); the
            // body's cranial axis stays +z (mean superior minus mean inferior keypoint), so the
            // voxel must be ENDPLATE_MARGIN_MM below that line in z.
            let endplate_z = 6.0 + p[1] * 0.4;
            assert!(
                p[2] <= endplate_z - ENDPLATE_MARGIN_MM + 1e-9,
                "{p:?} near the endplate"
            );
        }
    }

    #[test]
    fn degenerate_keypoints_give_no_frame() {
        let (_, mut k) = box_body();
        k.superior_anterior = k.superior_posterior;
        k.inferior_anterior = k.inferior_posterior;
        assert!(BodyFrame::from_keypoints(&k).is_none());
    }

    #[test]
    fn too_small_roi_gives_no_reading() {
        let (vol, _) = box_body();
        // A 9 mm-tall body: the endplate margins leave 1 mm.
        let k = Keypoints {
            superior_anterior: [0.0, -15.0, 4.5],
            superior_middle: [0.0, 0.0, 4.5],
            superior_posterior: [0.0, 15.0, 4.5],
            inferior_anterior: [0.0, -15.0, -4.5],
            inferior_middle: [0.0, 0.0, -4.5],
            inferior_posterior: [0.0, 15.0, -4.5],
        };
        let frame = BodyFrame::from_keypoints(&k).unwrap();
        let roi = trabecular_roi(&frame, &vol.header);
        assert!(trabecular_hu(&vol, &roi).is_none());
    }
}
