//! The pure core: files in, HU volume or coded technical defect out.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use dicom_core::{
    value::{PixelFragmentSequence, Value},
    DataElement, PrimitiveValue, VR,
};
use dicom_dictionary_std::tags;
use spinescreen_ingest::{build_volume, build_volume_with_report, IngestLimits, SourceFile};
use spinescreen_proto::{Reason, ReasonCode};

fn limits() -> IngestLimits {
    IngestLimits {
        min_slices: 8,
        ..Default::default()
    }
}

fn code(files: &[SourceFile]) -> String {
    match build_volume(files, &limits()) {
        Ok(v) => panic!("expected a defect, got a volume {:?}", v.header.dims),
        Err(Reason { code, text }) => {
            assert!(
                !text.contains("DOE") && !text.contains("MRN0042"),
                "PHI in {text}"
            );
            code
        }
    }
}

#[test]
fn clean_series_is_ordered_along_the_normal_and_converted_to_hu() {
    let spec = SeriesSpec::default();
    let v = build_volume(spec.files(), &limits()).unwrap();
    let h = &v.header;
    assert_eq!(h.dims, [40, 32, 24]);
    // [column spacing, row spacing, slice spacing]; PixelSpacing is row\column.
    assert_eq!(h.spacing_mm[0], 0.7);
    assert_eq!(h.spacing_mm[1], 0.8);
    assert!((h.spacing_mm[2] - 1.25).abs() < 1e-9);
    assert_eq!(h.origin_mm, spec.position(0));
    assert_eq!(
        h.direction,
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    for k in [0, 1, 13, 23] {
        for (x, y) in [(0, 0), (39, 0), (0, 31), (17, 9)] {
            assert_eq!(
                v.voxels[[k, y, x]],
                expected_hu(&spec, x, y, k),
                "voxel {x},{y},{k}"
            );
        }
    }
    let s = &h.study;
    assert_eq!(s.study_instance_uid, spec.study_uid);
    assert_eq!(s.series_instance_uid, spec.series_uid);
    assert_eq!(s.series_number, "2");
    assert_eq!(s.patient_name, "DOE^JANE");
    assert_eq!(s.patient_id, "MRN0042");
    assert_eq!(s.accession_number, "ACC42");
    assert_eq!(s.sop_class_uid, CT_STORAGE);
    let expected: Vec<String> = (0..24).map(|k| spec.sop_uid(k)).collect();
    assert_eq!(s.sop_instance_uids, expected);
}

#[test]
fn prone_feet_first_series_is_reoriented_without_moving_voxels() {
    let spec = SeriesSpec {
        orientation: [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0],
        ..Default::default()
    };
    let v = build_volume(spec.files(), &limits()).unwrap();
    assert_eq!(
        v.header.direction,
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    for (x, y, k) in [(0usize, 0usize, 0usize), (39, 31, 23), (5, 20, 11)] {
        let p0 = spec.position(k);
        // Source pixel (x, y) lies at origin + x·row·Δc + y·col·Δr.
        let p = [p0[0] - x as f64 * 0.7, p0[1] - y as f64 * 0.8, p0[2]];
        let i = v.header.patient_to_index(p).map(|c| c.round() as usize);
        assert_eq!(v.voxels[[i[2], i[1], i[0]]], expected_hu(&spec, x, y, k));
    }
}

#[test]
fn files_that_are_not_dicom_are_no_dicom() {
    let files = vec![
        SourceFile {
            name: "notes.txt".into(),
            bytes: Bytes::from_static(b"hello"),
        },
        SourceFile {
            name: "zeros".into(),
            bytes: Bytes::from(vec![0u8; 4096]),
        },
    ];
    assert_eq!(code(&files), ReasonCode::NO_DICOM);
    assert_eq!(code(&[]), ReasonCode::NO_DICOM);
}

#[test]
fn files_truncated_inside_the_header_are_no_dicom() {
    let files: Vec<_> = SeriesSpec::default()
        .files()
        .into_iter()
        .map(|f| SourceFile {
            bytes: f.bytes.slice(..200),
            ..f
        })
        .collect();
    assert_eq!(code(&files), ReasonCode::NO_DICOM);
}

#[test]
fn a_file_truncated_inside_its_pixel_data_is_a_decode_failure() {
    let mut files = SeriesSpec::default().files();
    let n = files[3].bytes.len();
    files[3].bytes = files[3].bytes.slice(..n - 500);
    assert_eq!(code(&files), ReasonCode::DECODE_FAILURE);
}

#[test]
fn a_position_with_the_wrong_vr_is_a_missing_attribute() {
    let files = SeriesSpec::default().files_with(|k, o| {
        if k == 5 {
            o.put(DataElement::new(
                tags::IMAGE_POSITION_PATIENT,
                VR::LO,
                PrimitiveValue::from("left\\up\\here"),
            ));
        }
    });
    assert_eq!(code(&files), ReasonCode::MISSING_ATTRIBUTE);
}

#[test]
fn a_missing_position_is_a_missing_attribute() {
    let files = SeriesSpec::default().files_with(|k, o| {
        if k == 2 {
            o.remove_element(tags::IMAGE_POSITION_PATIENT);
        }
    });
    assert_eq!(code(&files), ReasonCode::MISSING_ATTRIBUTE);
}

#[test]
fn an_image_without_pixel_data_is_missing_pixel_data() {
    let files = SeriesSpec::default().files_with(|k, o| {
        if k == 9 {
            o.remove_element(tags::PIXEL_DATA);
        }
    });
    assert_eq!(code(&files), ReasonCode::MISSING_PIXEL_DATA);
}

#[test]
fn mixed_matrix_sizes_in_one_series_are_inconsistent_geometry() {
    let files = SeriesSpec::default().files_with(|k, o| {
        if k == 4 {
            o.put(DataElement::new(
                tags::ROWS,
                VR::US,
                PrimitiveValue::from(16u16),
            ));
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(vec![0u16; 16 * 40].into()),
            ));
        }
    });
    assert_eq!(code(&files), ReasonCode::INCONSISTENT_GEOMETRY);
}

