//! Issue 23, hostile input: every class of the probe as a regression test. No input may abort
//! the process, allocate what a header claims, lose a study or overwrite a finished result.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use spinescreen_ingest::{build_volume, build_volume_with_report, IngestLimits, SourceFile};
use spinescreen_proto::uid::validate_uid;
use spinescreen_proto::ReasonCode;

fn limits() -> IngestLimits {
    IngestLimits {
        min_slices: 8,
        ..Default::default()
    }
}

/// An explicit-VR-LE element header with a 4-byte length (`len` may lie).
fn long_header(group: u16, element: u16, vr: &[u8; 2], len: u32) -> Vec<u8> {
    let mut out = vec![];
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out
}

fn item(element: u16, len: u32) -> Vec<u8> {
    let mut out = vec![0xFE, 0xFF];
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// A sequence nested `depth` deep (undefined lengths, as the probe sent it).
pub fn nested_sequence(depth: usize) -> Vec<u8> {
    let mut out = vec![];
    for _ in 0..depth {
        out.extend(long_header(0x0040, 0xA730, b"SQ", u32::MAX));
        out.extend(item(0xE000, u32::MAX));
    }
    for _ in 0..depth {
        out.extend(item(0xE00D, 0));
        out.extend(item(0xE0DD, 0));
    }
    out
}

/// A slice of `spec` with `extra` raw bytes appended to its data set.
fn slice_with_tail(spec: &SeriesSpec, k: usize, extra: &[u8]) -> SourceFile {
    let mut bytes = part10(spec.slice(k), EXPLICIT_LE);
    bytes.extend_from_slice(extra);
    SourceFile {
        name: format!("hostile-{k}.dcm"),
        bytes: Bytes::from(bytes),
    }
}

#[test]
fn a_sequence_nested_10000_deep_is_refused_not_a_stack_overflow() {
    let spec = SeriesSpec::default();
    let hostile = slice_with_tail(&spec, 0, &nested_sequence(10_000));
    // Alone: a coded defect.
    let err = build_volume(std::slice::from_ref(&hostile), &limits()).unwrap_err();
    assert_eq!(err.code, ReasonCode::NO_DICOM);
    // Among the other slices of its series: the study is still analysed.
    let mut files: Vec<SourceFile> = spec.files().into_iter().skip(1).collect();
    files.push(hostile);
    let (result, report) = build_volume_with_report(&files, &limits());
    assert!(result.is_ok(), "{:?}", result.err());
    assert_eq!(report.not_dicom.len(), 1, "{:?}", report.not_dicom);
    assert!(report.not_dicom[0].contains("nested deeper"));
}

#[test]
fn number_of_frames_of_a_billion_is_oversize_before_any_allocation() {
    let spec = SeriesSpec::default();
    for frames in ["1000000000", "10000000"] {
        let files = spec.files_with(|k, o| {
            if k == 3 {
                o.put(DataElement::new(
                    tags::NUMBER_OF_FRAMES,
                    VR::IS,
                    PrimitiveValue::from(frames),
                ));
            }
        });
        let err = build_volume(&files, &limits()).unwrap_err();
        assert_eq!(err.code, ReasonCode::OVERSIZE, "{frames}: {}", err.text);
        assert!(err.text.contains("NumberOfFrames"), "{}", err.text);
    }
}

#[test]
fn a_length_claiming_4_gb_after_an_undefined_length_sequence_is_refused() {
    let spec = SeriesSpec::default();
    let mut tail = nested_sequence(1);
    tail.extend(long_header(0x0009, 0x1010, b"OB", 0xFFFF_FFF0));
    tail.extend(vec![0u8; 34_000]);
    let hostile = slice_with_tail(&spec, 0, &tail);
    let err = build_volume(std::slice::from_ref(&hostile), &limits()).unwrap_err();
    assert_eq!(err.code, ReasonCode::NO_DICOM);
    assert!(err.text.contains("none of the 1 files"), "{}", err.text);
    // An unknown VR is read as the parser reads it (UN, 4-byte length).
    let mut tail = long_header(0x0009, 0x1010, b"Q!", 0x7FFF_FFF0);
    tail.extend(vec![0u8; 64]);
    let hostile = slice_with_tail(&spec, 0, &tail);
    let err = build_volume(std::slice::from_ref(&hostile), &limits()).unwrap_err();
    assert_eq!(err.code, ReasonCode::NO_DICOM);
}

#[test]
fn many_tiny_elements_are_bounded_by_the_element_limit() {
    let spec = SeriesSpec::default();
    let mut tail = vec![];
    for _ in 0..1_000 {
        tail.extend(long_header(0x0009, 0x1010, b"UN", 0));
    }
    let hostile = slice_with_tail(&spec, 0, &tail);
    let tight = IngestLimits {
        max_elements_per_instance: 500,
        ..limits()
    };
    let (result, report) = build_volume_with_report(std::slice::from_ref(&hostile), &tight);
    assert_eq!(result.unwrap_err().code, ReasonCode::NO_DICOM);
    assert!(
        report.not_dicom[0].contains("data elements"),
        "{:?}",
        report.not_dicom
    );
}

/// A Part 10 file whose File Meta Information carries `meta_uid` while the data set's SOP
/// Instance UID is `dataset_uid`.
fn with_uids(mut obj: InMemDicomObject, meta_uid: &str, dataset_uid: &str) -> Vec<u8> {
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(dataset_uid),
    ));
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(CT_STORAGE)
        .media_storage_sop_instance_uid(meta_uid)
        .transfer_syntax(EXPLICIT_LE)
        .implementation_class_uid("1.2.826.0.1.3680043.9.7433.99")
        .build()
        .unwrap();
    let mut out = Vec::new();
    obj.with_exact_meta(meta).write_all(&mut out).unwrap();
    out
}

#[test]
fn unusable_sop_instance_uids_are_replaced_and_the_study_is_analysed() {
    let spec = SeriesSpec::default();
    let long = "1".repeat(10_000);
    let bad = ["", "1.2.3\u{0}4", long.as_str(), "1..3", "abc"];
    let files: Vec<SourceFile> = (0..spec.slices)
        .map(|k| {
            let dataset_uid = bad[k % bad.len()];
            // Every third file has no usable copy in its File Meta Information either.
            let meta_uid = if k % 3 == 0 {
                "".to_string()
            } else {
                spec.sop_uid(k)
            };
            SourceFile {
                name: format!("s-{k}.dcm"),
                bytes: Bytes::from(with_uids(spec.slice(k), &meta_uid, dataset_uid)),
            }
        })
        .collect();
    let (result, report) = build_volume_with_report(&files, &limits());
    let volume = result.expect("analysed despite the UIDs");
    let uids = &volume.header.study.sop_instance_uids;
    assert_eq!(uids.len(), spec.slices);
    for u in uids {
        assert!(validate_uid(u).is_ok(), "{u:?}");
    }
    let distinct: std::collections::BTreeSet<_> = uids.iter().collect();
    assert_eq!(distinct.len(), spec.slices, "replacements are distinct");
    assert!(!report.notes.is_empty());
    // Derived UIDs are stable: the same files give the same UIDs.
    let again = build_volume(&files, &limits()).unwrap();
    assert_eq!(&again.header.study.sop_instance_uids, uids);
}
