//! How a [`HuVolume`]'s voxels are stored: volume format 2, zstd frames of whole slices along z.
//!
//! `volume.zst` is the concatenation of independent zstd frames (with content checksums), frame
//! `i` holding slices `i·chunk_slices .. min((i+1)·chunk_slices, nz)` as little-endian `i16`, x
//! fastest, then y, then z — the bytes of format 1's `volume.i16` for those slices. The frames'
//! byte ranges are listed in `volume.json` under `"voxels"` ([`VoxelLayout`]), which is written
//! after the frames, so a reader fetches each frame with one ranged read and decompresses it
//! straight into its slab of the array; nothing ever holds the whole object. A `volume.json`
//! without `"voxels"` is format 1: raw voxels in `volume.i16`.

use crate::region::RegionBox;
use crate::volume::{HuVolume, VolumeError, VolumeHeader};
use crate::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The newest volume format: zstd frames along z ([`VoxelLayout`]). Format 1 is raw
/// `volume.i16`, still read.
pub const VOLUME_FORMAT: u32 = 2;

/// Slices per frame written: 16 slices of 512² are 8 MiB raw, a few MiB compressed.
pub const CHUNK_SLICES: usize = 16;

/// The most voxels a stored header may declare (4 GiB of i16): a damaged header must not make a
/// reader allocate without bound.
pub const MAX_VOXELS: usize = 1 << 31;

/// zstd level written: the fastest standard level; CT noise leaves little for higher levels.
pub const ZSTD_LEVEL: i32 = 1;

/// Where each frame of `volume.zst` lies (`volume.json`'s `"voxels"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoxelLayout {
    /// [`VOLUME_FORMAT`] (2).
    pub format: u32,
    /// `"zstd"`.
    pub codec: String,
    /// Slices per frame (the last frame may hold fewer).
    pub chunk_slices: usize,
    /// `[offset, length]` in bytes of each frame in `volume.zst`, in z order.
    pub chunks: Vec<[u64; 2]>,
}

/// `volume.json` as stored: the [`VolumeHeader`] fields plus, from format 2, the layout of the
/// voxels. Readers that know only [`VolumeHeader`] ignore `"voxels"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredHeader {
    /// Geometry and provenance.
    #[serde(flatten)]
    pub header: VolumeHeader,
    /// Format 2's frame table; `None`: format 1 (`volume.i16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voxels: Option<VoxelLayout>,
    /// Set on a part of a study's volume (the spine region, [`crate::region`]): where these
    /// voxels lie in `volume.json`'s grid. `None`: the whole volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<RegionBox>,
}

impl StoredHeader {
    /// Parse `volume.json`, checking the schema version and, for format 2, that the frame table
    /// covers the header's slices with contiguous frames.
    pub fn parse(bytes: &[u8]) -> Result<Self, VolumeError> {
        let stored: StoredHeader =
            serde_json::from_slice(bytes).map_err(|e| VolumeError::Header(e.to_string()))?;
        if stored.header.schema_version != SCHEMA_VERSION {
            return Err(VolumeError::Header(format!(
                "schema version {} (expected {SCHEMA_VERSION})",
                stored.header.schema_version
            )));
        }
        let [nx, ny, nz] = stored.header.dims;
        let voxels = nx
            .checked_mul(ny)
            .and_then(|p| p.checked_mul(nz))
            .ok_or_else(|| VolumeError::Header("dims overflow".into()))?;
        if voxels > MAX_VOXELS {
            return Err(VolumeError::Header(format!(
                "{voxels} voxels, over the limit of {MAX_VOXELS}"
            )));
        }
        if let Some(layout) = &stored.voxels {
            layout.check(nz)?;
        }
        if let Some(region) = &stored.region {
            if region.dims != stored.header.dims {
                return Err(VolumeError::Header(format!(
                    "region dims {:?} differ from the header's {:?}",
                    region.dims, stored.header.dims
                )));
            }
        }
        Ok(stored)
    }

