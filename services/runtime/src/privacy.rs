//! Pseudonyms for identifiers that must not appear in logs (patient IDs, accession numbers).
//! HIPAA §164.514 and GDPR Art. 4(5): logs carry a stable, non-reversible token instead.

use sha2::{Digest, Sha256};

/// A stable 12-hex-digit pseudonym of `s` (SHA-256 prefix), for correlating log lines about
/// the same patient-related identifier without revealing it.
pub fn pseudonym(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(&digest[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_is_stable_short_and_hides_the_input() {
        let p = pseudonym("MRN123456");
        assert_eq!(p, pseudonym("MRN123456"));
        assert_eq!(p.len(), 12);
        assert!(!p.contains("123456"));
        assert_ne!(p, pseudonym("MRN123457"));
    }
}
