//! Deterministic DICOM UIDs: `2.25.<integer>` (PS3.5 §B.2, UUID-derived UIDs), the integer
//! being a version-8 (custom) UUID built from SHA-256 of the seed and a purpose string, so the
//! same seed always yields the same UIDs and different seeds practically never collide.

use sha2::{Digest, Sha256};

/// A `2.25.` UID for `(seed, purpose)`.
pub fn derived_uid(seed: u64, purpose: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"spinescreen-phantom/v1\0");
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8 (RFC 9562 custom)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122/9562 variant
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// Implementation Class UID of this generator (fixed, `2.25.` form).
pub fn implementation_class_uid() -> String {
    derived_uid(0, "implementation-class")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_stable_and_distinct() {
        let a = derived_uid(7, "study");
        assert_eq!(a, derived_uid(7, "study"));
        assert_ne!(a, derived_uid(8, "study"));
        assert_ne!(a, derived_uid(7, "series"));
        assert!(spinescreen_proto::uid::validate_uid(&a).is_ok(), "{a}");
        assert!(a.starts_with("2.25.") && !a[5..].starts_with('0'));
    }
}
