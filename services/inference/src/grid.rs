//! Resampling: a coarse, isotropic, LPS-aligned copy of the study for tracing, and a fast
//! trilinear sampler of the full-resolution volume for the straightened reformation.
//!
//! Tracing runs on the coarse copy (≈ 2 mm) so that a 512² × 400 study costs one streaming pass
//! over its voxels; only the reformation (a few hundred thousand samples) touches full resolution.
//! The coarse grid's axes are the patient axes (x → left, y → posterior, z → head, DICOM PS3.3
//! C.7.6.2.1.1), so "anterior" and "up" mean the same in every study whatever its orientation.

use spinescreen_proto::{volume::Vec3, HuVolume};

/// HU given to samples outside the scanned field (air).
pub const OUTSIDE_HU: f32 = -1000.0;

/// A volume on an isotropic grid aligned with the patient axes (LPS).
#[derive(Debug, Clone)]
pub struct Grid {
    /// Voxel counts along x (left), y (posterior), z (head).
    pub dims: [usize; 3],
    /// Isotropic voxel size, mm.
    pub spacing: f64,
    /// Patient position of voxel (0, 0, 0), mm.
    pub origin: Vec3,
    /// HU values, x fastest, then y, then z.
    pub data: Vec<f32>,
}

impl Grid {
    /// Linear index of voxel `(x, y, z)`.
    #[inline]
    pub fn idx(&self, x: usize, y: usize, z: usize) -> usize {
        (z * self.dims[1] + y) * self.dims[0] + x
    }

    /// HU at voxel `(x, y, z)`.
    #[inline]
    pub fn at(&self, x: usize, y: usize, z: usize) -> f32 {
        self.data[self.idx(x, y, z)]
    }

    /// One axial slice (`nx × ny`, x fastest).
    pub fn slice(&self, z: usize) -> &[f32] {
        let n = self.dims[0] * self.dims[1];
        &self.data[z * n..(z + 1) * n]
    }

    /// Patient position of a (fractional) voxel index.
    pub fn to_patient(&self, x: f64, y: f64, z: f64) -> Vec3 {
        [
            self.origin[0] + x * self.spacing,
            self.origin[1] + y * self.spacing,
            self.origin[2] + z * self.spacing,
        ]
    }

    /// Fractional voxel index of a patient position.
    pub fn to_index(&self, p: Vec3) -> Vec3 {
        [
            (p[0] - self.origin[0]) / self.spacing,
            (p[1] - self.origin[1]) / self.spacing,
            (p[2] - self.origin[2]) / self.spacing,
        ]
    }

    /// Trilinear HU at a patient position ([`OUTSIDE_HU`] outside).
    pub fn sample(&self, p: Vec3) -> f32 {
        let i = self.to_index(p);
        trilinear(&self.data, self.dims, i).unwrap_or(OUTSIDE_HU)
    }
}

/// Trilinear interpolation in an x-fastest array; `None` outside `[0, n−1]` on any axis.
#[inline]
fn trilinear<T: Copy + Into<f32>>(data: &[T], dims: [usize; 3], i: Vec3) -> Option<f32> {
    let [nx, ny, nz] = dims;
    let (x, y, z) = (i[0], i[1], i[2]);
    if !(x >= 0.0 && y >= 0.0 && z >= 0.0) {
        return None;
    }
    if x > (nx - 1) as f64 || y > (ny - 1) as f64 || z > (nz - 1) as f64 {
        return None;
    }
    let (x0, y0, z0) = (x as usize, y as usize, z as usize);
    let x1 = (x0 + 1).min(nx - 1);
    let y1 = (y0 + 1).min(ny - 1);
    let z1 = (z0 + 1).min(nz - 1);
    let (fx, fy, fz) = (
        (x - x0 as f64) as f32,
        (y - y0 as f64) as f32,
        (z - z0 as f64) as f32,
    );
    let v = |xx: usize, yy: usize, zz: usize| -> f32 { data[(zz * ny + yy) * nx + xx].into() };
    let c00 = v(x0, y0, z0) + (v(x1, y0, z0) - v(x0, y0, z0)) * fx;
    let c01 = v(x0, y1, z0) + (v(x1, y1, z0) - v(x0, y1, z0)) * fx;
    let c10 = v(x0, y0, z1) + (v(x1, y0, z1) - v(x0, y0, z1)) * fx;
    let c11 = v(x0, y1, z1) + (v(x1, y1, z1) - v(x0, y1, z1)) * fx;
    let c0 = c00 + (c01 - c00) * fy;
    let c1 = c10 + (c11 - c10) * fy;
    Some(c0 + (c1 - c0) * fz)
}

