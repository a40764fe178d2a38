//! NIfTI-1 input (`.nii`, `.nii.gz`): research data sets ship CT as NIfTI, not DICOM.
//!
//! Reads the 348-byte NIfTI-1 header (NIfTI-1.1 specification, `nifti1.h`), the voxels in any of
//! the integer or float datatypes CT and label maps use, applies `scl_slope`/`scl_inter`, and
//! takes the voxel-to-world affine from the sform (method 3) or else the qform (method 2), else
//! the pixdim diagonal (method 1).
//!
//! NIfTI world space is RAS+ (x → patient right… increasing toward Right, Anterior, Superior);
//! ours is DICOM LPS (PS3.3 C.7.6.2.1.1), so x and y of the affine are negated. The volume is
//! then reoriented (axes permuted and flipped, the geometry adjusted so every voxel keeps its
//! patient position) so that x runs toward the patient's left, y toward posterior and z toward the
//! head — the layout of an axial DICOM series sorted along its normal. A label map written from a
//! DICOM series by dcm2niix (which flips rows) therefore lines up voxel for voxel with the volume
//! [`crate::build_volume`] makes from that series.

// Affine arithmetic reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use crate::{error::IngestError, orient::reorient_to_lps, uidgen::derived_uid};
use ndarray::Array3;
use spinescreen_proto::{HuVolume, StudyInfo, VolumeHeader, SCHEMA_VERSION};
use std::io::Read;
use std::path::Path;

/// Size of a NIfTI-1 header.
const HEADER_LEN: usize = 348;
/// Refuse volumes above this many voxels (2³¹ ≈ 4 GiB of i16): a header can claim anything.
const MAX_VOXELS: usize = 1 << 31;
/// Refuse decompressed files above this size.
const MAX_FILE_BYTES: u64 = 16 << 30;

/// Read a NIfTI-1 file (optionally gzip-compressed, detected by its magic bytes) as an HU volume.
///
/// Values are `raw × scl_slope + scl_inter`, rounded and clamped to i16 (NaN → −1024). Label maps
/// come through unchanged as small integers. The returned [`StudyInfo`] is empty except for a
/// Study and Series Instance UID under `2.25.` derived from the file's contents (stable across
/// reads).
pub fn read_nifti(path: &Path) -> Result<HuVolume, IngestError> {
    let err = |message: String| IngestError::Nifti {
        path: path.to_path_buf(),
        message,
    };
    let io = |source: std::io::Error| IngestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut head = [0u8; 2];
    let mut raw = Vec::new();
    {
        let mut f = std::io::BufReader::new(file);
        let n = f.read(&mut head).map_err(io)?;
        let prefix = std::io::Cursor::new(head[..n].to_vec());
        let chained = prefix.chain(f);
        if n == 2 && head == [0x1f, 0x8b] {
            flate2::read::MultiGzDecoder::new(chained)
                .take(MAX_FILE_BYTES)
                .read_to_end(&mut raw)
                .map_err(io)?;
        } else {
            chained
                .take(MAX_FILE_BYTES)
                .read_to_end(&mut raw)
                .map_err(io)?;
        }
    }
    let mut volume = parse_nifti(&raw).map_err(err)?;
    let study_uid = derived_uid("spinescreen.nifti.study", &raw);
    volume.header.study = StudyInfo {
        series_instance_uid: derived_uid("spinescreen.nifti.series", &raw),
        study_instance_uid: study_uid,
        series_number: "1".into(),
        ..Default::default()
    };
    Ok(volume)
}

/// The header fields this reader uses.
#[derive(Debug, Clone)]
struct Header {
    dims: [usize; 3],
    datatype: i16,
    pixdim: [f32; 8],
    vox_offset: usize,
    slope: f64,
    inter: f64,
    qform_code: i16,
    sform_code: i16,
    quatern: [f32; 6],
    srow: [[f32; 4]; 3],
}

