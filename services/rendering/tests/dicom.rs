//! The secondary-capture series: valid DICOM (dciodvfy), in the source study, referencing the
//! source series, with deterministic UIDs.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fractured, normal};
use dicom_dictionary_std::tags;
use dicom_object::{from_reader, open_file};
use spinescreen_rendering::{render, secondary_capture_series, RenderingConfig};
use std::process::Command;

fn write_temp(files: &[Vec<u8>]) -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = dir.path().join(format!("{i:04}.dcm"));
            std::fs::write(&p, f).unwrap();
            p
        })
        .collect();
    (dir, paths)
}

fn series() -> Vec<Vec<u8>> {
    let s = fractured();
    let cfg = RenderingConfig::default();
    let r = render(&s.volume, Some(&s.detection), &s.result, &cfg).unwrap();
    secondary_capture_series(&r, &s.volume.header, &s.result, &cfg).unwrap()
}

fn text(obj: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    obj.element(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

#[test]
fn sc_objects_pass_dciodvfy_without_errors() {
    if std::env::var_os("SPINESCREEN_SKIP_DCIODVFY").is_some() {
        return;
    }
    let mut files = series();
    // A notice frame (study not graded, volume present) must be valid too.
    let s = normal();
    let mut abstained = s.result.clone();
    abstained.status = spinescreen_proto::StudyStatus::Abstained;
    abstained.reason = Some(spinescreen_proto::Reason::new(
        "RING_ARTIFACTS",
        "Ring artefacts.",
    ));
    let cfg = RenderingConfig::default();
    let r = render(&s.volume, Some(&s.detection), &abstained, &cfg).unwrap();
    files.extend(secondary_capture_series(&r, &s.volume.header, &abstained, &cfg).unwrap());
    assert_eq!(files.len(), 3);
    let (_dir, paths) = write_temp(&files);
    for p in &paths {
        let out = Command::new("dciodvfy").arg(p).output().expect(
            "dciodvfy (dicom3tools) must be installed; set SPINESCREEN_SKIP_DCIODVFY to skip",
        );
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("Error")).collect();
        assert!(errors.is_empty(), "{}: {report}", p.display());
        assert!(
            report.contains("SCImage"),
            "dciodvfy did not recognise the IOD: {report}"
        );
        eprintln!("{report}");
    }
}

#[test]
fn sc_series_is_filed_in_the_source_study_and_references_it() {
    let files = series();
    assert_eq!(files.len(), 2);
    let s = fractured();
    let study = &s.volume.header.study;
    let mut series_uids = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let obj = from_reader(&f[128..]).unwrap();
        assert_eq!(text(&obj, tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.7");
        assert_eq!(
            obj.meta().transfer_syntax().trim_end_matches('\0'),
            "1.2.840.10008.1.2.1"
        );
        assert_eq!(
            text(&obj, tags::STUDY_INSTANCE_UID),
            study.study_instance_uid
        );
        assert_eq!(text(&obj, tags::PATIENT_ID), study.patient_id);
        assert_eq!(text(&obj, tags::PATIENT_NAME), "Иванов^Иван");
        assert_eq!(text(&obj, tags::ACCESSION_NUMBER), study.accession_number);
        assert_eq!(text(&obj, tags::SERIES_DESCRIPTION), "spinescreen");
        assert_eq!(text(&obj, tags::BURNED_IN_ANNOTATION), "YES");
        assert_eq!(text(&obj, tags::CONVERSION_TYPE), "WSD");
        assert_eq!(text(&obj, tags::PHOTOMETRIC_INTERPRETATION), "RGB");
        assert_eq!(
            obj.element(tags::PLANAR_CONFIGURATION)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            0
        );
        assert_eq!(text(&obj, tags::INSTANCE_NUMBER), (i + 1).to_string());
        let related = obj
            .element(tags::RELATED_SERIES_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(
            related[0]
                .element(tags::SERIES_INSTANCE_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0'),
            study.series_instance_uid
        );
        let sources = obj
            .element(tags::SOURCE_IMAGE_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(sources.len(), study.sop_instance_uids.len());
        let rows = obj.element(tags::ROWS).unwrap().to_int::<usize>().unwrap();
        let cols = obj
            .element(tags::COLUMNS)
            .unwrap()
            .to_int::<usize>()
            .unwrap();
        assert_eq!(
            obj.element(tags::PIXEL_DATA)
                .unwrap()
                .to_bytes()
                .unwrap()
                .len(),
            rows * cols * 3
        );
        series_uids.push(text(&obj, tags::SERIES_INSTANCE_UID));
    }
    assert_eq!(series_uids[0], series_uids[1]);
    assert_ne!(series_uids[0], study.series_instance_uid);
}

#[test]
fn dcmdump_shows_series_description_and_references() {
    let files = series();
    let (_dir, paths) = write_temp(&files);
    let Ok(out) = Command::new("dcmdump").arg(&paths[0]).output() else {
        panic!("dcmdump (dcmtk) must be installed");
    };
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{dump}");
    assert!(dump.contains("(0008,103e) LO [spinescreen]"), "{dump}");
    assert!(dump.contains("RelatedSeriesSequence"));
    assert!(dump.contains("SourceImageSequence"));
    assert!(dump.contains("(0028,0301) CS [YES]"));
}

#[test]
fn redelivery_writes_the_same_instances_and_new_content_gets_new_uids() {
    let a = series();
    let b = series();
    assert_eq!(a, b, "same inputs must give byte-identical files");
    let uid = |f: &Vec<u8>| text(&from_reader(&f[128..]).unwrap(), tags::SOP_INSTANCE_UID);
    let (u0, u1) = (uid(&a[0]), uid(&a[1]));
    assert_ne!(u0, u1);
    for u in [&u0, &u1] {
        assert!(u.starts_with("2.25.") && u.len() <= 64);
        spinescreen_proto::uid::validate_uid(u).unwrap();
    }
    // A different result (here: no fracture) is different content: new UIDs.
    let s = normal();
    let cfg = RenderingConfig::default();
    let r = render(&s.volume, Some(&s.detection), &s.result, &cfg).unwrap();
    let c = secondary_capture_series(&r, &s.volume.header, &s.result, &cfg).unwrap();
    assert_ne!(uid(&c[0]), u0);
    // Timings alone do not change the content.
    let s = fractured();
    let mut timed = s.result.clone();
    timed.timings_ms.insert("inference".into(), 1234);
    let r = render(&s.volume, Some(&s.detection), &timed, &cfg).unwrap();
    let d = secondary_capture_series(&r, &s.volume.header, &timed, &cfg).unwrap();
    assert_eq!(uid(&d[0]), u0);
}

#[test]
fn files_open_from_disk_as_part_10() {
    let files = series();
    let (_dir, paths) = write_temp(&files);
    if let Ok(dir) = std::env::var("SPINESCREEN_PREVIEW_DIR") {
        for (i, f) in files.iter().enumerate() {
            std::fs::write(format!("{dir}/sc-{i:04}.dcm"), f).unwrap();
        }
    }
    let obj = open_file(&paths[1]).unwrap();
    assert_eq!(text(&obj, tags::PATIENT_ORIENTATION), "L\\F");
}
