//! The pure core of the stage: received files in, one HU volume (or a coded defect) out.
//!
//! Steps: guard the sizes (decompression-bomb limits, [`IngestLimits`]), parse every file in
//! parallel, group and rank the series ([`crate::select`]), validate the best candidate's
//! geometry and decode it in parallel; if it is unusable, fall back to the next candidate. The
//! reason reported is the best-ranked candidate's, so a defect names the series a reader would
//! have looked at.
//!
//! Memory: the files are taken by value and released once parsed; uncompressed pixel data stays
//! a view of its file until that instance is decoded into the volume, then the file is freed.
//! The volume's buffer is zeroed lazily (its pages become resident as slices are written), so a
//! reception's bytes and its volume are never both held in full.

use crate::config::IngestLimits;
use crate::decode::decode_frame;
use crate::error::IngestError;
use crate::geometry::{validate, Stack};
use crate::instance::{parse_instance, Instance, NotDicom, Pixels};
use crate::orient::reorient_to_lps;
use crate::select::FrameRef;
use crate::select::{select, Series, SeriesNote};
use crate::uidgen::derived_uid;
use bytes::Bytes;
use ndarray::Array3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spinescreen_proto::uid::validate_uid;
use spinescreen_proto::{HuVolume, Reason, ReasonCode, StudyInfo, VolumeHeader, SCHEMA_VERSION};
use std::path::Path;
use std::sync::Arc;

/// One received file: a name for messages (storage key or path; never patient data) and bytes.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Storage key or file name.
    pub name: String,
    /// The file as received.
    pub bytes: Bytes,
}

impl SourceFile {
    /// Every regular file under `dir`, recursively, in path order (symbolic links are not
    /// followed, so a reception cannot reach outside its directory).
    pub fn read_dir(dir: &Path) -> Result<Vec<SourceFile>, IngestError> {
        let mut paths = vec![];
        collect_files(dir, &mut paths)?;
        paths.sort();
        paths
            .into_par_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).map_err(|source| IngestError::Io {
                    path: p.clone(),
                    source,
                })?;
                Ok(SourceFile {
                    name: p.to_string_lossy().into_owned(),
                    bytes: Bytes::from(bytes),
                })
            })
            .collect()
    }
}

/// A reception's files for [`build_volume`]: a `Vec` by value, so that each file can be freed
/// as soon as it is decoded, or borrowed (the `Bytes` are shared, cheaply, and the caller's
/// copies keep them alive).
pub trait IntoSourceFiles {
    /// The files, owned.
    fn into_source_files(self) -> Vec<SourceFile>;
}

impl IntoSourceFiles for Vec<SourceFile> {
    fn into_source_files(self) -> Vec<SourceFile> {
        self
    }
}

impl IntoSourceFiles for &[SourceFile] {
    fn into_source_files(self) -> Vec<SourceFile> {
        self.to_vec()
    }
}

impl IntoSourceFiles for &Vec<SourceFile> {
    fn into_source_files(self) -> Vec<SourceFile> {
        self.clone()
    }
}

impl<const N: usize> IntoSourceFiles for &[SourceFile; N] {
    fn into_source_files(self) -> Vec<SourceFile> {
        self.to_vec()
    }
}