#[test]
fn a_rotated_slice_is_inconsistent_geometry() {
    let files = SeriesSpec::default().files_with(|k, o| {
        if k == 7 {
            o.put(DataElement::new(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                PrimitiveValue::from("0.9962\\0.0872\\0\\-0.0872\\0.9962\\0"),
            ));
        }
    });
    assert_eq!(code(&files), ReasonCode::INCONSISTENT_GEOMETRY);
}

#[test]
fn zero_pixel_spacing_is_zero_spacing() {
    let spec = SeriesSpec {
        pixel_spacing: [0.0, 0.0],
        ..Default::default()
    };
    assert_eq!(code(&spec.files()), ReasonCode::ZERO_SPACING);
}

#[test]
fn slices_all_at_one_position_are_zero_spacing() {
    let spec = SeriesSpec {
        slice_spacing: 0.0,
        ..Default::default()
    };
    assert_eq!(code(&spec.files()), ReasonCode::ZERO_SPACING);
}

#[test]
fn two_slices_at_one_position_are_duplicate_slices() {
    let spec = SeriesSpec::default();
    let p6 = spec.position(6);
    let files = spec.files_with(|k, o| {
        if k == 7 {
            o.put(DataElement::new(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                PrimitiveValue::from(format!("{}\\{}\\{}", p6[0], p6[1], p6[2])),
            ));
        }
    });
    assert_eq!(code(&files), ReasonCode::DUPLICATE_SLICES);
}

#[test]
fn the_same_instance_sent_twice_counts_once() {
    let mut files = SeriesSpec::default().files();
    let again = files[4].clone();
    files.push(SourceFile {
        name: "resent.dcm".into(),
        ..again
    });
    let v = build_volume(&files, &limits()).unwrap();
    assert_eq!(v.header.dims[2], 24);
}

#[test]
fn a_missing_slice_is_non_uniform_spacing() {
    let mut files = SeriesSpec::default().files();
    files.retain(|f| f.name != "s2-0010.dcm");
    assert_eq!(files.len(), 23);
    let (r, _) = build_volume_with_report(&files, &limits());
    let reason = r.unwrap_err();
    assert_eq!(reason.code, ReasonCode::NON_UNIFORM_SPACING);
    assert!(
        reason.text.contains("1 slice(s) missing"),
        "{}",
        reason.text
    );
}

#[test]
fn a_sheared_stack_is_gantry_tilt() {
    let spec = SeriesSpec {
        tilt_deg: 15.0,
        ..Default::default()
    };
    assert_eq!(code(&spec.files()), ReasonCode::GANTRY_TILT);
}

