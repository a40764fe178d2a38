//! HU volumes in the store, streamed: written frame by frame as zstd (volume format 2,
//! [`spinescreen_proto::voxels`]) and read with one ranged read per frame, each decompressed
//! straight into its slab of the array. Format 1 (`volume.i16`) is still read, streamed piece by
//! piece into the array. Neither direction holds a whole-object buffer.

use crate::storage::{StorageError, StudyStore};
use futures::{StreamExt, TryStreamExt};
use ndarray::Array3;
use spinescreen_proto::voxels::{decode_frame, encode_frame, CHUNK_SLICES};
use spinescreen_proto::{
    HuVolume, RegionBox, RegionVolume, StoredHeader, StudyKeys, VolumeError, VoxelLayout,
};
use std::sync::Arc;

/// Frames compressed or fetched at once.
const FRAMES_IN_FLIGHT: usize = 4;

/// Multipart parts uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;

/// Why a stored volume could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VolumeReadError {
    /// No `volume.json`: the study has no volume.
    #[error("no volume header at {0}")]
    NoHeader(String),
    /// The header names voxels that are not there.
    #[error("the volume's voxels are missing ({0})")]
    NoVoxels(String),
    /// The stored bytes do not make a volume (permanent).
    #[error("stored volume unreadable: {0}")]
    Unreadable(#[from] VolumeError),
    /// The store failed (usually transient).
    #[error(transparent)]
    Store(StorageError),
}

impl VolumeReadError {
    /// Whether retrying may help (a store failure), as opposed to missing or damaged data.
    pub fn is_transient(&self) -> bool {
        matches!(self, VolumeReadError::Store(StorageError::Store(_)))
    }
}

impl From<VolumeReadError> for crate::StageError {
    /// A store failure is worth retrying; a missing or damaged volume never will be.
    fn from(e: VolumeReadError) -> Self {
        if e.is_transient() {
            crate::StageError::Transient(anyhow::Error::new(e))
        } else {
            crate::StageError::Permanent(anyhow::Error::new(e))
        }
    }
}

fn store_error(e: StorageError, key: &str) -> VolumeReadError {
    match e {
        StorageError::NotFound(_) => VolumeReadError::NoVoxels(key.to_string()),
        e => VolumeReadError::Store(e),
    }
}

/// Write `volume` in format 2: frames of [`CHUNK_SLICES`] slices compressed on blocking threads
/// and streamed to `volume.zst` as a multipart upload, then `volume.json` with the frame table
/// (last, so a reader that finds the header finds the voxels).
pub async fn write_volume(
    store: &StudyStore,
    keys: &StudyKeys,
    volume: Arc<HuVolume>,
) -> Result<(), StorageError> {
    write_format_2(
        store,
        &keys.volume_header(),
        &keys.volume_frames(),
        volume,
        None,
    )
    .await
}

/// Write the spine region of a study: `region` is [`RegionBox::crop`] of its volume by `placement`
/// (the box named in `detection.json`), stored in format 2 as `spine_region.zst` and
/// `spine_region.json` (written last, with `"region": placement`).
pub async fn write_spine_region(
    store: &StudyStore,
    keys: &StudyKeys,
    region: Arc<HuVolume>,
    placement: RegionBox,
) -> Result<(), StorageError> {
    write_format_2(
        store,
        &keys.spine_region_header(),
        &keys.spine_region_frames(),
        region,
        Some(placement),
    )
    .await
}

