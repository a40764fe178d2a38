//! The SR as a PACS and a validator see it: dciodvfy (dicom3tools) and dsrdump (DCMTK).
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use spinescreen_proto::{StudyInfo, StudyResult};
use spinescreen_publisher::{build_sr, build_sr_with, InstanceRef, Language, PublisherConfig};
use std::process::Command;

fn write_sr(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sr.dcm");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} not runnable: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn cfg(language: Language) -> PublisherConfig {
    PublisherConfig {
        language,
        manufacturer: "Spine Labs".into(),
        ..Default::default()
    }
}

fn sc_refs() -> Vec<InstanceRef> {
    (0..3)
        .map(|i| InstanceRef {
            series_instance_uid: SC_SERIES_UID.into(),
            sop_class_uid: dicom_dictionary_std::uids::SECONDARY_CAPTURE_IMAGE_STORAGE.into(),
            sop_instance_uid: format!("{SC_SERIES_UID}.{}", i + 1),
        })
        .collect()
}

fn dciodvfy_errors(path: &std::path::Path) -> Vec<String> {
    let out = run("dciodvfy", &[path.to_str().unwrap()]);
    out.lines()
        .filter(|l| l.starts_with("Error"))
        .map(str::to_string)
        .collect()
}

#[test]
fn positive_sr_passes_dciodvfy_without_errors() {
    let sr = build_sr_with(
        &positive_result(),
        &study_info(40),
        &cfg(Language::En),
        &service(),
        &sc_refs(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let (_d, path) = write_sr(&sr);
    let errors = dciodvfy_errors(&path);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
}

#[test]
fn defect_sr_without_study_module_passes_dciodvfy() {
    let sr = build_sr(
        &defect_result(),
        &StudyInfo::default(),
        &cfg(Language::Ru),
        &service(),
    )
    .unwrap();
    let (_d, path) = write_sr(&sr);
    let errors = dciodvfy_errors(&path);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
    let dump = run("dsrdump", &["+Pc", "+Pl", path.to_str().unwrap()]);
    assert!(dump.contains("NO_CT_SERIES"), "{dump}");
    assert!(dump.contains("Технический дефект"), "{dump}");
}

#[test]
fn dsrdump_shows_mandatory_text_items_and_one_group_per_vertebra() {
    let result = positive_result();
    let sr = build_sr(&result, &study_info(10), &cfg(Language::En), &service()).unwrap();
    let (_d, path) = write_sr(&sr);
    let dump = run("dsrdump", &["+Pc", "+Pl", path.to_str().unwrap()]);
    for needle in [
        "(126000,DCM,\"Imaging Measurement Report\")",
        "\"Service name\")=\"SpineScreen CT\"",
        "\"Service description\")=\"Automated screening",
        "(121077,DCM,\"Conclusion\")=\"Compression deformity L1, Genant 3 (45%); T12, Genant 2 (31%). L1 trabecular attenuation 87 HU: suggests osteoporosis.\"",
        "\"User guide\")=\"Each vertebra",
        "\"Device Observer Name\")=\"SpineScreen CT\"",
        "\"Device Observer Manufacturer\")=\"Spine Labs\"",
        "Verification Flag   : UNVERIFIED",
    ] {
        assert!(dump.contains(needle), "missing {needle:?} in\n{dump}");
    }
    let groups = dump
        .matches("CONTAINER:(125007,DCM,\"Measurement Group\")")
        .count();
    assert_eq!(groups, result.vertebrae.len(), "{dump}");
    for v in &result.vertebrae {
        assert!(
            dump.contains(&format!("\"Tracking Identifier\")=\"{}\"", v.label)),
            "no group for {}",
            v.label
        );
    }
    // L1 finding site coded in SNOMED CT, heights in mm, loss in %, attenuation in HU.
    assert!(dump.contains("=(66794005,SCT,\"L1 vertebra\")"), "{dump}");
    assert!(
        dump.contains("\"Anterior vertebral body height\")=\"14.3\" (mm,UCUM"),
        "{dump}"
    );
    assert!(
        dump.contains("\"Vertebral body height loss\")=\"45\" (%,UCUM"),
        "{dump}"
    );
    assert!(
        dump.contains("\"Mean Attenuation Coefficient\")=\"87\" ([hnsf'U],UCUM"),
        "{dump}"
    );
    assert!(
        dump.contains("=(G3,99SPINESCREEN,\"Genant grade 3, severe (40% or more)\")"),
        "{dump}"
    );
}

fn attr(path: &std::path::Path, tag: &str) -> String {
    let out = run("dcmdump", &["-Un", "+P", tag, "-q", path.to_str().unwrap()]);
    out.split('[')
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn series_description_is_the_service_name_and_sr_is_comprehensive_3d() {
    let sr = build_sr(
        &negative_result(),
        &study_info(5),
        &cfg(Language::En),
        &service(),
    )
    .unwrap();
    let (_d, path) = write_sr(&sr);
    assert_eq!(attr(&path, "0008,103e"), "SpineScreen CT");
    assert_eq!(attr(&path, "0008,0016"), "1.2.840.10008.5.1.4.1.1.88.34");
    assert_eq!(attr(&path, "0020,000d"), STUDY_UID);
    assert_eq!(attr(&path, "0040,a493"), "UNVERIFIED");
    assert_eq!(attr(&path, "0010,0020"), "MRN-0042");
    assert_eq!(attr(&path, "0008,0060"), "SR");
}

fn sop_uid(result: &StudyResult) -> String {
    spinescreen_publisher::sr_sop_instance_uid(result, &study_info(3), &cfg(Language::En)).unwrap()
}

#[test]
fn same_result_gets_the_same_sop_instance_uid_whatever_its_timings() {
    let a = positive_result();
    let mut b = positive_result();
    b.timings_ms.insert("publisher".into(), 77);
    b.timings_ms.insert("end_to_end".into(), 90_000);
    assert_eq!(sop_uid(&a), sop_uid(&b));
    let sr1 = build_sr(&a, &study_info(3), &cfg(Language::En), &service()).unwrap();
    let sr2 = build_sr(&b, &study_info(3), &cfg(Language::En), &service()).unwrap();
    let (_d1, p1) = write_sr(&sr1);
    let (_d2, p2) = write_sr(&sr2);
    assert_eq!(attr(&p1, "0008,0018"), attr(&p2, "0008,0018"));
    assert_eq!(attr(&p1, "0020,000e"), attr(&p2, "0020,000e"));
    // A changed result is a new version: new instance, same SR series.
    let mut c = positive_result();
    c.vertebrae[3].genant_grade = spinescreen_proto::GenantGrade::Moderate;
    assert_ne!(sop_uid(&a), sop_uid(&c));
}

#[test]
fn mismatched_study_module_is_rejected_not_mixed() {
    let mut other = study_info(2);
    other.study_instance_uid = "1.2.3.4".into();
    let err = build_sr(&positive_result(), &other, &cfg(Language::En), &service()).unwrap_err();
    assert!(err.to_string().contains("1.2.3.4"));
    let mut bad = positive_result();
    bad.study_instance_uid = "../etc".into();
    assert!(build_sr(&bad, &StudyInfo::default(), &cfg(Language::En), &service()).is_err());
    let mut nan = positive_result();
    nan.vertebrae[0].heights_mm.anterior = f64::NAN;
    assert!(build_sr(&nan, &study_info(1), &cfg(Language::En), &service()).is_err());
}

#[test]
fn comprehensive_sr_variant_passes_dciodvfy_with_its_own_uid() {
    let mut c = cfg(Language::En);
    c.sr_storage = spinescreen_publisher::SrStorage::Comprehensive;
    let sr = build_sr(&positive_result(), &study_info(3), &c, &service()).unwrap();
    let (_d, path) = write_sr(&sr);
    assert_eq!(attr(&path, "0008,0016"), "1.2.840.10008.5.1.4.1.1.88.33");
    let errors = dciodvfy_errors(&path);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
    assert_ne!(attr(&path, "0008,0018"), sop_uid(&positive_result()));
}
