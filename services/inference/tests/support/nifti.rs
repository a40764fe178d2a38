//! Minimal NIfTI-1 reader for tests (gzip, sform or pixdim geometry, int/float datatypes), so the
//! inference tests do not depend on another stage's crate. NIfTI world space is RAS+; DICOM
//! patient space is LPS, so x and y of the affine are negated. Voxel order is kept (x fastest).

use ndarray::Array3;
use spinescreen_proto::{HuVolume, StudyInfo, VolumeHeader, SCHEMA_VERSION};
use std::io::Read;

/// Read a `.nii` or `.nii.gz` file as an HU volume in LPS geometry.
pub fn read(path: &std::path::Path) -> anyhow::Result<HuVolume> {
    let raw = std::fs::read(path)?;
    let mut bytes = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut bytes)?;
    } else {
        bytes = raw;
    }
    anyhow::ensure!(bytes.len() >= 352, "short NIfTI");
    let i16_at = |o: usize| i16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let f32_at =
        |o: usize| f32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    anyhow::ensure!(
        i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == 348,
        "not little-endian NIfTI-1"
    );
    let dims = [
        i16_at(42) as usize,
        i16_at(44) as usize,
        i16_at(46) as usize,
    ];
    let datatype = i16_at(70);
    let pixdim = [f32_at(80) as f64, f32_at(84) as f64, f32_at(88) as f64];
    let vox_offset = f32_at(108) as usize;
    let (mut slope, inter) = (f32_at(112) as f64, f32_at(116) as f64);
    if slope == 0.0 || !slope.is_finite() {
        slope = 1.0;
    }
    let inter = if inter.is_finite() { inter } else { 0.0 };
    let sform = i16_at(254);
    let mut aff = [[0.0f64; 4]; 3];
    if sform > 0 {
        for (r, row) in aff.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = f32_at(280 + 16 * r + 4 * c) as f64;
            }
        }
    } else {
        for a in 0..3 {
            aff[a][a] = pixdim[a];
        }
    }
    let n = dims[0] * dims[1] * dims[2];
    let data = &bytes[vox_offset..];
    let value = |i: usize| -> f64 {
        match datatype {
            2 => data[i] as f64,
            4 => i16::from_le_bytes([data[2 * i], data[2 * i + 1]]) as f64,
            8 => i32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap()) as f64,
            16 => f32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap()) as f64,
            512 => u16::from_le_bytes([data[2 * i], data[2 * i + 1]]) as f64,
            _ => f64::NAN,
        }
    };
    anyhow::ensure!(!value(0).is_nan(), "unsupported datatype {datatype}");
    let vox: Vec<i16> = (0..n)
        .map(|i| (value(i) * slope + inter).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    let lps = |r: usize| if r < 2 { -1.0 } else { 1.0 };
    let mut spacing = [0.0; 3];
    let mut direction = [[0.0; 3]; 3];
    for a in 0..3 {
        let col = [aff[0][a] * lps(0), aff[1][a] * lps(1), aff[2][a] * lps(2)];
        let len = (col[0] * col[0] + col[1] * col[1] + col[2] * col[2]).sqrt();
        spacing[a] = len;
        direction[a] = [col[0] / len, col[1] / len, col[2] / len];
    }
    let header = VolumeHeader {
        schema_version: SCHEMA_VERSION,
        dims,
        spacing_mm: spacing,
        origin_mm: [-aff[0][3], -aff[1][3], aff[2][3]],
        direction,
        study: StudyInfo::default(),
    };
    let voxels = Array3::from_shape_vec((dims[2], dims[1], dims[0]), vox)?;
    Ok(HuVolume::new(header, voxels)?)
}
