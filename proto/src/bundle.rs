//! Reception bundles: many received instances in one stored object.
//!
//! A receiver stores a reception as a few large objects `incoming/<batch>/bundle-<seq>.bundle`
//! ([`crate::uid::incoming_bundle_key`]) instead of one object per instance. A bundle is
//! append-only, so the C-STORE receiver's local spool segment and the object it uploads are the
//! same bytes:
//!
//! ```text
//! "SSBUNDL1"                                  8 bytes, once
//! then per instance:
//!   "INST"                                    4 bytes
//!   name length n (u32, little endian)        4 bytes, 1..=128
//!   name (UTF-8): the SOP Instance UID, or "unidentified-<32 hex>"
//!   data length m (u64, little endian)        8 bytes
//!   data: the Part 10 file as received        m bytes
//! ```
//!
//! A name may appear twice in a reception (a sender re-sent the instance): the later record wins.
//! A record cut short at the end of a *spool segment* is an instance whose write was interrupted
//! (it was never acknowledged) and is dropped on recovery ([`whole_records_len`]); in a stored
//! bundle it is an error ([`parse_bundle`]).

use std::ops::Range;

/// The first bytes of every bundle.
pub const BUNDLE_MAGIC: &[u8; 8] = b"SSBUNDL1";
/// The tag that opens every record.
pub const RECORD_TAG: &[u8; 4] = b"INST";
/// Longest record name accepted, bytes.
pub const MAX_NAME_LEN: usize = 128;

/// What is wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The object does not start with [`BUNDLE_MAGIC`].
    #[error("not a reception bundle (no SSBUNDL1 magic)")]
    BadMagic,
    /// A record is cut short by the end of the object.
    #[error("bundle truncated in the record at byte {0}")]
    Truncated(usize),
    /// A record is malformed.
    #[error("bad bundle record at byte {offset}: {why}")]
    BadRecord {
        /// Where the record starts.
        offset: usize,
        /// What is wrong.
        why: &'static str,
    },
}

/// One instance in a bundle: its name and where its data lies in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    /// SOP Instance UID, or `unidentified-<hex>` for a file without a valid one.
    pub name: String,
    /// Byte range of the instance's data in the bundle.
    pub data: Range<usize>,
}

