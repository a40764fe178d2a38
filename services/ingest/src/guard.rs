//! The one place where untrusted DICOM bytes are checked before any parser sees them.
//!
//! dicom-rs allocates what an element header claims before it finds the bytes missing, and reads
//! nested sequences by recursion. So a few hostile bytes could cost gigabytes (an element that
//! claims 4 GB) or the whole process (a sequence nested 10,000 deep overflows the stack). This
//! module walks the raw element stream of a Part 10 file — File Meta Information, then the data
//! set in its transfer syntax — iteratively, with an explicit stack, and rejects the file
//! before it is parsed when:
//!
//! - a defined length runs past the end of the file or of the item or sequence that holds it;
//! - sequences or items nest deeper than [`GuardLimits::max_nesting_depth`];
//! - the file holds more than [`GuardLimits::max_elements`] elements (each costs the parser
//!   far more memory than its bytes);
//! - an undefined-length sequence, item or encapsulated pixel data is never closed;
//! - a deflated data set inflates beyond [`GuardLimits::max_bytes`].
//!
//! The walk mirrors the parser's decisions (dicom-parser `DataSetReader`): an element is a
//! sequence when its VR is SQ (from the header in explicit VR, from the dictionary in implicit
//! VR) or when it has an undefined length, except Pixel Data of undefined length, which is a
//! sequence of fragments; an unknown explicit VR is read as UN, with a 4-byte length.
//!
//! Every receiver ([`crate::receive`]) and the instance parser call [`check_part10`] first.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use std::io::Read;

/// What the walk allows; built from [`crate::IngestLimits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardLimits {
    /// Largest file (and largest inflated data set), bytes.
    pub max_bytes: u64,
    /// Deepest nesting of sequences and items (a sequence and its item count as two levels).
    pub max_nesting_depth: usize,
    /// Most data elements, items and fragments in one file.
    pub max_elements: usize,
}

/// Why a file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Not a Part 10 file at all (no `DICM` prefix).
    NotPart10,
    /// The Pixel Data element (or one of its fragments) runs past the end of the file: the file
    /// was cut inside its pixels. The header before it is sound.
    TruncatedPixelData(String),
    /// The header structure is corrupt or hostile (nesting or element count over its limit
    /// included): the file cannot be read, the rest of its study can.
    Malformed(String),
    /// Over a size limit (file bytes, inflated bytes): the study is `OVERSIZE`.
    OverLimit(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::NotPart10 => write!(f, "no DICM prefix (not a Part 10 file)"),
            Rejected::TruncatedPixelData(w) | Rejected::Malformed(w) | Rejected::OverLimit(w) => {
                write!(f, "{w}")
            }
        }
    }
}

/// What the walk learnt about a sound file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Checked {
    /// Offset of the data after the 128-byte preamble (0 or 128): `bytes[offset..]` starts with
    /// `DICM`.
    pub offset: usize,
    /// Transfer syntax UID from the File Meta Information.
    pub transfer_syntax: String,
    /// Native (uncompressed little-endian) top-level Pixel Data value: (offset in the file,
    /// length).
    pub native_pixel_data: Option<(usize, usize)>,
}

const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const UNDEFINED: u32 = u32::MAX;
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";

/// VRs whose explicit-VR header has a 2-byte length (PS3.5 §7.1.2); every other VR, and any
/// unknown one (read as UN), has 2 reserved bytes and a 4-byte length.
const SHORT_VRS: [&[u8; 2]; 21] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
    b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
];

/// The bytes of a Part 10 file after its preamble, and where they start.
pub(crate) fn part10_body(bytes: &[u8]) -> Option<(usize, &[u8])> {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        Some((128, &bytes[128..]))
    } else if bytes.starts_with(b"DICM") {
        Some((0, bytes))
    } else {
        None
    }
}

