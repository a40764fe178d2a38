//! [`HuVolume`]: the Hounsfield-unit CT volume that ingest builds and every later stage reads.
//!
//! Stored as two objects: a JSON [`VolumeHeader`] and the raw voxels, little-endian `i16`, x
//! (column) fastest, then y (row), then z (slice). Geometry follows DICOM patient coordinates
//! (LPS: x → patient left, y → posterior, z → head), PS3.3 C.7.6.2.1.1.

use crate::{study::StudyInfo, SCHEMA_VERSION};
use ndarray::Array3;
use serde::{Deserialize, Serialize};

/// A 3-D point or vector in patient coordinates, millimetres.
pub type Vec3 = [f64; 3];

/// Geometry and provenance of a [`HuVolume`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeHeader {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Voxel counts `[columns (x), rows (y), slices (z)]`.
    pub dims: [usize; 3],
    /// Voxel spacing in mm `[column spacing, row spacing, slice spacing]`.
    pub spacing_mm: Vec3,
    /// Patient position of the centre of voxel (0,0,0) (ImagePositionPatient of the first slice).
    pub origin_mm: Vec3,
    /// Unit direction cosines: `[row direction (x index), column direction (y index), slice
    /// normal (z index, direction of increasing slice index)]`.
    pub direction: [Vec3; 3],
    /// Patient/study module of the source, for derived objects (PHI; never log).
    pub study: StudyInfo,
}

impl VolumeHeader {
    /// Patient-space position (mm) of a (possibly fractional) voxel index `[x, y, z]`.
    pub fn index_to_patient(&self, index: Vec3) -> Vec3 {
        let mut p = self.origin_mm;
        for ((i, spacing), dir) in index.iter().zip(self.spacing_mm).zip(self.direction) {
            let d = i * spacing;
            for (pc, dc) in p.iter_mut().zip(dir) {
                *pc += dc * d;
            }
        }
        p
    }

    /// Fractional voxel index `[x, y, z]` of a patient-space point (mm).
    /// Assumes orthonormal direction cosines, which ingest guarantees.
    pub fn patient_to_index(&self, p: Vec3) -> Vec3 {
        let rel = [
            p[0] - self.origin_mm[0],
            p[1] - self.origin_mm[1],
            p[2] - self.origin_mm[2],
        ];
        let mut idx = [0.0; 3];
        for ((i, spacing), dir) in idx.iter_mut().zip(self.spacing_mm).zip(self.direction) {
            let dot: f64 = rel.iter().zip(dir).map(|(r, d)| r * d).sum();
            *i = dot / spacing;
        }
        idx
    }

    /// Number of voxels.
    pub fn voxel_count(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }
}

/// A CT volume in Hounsfield units with its geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct HuVolume {
    /// Geometry and provenance.
    pub header: VolumeHeader,
    /// Voxels indexed `[z, y, x]` (slice, row, column).
    pub voxels: Array3<i16>,
}

/// A stored volume that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The header is not valid JSON or has the wrong version.
    #[error("volume header: {0}")]
    Header(String),
    /// The voxel bytes do not match the header's dimensions.
    #[error("volume voxels: expected {expected} bytes, got {actual}")]
    Size {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes stored.
        actual: usize,
    },
}

impl HuVolume {
    /// Build a volume, checking that the array shape matches `header.dims`.
    pub fn new(header: VolumeHeader, voxels: Array3<i16>) -> Result<Self, VolumeError> {
        let [nx, ny, nz] = header.dims;
        if voxels.dim() != (nz, ny, nx) {
            return Err(VolumeError::Header(format!(
                "dims {:?} do not match array shape {:?}",
                header.dims,
                voxels.dim()
            )));
        }
        Ok(Self { header, voxels })
    }

    /// The header as stored (`volume.json`).
    #[allow(
        clippy::expect_used,
        reason = "a header has string map keys and no custom serializer: encoding cannot fail"
    )]
    pub fn header_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.header).expect("header serializes")
    }

    /// The voxels as stored (`volume.i16`): little-endian i16, x fastest.
    pub fn voxel_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.voxels.len() * 2);
        for v in self.voxels.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Read back a volume from its two stored objects.
    pub fn from_bytes(header: &[u8], voxels: &[u8]) -> Result<Self, VolumeError> {
        let header: VolumeHeader =
            serde_json::from_slice(header).map_err(|e| VolumeError::Header(e.to_string()))?;
        if header.schema_version != SCHEMA_VERSION {
            return Err(VolumeError::Header(format!(
                "schema version {} (expected {SCHEMA_VERSION})",
                header.schema_version
            )));
        }
        let expected = header
            .voxel_count()
            .checked_mul(2)
            .ok_or_else(|| VolumeError::Header("dims overflow".into()))?;
        if voxels.len() != expected {
            return Err(VolumeError::Size {
                expected,
                actual: voxels.len(),
            });
        }
        let data: Vec<i16> = voxels
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        let [nx, ny, nz] = header.dims;
        let voxels = Array3::from_shape_vec((nz, ny, nx), data)
            .map_err(|e| VolumeError::Header(e.to_string()))?;
        Ok(Self { header, voxels })
    }

    /// HU at integer voxel `[x, y, z]`, or `None` outside the volume.
    pub fn get(&self, x: isize, y: isize, z: isize) -> Option<i16> {
        HuSource::get(self, x, y, z)
    }

    /// Trilinear HU at a patient-space point, or `None` outside the volume.
    pub fn sample_patient(&self, p: Vec3) -> Option<f32> {
        HuSource::sample_patient(self, p)
    }

    /// Trilinear HU at a fractional voxel index `[x, y, z]`, or `None` outside the volume.
    pub fn sample_index(&self, idx: Vec3) -> Option<f32> {
        HuSource::sample_index(self, idx)
    }
}