#[test]
fn an_mr_study_is_no_ct_series() {
    let spec = SeriesSpec {
        modality: "MR",
        sop_class: MR_STORAGE,
        ..Default::default()
    };
    let (r, report) = build_volume_with_report(spec.files(), &limits());
    let reason = r.unwrap_err();
    assert_eq!(reason.code, ReasonCode::NO_CT_SERIES);
    assert!(reason.text.contains("modality MR"), "{}", reason.text);
    assert_eq!(report.series.len(), 1);
}

#[test]
fn a_localizer_alone_is_no_ct_series() {
    let spec = SeriesSpec {
        image_type: "ORIGINAL\\PRIMARY\\LOCALIZER",
        ..Default::default()
    };
    assert_eq!(code(&spec.files()), ReasonCode::NO_CT_SERIES);
}

#[test]
fn four_slices_are_too_few() {
    let spec = SeriesSpec {
        slices: 4,
        ..Default::default()
    };
    assert_eq!(code(&spec.files()), ReasonCode::TOO_FEW_SLICES);
}

#[test]
fn size_limits_make_oversize_before_decoding() {
    let files = SeriesSpec::default().files();
    for l in [
        IngestLimits {
            max_matrix: 16,
            ..limits()
        },
        IngestLimits {
            max_instances: 10,
            ..limits()
        },
        IngestLimits {
            max_bytes_per_file: 1000,
            ..limits()
        },
        IngestLimits {
            max_total_voxels: 40 * 32 * 10,
            ..limits()
        },
    ] {
        assert_eq!(
            build_volume(&files, &l).unwrap_err().code,
            ReasonCode::OVERSIZE,
            "{l:?}"
        );
    }
}

#[test]
fn a_compression_bomb_header_is_oversize_not_an_allocation() {
    // Claims 60000 × 60000 pixels with a few bytes of "compressed" data.
    let spec = SeriesSpec::default();
    let files: Vec<SourceFile> = (0..spec.slices)
        .map(|k| {
            let mut o = spec.slice(k);
            o.put(DataElement::new(
                tags::ROWS,
                VR::US,
                PrimitiveValue::from(60000u16),
            ));
            o.put(DataElement::new(
                tags::COLUMNS,
                VR::US,
                PrimitiveValue::from(60000u16),
            ));
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::PixelSequence(PixelFragmentSequence::new(
                    vec![],
                    vec![vec![0xFF, 0xD8, 0xFF, 0xD9]],
                )),
            ));
            SourceFile {
                name: format!("{k}"),
                bytes: Bytes::from(part10(o, "1.2.840.10008.1.2.4.70")),
            }
        })
        .collect();
    assert_eq!(code(&files), ReasonCode::OVERSIZE);
}

#[test]
fn an_undecodable_transfer_syntax_is_unsupported() {
    let spec = SeriesSpec::default();
    let files: Vec<SourceFile> = (0..spec.slices)
        .map(|k| {
            let mut o = spec.slice(k);
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::PixelSequence(PixelFragmentSequence::new(vec![], vec![vec![0u8; 64]])),
            ));
            // MPEG2 Main Profile: known to the registry, but no decoder for pixel data.
            SourceFile {
                name: format!("{k}"),
                bytes: Bytes::from(part10(o, "1.2.840.10008.1.2.4.100")),
            }
        })
        .collect();
    assert_eq!(code(&files), ReasonCode::UNSUPPORTED_TRANSFER_SYNTAX);
}

#[test]
fn garbage_in_a_jpeg_frame_is_a_decode_failure() {
    let spec = SeriesSpec::default();
    let files: Vec<SourceFile> = (0..spec.slices)
        .map(|k| {
            let mut o = spec.slice(k);
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::PixelSequence(PixelFragmentSequence::new(
                    vec![],
                    vec![vec![0xFF, 0xD8, 1, 2, 3, 4]],
                )),
            ));
            SourceFile {
                name: format!("{k}"),
                bytes: Bytes::from(part10(o, "1.2.840.10008.1.2.4.70")),
            }
        })
        .collect();
    assert_eq!(code(&files), ReasonCode::DECODE_FAILURE);
}

