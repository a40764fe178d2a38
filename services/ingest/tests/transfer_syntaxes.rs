//! Every transfer syntax a CT arrives in decodes to the same HU; the real JPEG 2000 slab decodes
//! to the HU dcm2niix gives, and its tissue values are plausible.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use spinescreen_ingest::{build_volume, read_nifti, IngestLimits, SourceFile};
use std::path::Path;
use std::process::Command;

fn limits() -> IngestLimits {
    IngestLimits {
        min_slices: 8,
        ..Default::default()
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// Re-encode every file of `dir` with a dcmtk tool into a new list of files.
fn recode(tool: &str, args: &[&str], files: &[SourceFile], tmp: &Path) -> Vec<SourceFile> {
    files
        .iter()
        .map(|f| {
            let src = tmp.join(format!("in-{}", f.name));
            let dst = tmp.join(format!("out-{}", f.name));
            std::fs::write(&src, &f.bytes).unwrap();
            let out = Command::new(tool)
                .args(args)
                .arg(&src)
                .arg(&dst)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            SourceFile {
                name: f.name.clone(),
                bytes: Bytes::from(std::fs::read(&dst).unwrap()),
            }
        })
        .collect()
}

fn transfer_syntax(file: &SourceFile) -> String {
    let obj = dicom_object::from_reader(&file.bytes[128..]).unwrap();
    obj.meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string()
}

#[test]
fn rle_jpeg_lossless_jpeg_ls_and_implicit_vr_decode_to_identical_hu() {
    let spec = SeriesSpec::default();
    let native = spec.files();
    let reference = build_volume(&native, &limits()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut cases: Vec<(&str, Vec<SourceFile>)> = vec![];
    let implicit: Vec<SourceFile> = (0..spec.slices)
        .map(|k| SourceFile {
            name: format!("{k}"),
            bytes: Bytes::from(part10(spec.slice(k), IMPLICIT_LE)),
        })
        .collect();
    cases.push(("1.2.840.10008.1.2", implicit));
    if have("dcmcrle") {
        cases.push((
            "1.2.840.10008.1.2.5",
            recode("dcmcrle", &[], &native, tmp.path()),
        ));
    }
    if have("dcmcjpeg") {
        // Default: lossless, first-order prediction (process 14, selection value 1).
        cases.push((
            "1.2.840.10008.1.2.4.70",
            recode("dcmcjpeg", &[], &native, tmp.path()),
        ));
    }
    if cfg!(feature = "jpeg-ls") && have("dcmcjpls") {
        cases.push((
            "1.2.840.10008.1.2.4.80",
            recode("dcmcjpls", &[], &native, tmp.path()),
        ));
    }
    assert!(cases.len() >= 2, "dcmtk codecs missing");
    for (ts, files) in cases {
        assert_eq!(transfer_syntax(&files[0]), ts);
        let v = build_volume(&files, &limits()).unwrap_or_else(|r| panic!("{ts}: {r:?}"));
        assert_eq!(v.header, reference.header, "{ts}");
        assert!(v.voxels == reference.voxels, "{ts}: voxels differ");
    }
}

const SLAB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/real/dicom-j2k-slab"
);
const SLAB_LABELS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/real/dicom-j2k-slab-labels.nii.gz"
);

#[test]
fn real_jpeg2000_slab_decodes_to_the_hu_dcm2niix_gives() {
    if !Path::new(SLAB).exists() || !have("dcm2niix") {
        eprintln!("skipping: slab or dcm2niix missing");
        return;
    }
    let files = SourceFile::read_dir(Path::new(SLAB)).unwrap();
    let v = build_volume(&files, &IngestLimits::default()).unwrap();
    assert_eq!(v.header.dims, [512, 512, 20]);
    assert!((v.header.spacing_mm[2] - 2.0).abs() < 1e-6);
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("dcm2niix")
        .args(["-z", "n", "-f", "slab", "-o"])
        .arg(tmp.path())
        .arg(SLAB)
        .output()
        .unwrap();
    assert!(out.status.success());
    let reference = read_nifti(&tmp.path().join("slab.nii")).unwrap();
    assert_eq!(reference.header.dims, v.header.dims);
    for a in 0..3 {
        assert!((reference.header.origin_mm[a] - v.header.origin_mm[a]).abs() < 1e-3);
        assert!((reference.header.spacing_mm[a] - v.header.spacing_mm[a]).abs() < 1e-4);
    }
    assert_eq!(reference.header.direction, v.header.direction);
    assert!(reference.voxels == v.voxels, "HU differ from dcm2niix");
}

#[test]
fn real_jpeg2000_slab_has_air_soft_tissue_and_bone_where_expected() {
    if !Path::new(SLAB).exists() || !Path::new(SLAB_LABELS).exists() {
        eprintln!("skipping: slab missing");
        return;
    }
    let files = SourceFile::read_dir(Path::new(SLAB)).unwrap();
    let v = build_volume(&files, &IngestLimits::default()).unwrap();
    let labels = read_nifti(Path::new(SLAB_LABELS)).unwrap();
    assert_eq!(labels.header.dims, v.header.dims);
    for a in 0..3 {
        assert!((labels.header.origin_mm[a] - v.header.origin_mm[a]).abs() < 1e-3);
    }
    // The label map is TotalSegmentator-style (organ and bone classes); labels 32 and 33 are
    // the two thoracic vertebrae in the slab, 1 and 5 spleen and liver.
    let median_of = |wanted: &[i16]| {
        let mut hu: Vec<i16> = labels
            .voxels
            .iter()
            .zip(v.voxels.iter())
            .filter(|(l, _)| wanted.contains(l))
            .map(|(_, h)| *h)
            .collect();
        assert!(hu.len() > 5_000, "{} voxels labelled {wanted:?}", hu.len());
        hu.sort();
        hu[hu.len() / 2]
    };
    let vertebrae = median_of(&[32, 33]);
    assert!(vertebrae > 150, "median vertebral HU {vertebrae}");
    let organs = median_of(&[1, 5]);
    assert!(
        (30..=130).contains(&organs),
        "median spleen/liver HU {organs}"
    );
    // Air in front of the patient: the anterior rows of the middle slice.
    let mid = v.voxels.index_axis(ndarray::Axis(0), 10);
    let air: Vec<i16> = mid.row(5).iter().copied().collect();
    let median_air = {
        let mut a = air.clone();
        a.sort();
        a[a.len() / 2]
    };
    assert!((-1100..=-900).contains(&median_air), "air {median_air}");
    // Soft tissue: the most common HU between −200 and 200 is parenchyma, 0–120 HU in this
    // contrast-enhanced scan (liver ≈ 95 HU); fat (−130 to −70 HU) is common too.
    let mut hist = vec![0usize; 401];
    for &h in v.voxels.iter() {
        if (-200..=200).contains(&h) {
            hist[(h + 200) as usize] += 1;
        }
    }
    let mode = hist.iter().enumerate().max_by_key(|(_, c)| **c).unwrap().0 as i32 - 200;
    assert!((0..=120).contains(&mode), "soft-tissue mode {mode}");
    let fat: usize = hist[70..=130].iter().sum();
    assert!(fat > v.voxels.len() / 100, "{fat} fat voxels");
}