/// Little- or big-endian field access, decided by `sizeof_hdr`.
struct Fields<'a> {
    b: &'a [u8],
    big: bool,
}

impl Fields<'_> {
    fn i16(&self, at: usize) -> i16 {
        let v = [self.b[at], self.b[at + 1]];
        if self.big {
            i16::from_be_bytes(v)
        } else {
            i16::from_le_bytes(v)
        }
    }
    fn f32(&self, at: usize) -> f32 {
        let v = [self.b[at], self.b[at + 1], self.b[at + 2], self.b[at + 3]];
        if self.big {
            f32::from_be_bytes(v)
        } else {
            f32::from_le_bytes(v)
        }
    }
}

fn parse_header(b: &[u8]) -> Result<(Header, bool), String> {
    if b.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes is shorter than a NIfTI-1 header",
            b.len()
        ));
    }
    let big = match [b[0], b[1], b[2], b[3]] {
        x if i32::from_le_bytes(x) == 348 => false,
        x if i32::from_be_bytes(x) == 348 => true,
        x if i32::from_le_bytes(x) == 540 || i32::from_be_bytes(x) == 540 => {
            return Err("NIfTI-2 is not supported".into())
        }
        _ => return Err("not a NIfTI-1 file (sizeof_hdr is not 348)".into()),
    };
    match &b[344..348] {
        b"n+1\0" => {}
        b"ni1\0" => return Err("two-file NIfTI (.hdr/.img) is not supported".into()),
        _ => return Err("bad NIfTI-1 magic".into()),
    }
    let f = Fields { b, big };
    let ndim = f.i16(40);
    if !(1..=7).contains(&ndim) {
        return Err(format!("dim[0] = {ndim} out of 1..7"));
    }
    let mut dims = [1usize; 3];
    for (i, d) in (1..=ndim as usize).map(|i| (i, f.i16(40 + 2 * i))) {
        if d < 1 {
            return Err(format!("dim[{i}] = {d}"));
        }
        if i <= 3 {
            dims[i - 1] = d as usize;
        } else if d != 1 {
            return Err(format!(
                "a {ndim}-D image (dim[{i}] = {d}) is not a single volume"
            ));
        }
    }
    let mut pixdim = [0f32; 8];
    for (i, p) in pixdim.iter_mut().enumerate() {
        *p = f.f32(76 + 4 * i);
    }
    let vox_offset = f.f32(108);
    if !(vox_offset.is_finite() && vox_offset >= 0.0) {
        return Err(format!("vox_offset {vox_offset}"));
    }
    let (mut slope, mut inter) = (f.f32(112) as f64, f.f32(116) as f64);
    // nifti1.h: "If the scl_slope field is nonzero, then each voxel value in the dataset
    // should be scaled"; zero or non-finite means no scaling.
    if slope == 0.0 || !slope.is_finite() || !inter.is_finite() {
        slope = 1.0;
        inter = 0.0;
    }
    let mut quatern = [0f32; 6];
    for (i, q) in quatern.iter_mut().enumerate() {
        *q = f.f32(256 + 4 * i);
    }
    let mut srow = [[0f32; 4]; 3];
    for (r, row) in srow.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f.f32(280 + 16 * r + 4 * c);
        }
    }
    Ok((
        Header {
            dims,
            datatype: f.i16(70),
            pixdim,
            vox_offset: (vox_offset as usize).max(352),
            slope,
            inter,
            qform_code: f.i16(252),
            sform_code: f.i16(254),
            quatern,
            srow,
        },
        big,
    ))
}

