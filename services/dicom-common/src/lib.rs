//! DICOM identity and modules shared by every stage that reads or writes DICOM (ingest, phantom,
//! rendering, publisher), so one product writes one implementation class, derives its UIDs one
//! way and copies the patient/study module one way.
//!
//! # Layout
//! - [`uid`]: `2.25.` UIDs from name-based UUIDs ([`derived_uid`]), the one
//!   [`IMPLEMENTATION_CLASS_UID`] and [`implementation_version_name`].
//! - [`module`]: the Patient, Patient Study and General Study modules of a derived object,
//!   copied from the source study ([`patient_study_module`]).
//! - [`text`]: an attribute's text without DICOM padding ([`text_opt`], [`text`]).

pub mod module;
pub mod text;
pub mod uid;

pub use module::patient_study_module;
pub use text::{text, text_opt};
pub use uid::{derived_uid, implementation_version_name, IMPLEMENTATION_CLASS_UID};
