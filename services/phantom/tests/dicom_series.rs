//! The written series is valid CT Image Storage that DICOM tools and our own reader accept.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use spinescreen_phantom::{generate, write_dicom_series, PhantomSpec};
use std::process::Command;

fn tiny() -> PhantomSpec {
    PhantomSpec {
        matrix: 128,
        pixel_spacing_mm: Some(2.5),
        slices: 100,
        slice_thickness_mm: 4.5,
        ..common::small_spec(3)
    }
}

#[test]
fn dciodvfy_reports_no_errors_on_a_slice() {
    if Command::new("dciodvfy").arg("-").output().is_err() {
        eprintln!("dciodvfy (dicom3tools) not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ph = generate(&tiny()).unwrap();
    let files = write_dicom_series(&ph, dir.path()).unwrap();
    for f in [&files[0], &files[files.len() / 2]] {
        let out = Command::new("dciodvfy").arg(f).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
        assert!(errors.is_empty(), "dciodvfy errors:\n{text}");
        assert!(
            text.contains("CTImage"),
            "dciodvfy did not recognise a CT image:\n{text}"
        );
    }
}

#[test]
fn slices_carry_geometry_rescale_and_hu_values() {
    let dir = tempfile::tempdir().unwrap();
    let ph = generate(&tiny()).unwrap();
    let files = write_dicom_series(&ph, dir.path()).unwrap();
    assert_eq!(files.len(), 100);
    let obj = dicom_object::open_file(&files[0])
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let get = |t| obj.element(t).unwrap().to_str().unwrap().to_string();
    use dicom_dictionary_std::tags;
    assert_eq!(
        obj.meta()
            .media_storage_sop_class_uid()
            .trim_end_matches('\0'),
        "1.2.840.10008.5.1.4.1.1.2"
    );
    assert_eq!(
        obj.meta().transfer_syntax().trim_end_matches('\0'),
        "1.2.840.10008.1.2.1"
    );
    assert_eq!(get(tags::INSTANCE_NUMBER), "1");
    assert_eq!(get(tags::RESCALE_INTERCEPT), "-1024");
    assert_eq!(get(tags::IMAGE_ORIENTATION_PATIENT), "1\\0\\0\\0\\1\\0");
    assert_eq!(get(tags::PIXEL_SPACING), "2.5\\2.5");
    assert_eq!(get(tags::PATIENT_NAME), "PHANTOM^S3");
    let age: u32 = get(tags::PATIENT_AGE)[..3].parse().unwrap();
    assert!((55..=85).contains(&age));
    // Instance 1 is the top slice: its z is the volume's highest.
    let h = &ph.volume.header;
    let ipp = get(tags::IMAGE_POSITION_PATIENT);
    let z: f64 = ipp.split('\\').nth(2).unwrap().parse().unwrap();
    let top = h.origin_mm[2] + (h.dims[2] - 1) as f64 * h.spacing_mm[2];
    assert!((z - top).abs() < 1e-3, "{ipp}");
    // Stored value − 1024 = the volume's HU.
    let px = obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    let k = h.dims[2] - 1;
    for (i, (x, y)) in [(0usize, 0usize), (64, 64), (64, 90), (10, 64)]
        .into_iter()
        .enumerate()
    {
        let o = 2 * (y * 128 + x);
        let stored = i16::from_le_bytes([px[o], px[o + 1]]) as i32;
        assert_eq!(
            stored - 1024,
            ph.volume.voxels[[k, y, x]] as i32,
            "sample {i}"
        );
    }
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    assert_eq!(
        truth["study_instance_uid"],
        get(tags::STUDY_INSTANCE_UID).trim_end_matches('\0')
    );
    for key in [
        "label",
        "center_mm",
        "heights_mm",
        "deformity",
        "type",
        "genant_grade",
        "trabecular_hu",
        "keypoints_mm",
        "anterior_dir",
        "cranial_dir",
    ] {
        assert!(
            truth["vertebrae"][0].get(key).is_some(),
            "truth vertebra lacks {key}"
        );
    }
    assert_eq!(truth["vertebrae"][0]["label"], "T1");
    assert!(truth["positive"].is_boolean() && truth["options"]["seed"] == 3);
}