/// Patient → voxel-index mapping of a [`HuVolume`], precomputed for fast sampling.
#[derive(Debug, Clone, Copy)]
pub struct IndexMap {
    origin: Vec3,
    /// Rows: direction cosine of each index axis divided by that axis' spacing.
    rows: [Vec3; 3],
}

impl IndexMap {
    /// The mapping of `volume`'s header (orthonormal direction cosines, as ingest guarantees).
    pub fn of(volume: &HuVolume) -> Self {
        let h = &volume.header;
        let mut rows = [[0.0; 3]; 3];
        for (a, row) in rows.iter_mut().enumerate() {
            let s = if h.spacing_mm[a] > 0.0 {
                h.spacing_mm[a]
            } else {
                1.0
            };
            for (r, d) in row.iter_mut().zip(h.direction[a]) {
                *r = d / s;
            }
        }
        Self {
            origin: h.origin_mm,
            rows,
        }
    }

    /// Fractional index `[x, y, z]` of patient point `p`.
    #[inline]
    pub fn index(&self, p: Vec3) -> Vec3 {
        let r = [
            p[0] - self.origin[0],
            p[1] - self.origin[1],
            p[2] - self.origin[2],
        ];
        [
            self.rows[0][0] * r[0] + self.rows[0][1] * r[1] + self.rows[0][2] * r[2],
            self.rows[1][0] * r[0] + self.rows[1][1] * r[1] + self.rows[1][2] * r[2],
            self.rows[2][0] * r[0] + self.rows[2][1] * r[1] + self.rows[2][2] * r[2],
        ]
    }
}

/// Trilinear sampler of a full-resolution [`HuVolume`] in patient coordinates.
pub struct VolumeSampler<'a> {
    map: IndexMap,
    dims: [usize; 3],
    data: &'a [i16],
}

impl<'a> VolumeSampler<'a> {
    /// A sampler over `volume` (its voxels must be in standard layout, which
    /// [`HuVolume::from_bytes`] and the ingest stage produce); `None` otherwise.
    pub fn new(volume: &'a HuVolume) -> Option<Self> {
        let data = volume.voxels.as_slice()?;
        Some(Self {
            map: IndexMap::of(volume),
            dims: volume.header.dims,
            data,
        })
    }

    /// HU at patient point `p`, [`OUTSIDE_HU`] outside the volume.
    #[inline]
    pub fn sample(&self, p: Vec3) -> f32 {
        trilinear(self.data, self.dims, self.map.index(p)).unwrap_or(OUTSIDE_HU)
    }
}