/// The format-2 writer behind [`write_volume`] and [`write_spine_region`].
async fn write_format_2(
    store: &StudyStore,
    header_key: &str,
    frames_key: &str,
    volume: Arc<HuVolume>,
    region: Option<RegionBox>,
) -> Result<(), StorageError> {
    let nz = volume.header.dims[2];
    let frames = VoxelLayout::frame_count(nz, CHUNK_SLICES);
    let mut upload = store.put_multipart(frames_key).await?;
    let mut compressed = futures::stream::iter(0..frames)
        .map(|i| {
            let volume = volume.clone();
            tokio::task::spawn_blocking(move || {
                let start = i * CHUNK_SLICES;
                encode_frame(&volume, start, (start + CHUNK_SLICES).min(nz))
            })
        })
        .buffered(FRAMES_IN_FLIGHT);
    let mut chunks = Vec::with_capacity(frames);
    let mut offset = 0u64;
    let failed = |why: String| {
        StorageError::Store(object_store::Error::Generic {
            store: "volume",
            source: why.into(),
        })
    };
    while let Some(frame) = compressed.next().await {
        let frame = match frame {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(e)) => Err(failed(format!("compressing a frame: {e}"))),
            Err(e) => Err(failed(format!("compression task: {e}"))),
        };
        let written = match frame {
            Ok(frame) => {
                chunks.push([offset, frame.len() as u64]);
                offset += frame.len() as u64;
                let room = upload.wait_for_capacity(PARTS_IN_FLIGHT).await;
                room.map(|()| upload.put(frame.into()))
                    .map_err(StorageError::from)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            // No half-written object is left behind (a failed abort is only logged).
            if let Err(a) = upload.abort().await {
                tracing::warn!(error = %a, "could not abort a failed volume upload");
            }
            return Err(e);
        }
    }
    upload.finish().await?;
    let header = StoredHeader {
        header: volume.header.clone(),
        voxels: Some(VoxelLayout {
            format: spinescreen_proto::VOLUME_FORMAT,
            codec: "zstd".into(),
            chunk_slices: CHUNK_SLICES,
            chunks,
        }),
        region,
    };
    store.put(header_key, header.to_bytes()).await
}

/// Read and parse a stored header.
async fn read_header(store: &StudyStore, key: &str) -> Result<StoredHeader, VolumeReadError> {
    let bytes = match store.get(key).await {
        Ok(b) => b,
        Err(StorageError::NotFound(_)) => return Err(VolumeReadError::NoHeader(key.to_string())),
        Err(e) => return Err(VolumeReadError::Store(e)),
    };
    Ok(StoredHeader::parse(&bytes)?)
}

/// Read the study's volume (format 2, or format 1 when the header has no frame table).
pub async fn read_volume(
    store: &StudyStore,
    keys: &StudyKeys,
) -> Result<HuVolume, VolumeReadError> {
    let stored = read_header(store, &keys.volume_header()).await?;
    let [nx, ny, nz] = stored.header.dims;
    let plane = nx * ny;
    let data = match &stored.voxels {
        Some(layout) => read_frames(store, &keys.volume_frames(), layout, plane, nz).await?,
        None => read_raw(store, &keys.volume_voxels(), plane * nz).await?,
    };
    let voxels = Array3::from_shape_vec((nz, ny, nx), data)
        .map_err(|e| VolumeError::Header(e.to_string()))?;
    Ok(HuVolume::new(stored.header, voxels)?)
}

/// Read the spine region `expected` (the box `detection.json` names) as a [`RegionVolume`] in
/// the grid of the study's `volume.json`, whose geometry it takes (so every index and patient
/// point means exactly what it means on the full volume). A region whose header disagrees with
/// `expected` or with `volume.json` is [`VolumeReadError::Unreadable`].
pub async fn read_spine_region(
    store: &StudyStore,
    keys: &StudyKeys,
    expected: RegionBox,
) -> Result<RegionVolume, VolumeReadError> {
    let full = read_header(store, &keys.volume_header()).await?.header;
    let stored = read_header(store, &keys.spine_region_header()).await?;
    let mismatch = |why: String| VolumeReadError::Unreadable(VolumeError::Header(why));
    if stored.region != Some(expected) {
        return Err(mismatch(format!(
            "spine region {:?}, but the detection names {expected:?}",
            stored.region
        )));
    }
    if !expected.fits(full.dims)
        || stored.header.spacing_mm != full.spacing_mm
        || stored.header.direction != full.direction
    {
        return Err(mismatch(format!(
            "spine region {expected:?} does not lie in the volume's {:?} grid",
            full.dims
        )));
    }
    let layout = stored
        .voxels
        .as_ref()
        .ok_or_else(|| mismatch("spine region without a frame table".into()))?;
    let [nx, ny, nz] = expected.dims;
    let data = read_frames(store, &keys.spine_region_frames(), layout, nx * ny, nz).await?;
    let voxels = Array3::from_shape_vec((nz, ny, nx), data)
        .map_err(|e| VolumeError::Header(e.to_string()))?;
    Ok(RegionVolume::new(full, expected, voxels)?)
}

/// What morphometry and rendering read: the spine region when the detection names one
/// (`region`), otherwise, or when the region cannot be read for good (missing, damaged, not
/// matching; studies written before regions existed), the full volume. A store failure is
/// returned (retrying may help), not papered over.
pub async fn read_spine_volume(
    store: &StudyStore,
    keys: &StudyKeys,
    region: Option<RegionBox>,
) -> Result<RegionVolume, VolumeReadError> {
    if let Some(region) = region {
        match read_spine_region(store, keys, region).await {
            Ok(r) => return Ok(r),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "spine region unreadable; reading the full volume");
            }
        }
    }
    Ok(RegionVolume::whole(read_volume(store, keys).await?))
}