/// Paths of the regular files under `dir`, recursively.
pub(crate) fn collect_files(
    dir: &Path,
    out: &mut Vec<std::path::PathBuf>,
) -> Result<(), IngestError> {
    let io = |source| IngestError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// What ingest saw in a reception; safe to log (no patient data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Files received.
    pub files: usize,
    /// Files that are not DICOM, with the parser's reason (`name: why`).
    pub not_dicom: Vec<String>,
    /// Every series and what became of it.
    pub series: Vec<SeriesNote>,
    /// A valid Study Instance UID found in the files (the selected series' when there is one).
    pub study_uid: Option<String>,
    /// What ingest changed to make the study usable (unusable UIDs replaced), one line each.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Build the HU volume of the best axial CT series among `files`, or say why none is usable.
/// Pass the files by value (a `Vec`) to let each be freed as soon as it is decoded
/// ([`IntoSourceFiles`]).
pub fn build_volume(
    files: impl IntoSourceFiles,
    limits: &IngestLimits,
) -> Result<HuVolume, Reason> {
    build_volume_with_report(files, limits).0
}

/// [`build_volume`], plus a report of every series and why it was or was not used.
pub fn build_volume_with_report(
    files: impl IntoSourceFiles,
    limits: &IngestLimits,
) -> (Result<HuVolume, Reason>, IngestReport) {
    let files = files.into_source_files();
    let mut report = IngestReport {
        files: files.len(),
        ..Default::default()
    };
    if files.is_empty() {
        return (
            Err(Reason::new(ReasonCode::NO_DICOM, "no files were received")),
            report,
        );
    }
    if files.len() > limits.max_instances {
        return (
            Err(Reason::new(
                ReasonCode::OVERSIZE,
                format!(
                    "{} files exceed the limit of {} instances",
                    files.len(),
                    limits.max_instances
                ),
            )),
            report,
        );
    }
    if let Some(f) = files
        .iter()
        .find(|f| f.bytes.len() as u64 > limits.max_bytes_per_file)
    {
        return (
            Err(Reason::new(
                ReasonCode::OVERSIZE,
                format!(
                    "{} is {} bytes, over the limit of {}",
                    f.name,
                    f.bytes.len(),
                    limits.max_bytes_per_file
                ),
            )),
            report,
        );
    }
    let parsed: Vec<Result<Instance, NotDicom>> = files
        .par_iter()
        .map(|f| {
            // The parser is third-party code fed untrusted bytes: a panic in it must cost one
            // file, not the worker.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                parse_instance(&f.name, &f.bytes, limits)
            }))
            .unwrap_or_else(|_| {
                Err(NotDicom {
                    source: f.name.clone(),
                    why: "the DICOM parser failed on this file".into(),
                    oversize: false,
                })
            })
        })
        .collect();
    // From here on each file lives only as long as an instance still needs its pixels.
    drop(files);
    let mut instances = Vec::with_capacity(parsed.len());
    let mut oversize = None;
    for p in parsed {
        match p {
            Ok(i) => {
                for keyword in &i.replaced_uids {
                    report.notes.push(format!(
                        "{}: unusable {keyword} replaced by a valid UID",
                        i.source
                    ));
                }
                instances.push(i)
            }
            Err(n) if n.oversize => {
                oversize.get_or_insert_with(|| format!("{}: {}", n.source, n.why));
            }
            Err(n) => report.not_dicom.push(format!("{}: {}", n.source, n.why)),
        }
    }
    if let Some(why) = oversize {
        return (Err(Reason::new(ReasonCode::OVERSIZE, why)), report);
    }
    report.study_uid = instances
        .iter()
        .map(|i| i.study_uid.as_str())
        .find(|u| validate_uid(u).is_ok())
        .map(str::to_string);
    if instances.is_empty() {
        return (
            Err(Reason::new(
                ReasonCode::NO_DICOM,
                format!("none of the {} files is a DICOM file", report.files),
            )),
            report,
        );
    }
    let selection = select(&instances);
    for (s, why) in &selection.skipped {
        report.series.push(s.note(format!("skipped: {why}")));
    }
    if selection.candidates.is_empty() {
        let what: Vec<String> = selection
            .skipped
            .iter()
            .map(|(s, why)| format!("series {} ({why})", display_number(s)))
            .collect();
        let code = ReasonCode::NO_CT_SERIES;
        let lead = if selection.any_ct {
            "no axial CT image series"
        } else {
            "no CT series"
        };
        return (
            Err(Reason::new(code, format!("{lead}: {}", what.join("; ")))),
            report,
        );
    }
    let mut first_failure: Option<Reason> = None;
    let mut result = None;
    for series in &selection.candidates {
        if result.is_some() {
            report
                .series
                .push(series.note("skipped: ranked below the selected series"));
            continue;
        }
        match build_series(series, &mut instances, limits) {
            Ok(v) => {
                report.study_uid = Some(v.header.study.study_instance_uid.clone());
                report.series.push(series.note("selected"));
                result = Some(v);
            }
            Err(reason) => {
                report
                    .series
                    .push(series.note(format!("unusable: {}: {}", reason.code, reason.text)));
                first_failure.get_or_insert(reason);
            }
        }
    }
    match result {
        Some(v) => (Ok(v), report),
        None => (
            Err(first_failure
                .unwrap_or_else(|| Reason::new(ReasonCode::NO_CT_SERIES, "no usable CT series"))),
            report,
        ),
    }
}

fn display_number(s: &Series) -> &str {
    if s.series_number.is_empty() {
        "?"
    } else {
        &s.series_number
    }
}

