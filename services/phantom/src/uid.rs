//! Deterministic DICOM UIDs of a phantom study: [`spinescreen_dicom::derived_uid`] of the seed and
//! a purpose string (`2.25.` + a name-based UUIDv8, PS3.5 §B.2), so the same seed always yields
//! the same UIDs and different seeds practically never collide.

/// A `2.25.` UID for `(seed, purpose)`.
pub fn derived_uid(seed: u64, purpose: &str) -> String {
    spinescreen_dicom::derived_uid(&[
        b"spinescreen-phantom/v1",
        &seed.to_le_bytes(),
        purpose.as_bytes(),
    ])
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