/// Voxel-to-RAS affine: columns 0–2 are the world step of index i, j, k; column 3 the origin.
fn affine_ras(h: &Header) -> [[f64; 4]; 3] {
    if h.sform_code > 0 {
        let mut a = [[0f64; 4]; 3];
        for r in 0..3 {
            for c in 0..4 {
                a[r][c] = h.srow[r][c] as f64;
            }
        }
        return a;
    }
    let d = [h.pixdim[1] as f64, h.pixdim[2] as f64, h.pixdim[3] as f64];
    if h.qform_code > 0 {
        let [b, c, dq, x, y, z] = h.quatern.map(|v| v as f64);
        let a = (1.0 - b * b - c * c - dq * dq).max(0.0).sqrt();
        let r = [
            [
                a * a + b * b - c * c - dq * dq,
                2.0 * (b * c - a * dq),
                2.0 * (b * dq + a * c),
            ],
            [
                2.0 * (b * c + a * dq),
                a * a + c * c - b * b - dq * dq,
                2.0 * (c * dq - a * b),
            ],
            [
                2.0 * (b * dq - a * c),
                2.0 * (c * dq + a * b),
                a * a + dq * dq - c * c - b * b,
            ],
        ];
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let scale = [d[0], d[1], d[2] * qfac];
        let t = [x, y, z];
        let mut out = [[0f64; 4]; 3];
        for row in 0..3 {
            for col in 0..3 {
                out[row][col] = r[row][col] * scale[col];
            }
            out[row][3] = t[row];
        }
        return out;
    }
    // Method 1 (ANALYZE compatibility): scaling only.
    [
        [d[0], 0.0, 0.0, 0.0],
        [0.0, d[1], 0.0, 0.0],
        [0.0, 0.0, d[2], 0.0],
    ]
}

fn to_hu(v: f64, h: &Header) -> i16 {
    let hu = v * h.slope + h.inter;
    if hu.is_nan() {
        -1024
    } else {
        hu.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16
    }
}