    /// The bytes of `volume.json`.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

impl VoxelLayout {
    /// Number of frames for `nz` slices.
    pub fn frame_count(nz: usize, chunk_slices: usize) -> usize {
        nz.div_ceil(chunk_slices.max(1))
    }

    /// The slices `[start, end)` of frame `i`.
    pub fn slices(&self, i: usize, nz: usize) -> std::ops::Range<usize> {
        let start = (i * self.chunk_slices).min(nz);
        start..(start + self.chunk_slices).min(nz)
    }

    fn check(&self, nz: usize) -> Result<(), VolumeError> {
        let bad = |why: String| Err(VolumeError::Header(format!("voxel layout: {why}")));
        if self.format != VOLUME_FORMAT || self.codec != "zstd" {
            return bad(format!(
                "format {} codec {:?} (expected {VOLUME_FORMAT} \"zstd\")",
                self.format, self.codec
            ));
        }
        if self.chunk_slices == 0 {
            return bad("chunk_slices is 0".into());
        }
        let want = Self::frame_count(nz, self.chunk_slices);
        if self.chunks.len() != want {
            return bad(format!(
                "{} frames for {nz} slices (expected {want})",
                self.chunks.len()
            ));
        }
        let mut next = 0u64;
        for (i, [offset, len]) in self.chunks.iter().enumerate() {
            if *offset != next || *len == 0 {
                return bad(format!(
                    "frame {i} at {offset}+{len} (expected offset {next})"
                ));
            }
            next = offset
                .checked_add(*len)
                .ok_or_else(|| VolumeError::Header("voxel layout: offset overflow".into()))?;
        }
        Ok(())
    }
}

/// Compress slices `[start, end)` of `volume` into one zstd frame, row by row (no raw copy of
/// the slab is made).
pub fn encode_frame(volume: &HuVolume, start: usize, end: usize) -> std::io::Result<Vec<u8>> {
    let [nx, ..] = volume.header.dims;
    let mut enc = zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL)?;
    enc.include_checksum(true)?;
    let mut row = vec![0u8; nx * 2];
    for z in start..end {
        for line in volume.voxels.index_axis(ndarray::Axis(0), z).rows() {
            for (pair, v) in row.chunks_exact_mut(2).zip(line.iter()) {
                pair.copy_from_slice(&v.to_le_bytes());
            }
            enc.write_all(&row)?;
        }
    }
    enc.finish()
}

/// Decompress one frame into `out` (its slab of the array, `[z][y][x]`), checking that the frame
/// holds exactly `out.len()` voxels.
pub fn decode_frame(frame: &[u8], out: &mut [i16]) -> Result<(), VolumeError> {
    let corrupt = |e: std::io::Error| VolumeError::Header(format!("voxel frame: {e}"));
    let mut dec = zstd::stream::Decoder::with_buffer(frame).map_err(corrupt)?;
    let mut buf = vec![0u8; 64 * 1024];
    for piece in out.chunks_mut(buf.len() / 2) {
        let bytes = &mut buf[..piece.len() * 2];
        dec.read_exact(bytes).map_err(corrupt)?;
        for (v, pair) in piece.iter_mut().zip(bytes.chunks_exact(2)) {
            *v = i16::from_le_bytes([pair[0], pair[1]]);
        }
    }
    let mut extra = [0u8; 1];
    match dec.read(&mut extra).map_err(corrupt)? {
        0 => Ok(()),
        _ => Err(VolumeError::Header(
            "voxel frame holds more voxels than its slices".into(),
        )),
    }
}

/// Write `volume` in format 2 to memory: the `volume.zst` bytes and its `volume.json`. For tests
/// and tools; workers stream frames to storage one by one.
pub fn encode_volume(volume: &HuVolume) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let nz = volume.header.dims[2];
    let mut object = vec![];
    let mut chunks = vec![];
    for i in 0..VoxelLayout::frame_count(nz, CHUNK_SLICES) {
        let start = i * CHUNK_SLICES;
        let frame = encode_frame(volume, start, (start + CHUNK_SLICES).min(nz))?;
        chunks.push([object.len() as u64, frame.len() as u64]);
        object.extend_from_slice(&frame);
    }
    let header = StoredHeader {
        header: volume.header.clone(),
        voxels: Some(VoxelLayout {
            format: VOLUME_FORMAT,
            codec: "zstd".into(),
            chunk_slices: CHUNK_SLICES,
            chunks,
        }),
        region: None,
    };
    Ok((object, header.to_bytes()))
}

