//! spinescreen ingest: where studies enter the pipeline.
//!
//! # Layout
//! - [`nifti`]: NIfTI-1 input for research data sets, converted to DICOM LPS geometry.
//! - [`error`]: [`IngestError`], for operations that cannot run at all.
//! - [`uidgen`]: `2.25.` UIDs derived from stable inputs (PS3.5 §B.2).

pub mod config;
pub mod error;
pub mod nifti;
pub mod uidgen;

pub use error::IngestError;
pub use nifti::read_nifti;
