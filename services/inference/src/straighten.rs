//! Straightened (curved planar) reformation: planes perpendicular to the centreline sampled at
//! fixed steps of arc length, so every vertebra stands upright along one axis and heights are
//! measured along the vertebra's own axis whatever the kyphosis or scoliosis (Kanitsar et al.,
//! "CPR — curved planar reformation", IEEE Visualization 2002).

use crate::{
    centreline::Centreline,
    geom::{self, Vec3},
    grid::VolumeSampler,
};

/// A mid-sagittal straightened image: rows are arc length (cranial → caudal), columns the
/// anterior offset `u` from the centreline; each pixel averages a thin lateral band. A second,
/// narrower band is kept for the endplates: a wide band fills in a concave endplate's centre
/// with its shallower sides and reads a biconcave body's middle height too tall.
#[derive(Debug, Clone)]
pub struct Straightened {
    /// Row step, mm of arc length.
    pub ds: f64,
    /// Column step, mm.
    pub du: f64,
    /// Anterior offset of column 0, mm (negative = posterior).
    pub u0: f64,
    /// Row count.
    pub rows: usize,
    /// Column count.
    pub cols: usize,
    /// HU, row-major.
    pub data: Vec<f32>,
    /// HU of the narrow mid-sagittal band, row-major (the endplates are read from it).
    pub narrow: Vec<f32>,
}

impl Straightened {
    /// HU at (row, col).
    #[inline]
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// Write the image as an 8-bit binary PGM (rows = arc length, columns = anterior offset;
    /// −200…800 HU mapped to black…white): a developer's view of the reformation.
    pub fn write_pgm(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        write!(out, "P5\n{} {}\n255\n", self.cols, self.rows)?;
        let bytes: Vec<u8> = self
            .data
            .iter()
            .map(|&h| (((h + 200.0) / 1000.0).clamp(0.0, 1.0) * 255.0) as u8)
            .collect();
        out.write_all(&bytes)
    }

    /// Column index nearest to offset `u` (clamped).
    pub fn col_of(&self, u: f64) -> usize {
        (((u - self.u0) / self.du).round().max(0.0) as usize).min(self.cols - 1)
    }

    /// Row index nearest to arc length `s` (clamped).
    pub fn row_of(&self, s: f64) -> usize {
        ((s / self.ds).round().max(0.0) as usize).min(self.rows - 1)
    }

    /// Mean over columns `u ∈ [ua, ub]` of every row: a profile along the arc.
    pub fn profile(&self, ua: f64, ub: f64) -> Vec<f64> {
        self.band_profile(&self.data, ua, ub)
    }

    /// Like [`Straightened::profile`], on the narrow mid-sagittal band: for endplate surfaces.
    pub fn narrow_profile(&self, ua: f64, ub: f64) -> Vec<f64> {
        self.band_profile(&self.narrow, ua, ub)
    }

    fn band_profile(&self, data: &[f32], ua: f64, ub: f64) -> Vec<f64> {
        let (c0, c1) = (self.col_of(ua.min(ub)), self.col_of(ua.max(ub)));
        let n = (c1 - c0 + 1) as f64;
        (0..self.rows)
            .map(|r| {
                let row = &data[r * self.cols..(r + 1) * self.cols];
                row[c0..=c1].iter().map(|&h| h as f64).sum::<f64>() / n
            })
            .collect()
    }

    /// Median over rows `[r0, r1]` of every column: a profile across the body.
    pub fn row_band_median(&self, r0: usize, r1: usize) -> Vec<f64> {
        let r1 = r1.min(self.rows - 1);
        let mut buf = Vec::with_capacity(r1.saturating_sub(r0) + 1);
        (0..self.cols)
            .map(|c| {
                buf.clear();
                buf.extend((r0..=r1).map(|r| self.at(r, c) as f64));
                median(&mut buf)
            })
            .collect()
    }
}

/// Median of a buffer (reorders it); 0 when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    v.select_nth_unstable_by(m, |a, b| a.total_cmp(b));
    v[m]
}

/// Lateral step between the samples averaged into a pixel, mm.
const LATERAL_STEP_MM: f64 = 1.5;

/// Sample the straightened image from the full-resolution volume: each pixel averages the
/// lateral band `±lateral_half_mm`, and its narrow image the band `±narrow_half_mm`.
pub fn straighten(
    sampler: &VolumeSampler<'_>,
    cl: &Centreline,
    ds: f64,
    du: f64,
    u_range: (f64, f64),
    (lateral_half_mm, narrow_half_mm): (f64, f64),
) -> Straightened {
    let rows = ((cl.length() / ds).floor() as usize + 1).max(1);
    let cols = (((u_range.1 - u_range.0) / du).round() as usize + 1).max(1);
    let n_wide = (lateral_half_mm / LATERAL_STEP_MM).round() as i32;
    let n_narrow = ((narrow_half_mm / LATERAL_STEP_MM).round() as i32).min(n_wide);
    let mut data = Vec::with_capacity(rows * cols);
    let mut narrow = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let f = cl.frame_at(r as f64 * ds);
        for c in 0..cols {
            let u = u_range.0 + c as f64 * du;
            let base = geom::axpy(f.p, u, f.a);
            let (mut wide_sum, mut narrow_sum) = (0.0f32, 0.0f32);
            for i in -n_wide..=n_wide {
                let h = sampler.sample(geom::axpy(base, i as f64 * LATERAL_STEP_MM, f.l));
                wide_sum += h;
                if i.abs() <= n_narrow {
                    narrow_sum += h;
                }
            }
            data.push(wide_sum / (2 * n_wide + 1) as f32);
            narrow.push(narrow_sum / (2 * n_narrow + 1) as f32);
        }
    }
    Straightened {
        ds,
        du,
        u0: u_range.0,
        rows,
        cols,
        data,
        narrow,
    }
}

/// Patient position of straightened coordinates (arc length `s`, anterior offset `u`).
pub fn to_patient(cl: &Centreline, s: f64, u: f64) -> Vec3 {
    let f = cl.frame_at(s);
    geom::axpy(f.p, u, f.a)
}