/// Format 2: ranged reads of the frames, a few in flight, each decompressed into its slab.
async fn read_frames(
    store: &StudyStore,
    key: &str,
    layout: &VoxelLayout,
    plane: usize,
    nz: usize,
) -> Result<Vec<i16>, VolumeReadError> {
    let mut data = vec![0i16; plane * nz];
    // Owned captures: the future must be Send for every lifetime (async_trait workers).
    let mut fetched = futures::stream::iter(layout.chunks.clone().into_iter().enumerate())
        .map(|(i, [offset, len])| {
            let (store, key) = (store.clone(), key.to_string());
            async move {
                let bytes = store
                    .get_range(&key, offset..offset + len)
                    .await
                    .map_err(|e| store_error(e, &key))?;
                if bytes.len() as u64 != len {
                    return Err(VolumeReadError::Unreadable(VolumeError::Size {
                        expected: len as usize,
                        actual: bytes.len(),
                    }));
                }
                Ok((i, bytes))
            }
        })
        .buffered(FRAMES_IN_FLIGHT);
    while let Some((i, frame)) = fetched.try_next().await? {
        let slices = layout.slices(i, nz);
        let mut buf = data;
        data = tokio::task::spawn_blocking(move || {
            decode_frame(&frame, &mut buf[slices.start * plane..slices.end * plane]).map(|()| buf)
        })
        .await
        .map_err(|e| VolumeError::Header(format!("decompression task: {e}")))??;
    }
    Ok(data)
}