/// Build the coarse LPS-aligned grid at `spacing` mm.
///
/// First each index axis is block-averaged by the integer factor that brings its spacing closest
/// to (not above) `spacing` — this is the noise-reducing step, one streaming pass — then the
/// reduced volume is resampled trilinearly onto the patient-aligned grid covering the scan.
/// Returns `None` when the volume is empty or its voxels are not in standard layout.
pub fn coarse_grid(volume: &HuVolume, spacing: f64) -> Option<Grid> {
    let h = &volume.header;
    let [nx, ny, nz] = h.dims;
    if nx == 0 || ny == 0 || nz == 0 || spacing.is_nan() || spacing <= 0.0 {
        return None;
    }
    let src = volume.voxels.as_slice()?;
    let f: [usize; 3] = std::array::from_fn(|a| {
        let s = h.spacing_mm[a].abs();
        if s > 0.0 {
            ((spacing / s).floor() as usize).clamp(1, 8)
        } else {
            1
        }
    });
    let rd = [nx.div_ceil(f[0]), ny.div_ceil(f[1]), nz.div_ceil(f[2])];
    // Block average (partial blocks at the far edges average what they have).
    let mut acc = vec![0f32; rd[0] * rd[1] * rd[2]];
    let mut cnt = vec![0u16; rd[0] * rd[1] * rd[2]];
    let mut xmap = vec![0usize; nx];
    for (x, m) in xmap.iter_mut().enumerate() {
        *m = x / f[0];
    }
    for z in 0..nz {
        let rz = z / f[2];
        for y in 0..ny {
            let ry = y / f[1];
            let base = (rz * rd[1] + ry) * rd[0];
            let row = &src[(z * ny + y) * nx..(z * ny + y + 1) * nx];
            for (x, &v) in row.iter().enumerate() {
                let i = base + xmap[x];
                acc[i] += v as f32;
                cnt[i] += 1;
            }
        }
    }
    for (a, &c) in acc.iter_mut().zip(cnt.iter()) {
        if c > 0 {
            *a /= c as f32;
        }
    }
    // Reduced voxel (i, j, k) has its centre at source index (i f + (f − 1)/2).
    let map = IndexMap::of(volume);
    let to_reduced = |p: Vec3| -> Vec3 {
        let i = map.index(p);
        std::array::from_fn(|a| (i[a] - (f[a] as f64 - 1.0) / 2.0) / f[a] as f64)
    };
    // Bounding box of the scan in patient space.
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for cx in [0.0, (nx - 1) as f64] {
        for cy in [0.0, (ny - 1) as f64] {
            for cz in [0.0, (nz - 1) as f64] {
                let p = h.index_to_patient([cx, cy, cz]);
                for a in 0..3 {
                    lo[a] = lo[a].min(p[a]);
                    hi[a] = hi[a].max(p[a]);
                }
            }
        }
    }
    let dims: [usize; 3] =
        std::array::from_fn(|a| (((hi[a] - lo[a]) / spacing).floor() as usize + 1).max(1));
    let total = dims[0].checked_mul(dims[1])?.checked_mul(dims[2])?;
    if total > 200_000_000 {
        return None;
    }
    let mut data = vec![OUTSIDE_HU; total];
    let mut i = 0;
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                let p = [
                    lo[0] + x as f64 * spacing,
                    lo[1] + y as f64 * spacing,
                    lo[2] + z as f64 * spacing,
                ];
                let r = to_reduced(p);
                // Clamp half a reduced voxel beyond the edge so edge voxels are kept.
                let rc: Vec3 = std::array::from_fn(|a| {
                    if r[a] > -0.5 && r[a] < 0.0 {
                        0.0
                    } else if r[a] > (rd[a] - 1) as f64 && r[a] < rd[a] as f64 - 0.5 {
                        (rd[a] - 1) as f64
                    } else {
                        r[a]
                    }
                });
                if let Some(v) = trilinear(&acc, rd, rc) {
                    data[i] = v;
                }
                i += 1;
            }
        }
    }
    Some(Grid {
        dims,
        spacing,
        origin: lo,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use spinescreen_proto::{StudyInfo, VolumeHeader, SCHEMA_VERSION};

    fn volume(direction: [Vec3; 3]) -> HuVolume {
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [40, 30, 20],
            spacing_mm: [0.5, 0.5, 1.0],
            origin_mm: [0.0, 0.0, 0.0],
            direction,
            study: StudyInfo::default(),
        };
        // A bright half-space towards patient left (x > 5 mm in patient space).
        let vox = Array3::from_shape_fn((20, 30, 40), |(z, y, x)| {
            let p = header.index_to_patient([x as f64, y as f64, z as f64]);
            if p[0] > 5.0 {
                1000
            } else {
                0
            }
        });
        HuVolume::new(header, vox).unwrap()
    }

    #[test]
    fn coarse_grid_keeps_patient_positions_for_flipped_axes() {
        for dir in [
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]],
        ] {
            let v = volume(dir);
            let g = coarse_grid(&v, 2.0).unwrap();
            // Deep on either side of the boundary the grid agrees with the source.
            let a = g.sample([if dir[0][0] > 0.0 { 12.0 } else { -12.0 }, 5.0, 5.0]);
            let b = g.sample([if dir[0][0] > 0.0 { 1.0 } else { -12.0 }, 5.0, 5.0]);
            if dir[0][0] > 0.0 {
                assert!(a > 900.0 && b < 100.0, "{a} {b}");
            } else {
                assert!(a < 100.0 && b < 100.0);
            }
            let s = VolumeSampler::new(&v).unwrap();
            assert_eq!(s.sample([1.0e6, 0.0, 0.0]), OUTSIDE_HU);
        }
    }
}