#[test]
fn the_thin_axial_ct_series_is_chosen_and_the_others_explained() {
    let thin = SeriesSpec::default();
    let localizer = SeriesSpec {
        slices: 2,
        image_type: "ORIGINAL\\PRIMARY\\LOCALIZER",
        series_uid: "1.2.826.0.1.3680043.9.7433.1.1.1".into(),
        series_number: 1,
        ..Default::default()
    };
    let coronal = SeriesSpec {
        orientation: [1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
        image_type: "DERIVED\\SECONDARY\\REFORMATTED",
        series_uid: "1.2.826.0.1.3680043.9.7433.1.1.3".into(),
        series_number: 3,
        ..Default::default()
    };
    let thick = SeriesSpec {
        slice_spacing: 5.0,
        thickness: 5.0,
        series_uid: "1.2.826.0.1.3680043.9.7433.1.1.4".into(),
        series_number: 4,
        ..Default::default()
    };
    let short_thin = SeriesSpec {
        slices: 10,
        series_uid: "1.2.826.0.1.3680043.9.7433.1.1.6".into(),
        series_number: 6,
        ..Default::default()
    };
    let mr = SeriesSpec {
        modality: "MR",
        sop_class: MR_STORAGE,
        series_uid: "1.2.826.0.1.3680043.9.7433.1.1.5".into(),
        series_number: 5,
        ..Default::default()
    };
    let mut files = vec![];
    for s in [&localizer, &coronal, &thick, &short_thin, &mr, &thin] {
        files.extend(s.files());
    }
    let (v, report) = build_volume_with_report(&files, &limits());
    let v = v.unwrap();
    assert_eq!(v.header.study.series_instance_uid, thin.series_uid);
    let outcome = |n: &str| {
        report
            .series
            .iter()
            .find(|s| s.series_number == n)
            .map(|s| s.outcome.clone())
            .unwrap()
    };
    assert_eq!(outcome("2"), "selected");
    assert!(outcome("1").contains("localizer"), "{}", outcome("1"));
    assert!(outcome("3").contains("not axial"), "{}", outcome("3"));
    assert!(outcome("4").contains("ranked below"), "{}", outcome("4"));
    assert!(outcome("6").contains("ranked below"), "{}", outcome("6"));
    assert!(outcome("5").contains("modality MR"), "{}", outcome("5"));
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("DOE") && !json.contains("MRN0042"));
}

#[test]
fn a_broken_best_series_falls_back_to_the_next_candidate() {
    let thin = SeriesSpec::default();
    let thick = SeriesSpec {
        slice_spacing: 5.0,
        thickness: 5.0,
        series_uid: "1.2.826.0.1.3680043.9.7433.1.1.4".into(),
        series_number: 4,
        ..Default::default()
    };
    let mut files = thin.files();
    files.retain(|f| f.name != "s2-0010.dcm");
    files.extend(thick.files());
    let (v, report) = build_volume_with_report(&files, &limits());
    assert_eq!(
        v.unwrap().header.study.series_instance_uid,
        thick.series_uid
    );
    let thin_note = report
        .series
        .iter()
        .find(|s| s.series_number == "2")
        .unwrap();
    assert!(
        thin_note.outcome.contains("NON_UNIFORM_SPACING"),
        "{}",
        thin_note.outcome
    );
}

