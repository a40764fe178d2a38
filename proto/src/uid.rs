//! Validated DICOM UIDs and the object-store keys derived from them.
//!
//! As per DICOM PS3.5 §9.1 a UID is at most 64 characters of digits and dots. Because storage keys
//! are built from UIDs, validating them here guarantees no key can escape its study's prefix.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A UID that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DICOM UID {0:?}: must be 1-64 characters of digits and dots, not starting or ending with a dot")]
pub struct InvalidUid(pub String);

/// Check a DICOM UID (PS3.5 §9.1): 1–64 chars, digits and single dots, no leading/trailing dot.
pub fn validate_uid(s: &str) -> Result<(), InvalidUid> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..");
    if ok {
        Ok(())
    } else {
        Err(InvalidUid(s.to_string()))
    }
}

/// A Study Instance UID, validated on construction and on deserialization.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StudyUid(String);

impl StudyUid {
    /// Validate and wrap a UID (trailing NUL/space padding from DICOM values is trimmed).
    pub fn new(s: impl AsRef<str>) -> Result<Self, InvalidUid> {
        let s = s.as_ref().trim_end_matches(['\0', ' ']);
        validate_uid(s)?;
        Ok(Self(s.to_string()))
    }
    /// The UID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The storage keys of this study.
    pub fn keys(&self) -> StudyKeys {
        StudyKeys {
            prefix: format!("studies/{}", self.0),
        }
    }
}

impl TryFrom<String> for StudyUid {
    type Error = InvalidUid;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<StudyUid> for String {
    fn from(u: StudyUid) -> String {
        u.0
    }
}

impl fmt::Display for StudyUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where each stage stores what it makes for one study. Every key lives under
/// `studies/<StudyInstanceUID>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyKeys {
    prefix: String,
}

impl StudyKeys {
    /// `studies/<uid>`
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The HU volume's JSON header ([`crate::VolumeHeader`]).
    pub fn volume_header(&self) -> String {
        format!("{}/volume.json", self.prefix)
    }
    /// The HU volume's voxels in volume format 1: little-endian i16, x fastest, then y, then z.
    pub fn volume_voxels(&self) -> String {
        format!("{}/volume.i16", self.prefix)
    }
    /// The HU volume's voxels in volume format 2: zstd frames along z ([`crate::voxels`]).
    pub fn volume_frames(&self) -> String {
        format!("{}/volume.zst", self.prefix)
    }
    /// Inference output: the spine region's header ([`crate::StoredHeader`] with `region` set),
    /// the part of the volume that morphometry and rendering read ([`crate::region`]).
    pub fn spine_region_header(&self) -> String {
        format!("{}/spine_region.json", self.prefix)
    }
    /// Inference output: the spine region's voxels, volume format 2 ([`crate::voxels`]).
    pub fn spine_region_frames(&self) -> String {
        format!("{}/spine_region.zst", self.prefix)
    }
    /// Inference output ([`crate::Detection`]).
    pub fn detection(&self) -> String {
        format!("{}/detection.json", self.prefix)
    }
    /// Morphometry output ([`crate::StudyResult`]); the rendering and publisher stages update it.
    pub fn result(&self) -> String {
        format!("{}/result.json", self.prefix)
    }
    /// Rendering output: the secondary-capture instances.
    pub fn secondary_capture(&self, index: usize) -> String {
        format!("{}/sc/{index:04}.dcm", self.prefix)
    }
    /// Prefix of all secondary-capture instances.
    pub fn secondary_capture_prefix(&self) -> String {
        format!("{}/sc/", self.prefix)
    }
    /// Rendering output: the preview PNG for the CLI.
    pub fn preview_png(&self) -> String {
        format!("{}/preview.png", self.prefix)
    }
    /// Ingest's record of the instances received for the study across receptions (SOP
    /// Instance UID → storage key), so a re-send is recognised and a partial one completed.
    pub fn received(&self) -> String {
        format!("{}/received.json", self.prefix)
    }
    /// Ingest output: scanner and chosen series ([`crate::SourceInfo`]), no patient identifiers.
    pub fn source(&self) -> String {
        format!("{}/source.json", self.prefix)
    }
    /// Publisher output: the one structured report of the study.
    pub fn structured_report(&self) -> String {
        format!("{}/sr.dcm", self.prefix)
    }
    /// Publisher output: an empty marker that job `job_id` delivered the study, written after
    /// its deliveries and announcement. Another copy of the same job (delivered twice, or
    /// redelivered after a crash) finds it and is answered with the study's result instead of
    /// redoing stages whose inputs retention has deleted. The job id is hex-encoded, so any id
    /// makes a valid key.
    pub fn delivered(&self, job_id: &str) -> String {
        let hex: String = job_id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}/delivered/{hex}", self.prefix)
    }
}

