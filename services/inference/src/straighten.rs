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
/// anterior offset `u` from the centreline; each pixel averages a thin lateral band.
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
        let (c0, c1) = (self.col_of(ua.min(ub)), self.col_of(ua.max(ub)));
        let n = (c1 - c0 + 1) as f64;
        (0..self.rows)
            .map(|r| (c0..=c1).map(|c| self.at(r, c) as f64).sum::<f64>() / n)
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

/// Sample the straightened image from the full-resolution volume.
pub fn straighten(
    sampler: &VolumeSampler<'_>,
    cl: &Centreline,
    ds: f64,
    du: f64,
    u_range: (f64, f64),
    lateral_half_mm: f64,
) -> Straightened {
    let rows = ((cl.length() / ds).floor() as usize + 1).max(1);
    let cols = (((u_range.1 - u_range.0) / du).round() as usize + 1).max(1);
    let lat: Vec<f64> = {
        let n = (lateral_half_mm / 1.5).round() as i32;
        (-n..=n).map(|i| i as f64 * 1.5).collect()
    };
    let mut data = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let f = cl.frame_at(r as f64 * ds);
        for c in 0..cols {
            let u = u_range.0 + c as f64 * du;
            let base = geom::axpy(f.p, u, f.a);
            let mut acc = 0.0f32;
            for &v in &lat {
                acc += sampler.sample(geom::axpy(base, v, f.l));
            }
            data.push(acc / lat.len() as f32);
        }
    }
    Straightened {
        ds,
        du,
        u0: u_range.0,
        rows,
        cols,
        data,
    }
}

/// Patient position of straightened coordinates (arc length `s`, anterior offset `u`).
pub fn to_patient(cl: &Centreline, s: f64, u: f64) -> Vec3 {
    let f = cl.frame_at(s);
    geom::axpy(f.p, u, f.a)
}