/// Read a format-2 volume from memory (`volume.json`, `volume.zst` bytes). For tests and tools.
pub fn decode_volume(header: &[u8], object: &[u8]) -> Result<HuVolume, VolumeError> {
    let stored = StoredHeader::parse(header)?;
    let layout = stored
        .voxels
        .ok_or_else(|| VolumeError::Header("format 1 header (no voxel layout)".into()))?;
    let [nx, ny, nz] = stored.header.dims;
    let mut data = vec![0i16; nx * ny * nz];
    for (i, [offset, len]) in layout.chunks.iter().enumerate() {
        let range = layout.slices(i, nz);
        let frame = usize::try_from(*offset)
            .ok()
            .zip(usize::try_from(offset + len).ok())
            .and_then(|(a, b)| object.get(a..b))
            .ok_or(VolumeError::Size {
                expected: (offset + len) as usize,
                actual: object.len(),
            })?;
        decode_frame(frame, &mut data[range.start * nx * ny..range.end * nx * ny])?;
    }
    let voxels = ndarray::Array3::from_shape_vec((nz, ny, nx), data)
        .map_err(|e| VolumeError::Header(e.to_string()))?;
    HuVolume::new(stored.header, voxels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StudyInfo;
    use ndarray::Array3;

    fn volume(nz: usize) -> HuVolume {
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [7, 5, nz],
            spacing_mm: [0.7, 0.7, 1.0],
            origin_mm: [0.0, 0.0, 0.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let voxels = Array3::from_shape_fn((nz, 5, 7), |(z, y, x)| {
            ((z * 977 + y * 131 + x * 17) % 4000) as i16 - 1024
        });
        HuVolume::new(header, voxels).unwrap()
    }

    #[test]
    fn round_trip_with_a_short_last_frame() {
        let v = volume(CHUNK_SLICES * 2 + 3);
        let (object, header) = encode_volume(&v).unwrap();
        let stored = StoredHeader::parse(&header).unwrap();
        assert_eq!(stored.voxels.as_ref().unwrap().chunks.len(), 3);
        assert_eq!(decode_volume(&header, &object).unwrap(), v);
        // Format-1 readers still find the header fields.
        let plain: VolumeHeader = serde_json::from_slice(&header).unwrap();
        assert_eq!(plain, v.header);
    }

    #[test]
    fn damaged_frames_and_tables_are_errors() {
        let v = volume(CHUNK_SLICES + 1);
        let (mut object, header) = encode_volume(&v).unwrap();
        assert!(decode_volume(&header, &object[..object.len() - 1]).is_err());
        let mid = object.len() / 4;
        object[mid] ^= 0x55;
        assert!(decode_volume(&header, &object).is_err());
        let mut stored = StoredHeader::parse(&header).unwrap();
        stored.voxels.as_mut().unwrap().chunks.pop();
        assert!(StoredHeader::parse(&stored.to_bytes()).is_err());
        let mut stored = StoredHeader::parse(&header).unwrap();
        stored.voxels.as_mut().unwrap().chunks[1][0] += 1;
        assert!(StoredHeader::parse(&stored.to_bytes()).is_err());
    }

    #[test]
    fn a_frame_of_the_wrong_size_is_an_error() {
        let v = volume(4);
        let frame = encode_frame(&v, 0, 4).unwrap();
        let mut short = vec![0i16; 7 * 5 * 3];
        assert!(decode_frame(&frame, &mut short).is_err());
        let mut long = vec![0i16; 7 * 5 * 5];
        assert!(decode_frame(&frame, &mut long).is_err());
        let mut exact = vec![0i16; 7 * 5 * 4];
        decode_frame(&frame, &mut exact).unwrap();
    }
}