/// Storage prefix for the files of one reception (`incoming/<batch>/`). A batch id is what the
/// receiver chose (a UUID): 1–64 characters of `[0-9a-zA-Z-]`.
pub fn incoming_batch_prefix(batch_id: &str) -> Result<String, InvalidUid> {
    let ok = !batch_id.is_empty()
        && batch_id.len() <= 64
        && batch_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(format!("incoming/{batch_id}/"))
    } else {
        Err(InvalidUid(batch_id.to_string()))
    }
}

/// Key of one received instance inside a batch, named by its validated SOP Instance UID.
pub fn incoming_instance_key(batch_id: &str, sop_instance_uid: &str) -> Result<String, InvalidUid> {
    validate_uid(sop_instance_uid)?;
    Ok(format!(
        "{}{sop_instance_uid}.dcm",
        incoming_batch_prefix(batch_id)?
    ))
}

/// Key of one bundle of a reception (`incoming/<batch>/bundle-<seq>.bundle`, `seq` from 0, five
/// digits or more): many instances in one object ([`crate::bundle`]).
pub fn incoming_bundle_key(batch_id: &str, seq: u32) -> Result<String, InvalidUid> {
    Ok(format!(
        "{}bundle-{seq:05}.bundle",
        incoming_batch_prefix(batch_id)?
    ))
}

/// Whether a key under `incoming/<batch>/` is a bundle ([`incoming_bundle_key`]) rather than one
/// instance stored as its own object.
pub fn is_bundle_key(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("bundle-") && name.ends_with(".bundle"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_uids() {
        assert!(StudyUid::new("1.2.840.113619.2.55.3.604688119.969.1268071029.320").is_ok());
        assert!(StudyUid::new("1.2.3\0").is_ok());
    }

    #[test]
    fn rejects_path_escapes_and_junk() {
        for bad in [
            "",
            "../etc",
            "1.2/3",
            "1..2",
            ".1",
            "1.",
            "a.b",
            &"1".repeat(65),
        ] {
            assert!(StudyUid::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(incoming_instance_key("b1", "../../x").is_err());
        assert!(incoming_batch_prefix("../b").is_err());
        assert_eq!(
            incoming_instance_key("b1", "1.2").unwrap(),
            "incoming/b1/1.2.dcm"
        );
        assert_eq!(
            incoming_bundle_key("b1", 7).unwrap(),
            "incoming/b1/bundle-00007.bundle"
        );
        assert!(is_bundle_key("incoming/b1/bundle-00007.bundle"));
        assert!(!is_bundle_key("incoming/b1/1.2.dcm"));
        assert!(incoming_bundle_key("../b", 0).is_err());
    }

    #[test]
    fn any_job_id_makes_a_delivered_marker_key_inside_the_study() {
        let keys = StudyUid::new("1.2.3").unwrap().keys();
        let key = keys.delivered("../a b/ü");
        let (dir, name) = key.rsplit_once('/').unwrap();
        assert_eq!(dir, "studies/1.2.3/delivered");
        assert!(name.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert_ne!(key, keys.delivered("../a b/u"));
    }

    #[test]
    fn deserialization_validates() {
        assert!(serde_json::from_str::<StudyUid>("\"1.2.3\"").is_ok());
        assert!(serde_json::from_str::<StudyUid>("\"../1\"").is_err());
    }
}
