//! The spine region: the box of the study's voxel grid that morphometry and rendering read.
//!
//! Inference knows where the spine is; the later stages read HU only near it (morphometry inside
//! the vertebral bodies, rendering along the centreline). So inference stores that box as a
//! volume of its own (`spine_region.json` / `spine_region.zst`, volume format 2, its header's
//! `"region"` saying where the box lies in `volume.json`'s grid) and names it in
//! `detection.json` (`spine_region`). Readers keep the *full* grid's geometry and index into it
//! ([`RegionVolume`]), so keypoints and centrelines (patient mm) map to exactly the voxels, and
//! the exact floating-point positions, that the full volume gives them.
//!
//! A reader that reaches outside the box is not given a wrong value: the read counts as a miss
//! ([`RegionVolume::misses`]) and the stage reads the full volume instead, so the margin decides
//! only how often that happens, never what a result is.

use crate::detection::Detection;
use crate::result::StudyStatus;
use crate::volume::{HuSource, HuVolume, Vec3, VolumeError, VolumeHeader};
use ndarray::{s, Array3};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Margin around the spine's points (centreline, body centres, keypoints), mm, that the region
/// holds. Rendering reads the most: its default 120 mm field puts curved-sagittal samples up to
/// 60 mm (+ half a pixel) across the centreline and ±5 mm along the 10 mm slab (≈ 61 mm in
/// all); the curved coronal view widens its field by twice the centreline's lateral deviation
/// and centres it on the mean lateral position, so it reaches 60 mm + 2 × deviation. 80 mm
/// covers deviations up to ~9 mm (an ordinary spine); morphometry's trabecular ROIs lie inside
/// the bodies (laterally 30 % of the depth, + 1 neighbour voxel), far within it. A scoliotic
/// spine or a wider configured field reaches further: those reads miss and the stage falls back
/// to the full volume ([`RegionVolume::misses`]).
pub const SPINE_REGION_MARGIN_MM: f64 = 80.0;

/// A box of voxels `[x, y, z]` in a volume's grid: `offset .. offset + dims` along each axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionBox {
    /// First voxel `[x, y, z]` of the box.
    pub offset: [usize; 3],
    /// Voxel counts `[x, y, z]` of the box.
    pub dims: [usize; 3],
}

impl RegionBox {
    /// The whole grid of `dims`.
    pub fn whole(dims: [usize; 3]) -> Self {
        Self {
            offset: [0; 3],
            dims,
        }
    }

    /// The smallest box of `header`'s grid holding every voxel within `margin_mm` of any of
    /// `points` (patient mm), plus one voxel for trilinear blending, clipped to the grid.
    /// `None` when no finite point is given, the geometry is unusable or the box misses the grid.
    pub fn around(
        header: &VolumeHeader,
        points: impl IntoIterator<Item = Vec3>,
        margin_mm: f64,
    ) -> Option<Self> {
        if !margin_mm.is_finite()
            || margin_mm < 0.0
            || header
                .spacing_mm
                .iter()
                .any(|s| !s.is_finite() || *s <= 0.0)
            || header.dims.contains(&0)
        {
            return None;
        }
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in points
            .into_iter()
            .filter(|p| p.iter().all(|c| c.is_finite()))
        {
            let idx = header.patient_to_index(p);
            for c in 0..3 {
                // Orthonormal directions: a move of d mm changes index c by at most d / spacing.
                let m = margin_mm / header.spacing_mm[c];
                lo[c] = lo[c].min(idx[c] - m);
                hi[c] = hi[c].max(idx[c] + m);
            }
        }
        let mut offset = [0; 3];
        let mut dims = [0; 3];
        for c in 0..3 {
            let last = (header.dims[c] - 1) as f64;
            let a = (lo[c].floor() - 1.0).max(0.0);
            let b = (hi[c].ceil() + 1.0).min(last);
            if a.is_nan() || b.is_nan() || a > b {
                return None;
            }
            offset[c] = a as usize;
            dims[c] = b as usize - offset[c] + 1;
        }
        Some(Self { offset, dims })
    }

