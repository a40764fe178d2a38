//! spinescreen ingest: where studies enter the pipeline.
//!
//! **Takes** DICOM instances as a PACS sends them — over a C-STORE SCP (PS3.4 Annex B, PS3.7
//! §9.1.1, PS3.8 upper layer), DICOMweb STOW-RS (PS3.18 §10.5) or from a directory — or a NIfTI
//! file. **Gives** one validated Hounsfield-unit volume per study (`volume.json` + `volume.zst`
//! in object storage, volume format 2, see `proto`) and the job for inference; or, when the input cannot be
//! analysed, a `result.json` with status `technical_defect` and a coded reason, which still flows
//! to the publisher so the PACS receives an SR saying why. **Why**: the later stages should see
//! one clean axial stack in patient coordinates, never raw files, and a broken study must never
//! be silently lost.
//!
//! ```no_run
//! use spinescreen_ingest::{build_volume, IngestLimits, SourceFile};
//! let files = SourceFile::read_dir(std::path::Path::new("study/"))?;
//! match build_volume(files, &IngestLimits::default()) {
//!     Ok(volume) => println!("{:?} voxels", volume.header.dims),
//!     Err(reason) => println!("technical defect {}: {}", reason.code, reason.text),
//! }
//! # Ok::<(), spinescreen_ingest::IngestError>(())
//! ```
//!
//! # Layout
//! - [`config`]: [`IngestConfig`] (limits, SCP, STOW-RS, inactivity timeout).
//! - `guard` (private): the pre-parse check of every received file (lengths, nesting, counts).
//! - `instance` (private): one file parsed into UIDs, geometry, rescale and pixel data (native
//!   pixels stay a view of the received file until decoded).
//! - [`select`]: grouping into series and choosing the best axial CT series ([`SeriesNote`]).
//! - `geometry` (private): validation and slice order along the normal.
//! - [`decode`]: pixel data of any supported transfer syntax to HU.
//! - [`build`]: [`build_volume`], the pure core from files to [`spinescreen_proto::HuVolume`],
//!   freeing each file once decoded.
//! - `orient` (private): canonical LPS axis order shared by DICOM and NIfTI.
//! - [`nifti`]: [`read_nifti`] for research data sets.
//! - [`worker`]: [`IngestWorker`], the pipeline stage.
//! - [`receive`]: [`stage_directory`], [`run_scp`], [`run_stow`] — receivers that store a
//!   reception and publish one ingest job.
//! - [`error`]: [`IngestError`], for operations that cannot run at all.
//! - [`uidgen`]: `2.25.` UIDs derived from stable inputs (PS3.5 §B.2).

pub mod build;
pub mod config;
pub mod decode;
pub mod error;
mod geometry;
mod guard;
mod instance;
pub mod nifti;
mod orient;
pub mod receive;
pub mod select;
pub mod source;
pub mod uidgen;
pub mod worker;

pub use build::{
    build_volume, build_volume_with_report, voxel_bytes, IngestReport, IntoSourceFiles, SourceFile,
};
pub use config::{IngestConfig, IngestLimits, ScpConfig, StowConfig};
pub use error::IngestError;
pub use nifti::read_nifti;
pub use receive::{
    run_scp, run_stow, stage_directory, stage_directory_with_limits, CancellationToken,
};
pub use select::SeriesNote;
pub use source::{read_source, SourceHeaders};
pub use worker::IngestWorker;
