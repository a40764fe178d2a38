//! The wire contract of spinescreen: everything one stage tells another.
//!
//! Stages never read each other's internals; they exchange [`Job`] messages over the broker
//! (keys only, never pixels) and the objects those keys name in storage. This crate is the only
//! place those shapes are defined, and [`SCHEMA_VERSION`] changes whenever one of them changes
//! incompatibly (see `proto/README.md`).
//!
//! # Layout
//! - [`uid`]: validated DICOM UIDs ([`StudyUid`]) and the storage keys derived from them.
//! - [`job`]: the [`Job`] envelope, the [`Stage`] order of the pipeline, queue names.
//! - [`language`]: the [`Language`] of text written for people (images, reports).
//! - [`volume`]: [`HuVolume`], the i16 Hounsfield volume with its geometry, and its byte format.
//! - [`voxels`]: how the volume's voxels are stored: format 2, zstd frames along z.
//! - [`study`]: the patient/study module copied from the source series into derived objects.
//! - [`detection`]: what inference hands to morphometry: vertebrae with labels and keypoints.
//! - [`result`]: `result.json`, the study result a user, the renderer and the publisher read.
//! - [`source`]: [`SourceInfo`], scanner and chosen series of a study (no patient identifiers).
//! - [`event`]: [`StudyEvent`], the events feed every stage publishes for the study ledger.

pub mod detection;
pub mod event;
pub mod job;
pub mod language;
pub mod result;
pub mod source;
pub mod study;
pub mod uid;
pub mod vec3;
pub mod volume;
pub mod voxels;

pub use detection::{DetectedVertebra, Detection, Keypoints, Point3, ENDPLATES_NOT_TRACED_FLAG};
pub use event::{EventKind, StudyEvent, EVENTS_QUEUE};
pub use job::{Job, Stage, StudyDone};
pub use language::Language;
pub use result::{
    BoneDensity, DeformityType, GenantGrade, Heights, Reason, ReasonCode, ServiceInfo, StudyResult,
    StudyStatus, TrabecularHu, VertebraResult,
};
pub use source::SourceInfo;
pub use study::StudyInfo;
pub use uid::{InvalidUid, StudyKeys, StudyUid};
pub use volume::{HuVolume, VolumeError, VolumeHeader};
pub use voxels::{StoredHeader, VoxelLayout, VOLUME_FORMAT};

/// Version of every message and stored document in this crate. Bump on any incompatible change;
/// consumers reject jobs whose version they do not know (they go to the dead-letter queue).
pub const SCHEMA_VERSION: u32 = 1;

/// Canonical vertebra labels, cranial to caudal, as used in every message and report.
pub const VERTEBRA_LABELS: [&str; 25] = [
    "C1", "C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9",
    "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1",
];

/// Index of a label in [`VERTEBRA_LABELS`] (cranial = smaller), or `None` for an unknown label.
pub fn vertebra_index(label: &str) -> Option<usize> {
    VERTEBRA_LABELS.iter().position(|l| *l == label)
}
