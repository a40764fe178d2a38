//! Ring artefacts: a faulty detector channel draws concentric arcs around the scanner isocentre
//! (Barrett & Keat, "Artifacts in CT", RadioGraphics 2004). In polar coordinates about the
//! isocentre they are constant-radius lines, so the median over angle of a high-passed slice is
//! near zero at every radius except where a ring lies. Vertebrae whose bodies a ring crosses
//! are flagged: an arc through a body can mimic or hide an endplate.

use spinescreen_proto::{volume::Vec3, HuVolume};

/// Coherent rings (arcs) about the isocentre on one slice.
pub fn rings_on_slice(volume: &HuVolume, z: usize, min_hu: f64) -> Vec<Ring> {
    let [nx, ny, nz] = volume.header.dims;
    if z >= nz || nx < 16 || ny < 16 {
        return vec![];
    }
    let Some(all) = volume.voxels.as_slice() else {
        return vec![];
    };
    let sl = &all[z * nx * ny..(z + 1) * nx * ny];
    // High-pass: value minus a 7 × 7 box mean; pixels whose box holds air are skipped so the
    // skin and lung edges (often near-circular about the isocentre) do not read as rings.
    let vals: Vec<f32> = sl.iter().map(|&v| v as f32).collect();
    let air: Vec<f32> = sl.iter().map(|&v| f32::from(u8::from(v < -300))).collect();
    let blur = box_mean(&vals, nx, ny, 3);
    let air_near = box_mean(&air, nx, ny, 3);
    // Isocentre: the reconstruction centre, taken as the centre of the image matrix.
    let (cx, cy) = ((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0);
    let px = volume.header.spacing_mm[0].abs().max(1e-3);
    let bins = ((nx.max(ny) as f64) * 0.75) as usize;
    let mut per_bin: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); SECTORS]; bins];
    for y in 0..ny {
        for x in 0..nx {
            let v = sl[y * nx + x];
            // Only inside the body, away from air and the skin edge.
            if !(-300..=1200).contains(&v) || air_near[y * nx + x] > 0.0 {
                continue;
            }
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let b = dx.hypot(dy).round() as usize;
            if b < 3 || b >= bins {
                continue;
            }
            per_bin[b][sector_of(dx, dy)].push(v as f32 - blur[y * nx + x]);
        }
    }
    // Median residual per (radius, sector).
    let med: Vec<[f64; SECTORS]> = per_bin
        .iter_mut()
        .map(|secs| {
            std::array::from_fn(|q| {
                let v = &mut secs[q];
                if v.len() < 8 {
                    return f64::NAN;
                }
                let m = v.len() / 2;
                v.select_nth_unstable_by(m, |a, b| a.total_cmp(b));
                v[m] as f64
            })
        })
        .collect();
    // A ring: the same radius (±1 bin) strong with one sign over ≥ 3 adjacent sectors (67°).
    let mut out = Vec::new();
    for b in 1..bins.saturating_sub(1) {
        for sign in [1.0f64, -1.0] {
            // Per sector: Some(true) strong, Some(false) not, None too few samples (a digital
            // circle leaves some sector-radius cells nearly empty); unknown cells continue a run.
            let state: Vec<Option<bool>> = (0..SECTORS)
                .map(|q| {
                    let (a, l, r) = (med[b][q], med[b - 1][q], med[b + 1][q]);
                    if a.is_nan() {
                        return None;
                    }
                    let l = if l.is_nan() {
                        f64::NEG_INFINITY
                    } else {
                        sign * l
                    };
                    let r = if r.is_nan() {
                        f64::NEG_INFINITY
                    } else {
                        sign * r
                    };
                    Some(sign * a >= min_hu && sign * a >= l && sign * a >= r)
                })
                .collect();
            let on = |q: usize| state[q % SECTORS] != Some(false);
            if (0..SECTORS).all(on) {
                let known: Vec<f64> = (0..SECTORS)
                    .filter(|&q| state[q] == Some(true))
                    .map(|q| med[b][q])
                    .collect();
                if known.len() >= 4 {
                    out.push(Ring {
                        radius_mm: b as f64 * px,
                        amplitude_hu: known.iter().sum::<f64>() / known.len() as f64,
                        first_sector: 0,
                        sectors: SECTORS,
                    });
                }
                continue;
            }
            for start in 0..SECTORS {
                if !on(start) || on(start + SECTORS - 1) {
                    continue;
                }
                let run = (0..SECTORS).take_while(|&k| on(start + k)).count();
                let known: Vec<f64> = (0..run)
                    .map(|k| (start + k) % SECTORS)
                    .filter(|&q| state[q] == Some(true))
                    .map(|q| med[b][q])
                    .collect();
                if known.len() >= 4 {
                    out.push(Ring {
                        radius_mm: b as f64 * px,
                        amplitude_hu: known.iter().sum::<f64>() / known.len() as f64,
                        first_sector: start,
                        sectors: run,
                    });
                }
            }
        }
    }
    out
}