/// Whether `name` may name a bundle record: a valid UID or `unidentified-` and 32 lowercase hex
/// digits.
pub fn entry_name_ok(name: &str) -> bool {
    if crate::uid::validate_uid(name).is_ok() {
        return true;
    }
    name.strip_prefix("unidentified-").is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The header of one record (tag, name, data length); the data follows it.
pub fn record_header(name: &str, data_len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(16 + name.len());
    h.extend_from_slice(RECORD_TAG);
    h.extend_from_slice(&(name.len() as u32).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

/// Parse the record at `offset`: `Ok(None)` at the end, else the entry and where the next
/// record starts.
fn record_at(bytes: &[u8], offset: usize) -> Result<Option<(BundleEntry, usize)>, BundleError> {
    let rest = &bytes[offset..];
    if rest.is_empty() {
        return Ok(None);
    }
    let truncated = BundleError::Truncated(offset);
    if rest.len() < 8 {
        return Err(truncated);
    }
    if &rest[..4] != RECORD_TAG {
        return Err(BundleError::BadRecord {
            offset,
            why: "no INST tag",
        });
    }
    let mut n = [0u8; 4];
    n.copy_from_slice(&rest[4..8]);
    let name_len = u32::from_le_bytes(n) as usize;
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err(BundleError::BadRecord {
            offset,
            why: "name length out of range",
        });
    }
    let name_end = 8 + name_len;
    if rest.len() < name_end + 8 {
        return Err(truncated);
    }
    let name = std::str::from_utf8(&rest[8..name_end])
        .ok()
        .filter(|n| entry_name_ok(n))
        .ok_or(BundleError::BadRecord {
            offset,
            why: "name is not a UID or unidentified-<hex>",
        })?;
    let mut m = [0u8; 8];
    m.copy_from_slice(&rest[name_end..name_end + 8]);
    let data_len = u64::from_le_bytes(m);
    let data_start = name_end + 8;
    let available = (rest.len() - data_start) as u64;
    if data_len > available {
        return Err(truncated);
    }
    let data_end = data_start + data_len as usize;
    Ok(Some((
        BundleEntry {
            name: name.to_string(),
            data: offset + data_start..offset + data_end,
        },
        offset + data_end,
    )))
}

/// Every record of a stored bundle, in order.
pub fn parse_bundle(bytes: &[u8]) -> Result<Vec<BundleEntry>, BundleError> {
    if bytes.len() < BUNDLE_MAGIC.len() || &bytes[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
        return Err(BundleError::BadMagic);
    }
    let mut entries = vec![];
    let mut offset = BUNDLE_MAGIC.len();
    while let Some((entry, next)) = record_at(bytes, offset)? {
        entries.push(entry);
        offset = next;
    }
    Ok(entries)
}

/// Length of the longest prefix of `bytes` made of the magic and whole records: what a spool
/// segment keeps when its last write was interrupted. 0 when even the magic is incomplete or
/// wrong.
pub fn whole_records_len(bytes: &[u8]) -> usize {
    if bytes.len() < BUNDLE_MAGIC.len() || &bytes[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
        return 0;
    }
    let mut offset = BUNDLE_MAGIC.len();
    while let Ok(Some((_, next))) = record_at(bytes, offset) {
        offset = next;
    }
    offset
}

/// A reference to one instance inside a bundle, as ingest records it in `received.json`:
/// `<bundle key>@<start>+<length>` (the data's byte range in the bundle).
pub fn entry_ref(bundle_key: &str, data: &Range<usize>) -> String {
    format!("{bundle_key}@{}+{}", data.start, data.end - data.start)
}

/// The bundle key and data range of a reference made by [`entry_ref`]; `None` for a plain
/// storage key (an instance stored as its own object).
pub fn parse_entry_ref(reference: &str) -> Option<(&str, Range<u64>)> {
    let (key, range) = reference.rsplit_once('@')?;
    let (start, len) = range.split_once('+')?;
    let start: u64 = start.parse().ok()?;
    let len: u64 = len.parse().ok()?;
    Some((key, start..start.checked_add(len)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = BUNDLE_MAGIC.to_vec();
        for (name, data) in records {
            b.extend(record_header(name, data.len() as u64));
            b.extend_from_slice(data);
        }
        b
    }

    #[test]
    fn round_trip_and_refs() {
        let b = bundle(&[("1.2.3", b"abc"), ("1.2.4", b""), ("1.2.5", b"xyz12")]);
        let e = parse_bundle(&b).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "1.2.3");
        assert_eq!(&b[e[0].data.clone()], b"abc");
        assert_eq!(&b[e[2].data.clone()], b"xyz12");
        let r = entry_ref("incoming/b/bundle-00000.bundle", &e[2].data);
        let (key, range) = parse_entry_ref(&r).unwrap();
        assert_eq!(key, "incoming/b/bundle-00000.bundle");
        assert_eq!(&b[range.start as usize..range.end as usize], b"xyz12");
        assert!(parse_entry_ref("incoming/b/1.2.3.dcm").is_none());
        assert_eq!(whole_records_len(&b), b.len());
    }

    #[test]
    fn torn_tail_is_dropped_on_recovery_and_refused_when_stored() {
        let b = bundle(&[("1.2.3", b"abc"), ("1.2.4", b"defgh")]);
        let whole_first = BUNDLE_MAGIC.len() + record_header("1.2.3", 3).len() + 3;
        for cut in whole_first + 1..b.len() {
            assert_eq!(whole_records_len(&b[..cut]), whole_first, "cut at {cut}");
            assert!(matches!(
                parse_bundle(&b[..cut]),
                Err(BundleError::Truncated(_))
            ));
        }
        assert_eq!(whole_records_len(&b[..5]), 0);
        assert_eq!(parse_bundle(b"nonsense"), Err(BundleError::BadMagic));
    }

    #[test]
    fn refuses_bad_names_and_tags() {
        let b = bundle(&[("../../etc", b"x")]);
        assert!(matches!(
            parse_bundle(&b),
            Err(BundleError::BadRecord { .. })
        ));
        let mut b = bundle(&[("1.2", b"x")]);
        b[8] = b'X';
        assert!(matches!(
            parse_bundle(&b),
            Err(BundleError::BadRecord { .. })
        ));
        assert!(entry_name_ok(
            "unidentified-0123456789abcdef0123456789abcdef"
        ));
        assert!(!entry_name_ok("unidentified-zz"));
        // A declared length beyond the object is a truncation, not a huge allocation.
        let mut b = BUNDLE_MAGIC.to_vec();
        b.extend(record_header("1.2", u64::MAX));
        assert!(matches!(parse_bundle(&b), Err(BundleError::Truncated(8))));
    }
}