/// Validate and decode one series. Its instances' pixel data is consumed (series are disjoint,
/// so a fallback to the next candidate never needs it again).
fn build_series(
    series: &Series,
    instances: &mut [Instance],
    limits: &IngestLimits,
) -> Result<HuVolume, Reason> {
    let stack = validate(series, instances, limits)?;
    let voxels = decode_stack(&stack, instances)?;
    let Stack {
        frames,
        rows,
        columns,
        spacing,
        origin,
        direction,
    } = stack;
    let mut study: StudyInfo = instances[frames[0].0].study.clone();
    let mut uids: Vec<String> = vec![];
    for &(i, _) in &frames {
        let uid = &instances[i].sop_instance_uid;
        if uids.last() != Some(uid) && !uids.contains(uid) {
            uids.push(uid.clone());
        }
    }
    // A study without a usable Study/Series Instance UID (seen in anonymised exports) still gets
    // analysed, under UIDs derived from its instances so redeliveries agree.
    if validate_uid(&study.study_instance_uid).is_err() {
        study.study_instance_uid =
            derived_uid("spinescreen.ingest.study", uids.join("\\").as_bytes());
    }
    if validate_uid(&study.series_instance_uid).is_err() {
        study.series_instance_uid =
            derived_uid("spinescreen.ingest.series", uids.join("\\").as_bytes());
    }
    study.sop_instance_uids = uids;
    let header = VolumeHeader {
        schema_version: SCHEMA_VERSION,
        dims: [columns, rows, frames.len()],
        spacing_mm: spacing,
        origin_mm: origin,
        direction,
        study,
    };
    let array = Array3::from_shape_vec((frames.len(), rows, columns), voxels)
        .map_err(|e| Reason::new(ReasonCode::DECODE_FAILURE, e.to_string()))?;
    let (header, array) = reorient_to_lps(header, array);
    HuVolume::new(header, array).map_err(|e| Reason::new(ReasonCode::DECODE_FAILURE, e.to_string()))
}

/// One frame to decode: which it is, and its instance's pixel data (shared by its frames).
type FrameJob = (FrameRef, Option<Arc<Pixels>>);

/// Decode every frame of the stack into one `[z][y][x]` buffer, slices in parallel. Each
/// instance's pixel data is taken out of it and dropped with its last decoded frame, which frees
/// the received file; the buffer's zeroed pages only become resident as slices are written.
///
/// Frames are decoded in the order their files came (instance order), not along z: an instance
/// received in a reception bundle is a view of the whole bundle, which is freed only with the
/// last of its instances. Along z, with instances sent in any other order, every bundle stayed
/// resident until the volume was nearly full (the fleet's ingest peaked at 428 MiB on a
/// 200 MiB series); in arrival order the bundles drain as the volume fills.
fn decode_stack(stack: &Stack, instances: &mut [Instance]) -> Result<Vec<i16>, Reason> {
    let plane = stack.rows * stack.columns;
    let mut taken: Vec<Option<Arc<Pixels>>> = vec![None; instances.len()];
    for &(i, _) in &stack.frames {
        if taken[i].is_none() {
            let pixels = std::mem::replace(&mut instances[i].pixels, Pixels::Missing);
            taken[i] = Some(Arc::new(pixels));
        }
    }
    let jobs: Vec<FrameJob> = stack
        .frames
        .iter()
        .map(|&(i, f)| ((i, f), taken[i].clone()))
        .collect();
    drop(taken);
    let instances = &*instances;
    let mut voxels = vec![0i16; plane * stack.frames.len()];
    let mut work: Vec<(&mut [i16], FrameJob)> = voxels.chunks_mut(plane).zip(jobs).collect();
    work.sort_by_key(|(_, (frame, _))| *frame);
    work.into_par_iter()
        .try_for_each(|(out, ((i, f), pixels))| {
            let inst = &instances[i];
            let pixels = pixels.as_deref().unwrap_or(&Pixels::Missing);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                decode_frame(inst, pixels, &inst.frames[f], out)
            }))
            .unwrap_or_else(|_| {
                Err(Reason::new(
                    ReasonCode::DECODE_FAILURE,
                    format!("{}: the pixel data decoder failed", inst.source),
                ))
            })
        })?;
    Ok(voxels)
}

/// The voxels as stored (`volume.i16`): little-endian i16, x fastest — the same bytes as
/// [`HuVolume::voxel_bytes`], written in bulk rather than voxel by voxel.
pub fn voxel_bytes(volume: &HuVolume) -> Vec<u8> {
    let mut out = vec![0u8; volume.voxels.len() * 2];
    match volume.voxels.as_slice() {
        Some(voxels) => {
            out.par_chunks_mut(1 << 16)
                .zip(voxels.par_chunks(1 << 15))
                .for_each(|(o, v)| {
                    for (pair, x) in o.chunks_exact_mut(2).zip(v) {
                        pair.copy_from_slice(&x.to_le_bytes());
                    }
                });
        }
        None => {
            for (pair, x) in out.chunks_exact_mut(2).zip(volume.voxels.iter()) {
                pair.copy_from_slice(&x.to_le_bytes());
            }
        }
    }
    out
}