/// Check a whole Part 10 file (with or without its preamble) before parsing it.
pub(crate) fn check_part10(bytes: &[u8], limits: &GuardLimits) -> Result<Checked, Rejected> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(Rejected::OverLimit(format!(
            "{} bytes, over the limit of {}",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let (offset, body) = part10_body(bytes).ok_or(Rejected::NotPart10)?;
    let mut budget = limits.max_elements;
    // File Meta Information: explicit VR little endian, group 0002 only (PS3.10 §7.1).
    let meta = Walker {
        data: body,
        explicit: true,
        big_endian: false,
        meta_only: true,
        limits,
    };
    let (meta_end, ts) = meta.walk(4, &mut budget)?;
    let transfer_syntax = ts.unwrap_or_default();
    let mut checked = Checked {
        offset,
        transfer_syntax: transfer_syntax.clone(),
        native_pixel_data: None,
    };
    match transfer_syntax.as_str() {
        DEFLATED_LE => {
            // Inflate, bounded, and walk the result; the parser inflates the same stream.
            let mut inflated = Vec::new();
            let read = flate2::read::DeflateDecoder::new(&body[meta_end..])
                .take(limits.max_bytes.saturating_add(1))
                .read_to_end(&mut inflated);
            if read.is_err() {
                return Err(Rejected::Malformed(
                    "deflated data set does not inflate".into(),
                ));
            }
            if inflated.len() as u64 > limits.max_bytes {
                return Err(Rejected::OverLimit(format!(
                    "deflated data set inflates beyond {} bytes",
                    limits.max_bytes
                )));
            }
            let w = Walker {
                data: &inflated,
                explicit: true,
                big_endian: false,
                meta_only: false,
                limits,
            };
            w.walk(0, &mut budget)?;
        }
        _ => {
            let w = Walker {
                data: body,
                explicit: transfer_syntax != IMPLICIT_LE,
                big_endian: transfer_syntax == EXPLICIT_BE,
                meta_only: false,
                limits,
            };
            let native = matches!(transfer_syntax.as_str(), IMPLICIT_LE | EXPLICIT_LE);
            let (_, pixel) = w.walk_dataset(meta_end, &mut budget)?;
            if native {
                checked.native_pixel_data = pixel
                    .filter(|&(_, len)| len > 0)
                    .map(|(at, len)| (offset + at, len));
            }
        }
    }
    Ok(checked)
}

/// What encloses the current position.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A sequence: items follow.
    Sequence,
    /// An item of a sequence: data elements follow.
    Item,
    /// Encapsulated pixel data: fragments follow.
    Fragments,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    kind: Kind,
    /// End offset for a defined length; `None` for an undefined length.
    end: Option<usize>,
    /// Whether it is (inside) the Pixel Data element.
    pixel: bool,
}

struct Walker<'a> {
    data: &'a [u8],
    explicit: bool,
    big_endian: bool,
    meta_only: bool,
    limits: &'a GuardLimits,
}

