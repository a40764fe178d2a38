//! The publisher stage: one DICOM structured report per study, delivered to PACS.
//!
//! Takes `result.json` (the study result), the patient/study module from `volume.json` and the
//! secondary-capture series the rendering stage stored; gives `sr.dcm` — a Comprehensive 3D SR
//! (PS3.3 A.35.13) following TID 1500 "Measurement Report" (PS3.16) — delivered with the SC
//! series to every configured destination, plus the study's end-to-end latency (SLA 390 s).
//!
//! Why this shape: the Moscow experiment (Artyukova et al., Digital Diagnostics 2024) required
//! exactly one SR per study, its series description equal to the service name, carrying service
//! name, description, conclusion and a short user guide; a service failed functional testing for
//! two SRs. UIDs are therefore derived from the study and the result's content, never random.
//!
//! # Layout
//! - [`codes`]: coded concepts (DCM, SCT vertebrae, UCUM units, the private `99SPINESCREEN`).
//! - [`text`]: conclusion, description and user guide in English and Russian.
//! - [`uid`]: deterministic UIDs (`2.25.` + name-based UUID).
//! - [`sr`]: [`build_sr`], the TID 1500 content tree and the DICOM encoding.
//! - [`instance`]: a stored Part-10 file ready to send.
//! - [`config`]: [`PublisherConfig`], destinations and the retry policy.
//! - [`error`]: the error type, [`PublishError`].
//! - [`delivery`]: C-STORE SCU, STOW-RS, webhook and directory destinations with retries.
//! - [`fhir`]: the FHIR R4 DiagnosticReport for webhooks.
//! - [`worker`]: [`PublisherWorker`], the pipeline stage.

#![warn(missing_docs)]

pub mod codes;
pub mod config;
pub mod delivery;
pub mod error;
pub mod fhir;
pub mod instance;
pub mod sr;
pub mod text;
pub mod uid;
pub mod worker;

pub use config::{Destination, Language, PublisherConfig, Retention, RetryPolicy, SrStorage};
pub use error::PublishError;
pub use instance::Instance;
pub use sr::{build_sr, build_sr_with, sr_sop_instance_uid, InstanceRef};
pub use worker::PublisherWorker;
