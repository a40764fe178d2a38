//! Same seed → same bytes; different seed → different study.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::small_spec;
use sha2::{Digest, Sha256};
use spinescreen_phantom::{generate, write_dicom_series, PhantomSpec};

fn tiny(seed: u64) -> PhantomSpec {
    PhantomSpec {
        matrix: 96,
        pixel_spacing_mm: Some(3.6),
        slices: 100,
        slice_thickness_mm: 4.5,
        confounders: vec!["ring".parse().unwrap(), "cement".parse().unwrap()],
        fractures: vec!["T9:wedge:0.3".parse().unwrap()],
        ..small_spec(seed)
    }
}

fn digest_of_series(spec: &PhantomSpec) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let ph = generate(spec).unwrap();
    let files = write_dicom_series(&ph, dir.path()).unwrap();
    let mut h = Sha256::new();
    let mut names = Vec::new();
    for f in files
        .iter()
        .chain(std::iter::once(&dir.path().join("truth.json")))
    {
        h.update(std::fs::read(f).unwrap());
        names.push(f.file_name().unwrap().to_string_lossy().to_string());
    }
    (hex::encode(h.finalize()), names)
}

#[test]
fn same_seed_gives_identical_bytes() {
    let (a, names) = digest_of_series(&tiny(5));
    let (b, _) = digest_of_series(&tiny(5));
    assert_eq!(a, b);
    assert_eq!(names.len(), 101);
    let (c, _) = digest_of_series(&tiny(6));
    assert_ne!(a, c);
}

#[test]
fn different_seeds_give_different_uids_and_anatomy() {
    let a = generate(&tiny(1)).unwrap();
    let b = generate(&tiny(2)).unwrap();
    assert_ne!(a.truth.study_instance_uid, b.truth.study_instance_uid);
    assert_ne!(
        a.truth.vertebrae[5].heights_mm,
        b.truth.vertebrae[5].heights_mm
    );
    assert_ne!(a.volume.voxels, b.volume.voxels);
}