    /// The box that morphometry and rendering read for `detection` in `header`'s grid: its
    /// centreline, body centres and keypoints with [`SPINE_REGION_MARGIN_MM`]. `None` when the
    /// detection is not `ok` (nothing after inference reads HU then) or found no point.
    pub fn for_detection(detection: &Detection, header: &VolumeHeader) -> Option<Self> {
        if detection.status != StudyStatus::Ok {
            return None;
        }
        let centreline = detection.centreline.iter().map(|p| p.position_mm);
        let bodies = detection.vertebrae.iter().flat_map(|v| {
            let k = &v.keypoints_mm;
            [
                v.center_mm,
                k.superior_anterior,
                k.superior_middle,
                k.superior_posterior,
                k.inferior_anterior,
                k.inferior_middle,
                k.inferior_posterior,
            ]
        });
        Self::around(header, centreline.chain(bodies), SPINE_REGION_MARGIN_MM)
    }

    /// Whether the box lies inside a grid of `dims`.
    pub fn fits(&self, dims: [usize; 3]) -> bool {
        (0..3).all(|c| {
            self.dims[c] > 0
                && self.offset[c]
                    .checked_add(self.dims[c])
                    .is_some_and(|end| end <= dims[c])
        })
    }

    /// Number of voxels in the box.
    pub fn voxel_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// The box cut out of `volume` as a volume of its own: its header's origin is the patient
    /// position of the box's first voxel, everything else as in `volume`.
    pub fn crop(&self, volume: &HuVolume) -> Result<HuVolume, VolumeError> {
        if !self.fits(volume.header.dims) {
            return Err(VolumeError::Header(format!(
                "region {self:?} outside the volume's {:?} voxels",
                volume.header.dims
            )));
        }
        let ([x, y, z], [nx, ny, nz]) = (self.offset, self.dims);
        let voxels = volume
            .voxels
            .slice(s![z..z + nz, y..y + ny, x..x + nx])
            .to_owned();
        let mut header = volume.header.clone();
        header.dims = self.dims;
        header.origin_mm = volume
            .header
            .index_to_patient([x as f64, y as f64, z as f64]);
        HuVolume::new(header, voxels)
    }
}

/// HU of a box of a volume's grid, read in the full grid's indices ([`HuSource`]): what
/// morphometry and rendering measure and draw on. [`RegionVolume::whole`] wraps a full volume.
#[derive(Debug)]
pub struct RegionVolume {
    header: VolumeHeader,
    region: RegionBox,
    voxels: Array3<i16>,
    misses: AtomicUsize,
}

impl RegionVolume {
    /// The whole volume (no copy).
    pub fn whole(volume: HuVolume) -> Self {
        Self {
            region: RegionBox::whole(volume.header.dims),
            header: volume.header,
            voxels: volume.voxels,
            misses: AtomicUsize::new(0),
        }
    }

    /// The box `region` of the grid `header` (the full volume's), holding `voxels` (`[z, y, x]`
    /// of the box).
    pub fn new(
        header: VolumeHeader,
        region: RegionBox,
        voxels: Array3<i16>,
    ) -> Result<Self, VolumeError> {
        if !region.fits(header.dims) {
            return Err(VolumeError::Header(format!(
                "region {region:?} outside the volume's {:?} voxels",
                header.dims
            )));
        }
        let [nx, ny, nz] = region.dims;
        if voxels.dim() != (nz, ny, nx) {
            return Err(VolumeError::Header(format!(
                "region dims {:?} do not match array shape {:?}",
                region.dims,
                voxels.dim()
            )));
        }
        Ok(Self {
            header,
            region,
            voxels,
            misses: AtomicUsize::new(0),
        })
    }

    /// The box held.
    pub fn region(&self) -> RegionBox {
        self.region
    }

    /// Whether the whole grid is held.
    pub fn is_whole(&self) -> bool {
        self.region == RegionBox::whole(self.header.dims)
    }

    /// Reads of voxels inside the grid but outside the box so far: when not 0, what was computed
    /// from this region may differ from the full volume's and must be redone on it.
    pub fn misses(&self) -> usize {
        self.misses.load(Ordering::Relaxed)
    }
}

impl HuSource for RegionVolume {
    fn header(&self) -> &VolumeHeader {
        &self.header
    }