impl Walker<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let b = self.data.get(at..at.checked_add(2)?)?;
        Some(if self.big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b = self.data.get(at..at.checked_add(4)?)?;
        Some(if self.big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    }

    /// Walk the File Meta Information from `at`; returns where it ends and the transfer syntax.
    fn walk(&self, at: usize, budget: &mut usize) -> Result<(usize, Option<String>), Rejected> {
        if !self.meta_only {
            return self.walk_dataset(at, budget).map(|(end, _)| (end, None));
        }
        let mut at = at;
        let mut ts = None;
        while let Some(group) = self.u16(at) {
            if group != 0x0002 {
                break;
            }
            let (tag, vr, len, header) = self.header(at)?;
            take(budget)?;
            if len == UNDEFINED {
                return Err(malformed(
                    tag,
                    "undefined length in the File Meta Information",
                ));
            }
            let start = at + header;
            let end = fits(tag, start, len, self.data.len(), false)?;
            if tag == Tag(0x0002, 0x0010) && vr != Some(VR::SQ) {
                ts = Some(
                    String::from_utf8_lossy(&self.data[start..end])
                        .trim_end_matches(['\0', ' '])
                        .to_string(),
                );
            }
            at = end;
        }
        Ok((at, ts))
    }

    /// Read an element header at `at`: (tag, VR if explicit or known, length, header size).
    fn header(&self, at: usize) -> Result<(Tag, Option<VR>, u32, usize), Rejected> {
        let truncated = || Rejected::Malformed(format!("element header cut short at byte {at}"));
        let group = self.u16(at).ok_or_else(truncated)?;
        let element = self.u16(at + 2).ok_or_else(truncated)?;
        let tag = Tag(group, element);
        if group == 0xFFFE {
            let len = self.u32(at + 4).ok_or_else(truncated)?;
            return Ok((tag, None, len, 8));
        }
        if self.explicit {
            let vr_bytes = self.data.get(at + 4..at + 6).ok_or_else(truncated)?;
            let vr = VR::from_binary([vr_bytes[0], vr_bytes[1]]).unwrap_or(VR::UN);
            if SHORT_VRS.iter().any(|v| &v[..] == vr_bytes) {
                let len = self.u16(at + 6).ok_or_else(truncated)?;
                Ok((tag, Some(vr), u32::from(len), 8))
            } else {
                let len = self.u32(at + 8).ok_or_else(truncated)?;
                Ok((tag, Some(vr), len, 12))
            }
        } else {
            let len = self.u32(at + 4).ok_or_else(truncated)?;
            let vr = if tag == PIXEL_DATA || (group >> 8 == 0x60 && element == 0x3000) {
                VR::OW
            } else {
                StandardDataDictionary
                    .by_tag(tag)
                    .map(|e| e.vr().relaxed())
                    .unwrap_or(VR::UN)
            };
            Ok((tag, Some(vr), len, 8))
        }
    }

    /// Walk a data set from `at` to the end of the data, iteratively. Returns where it ended and
    /// the top-level Pixel Data value (offset, length) when it has a defined length.
    #[allow(clippy::type_complexity)]
    fn walk_dataset(
        &self,
        start: usize,
        budget: &mut usize,
    ) -> Result<(usize, Option<(usize, usize)>), Rejected> {
        let len = self.data.len();
        let mut stack: Vec<Open> = Vec::new();
        let mut pixel_data = None;
        let mut at = start;
        loop {
            // Close the defined-length containers that end here.
            while let Some(top) = stack.last() {
                match top.end {
                    Some(end) if end == at => {
                        stack.pop();
                    }
                    Some(end) if end < at => {
                        return Err(Rejected::Malformed(format!(
                            "an item or sequence ending at byte {end} holds data up to byte {at}"
                        )));
                    }
                    _ => break,
                }
            }
            // The innermost defined end: nothing inside may run past it.
            let bound = stack.iter().rev().find_map(|o| o.end).unwrap_or(len);
            let in_pixel = stack.last().is_some_and(|o| o.pixel);
            if at >= len {
                if let Some(open) = stack.last() {
                    let why = format!("a {:?} of undefined length is never closed", open.kind);
                    return Err(if in_pixel {
                        Rejected::TruncatedPixelData(why)
                    } else {
                        Rejected::Malformed(why)
                    });
                }
                return Ok((at, pixel_data));
            }
            let (tag, vr, vlen, header) = match self.header(at) {
                Ok(h) => h,
                Err(e) if in_pixel => {
                    return Err(Rejected::TruncatedPixelData(e.to_string()));
                }
                Err(e) => return Err(e),
            };
            take(budget)?;
            let value_start = at + header;
            if value_start > bound {
                return Err(Rejected::Malformed(format!(
                    "element header at byte {at} runs past its container"
                )));
            }
            let kind = stack.last().map(|o| o.kind);
            match kind {
                Some(Kind::Sequence) | Some(Kind::Fragments) => {
                    let fragments = kind == Some(Kind::Fragments);
                    if tag == SEQUENCE_END {
                        stack.pop();
                        at = value_start;
                    } else if tag == ITEM {
                        if vlen == UNDEFINED {
                            if fragments {
                                return Err(malformed(
                                    tag,
                                    "pixel data fragment of undefined length",
                                ));
                            }
                            self.push(&mut stack, Kind::Item, None, false)?;
                            at = value_start;
                        } else {
                            let end = fits(tag, value_start, vlen, bound, in_pixel)?;
                            if fragments {
                                at = end;
                            } else {
                                self.push(&mut stack, Kind::Item, Some(end), false)?;
                                at = value_start;
                            }
                        }
                    } else {
                        return Err(malformed(tag, "found where a sequence item was expected"));
                    }
                }
                Some(Kind::Item) | None => {
                    if tag == ITEM_END {
                        // Outside a sequence the parser ignores a stray item delimiter.
                        if kind == Some(Kind::Item) {
                            stack.pop();
                        }
                        at = value_start;
                        continue;
                    }
                    if tag.0 == 0xFFFE {
                        return Err(malformed(tag, "item or sequence delimiter out of place"));
                    }
                    let top_level = stack.is_empty();
                    if vr == Some(VR::SQ) {
                        let end = if vlen == UNDEFINED {
                            None
                        } else {
                            Some(fits(tag, value_start, vlen, bound, false)?)
                        };
                        self.push(&mut stack, Kind::Sequence, end, false)?;
                        at = value_start;
                    } else if vlen == UNDEFINED {
                        let pixel = tag == PIXEL_DATA;
                        let kind = if pixel {
                            Kind::Fragments
                        } else {
                            Kind::Sequence
                        };
                        self.push(&mut stack, kind, None, pixel)?;
                        at = value_start;
                    } else {
                        let pixel = tag == PIXEL_DATA;
                        let end = fits(tag, value_start, vlen, bound, pixel)?;
                        if pixel && top_level {
                            pixel_data = Some((value_start, vlen as usize));
                        }
                        at = end;
                    }
                }
            }
        }
    }

    fn push(
        &self,
        stack: &mut Vec<Open>,
        kind: Kind,
        end: Option<usize>,
        pixel: bool,
    ) -> Result<(), Rejected> {
        if stack.len() >= self.limits.max_nesting_depth {
            return Err(Rejected::Malformed(format!(
                "sequences nested deeper than {} levels",
                self.limits.max_nesting_depth
            )));
        }
        let pixel = pixel || stack.last().is_some_and(|o| o.pixel);
        stack.push(Open { kind, end, pixel });
        Ok(())
    }
}

