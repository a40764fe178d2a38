//! UIDs made by ingest when the source has none (NIfTI input, unreadable receptions).
//!
//! As per DICOM PS3.5 §B.2, a UID may be formed as `2.25.` followed by the decimal value of a
//! 128-bit UUID. Ours are derived from a SHA-256 digest of a stable input, so the same input
//! always gets the same UID (jobs are idempotent across redeliveries).

use sha2::{Digest, Sha256};

/// `2.25.<decimal of the first 128 bits of SHA-256(namespace ‖ 0 ‖ input)>`.
///
/// At most 44 characters, digits and dots only, valid under PS3.5 §9.1.
pub fn derived_uid(namespace: &str, input: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(namespace.as_bytes());
    h.update([0u8]);
    h.update(input);
    let digest = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinescreen_proto::uid::validate_uid;

    #[test]
    fn derived_uids_are_valid_stable_and_distinct() {
        let a = derived_uid("job", b"abc");
        assert!(validate_uid(&a).is_ok(), "{a}");
        assert!(a.starts_with("2.25.") && a.len() <= 44);
        assert_eq!(a, derived_uid("job", b"abc"));
        assert_ne!(a, derived_uid("job", b"abd"));
        assert_ne!(a, derived_uid("nifti", b"abc"));
    }
}
