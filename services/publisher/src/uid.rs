//! Deterministic UIDs, so a redelivered or re-published study never creates a second SR.
//!
//! Each is [`spinescreen_dicom::derived_uid`] (`2.25.` + a name-based UUIDv8, PS3.5 §B.2) of a
//! name, so the same name always gives the same UID and different names collide with negligible
//! probability.

use sha2::{Digest, Sha256};
use spinescreen_proto::StudyResult;

/// `2.25.<uuid-as-decimal>` from a name ([`spinescreen_dicom::derived_uid`] over its parts);
/// at most 44 characters.
pub fn uid_from_name(parts: &[&str]) -> String {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    spinescreen_dicom::derived_uid(&parts)
}

/// A short hash of the result's content without its timings: two results that say the same
/// thing have the same version, whatever their stage timings were.
pub fn result_version(result: &StudyResult) -> String {
    let mut r = result.clone();
    r.timings_ms.clear();
    // Serializing a plain struct of strings, numbers and maps cannot fail.
    let json = serde_json::to_vec(&r).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The UIDs of one study's SR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrUids {
    /// SOP Instance UID: study + result version.
    pub sop_instance: String,
    /// Series Instance UID: one SR series per study.
    pub series: String,
}

impl SrUids {
    /// UIDs for `study_uid` and a result with version `version`.
    pub fn new(study_uid: &str, version: &str) -> Self {
        Self {
            sop_instance: uid_from_name(&[study_uid, "sr", version]),
            series: uid_from_name(&[study_uid, "sr-series"]),
        }
    }
}

/// Tracking Unique Identifier of one vertebra of a study (TID 1501 row 3): stable across
/// result versions so successive reports can be compared.
pub fn tracking_uid(study_uid: &str, label: &str) -> String {
    uid_from_name(&[study_uid, "tracking", label])
}

/// Device Observer UID (TID 1004 row 1) of a service installation.
pub fn device_observer_uid(manufacturer: &str, service_name: &str) -> String {
    uid_from_name(&["device", manufacturer, service_name])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_uid_and_valid_syntax() {
        let a = uid_from_name(&["1.2.3", "sr", "v1"]);
        assert_eq!(a, uid_from_name(&["1.2.3", "sr", "v1"]));
        assert_ne!(a, uid_from_name(&["1.2.3", "sr", "v2"]));
        assert_ne!(uid_from_name(&["ab", "c"]), uid_from_name(&["a", "bc"]));
        assert!(a.len() <= 64 && a.starts_with("2.25."));
        spinescreen_proto::uid::validate_uid(&a).unwrap();
        // No leading zero in the numeric component (PS3.5 §9.1).
        assert!(!a["2.25.".len()..].starts_with('0'));
    }
}