/// Format 1: the raw object streamed piece by piece into the array.
async fn read_raw(
    store: &StudyStore,
    key: &str,
    voxels: usize,
) -> Result<Vec<i16>, VolumeReadError> {
    let mut data = Vec::with_capacity(voxels);
    let mut odd: Option<u8> = None;
    let mut received = 0usize;
    let mut pieces = store
        .get_stream(key)
        .await
        .map_err(|e| store_error(e, key))?;
    while let Some(piece) = pieces.try_next().await.map_err(|e| store_error(e, key))? {
        received += piece.len();
        if received > voxels * 2 {
            break;
        }
        let mut rest: &[u8] = &piece;
        if let (Some(lo), Some((&hi, tail))) = (odd, rest.split_first()) {
            data.push(i16::from_le_bytes([lo, hi]));
            rest = tail;
        }
        let pairs = rest.chunks_exact(2);
        odd = pairs.remainder().first().copied();
        data.extend(pairs.map(|p| i16::from_le_bytes([p[0], p[1]])));
    }
    if received != voxels * 2 {
        return Err(VolumeError::Size {
            expected: voxels * 2,
            actual: received,
        }
        .into());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinescreen_proto::{HuSource, StudyInfo, StudyUid, VolumeHeader, SCHEMA_VERSION};

    fn volume(nz: usize) -> HuVolume {
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [9, 6, nz],
            spacing_mm: [0.7, 0.7, 1.0],
            origin_mm: [1.0, 2.0, 3.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let voxels = Array3::from_shape_fn((nz, 6, 9), |(z, y, x)| {
            ((z * 977 + y * 131 + x * 17) % 4000) as i16 - 1024
        });
        HuVolume::new(header, voxels).unwrap()
    }

    fn store() -> (tempfile::TempDir, StudyStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StudyStore::from_config(&crate::StoreConfig::Local {
            root: dir.path().to_path_buf(),
        })
        .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn format_2_round_trip() {
        let (_dir, store) = store();
        let keys = StudyUid::new("1.2.3").unwrap().keys();
        let v = volume(CHUNK_SLICES * 3 + 5);
        write_volume(&store, &keys, Arc::new(v.clone()))
            .await
            .unwrap();
        assert!(store.exists(&keys.volume_frames()).await.unwrap());
        assert!(!store.exists(&keys.volume_voxels()).await.unwrap());
        assert_eq!(read_volume(&store, &keys).await.unwrap(), v);
    }

    #[tokio::test]
    async fn format_1_is_still_read() {
        let (_dir, store) = store();
        let keys = StudyUid::new("1.2.4").unwrap().keys();
        let v = volume(3);
        store
            .put(&keys.volume_voxels(), v.voxel_bytes())
            .await
            .unwrap();
        store
            .put(&keys.volume_header(), v.header_bytes())
            .await
            .unwrap();
        assert_eq!(read_volume(&store, &keys).await.unwrap(), v);
        // A truncated format-1 object is unreadable, not a panic.
        store
            .put(&keys.volume_voxels(), v.voxel_bytes()[1..].to_vec())
            .await
            .unwrap();
        let e = read_volume(&store, &keys).await.unwrap_err();
        assert!(matches!(e, VolumeReadError::Unreadable(_)), "{e}");
        assert!(!e.is_transient());
    }

    #[tokio::test]
    async fn missing_and_damaged_volumes_are_told_apart() {
        let (_dir, store) = store();
        let keys = StudyUid::new("1.2.5").unwrap().keys();
        assert!(matches!(
            read_volume(&store, &keys).await,
            Err(VolumeReadError::NoHeader(_))
        ));
        let v = volume(CHUNK_SLICES + 2);
        write_volume(&store, &keys, Arc::new(v)).await.unwrap();
        let frames = store.get(&keys.volume_frames()).await.unwrap();
        let mut damaged = frames.to_vec();
        let at = damaged.len() / 3;
        damaged[at] ^= 0x5a;
        store.put(&keys.volume_frames(), damaged).await.unwrap();
        assert!(matches!(
            read_volume(&store, &keys).await,
            Err(VolumeReadError::Unreadable(_))
        ));
        store
            .put(&keys.volume_frames(), frames.slice(..10))
            .await
            .unwrap();
        assert!(read_volume(&store, &keys).await.is_err());
        store.delete(&keys.volume_frames()).await.unwrap();
        assert!(matches!(
            read_volume(&store, &keys).await,
            Err(VolumeReadError::NoVoxels(_))
        ));
    }

    #[tokio::test]
    async fn a_spine_region_reads_as_the_full_volume_where_it_holds_voxels() {
        let (_dir, store) = store();
        let keys = StudyUid::new("1.2.6").unwrap().keys();
        let v = volume(CHUNK_SLICES + 7);
        write_volume(&store, &keys, Arc::new(v.clone()))
            .await
            .unwrap();
        let b = RegionBox {
            offset: [2, 1, 3],
            dims: [5, 4, CHUNK_SLICES],
        };
        write_spine_region(&store, &keys, Arc::new(b.crop(&v).unwrap()), b)
            .await
            .unwrap();
        // The region is read without the full volume's voxels.
        store.delete(&keys.volume_frames()).await.unwrap();
        let r = read_spine_volume(&store, &keys, Some(b)).await.unwrap();
        assert_eq!(r.region(), b);
        assert_eq!(r.header(), &v.header);
        for z in 3..3 + CHUNK_SLICES as isize {
            for y in 1..5 {
                for x in 2..7 {
                    assert_eq!(r.get(x, y, z), v.get(x, y, z));
                }
            }
        }
        assert_eq!(r.misses(), 0);
    }

    #[tokio::test]
    async fn without_a_usable_region_the_full_volume_is_read() {
        let (_dir, store) = store();
        let keys = StudyUid::new("1.2.7").unwrap().keys();
        let v = volume(5);
        write_volume(&store, &keys, Arc::new(v.clone()))
            .await
            .unwrap();
        let whole = |r: RegionVolume| {
            assert!(r.is_whole());
            r
        };
        // No region named (a detection from before regions existed).
        let r = whole(read_spine_volume(&store, &keys, None).await.unwrap());
        assert_eq!(r.get(8, 5, 4), v.get(8, 5, 4));
        // Named but never stored.
        let b = RegionBox {
            offset: [1, 1, 1],
            dims: [3, 3, 3],
        };
        whole(read_spine_volume(&store, &keys, Some(b)).await.unwrap());
        // Stored, but not the box the detection names (left from another run).
        let other = RegionBox {
            offset: [0, 1, 1],
            dims: [3, 3, 3],
        };
        write_spine_region(&store, &keys, Arc::new(other.crop(&v).unwrap()), other)
            .await
            .unwrap();
        assert!(matches!(
            read_spine_region(&store, &keys, b).await,
            Err(VolumeReadError::Unreadable(_))
        ));
        whole(read_spine_volume(&store, &keys, Some(b)).await.unwrap());
        // The box named matches the stored one: the region is read.
        let r = read_spine_volume(&store, &keys, Some(other)).await.unwrap();
        assert_eq!(r.region(), other);
    }
}