/// Angular sectors of the polar analysis.
pub const SECTORS: usize = 16;

/// Sector of an in-plane offset from the isocentre.
pub fn sector_of(dx: f64, dy: f64) -> usize {
    let a = dy.atan2(dx).rem_euclid(std::f64::consts::TAU);
    ((a / std::f64::consts::TAU * SECTORS as f64) as usize).min(SECTORS - 1)
}

/// A ring (arc) found on one slice.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    /// Radius about the isocentre, mm.
    pub radius_mm: f64,
    /// Mean coherent amplitude, HU (signed).
    pub amplitude_hu: f64,
    /// First angular sector of the arc.
    pub first_sector: usize,
    /// Number of sectors the arc spans.
    pub sectors: usize,
}

impl Ring {
    /// Whether the arc spans sector `q` (±1 sector).
    pub fn spans(&self, q: usize) -> bool {
        (0..self.sectors).any(|k| {
            let s = (self.first_sector + k) % SECTORS;
            s == q || (s + 1) % SECTORS == q || (q + 1) % SECTORS == s
        })
    }
}

/// Mean over a (2r+1)² box (clipped at the borders), separable running sums.
fn box_mean(src: &[f32], nx: usize, ny: usize, r: usize) -> Vec<f32> {
    let mut tmp = vec![0f32; nx * ny];
    for y in 0..ny {
        let row = &src[y * nx..(y + 1) * nx];
        let (mut acc, mut cnt) = (0f32, 0f32);
        for &v in row.iter().take((r + 1).min(nx)) {
            acc += v;
            cnt += 1.0;
        }
        for x in 0..nx {
            tmp[y * nx + x] = acc / cnt;
            if x + r + 1 < nx {
                acc += row[x + r + 1];
                cnt += 1.0;
            }
            if x >= r {
                acc -= row[x - r];
                cnt -= 1.0;
            }
        }
    }
    let mut out = vec![0f32; nx * ny];
    for x in 0..nx {
        let (mut acc, mut cnt) = (0f32, 0f32);
        for y in 0..(r + 1).min(ny) {
            acc += tmp[y * nx + x];
            cnt += 1.0;
        }
        for y in 0..ny {
            out[y * nx + x] = acc / cnt;
            if y + r + 1 < ny {
                acc += tmp[(y + r + 1) * nx + x];
                cnt += 1.0;
            }
            if y >= r {
                acc -= tmp[(y - r) * nx + x];
                cnt -= 1.0;
            }
        }
    }
    out
}

/// In-plane distance (mm) of a patient point from the isocentre of the slice nearest to it,
/// that slice's index, and the point's angular sector.
pub fn radius_of(volume: &HuVolume, p: Vec3) -> (f64, usize, usize) {
    let h = &volume.header;
    let idx = h.patient_to_index(p);
    let [nx, ny, nz] = h.dims;
    let (cx, cy) = ((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0);
    let dx = (idx[0] - cx) * h.spacing_mm[0];
    let dy = (idx[1] - cy) * h.spacing_mm[1];
    let z = idx[2].round().clamp(0.0, (nz.max(1) - 1) as f64) as usize;
    let q = sector_of(idx[0] - cx, idx[1] - cy);
    (dx.hypot(dy), z, q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use spinescreen_proto::{StudyInfo, VolumeHeader, SCHEMA_VERSION};

    #[test]
    fn a_ring_around_the_isocentre_is_found_at_its_radius() {
        let n = 128;
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [n, n, 1],
            spacing_mm: [1.0, 1.0, 1.0],
            origin_mm: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let c = (n as f64 - 1.0) / 2.0;
        let vox = Array3::from_shape_fn((1, n, n), |(_, y, x)| {
            let r = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2)).sqrt();
            let body = if r < 60.0 { 40 } else { -1000 };
            body + if (r - 30.0).abs() < 0.6 { 150 } else { 0 }
        });
        let v = HuVolume::new(header, vox).unwrap();
        let rings = rings_on_slice(&v, 0, 25.0);
        assert!(
            rings.iter().any(|r| (r.radius_mm - 30.0).abs() <= 1.0
                && r.amplitude_hu > 25.0
                && r.sectors >= SECTORS / 2),
            "{rings:?}"
        );
        let clean = HuVolume::new(
            v.header.clone(),
            Array3::from_shape_fn((1, n, n), |(_, y, x)| {
                let r = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2)).sqrt();
                if r < 60.0 {
                    40
                } else {
                    -1000
                }
            }),
        )
        .unwrap();
        assert!(rings_on_slice(&clean, 0, 25.0).is_empty());
    }
}