    fn held(&self, x: usize, y: usize, z: usize) -> Option<i16> {
        let [ox, oy, oz] = self.region.offset;
        let local = x
            .checked_sub(ox)
            .zip(y.checked_sub(oy))
            .zip(z.checked_sub(oz))
            .and_then(|((x, y), z)| self.voxels.get([z, y, x]));
        if local.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        local.copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StudyInfo, SCHEMA_VERSION};

    fn volume() -> HuVolume {
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [20, 16, 12],
            spacing_mm: [0.8, 0.8, 1.25],
            origin_mm: [-7.9, 3.3, 101.7],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let voxels = Array3::from_shape_fn((12, 16, 20), |(z, y, x)| {
            ((z * 977 + y * 131 + x * 17) % 3000) as i16 - 1024
        });
        HuVolume::new(header, voxels).unwrap()
    }

    fn region_of(v: &HuVolume, b: RegionBox) -> RegionVolume {
        RegionVolume::new(v.header.clone(), b, b.crop(v).unwrap().voxels).unwrap()
    }

    #[test]
    fn the_box_holds_the_margin_and_one_voxel_more() {
        let v = volume();
        let p = v.header.index_to_patient([10.0, 8.0, 6.0]);
        let b = RegionBox::around(&v.header, [p], 2.0).unwrap();
        // 2 mm is 2.5 voxels in x and y, 1.6 in z; plus one for blending.
        assert_eq!(b.offset, [10 - 4, 8 - 4, 6 - 3]);
        assert_eq!(b.dims, [9, 9, 7]);
        // Clipped to the grid; nothing finite gives no box.
        let far = RegionBox::around(&v.header, [p], 1000.0).unwrap();
        assert_eq!(far, RegionBox::whole(v.header.dims));
        assert_eq!(RegionBox::around(&v.header, [[f64::NAN; 3]], 2.0), None);
        assert_eq!(RegionBox::around(&v.header, [], 2.0), None);
    }

    #[test]
    fn a_region_reads_what_the_full_volume_reads_and_counts_what_it_lacks() {
        let v = volume();
        let b = RegionBox {
            offset: [3, 2, 4],
            dims: [10, 9, 5],
        };
        let r = region_of(&v, b);
        // Cropped origin: the patient position of the first voxel of the box.
        let cropped = b.crop(&v).unwrap();
        assert_eq!(
            cropped.header.origin_mm,
            v.header.index_to_patient([3.0, 2.0, 4.0])
        );
        for idx in [[5.25, 4.5, 6.75], [3.0, 2.0, 4.0], [11.0, 9.0, 7.0]] {
            let p = v.header.index_to_patient(idx);
            assert_eq!(r.sample_patient(p), v.sample_patient(p));
            assert_eq!(r.sample_index(idx), v.sample_index(idx));
        }
        assert_eq!(r.get(7, 5, 6), v.get(7, 5, 6));
        assert_eq!(r.misses(), 0);
        // Outside the grid: None from both, not a miss.
        assert_eq!(r.get(-1, 0, 0), None);
        assert_eq!(r.sample_index([20.5, 1.0, 1.0]), None);
        assert_eq!(r.misses(), 0);
        // Inside the grid, outside the box: None and counted.
        assert_eq!(r.get(0, 0, 0), None);
        assert_eq!(r.sample_index([12.5, 10.0, 8.0]), None);
        assert_eq!(r.misses(), 2);
        assert!(!r.is_whole());
        assert!(RegionVolume::whole(v).is_whole());
    }

    #[test]
    fn boxes_outside_the_grid_are_refused() {
        let v = volume();
        let b = RegionBox {
            offset: [15, 0, 0],
            dims: [6, 1, 1],
        };
        assert!(b.crop(&v).is_err());
        assert!(RegionVolume::new(v.header.clone(), b, Array3::zeros((1, 1, 6))).is_err());
        let fits = RegionBox {
            offset: [14, 0, 0],
            dims: [6, 1, 1],
        };
        assert!(RegionVolume::new(v.header.clone(), fits, Array3::zeros((1, 2, 6))).is_err());
        assert!(RegionVolume::new(v.header, fits, Array3::zeros((1, 1, 6))).is_ok());
    }
}