/// Count one element against the budget.
fn take(budget: &mut usize) -> Result<(), Rejected> {
    if *budget == 0 {
        return Err(Rejected::Malformed(
            "more data elements than the limit".into(),
        ));
    }
    *budget -= 1;
    Ok(())
}

fn malformed(tag: Tag, what: &str) -> Rejected {
    Rejected::Malformed(format!("({:04X},{:04X}) {what}", tag.0, tag.1))
}

/// The end of a value of `len` bytes starting at `start`, if it ends by `bound`.
fn fits(tag: Tag, start: usize, len: u32, bound: usize, pixel: bool) -> Result<usize, Rejected> {
    let remaining = bound.saturating_sub(start);
    if len as usize > remaining {
        let why = format!(
            "element ({:04X},{:04X}) claims {len} bytes but only {remaining} remain",
            tag.0, tag.1
        );
        return Err(if pixel {
            Rejected::TruncatedPixelData(why)
        } else {
            Rejected::Malformed(why)
        });
    }
    Ok(start + len as usize)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const LIMITS: GuardLimits = GuardLimits {
        max_bytes: 1 << 20,
        max_nesting_depth: 16,
        max_elements: 10_000,
    };

    /// An explicit VR little endian element.
    pub(crate) fn el(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        if SHORT_VRS.contains(&vr) {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    /// A header with an explicit (possibly lying) 4-byte length.
    pub(crate) fn long_header(group: u16, element: u16, vr: &[u8; 2], len: u32) -> Vec<u8> {
        let mut out = vec![];
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&len.to_le_bytes());
        out
    }

    pub(crate) fn item(tag_element: u16, len: u32) -> Vec<u8> {
        let mut out = vec![0xFE, 0xFF];
        out.extend_from_slice(&tag_element.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out
    }

    /// A Part 10 file (preamble, DICM, meta) around an explicit-VR-LE data set.
    pub(crate) fn part10(dataset: &[u8]) -> Vec<u8> {
        let mut meta = vec![];
        meta.extend(el(0x0002, 0x0001, b"OB", &[0, 1]));
        meta.extend(el(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0"));
        meta.extend(el(0x0002, 0x0003, b"UI", b"1.2.3.4\0"));
        meta.extend(el(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0"));
        meta.extend(el(0x0002, 0x0012, b"UI", b"1.2.3.5\0"));
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        out.extend(el(
            0x0002,
            0x0000,
            b"UL",
            &(meta.len() as u32).to_le_bytes(),
        ));
        out.extend(meta);
        out.extend_from_slice(dataset);
        out
    }

    /// A sequence nested `depth` deep, undefined lengths throughout.
    pub(crate) fn nested(depth: usize) -> Vec<u8> {
        let mut out = vec![];
        for _ in 0..depth {
            out.extend(long_header(0x0040, 0xA730, b"SQ", UNDEFINED));
            out.extend(item(0xE000, UNDEFINED));
        }
        for _ in 0..depth {
            out.extend(item(0xE00D, 0));
            out.extend(item(0xE0DD, 0));
        }
        out
    }

    #[test]
    fn a_sound_file_passes_and_its_native_pixels_are_found() {
        let mut ds = el(0x0008, 0x0060, b"CS", b"CT");
        ds.extend(nested(3));
        ds.extend(el(0x7FE0, 0x0010, b"OW", &[1, 2, 3, 4]));
        let file = part10(&ds);
        let c = check_part10(&file, &LIMITS).unwrap();
        assert_eq!(c.transfer_syntax, "1.2.840.10008.1.2.1");
        let (at, len) = c.native_pixel_data.unwrap();
        assert_eq!(&file[at..at + len], &[1, 2, 3, 4]);
    }

    #[test]
    fn deep_nesting_is_rejected_without_recursion() {
        let file = part10(&nested(10_000));
        assert!(matches!(
            check_part10(&file, &LIMITS),
            Err(Rejected::Malformed(w)) if w.contains("nested deeper")
        ));
        assert!(check_part10(&part10(&nested(7)), &LIMITS).is_ok());
    }

    #[test]
    fn a_length_after_an_undefined_length_sequence_is_checked() {
        // The probe's 34 KB file: an OB element claiming 0xFFFFFFF0 bytes after a sequence.
        let mut ds = nested(1);
        ds.extend(long_header(0x0009, 0x1010, b"OB", 0xFFFF_FFF0));
        ds.extend(vec![0u8; 34_000]);
        assert!(matches!(
            check_part10(&part10(&ds), &LIMITS),
            Err(Rejected::Malformed(_))
        ));
    }

    #[test]
    fn an_unknown_vr_is_read_as_un_with_a_long_length() {
        let mut ds = long_header(0x0009, 0x1010, b"ZZ", 0x7FFF_0000);
        ds.extend(vec![0u8; 64]);
        assert!(matches!(
            check_part10(&part10(&ds), &LIMITS),
            Err(Rejected::Malformed(_))
        ));
        let mut ok = long_header(0x0009, 0x1010, b"ZZ", 4);
        ok.extend([1, 2, 3, 4]);
        assert!(check_part10(&part10(&ok), &LIMITS).is_ok());
    }

    #[test]
    fn an_item_cannot_outgrow_its_sequence() {
        let mut ds = long_header(0x0040, 0xA730, b"SQ", 8 + 20);
        ds.extend(item(0xE000, 20));
        ds.extend(el(0x0008, 0x0060, b"CS", b"CT"));
        ds.extend(long_header(0x0009, 0x1010, b"OB", 1000));
        ds.extend(vec![0u8; 2000]);
        assert!(matches!(
            check_part10(&part10(&ds), &LIMITS),
            Err(Rejected::Malformed(_))
        ));
    }

    #[test]
    fn cut_pixel_fragments_are_truncated_pixel_data() {
        let mut ds = el(0x0008, 0x0060, b"CS", b"CT");
        ds.extend(long_header(0x7FE0, 0x0010, b"OB", UNDEFINED));
        ds.extend(item(0xE000, 0));
        ds.extend(item(0xE000, 1000));
        ds.extend(vec![0u8; 10]);
        assert!(matches!(
            check_part10(&part10(&ds), &LIMITS),
            Err(Rejected::TruncatedPixelData(_))
        ));
        let mut whole = el(0x0008, 0x0060, b"CS", b"CT");
        whole.extend(long_header(0x7FE0, 0x0010, b"OB", UNDEFINED));
        whole.extend(item(0xE000, 0));
        whole.extend(item(0xE000, 4));
        whole.extend([0u8; 4]);
        whole.extend(item(0xE0DD, 0));
        let c = check_part10(&part10(&whole), &LIMITS).unwrap();
        assert_eq!(c.native_pixel_data, None);
    }

    #[test]
    fn element_count_and_file_size_are_bounded() {
        let mut ds = vec![];
        for _ in 0..20_000 {
            ds.extend(el(0x0009, 0x1010, b"LO", b""));
        }
        assert!(matches!(
            check_part10(&part10(&ds), &LIMITS),
            Err(Rejected::Malformed(w)) if w.contains("data elements")
        ));
        let big = part10(&el(0x0009, 0x1010, b"OB", &vec![0u8; 2 << 20]));
        assert!(matches!(
            check_part10(&big, &LIMITS),
            Err(Rejected::OverLimit(_))
        ));
        assert_eq!(
            check_part10(b"not dicom", &LIMITS),
            Err(Rejected::NotPart10)
        );
    }
}