/// Parse a whole (decompressed) `.nii` image.
fn parse_nifti(raw: &[u8]) -> Result<HuVolume, String> {
    let (h, big) = parse_header(raw)?;
    let n = h.dims[0]
        .checked_mul(h.dims[1])
        .and_then(|v| v.checked_mul(h.dims[2]))
        .filter(|&v| v <= MAX_VOXELS)
        .ok_or_else(|| format!("dims {:?} too large", h.dims))?;
    let width = match h.datatype {
        2 | 256 => 1,
        4 | 512 => 2,
        8 | 16 | 768 => 4,
        64 => 8,
        other => return Err(format!("datatype {other} is not supported")),
    };
    let data = raw
        .get(h.vox_offset..)
        .filter(|d| d.len() >= n * width)
        .ok_or_else(|| {
            format!(
                "voxel data truncated: need {} bytes after offset {}",
                n * width,
                h.vox_offset
            )
        })?;
    let data = &data[..n * width];
    macro_rules! conv {
        ($t:ty) => {
            data.chunks_exact(width)
                .map(|c| {
                    let arr: [u8; std::mem::size_of::<$t>()] = c.try_into().unwrap_or_default();
                    let v = if big {
                        <$t>::from_be_bytes(arr)
                    } else {
                        <$t>::from_le_bytes(arr)
                    };
                    to_hu(v as f64, &h)
                })
                .collect::<Vec<i16>>()
        };
    }
    let voxels: Vec<i16> = match h.datatype {
        2 => conv!(u8),
        256 => conv!(i8),
        4 => conv!(i16),
        512 => conv!(u16),
        8 => conv!(i32),
        768 => conv!(u32),
        16 => conv!(f32),
        64 => conv!(f64),
        _ => unreachable!("datatype checked above"),
    };
    let [ni, nj, nk] = h.dims;
    let array = Array3::from_shape_vec((nk, nj, ni), voxels).map_err(|e| e.to_string())?;

    // RAS → LPS: negate the x and y rows of the affine.
    let mut a = affine_ras(&h);
    for row in a.iter_mut().take(2) {
        for v in row.iter_mut() {
            *v = -*v;
        }
    }
    let mut spacing = [0f64; 3];
    let mut direction = [[0f64; 3]; 3];
    for axis in 0..3 {
        let col = [a[0][axis], a[1][axis], a[2][axis]];
        let len = (col[0] * col[0] + col[1] * col[1] + col[2] * col[2]).sqrt();
        if !(len.is_finite() && len > 1e-6) {
            return Err(format!("zero or invalid spacing along index axis {axis}"));
        }
        spacing[axis] = len;
        direction[axis] = [col[0] / len, col[1] / len, col[2] / len];
    }
    let origin = [a[0][3], a[1][3], a[2][3]];
    if !origin.iter().all(|v| v.is_finite()) {
        return Err("non-finite origin".into());
    }
    let header = VolumeHeader {
        schema_version: SCHEMA_VERSION,
        dims: h.dims,
        spacing_mm: spacing,
        origin_mm: origin,
        direction,
        study: StudyInfo::default(),
    };
    let (header, array) = reorient_to_lps(header, array);
    HuVolume::new(header, array).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal little-endian NIfTI-1 image with the given datatype payload and sform (RAS).
    fn nifti_bytes(dims: [i16; 3], datatype: i16, payload: &[u8], sform: [[f32; 4]; 3]) -> Vec<u8> {
        let mut b = vec![0u8; 352];
        b[0..4].copy_from_slice(&348i32.to_le_bytes());
        b[40..42].copy_from_slice(&3i16.to_le_bytes());
        for (i, d) in dims.iter().enumerate() {
            b[42 + 2 * i..44 + 2 * i].copy_from_slice(&d.to_le_bytes());
        }
        b[70..72].copy_from_slice(&datatype.to_le_bytes());
        b[108..112].copy_from_slice(&352f32.to_le_bytes());
        b[112..116].copy_from_slice(&2f32.to_le_bytes()); // slope
        b[116..120].copy_from_slice(&(-1000f32).to_le_bytes()); // inter
        b[254..256].copy_from_slice(&1i16.to_le_bytes()); // sform_code
        for (r, row) in sform.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                b[280 + 16 * r + 4 * c..284 + 16 * r + 4 * c].copy_from_slice(&v.to_le_bytes());
            }
        }
        b[344..348].copy_from_slice(b"n+1\0");
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn ras_affine_becomes_lps_geometry_and_scaling_applies() {
        // i runs toward patient right in RAS (+x) → toward LPS −x: the reader flips it.
        let payload: Vec<u8> = (0..24u8).collect();
        let raw = nifti_bytes(
            [4, 3, 2],
            2,
            &payload,
            [
                [1.0, 0.0, 0.0, 10.0],
                [0.0, -2.0, 0.0, 20.0],
                [0.0, 0.0, 3.0, 30.0],
            ],
        );
        let v = parse_nifti(&raw).unwrap();
        let h = &v.header;
        assert_eq!(h.dims, [4, 3, 2]);
        assert_eq!(h.spacing_mm, [1.0, 2.0, 3.0]);
        assert_eq!(
            h.direction,
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        );
        // Voxel (i=3, j=0, k=0) was at RAS (13, 20, 30) = LPS (−13, −20, 30): now x index 0.
        assert_eq!(h.origin_mm, [-13.0, -20.0, 30.0]);
        // raw value at (i=3,j=0,k=0) is 3 → 3·2 − 1000.
        assert_eq!(v.voxels[[0, 0, 0]], -994);
        // Every voxel keeps its patient position: check one.
        let raw_idx = (1usize, 2usize, 1usize); // (i, j, k)
        let ras = [
            10.0 + raw_idx.0 as f64,
            20.0 - 2.0 * raw_idx.1 as f64,
            30.0 + 3.0 * raw_idx.2 as f64,
        ];
        let lps = [-ras[0], -ras[1], ras[2]];
        let idx = h.patient_to_index(lps);
        let (x, y, z) = (
            idx[0].round() as usize,
            idx[1].round() as usize,
            idx[2].round() as usize,
        );
        let raw_value = (raw_idx.0 + 4 * raw_idx.1 + 12 * raw_idx.2) as i16;
        assert_eq!(v.voxels[[z, y, x]], raw_value * 2 - 1000);
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        let raw = nifti_bytes(
            [4, 3, 2],
            4,
            &[0u8; 10],
            [
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
            ],
        );
        assert!(parse_nifti(&raw).unwrap_err().contains("truncated"));
        assert!(parse_nifti(b"DICM").is_err());
        let mut bad = nifti_bytes(
            [1, 1, 1],
            1,
            &[0u8; 1],
            [
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
            ],
        );
        assert!(parse_nifti(&bad).unwrap_err().contains("datatype"));
        bad[344] = b'x';
        assert!(parse_nifti(&bad).is_err());
    }

    #[test]
    fn gzip_is_detected_by_magic() {
        let payload: Vec<u8> = (0..8i16).flat_map(|v| v.to_le_bytes()).collect();
        let raw = nifti_bytes(
            [2, 2, 2],
            4,
            &payload,
            [
                [-1.0, 0.0, 0.0, 0.0],
                [0.0, -1.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
            ],
        );
        let dir = std::env::temp_dir().join(format!("spinescreen-nifti-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.nii.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        let v = read_nifti(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        // RAS −x,−y = LPS +x,+y: no flip needed, values in file order.
        assert_eq!(v.voxels[[0, 0, 1]], 2 - 1000);
        assert!(v.header.study.study_instance_uid.starts_with("2.25."));
    }

    const REAL_CT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/real/abdomen-ct-3mm/ct.nii.gz"
    );
    const REAL_LABELS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/real/abdomen-ct-3mm/reference_vertebra_labels.nii.gz"
    );

    #[test]
    fn real_abdomen_ct_reads_as_3mm_lps_volume_in_hu() {
        let path = Path::new(REAL_CT);
        if !path.exists() {
            eprintln!("skipping: {REAL_CT} not present");
            return;
        }
        let v = read_nifti(path).unwrap();
        let h = &v.header;
        assert_eq!(h.dims, [122, 101, 112]);
        assert_eq!(h.spacing_mm, [3.0, 3.0, 3.0]);
        assert_eq!(
            h.direction,
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        );
        // sform origin RAS (−177.96, 11.32, 94.30); both x and y axes were flipped.
        assert!((h.origin_mm[0] - (177.956_329_345_703_12 - 3.0 * 121.0)).abs() < 1e-3);
        assert!((h.origin_mm[1] - (-11.319_000_244_140_625 - 3.0 * 100.0)).abs() < 1e-3);
        assert!((h.origin_mm[2] - 94.301_757_812_5).abs() < 1e-3);
        // Corners are air; the volume has both air and bone.
        assert!(v.voxels[[0, 0, 0]] < -900, "corner {}", v.voxels[[0, 0, 0]]);
        let max = *v.voxels.iter().max().unwrap();
        assert!(max > 300, "max {max}");
        assert_eq!(
            v.header.study.study_instance_uid,
            read_nifti(path).unwrap().header.study.study_instance_uid
        );
    }

    #[test]
    fn real_labels_line_up_with_the_ct() {
        let (ct, labels) = (Path::new(REAL_CT), Path::new(REAL_LABELS));
        if !ct.exists() || !labels.exists() {
            eprintln!("skipping: real data not present");
            return;
        }
        let ct = read_nifti(ct).unwrap();
        let labels = read_nifti(labels).unwrap();
        assert_eq!(labels.header.dims, ct.header.dims);
        assert_eq!(labels.header.origin_mm, ct.header.origin_mm);
        assert_eq!(labels.header.direction, ct.header.direction);
        // Labelled voxels are bone: their mean HU is well above soft tissue.
        let (mut sum, mut n) = (0f64, 0usize);
        for (l, h) in labels.voxels.iter().zip(ct.voxels.iter()) {
            if *l > 0 {
                sum += *h as f64;
                n += 1;
            }
        }
        assert!(n > 1000, "labelled voxels {n}");
        assert!(
            sum / n as f64 > 150.0,
            "mean HU of labelled voxels {}",
            sum / n as f64
        );
    }
}
