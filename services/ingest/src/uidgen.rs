//! UIDs made by ingest when the source has none (NIfTI input, unreadable receptions).
//!
//! Each is [`spinescreen_dicom::derived_uid`] (`2.25.` + a name-based UUIDv8, PS3.5 §B.2) of a
//! namespace and a stable input, so the same input always gets the same UID (jobs are idempotent
//! across redeliveries).

/// The `2.25.` UID of `input` in `namespace`; at most 44 characters, valid under PS3.5 §9.1.
pub fn derived_uid(namespace: &str, input: &[u8]) -> String {
    spinescreen_dicom::derived_uid(&[namespace.as_bytes(), input])
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