/// HU on the voxel grid of a [`VolumeHeader`]: the whole volume ([`HuVolume`]) or the part of
/// it a stage holds ([`crate::region::RegionVolume`]). Indices are always those of the header's
/// grid, so the same index or patient point reads the same voxel from either; the reads are
/// defined here once, so both give bit-identical values wherever they hold the voxels.
pub trait HuSource {
    /// Geometry of the grid the indices refer to.
    fn header(&self) -> &VolumeHeader;

    /// HU at voxel `[x, y, z]` (inside the header's dims), or `None` when this source does not
    /// hold that voxel.
    fn held(&self, x: usize, y: usize, z: usize) -> Option<i16>;

    /// HU at integer voxel `[x, y, z]`, or `None` outside the volume (or not held).
    fn get(&self, x: isize, y: isize, z: isize) -> Option<i16> {
        let [nx, ny, nz] = self.header().dims;
        if x < 0 || y < 0 || z < 0 || x as usize >= nx || y as usize >= ny || z as usize >= nz {
            return None;
        }
        self.held(x as usize, y as usize, z as usize)
    }

    /// Trilinear HU at a patient-space point, or `None` outside the volume (or not held).
    fn sample_patient(&self, p: Vec3) -> Option<f32> {
        let idx = self.header().patient_to_index(p);
        self.sample_index(idx)
    }

    /// Trilinear HU at a fractional voxel index `[x, y, z]`, or `None` outside the volume (or
    /// when one of the eight voxels it blends is not held).
    fn sample_index(&self, idx: Vec3) -> Option<f32> {
        let [nx, ny, nz] = self.header().dims;
        let (x, y, z) = (idx[0], idx[1], idx[2]);
        if nx == 0 || ny == 0 || nz == 0 {
            return None;
        }
        if !(x >= 0.0 && y >= 0.0 && z >= 0.0)
            || x > (nx - 1) as f64
            || y > (ny - 1) as f64
            || z > (nz - 1) as f64
        {
            return None;
        }
        let (x0, y0, z0) = (x.floor() as usize, y.floor() as usize, z.floor() as usize);
        let (x1, y1, z1) = (
            (x0 + 1).min(nx - 1),
            (y0 + 1).min(ny - 1),
            (z0 + 1).min(nz - 1),
        );
        let (fx, fy, fz) = (x - x0 as f64, y - y0 as f64, z - z0 as f64);
        let v = |zz: usize, yy: usize, xx: usize| self.held(xx, yy, zz).map(f64::from);
        let c00 = v(z0, y0, x0)? * (1.0 - fx) + v(z0, y0, x1)? * fx;
        let c01 = v(z0, y1, x0)? * (1.0 - fx) + v(z0, y1, x1)? * fx;
        let c10 = v(z1, y0, x0)? * (1.0 - fx) + v(z1, y0, x1)? * fx;
        let c11 = v(z1, y1, x0)? * (1.0 - fx) + v(z1, y1, x1)? * fx;
        let c0 = c00 * (1.0 - fy) + c01 * fy;
        let c1 = c10 * (1.0 - fy) + c11 * fy;
        Some((c0 * (1.0 - fz) + c1 * fz) as f32)
    }
}

impl HuSource for HuVolume {
    fn header(&self) -> &VolumeHeader {
        &self.header
    }

    fn held(&self, x: usize, y: usize, z: usize) -> Option<i16> {
        self.voxels.get([z, y, x]).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> VolumeHeader {
        VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [4, 3, 2],
            spacing_mm: [0.5, 0.5, 2.0],
            origin_mm: [-10.0, -20.0, 100.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        }
    }

    #[test]
    fn bytes_round_trip() {
        let voxels =
            Array3::from_shape_fn((2, 3, 4), |(z, y, x)| (z * 100 + y * 10 + x) as i16 - 50);
        let v = HuVolume::new(header(), voxels).unwrap();
        let back = HuVolume::from_bytes(&v.header_bytes(), &v.voxel_bytes()).unwrap();
        assert_eq!(back, v);
        assert!(HuVolume::from_bytes(&v.header_bytes(), &v.voxel_bytes()[1..]).is_err());
    }

    #[test]
    fn index_and_patient_coordinates_are_inverse() {
        let h = header();
        let p = h.index_to_patient([1.0, 2.0, 1.0]);
        assert_eq!(p, [-9.5, -19.0, 102.0]);
        let i = h.patient_to_index(p);
        assert!(
            (i[0] - 1.0).abs() < 1e-9 && (i[1] - 2.0).abs() < 1e-9 && (i[2] - 1.0).abs() < 1e-9
        );
    }
}