#[test]
fn padding_values_become_air() {
    let spec = SeriesSpec::default();
    let files = spec.files_with(|_, o| {
        o.put(DataElement::new(
            tags::PIXEL_PADDING_VALUE,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    });
    let v = build_volume(&files, &limits()).unwrap();
    // stored(0, 0, 0) == 0 is padding; its neighbour is not.
    assert_eq!(v.voxels[[0, 0, 0]], -1024);
    assert_eq!(v.voxels[[0, 0, 1]], expected_hu(&spec, 1, 0, 0));
}

#[test]
fn bulk_voxel_bytes_equal_the_contract_encoding() {
    let v = build_volume(SeriesSpec::default().files(), &limits()).unwrap();
    assert_eq!(spinescreen_ingest::voxel_bytes(&v), v.voxel_bytes());
}

#[test]
fn an_enhanced_ct_multiframe_instance_builds_the_same_volume() {
    use dicom_core::value::DataSetSequence;
    use dicom_object::InMemDicomObject;
    let spec = SeriesSpec::default();
    let reference = build_volume(spec.files(), &limits()).unwrap();
    let item = |elements: Vec<DataElement<InMemDicomObject>>| {
        InMemDicomObject::from_element_iter(elements)
    };
    let seq = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
    };
    let ds = |tag, text: String| DataElement::new(tag, VR::DS, PrimitiveValue::from(text));
    let mut o = spec.slice(0);
    for tag in [
        tags::IMAGE_POSITION_PATIENT,
        tags::IMAGE_ORIENTATION_PATIENT,
        tags::PIXEL_SPACING,
        tags::SLICE_THICKNESS,
        tags::RESCALE_INTERCEPT,
        tags::RESCALE_SLOPE,
        tags::INSTANCE_NUMBER,
    ] {
        o.remove_element(tag);
    }
    o.put(DataElement::new(
        tags::SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2.1"),
    ));
    o.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from("1.2.826.0.1.3680043.9.7433.1.1.2.100"),
    ));
    o.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("24"),
    ));
    o.put(seq(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![item(vec![
            seq(
                tags::PLANE_ORIENTATION_SEQUENCE,
                vec![item(vec![ds(
                    tags::IMAGE_ORIENTATION_PATIENT,
                    "1\\0\\0\\0\\1\\0".into(),
                )])],
            ),
            seq(
                tags::PIXEL_MEASURES_SEQUENCE,
                vec![item(vec![
                    ds(tags::PIXEL_SPACING, "0.8\\0.7".into()),
                    ds(tags::SLICE_THICKNESS, "1.25".into()),
                ])],
            ),
            seq(
                tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                vec![item(vec![
                    ds(tags::RESCALE_INTERCEPT, "-1024".into()),
                    ds(tags::RESCALE_SLOPE, "1".into()),
                ])],
            ),
        ])],
    ));
    // Frames stored head first, so frame order is the reverse of the volume order.
    let order: Vec<usize> = (0..spec.slices).rev().collect();
    let per_frame: Vec<InMemDicomObject> = order
        .iter()
        .map(|&k| {
            let p = spec.position(k);
            item(vec![seq(
                tags::PLANE_POSITION_SEQUENCE,
                vec![item(vec![ds(
                    tags::IMAGE_POSITION_PATIENT,
                    format!("{}\\{}\\{}", p[0], p[1], p[2]),
                )])],
            )])
        })
        .collect();
    o.put(seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));
    let mut pixels = vec![];
    for &k in &order {
        for y in 0..spec.rows {
            for x in 0..spec.columns {
                pixels.push(stored(x, y, k));
            }
        }
    }
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    let file = SourceFile {
        name: "enhanced.dcm".into(),
        bytes: Bytes::from(part10(o, EXPLICIT_LE)),
    };
    let v = build_volume(&[file], &limits()).unwrap();
    assert_eq!(v.header.dims, reference.header.dims);
    assert_eq!(v.header.origin_mm, reference.header.origin_mm);
    assert_eq!(v.header.spacing_mm, reference.header.spacing_mm);
    assert!(v.voxels == reference.voxels);
    assert_eq!(
        v.header.study.sop_instance_uids,
        vec!["1.2.826.0.1.3680043.9.7433.1.1.2.100".to_string()]
    );
}

#[test]
fn corrupted_bytes_anywhere_give_a_result_not_a_panic() {
    let files = SeriesSpec::default().files();
    // A slice inside the stack, so losing it is noticed.
    let victim = files.iter().position(|f| f.name == "s2-0010.dcm").unwrap();
    let len = files[victim].bytes.len();
    let mut outcomes = std::collections::BTreeSet::new();
    // Truncate or overwrite one file at many offsets across its header and pixel data.
    for step in 0..24 {
        let at = 128 + (step * 97 + step * step * 29) % (len - 128);
        for corrupt in [0u8, 1] {
            let mut broken = files.clone();
            let mut bytes = broken[victim].bytes.to_vec();
            if corrupt == 0 {
                bytes.truncate(at);
            } else {
                for b in &mut bytes[at..(at + 8).min(len)] {
                    *b ^= 0xA5;
                }
            }
            broken[0].bytes = Bytes::from(bytes);
            let t = std::time::Instant::now();
            let r = build_volume(&broken, &limits());
            eprintln!(
                "TIMING {at} {corrupt} {:?} {:?}",
                t.elapsed(),
                r.as_ref().err().map(|r| r.code.clone())
            );
            match r {
                Ok(_) => outcomes.insert("OK".to_string()),
                Err(r) => outcomes.insert(r.code),
            };
        }
    }
    // Damage in the pixel data decodes (garbage HU) or is noticed; damage in the header is a
    // coded defect; nothing panics.
    assert!(outcomes.len() >= 2, "{outcomes:?}");
}
