//! The wire contract of spinescreen: everything one stage tells another.
//!
//! Stages never read each other's internals; they exchange [`Job`] messages over the broker
//! (keys only, never pixels) and the objects those keys name in storage. This crate is the only
//! place those shapes are defined, and [`SCHEMA_VERSION`] changes whenever one of them changes
//! incompatibly (see `proto/README.md`).
//!
//! # Layout
//! - [`uid`]: validated DICOM UIDs ([`StudyUid`]) and the storage keys derived from them.
//! - [`bundle`]: reception bundles, many received instances in one stored object.
//! - [`job`]: the [`Job`] envelope, the [`Stage`] order of the pipeline, queue names.
//! - [`language`]: the [`Language`] of text written for people (images, reports).
//! - [`volume`]: [`HuVolume`], the i16 Hounsfield volume with its geometry, and its byte format.
//! - [`voxels`]: how the volume's voxels are stored: format 2, zstd frames along z.
//! - [`region`]: the spine region, the box of the volume that morphometry and rendering read.
//! - [`study`]: the patient/study module copied from the source series into derived objects.
//! - [`vertebra`]: [`VertebraLevel`] (`C1` … `S1`) and [`VertebraFlag`], the vertebra vocabulary.
//! - [`detection`]: what inference hands to morphometry: vertebrae with labels and keypoints.
//! - [`result`]: `result.json`, the study result a user, the renderer and the publisher read.
//! - [`source`]: [`SourceInfo`], scanner and chosen series of a study (no patient identifiers).
//! - [`event`]: [`StudyEvent`], the events feed every stage publishes for the study ledger.

pub mod bundle;
pub mod detection;
pub mod event;
pub mod job;
pub mod language;
pub mod region;
pub mod result;
pub mod source;
pub mod study;
pub mod uid;
pub mod vec3;
pub mod vertebra;
pub mod volume;
pub mod voxels;

pub use detection::{DetectedVertebra, Detection, Keypoints, Point3};
pub use event::{EventKind, StudyEvent, EVENTS_QUEUE};
pub use job::{dlq_name, Job, Stage, StudyDone, ATTEMPTS_HEADER, ERROR_HEADER, STAGE_HEADER};
pub use language::Language;
pub use region::{RegionBox, RegionVolume, SPINE_REGION_MARGIN_MM};
pub use result::{
    BoneDensity, DeformityType, GenantGrade, Heights, Reason, ReasonCode, ServiceInfo, StudyResult,
    StudyStatus, TrabecularHu, VertebraResult,
};
pub use source::SourceInfo;
pub use study::StudyInfo;
pub use uid::{InvalidUid, StudyKeys, StudyUid};
pub use vertebra::{UnknownLevel, VertebraFlag, VertebraLevel};
pub use volume::{HuSource, HuVolume, VolumeError, VolumeHeader};
pub use voxels::{StoredHeader, VoxelLayout, VOLUME_FORMAT};

/// Version of every message and stored document in this crate. Bump on any incompatible change;
/// consumers reject jobs whose version they do not know (they go to the dead-letter queue).
pub const SCHEMA_VERSION: u32 = 1;
