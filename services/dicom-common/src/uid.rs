//! Deterministic UIDs (PS3.5 §B.2): `2.25.` followed by the decimal value of a 128-bit UUID.
//!
//! The UUID is name-based: the first 128 bits of SHA-256 over the length-prefixed parts of a
//! name, stamped as an RFC 9562 version-8 UUID (version and variant bits set by the `uuid`
//! crate). The same name always gives the same UID — a redelivered job writes the same
//! instances again — and different names collide with negligible probability. At most 44
//! characters, digits and dots only, no leading zero (PS3.5 §9.1).

use sha2::{Digest, Sha256};

/// The `2.25.` UID named by `parts` (each part length-prefixed, so `("ab", "c")` and
/// `("a", "bc")` differ).
pub fn derived_uid(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let uuid = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    format!("2.25.{}", uuid.as_u128())
}

/// Implementation Class UID of spinescreen, written in the file meta group (0002,0012) of every
/// file any stage writes: `derived_uid(&[b"spinescreen implementation class"])`.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.33411758501063512452132162849720273929";

/// Implementation Version Name (0002,0013) of this build: `SPINESCREEN_` and the version's
/// digits (`SPINESCREEN_010` for 0.1.0), at most 16 characters (VR SH).
pub fn implementation_version_name() -> String {
    let digits: String = env!("CARGO_PKG_VERSION")
        .chars()
        .filter(char::is_ascii_digit)
        .take(4)
        .collect();
    format!("SPINESCREEN_{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinescreen_proto::uid::validate_uid;

    fn uuid_of(uid: &str) -> uuid::Uuid {
        uuid::Uuid::from_u128(uid["2.25.".len()..].parse().unwrap())
    }

    #[test]
    fn derived_uids_are_valid_stable_distinct_and_version_8() {
        let a = derived_uid(&[b"study", b"abc"]);
        assert!(validate_uid(&a).is_ok(), "{a}");
        assert!(a.starts_with("2.25.") && a.len() <= 44);
        assert!(!a["2.25.".len()..].starts_with('0'));
        assert_eq!(a, derived_uid(&[b"study", b"abc"]));
        assert_ne!(a, derived_uid(&[b"study", b"abd"]));
        assert_ne!(derived_uid(&[b"ab", b"c"]), derived_uid(&[b"a", b"bc"]));
        let u = uuid_of(&a);
        assert_eq!(u.get_version_num(), 8);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn the_uids_of_earlier_releases_are_kept() {
        // The publisher's SR series UID of study 1.2.3 and the renderer's scheme, as written
        // before this crate existed: re-published studies keep their UIDs.
        assert_eq!(
            derived_uid(&[b"1.2.3", b"sr-series"]),
            "2.25.30001238604216708177197592239959040530"
        );
        assert_eq!(
            IMPLEMENTATION_CLASS_UID,
            derived_uid(&[b"spinescreen implementation class"])
        );
        assert_eq!(uuid_of(IMPLEMENTATION_CLASS_UID).get_version_num(), 8);
    }

    #[test]
    fn version_name_fits_sh() {
        let v = implementation_version_name();
        assert!(v.starts_with("SPINESCREEN_") && v.len() <= 16, "{v}");
    }
}
