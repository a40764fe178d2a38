//! Test support: small synthetic CT series written with dicom-object, with knobs for every
//! defect the ingest stage must recognise.
#![allow(dead_code)]

use bytes::Bytes;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use spinescreen_ingest::SourceFile;
use std::path::Path;

pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub const CT_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";

/// A series to write. Slices are written in shuffled order with reversed Instance Numbers, so a
/// reader that trusts either gets the order wrong.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub slices: usize,
    pub rows: usize,
    pub columns: usize,
    pub pixel_spacing: [f64; 2],
    pub slice_spacing: f64,
    pub thickness: f64,
    pub orientation: [f64; 6],
    pub origin: [f64; 3],
    pub modality: &'static str,
    pub sop_class: &'static str,
    pub image_type: &'static str,
    pub study_uid: String,
    pub series_uid: String,
    pub series_number: i32,
    /// Shear of the stack (degrees): positions move along y as they move along z.
    pub tilt_deg: f64,
    pub intercept: f64,
}

impl Default for SeriesSpec {
    fn default() -> Self {
        Self {
            slices: 24,
            rows: 32,
            columns: 40,
            pixel_spacing: [0.8, 0.7],
            slice_spacing: 1.25,
            thickness: 1.25,
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            origin: [-14.0, -12.0, -100.0],
            modality: "CT",
            sop_class: CT_STORAGE,
            image_type: "ORIGINAL\\PRIMARY\\AXIAL",
            study_uid: "1.2.826.0.1.3680043.9.7433.1.1".into(),
            series_uid: "1.2.826.0.1.3680043.9.7433.1.1.2".into(),
            series_number: 2,
            tilt_deg: 0.0,
            intercept: -1024.0,
        }
    }
}

/// Stored value of pixel (x, y) of slice k (k along the normal): a pattern that differs in every
/// axis so any transposition or flip shows.
pub fn stored(x: usize, y: usize, k: usize) -> u16 {
    ((x * 7 + y * 31 + k * 101) % 2400) as u16
}

fn ds(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x}"))
        .collect::<Vec<_>>()
        .join("\\")
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, v.into()));
}

impl SeriesSpec {
    pub fn sop_uid(&self, k: usize) -> String {
        format!("{}.{}", self.series_uid, k + 1)
    }

    /// Position of slice k along the normal.
    pub fn position(&self, k: usize) -> [f64; 3] {
        let o = &self.orientation;
        let n = [
            o[1] * o[5] - o[2] * o[4],
            o[2] * o[3] - o[0] * o[5],
            o[0] * o[4] - o[1] * o[3],
        ];
        let d = k as f64 * self.slice_spacing;
        let shear = d * self.tilt_deg.to_radians().tan();
        [
            self.origin[0] + n[0] * d,
            self.origin[1] + n[1] * d + shear,
            self.origin[2] + n[2] * d,
        ]
    }

    /// The dataset of slice k (no meta).
    pub fn slice(&self, k: usize) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        put(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
        put(&mut o, tags::IMAGE_TYPE, VR::CS, self.image_type);
        put(&mut o, tags::SOP_CLASS_UID, VR::UI, self.sop_class);
        put(&mut o, tags::SOP_INSTANCE_UID, VR::UI, self.sop_uid(k));
        put(&mut o, tags::STUDY_DATE, VR::DA, "20240115");
        put(&mut o, tags::STUDY_TIME, VR::TM, "093000");
        put(&mut o, tags::ACCESSION_NUMBER, VR::SH, "ACC42");
        put(&mut o, tags::MODALITY, VR::CS, self.modality);
        put(&mut o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
        put(&mut o, tags::STUDY_DESCRIPTION, VR::LO, "CT CHEST");
        put(&mut o, tags::PATIENT_NAME, VR::PN, "DOE^JANE");
        put(&mut o, tags::PATIENT_ID, VR::LO, "MRN0042");
        put(&mut o, tags::PATIENT_BIRTH_DATE, VR::DA, "19500101");
        put(&mut o, tags::PATIENT_SEX, VR::CS, "F");
        put(&mut o, tags::PATIENT_AGE, VR::AS, "074Y");
        put(&mut o, tags::SLICE_THICKNESS, VR::DS, ds(&[self.thickness]));
        put(
            &mut o,
            tags::GANTRY_DETECTOR_TILT,
            VR::DS,
            ds(&[self.tilt_deg]),
        );
        put(
            &mut o,
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            self.study_uid.as_str(),
        );
        put(
            &mut o,
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            self.series_uid.as_str(),
        );
        put(&mut o, tags::STUDY_ID, VR::SH, "7");
        put(
            &mut o,
            tags::SERIES_NUMBER,
            VR::IS,
            format!("{}", self.series_number),
        );
        put(
            &mut o,
            tags::INSTANCE_NUMBER,
            VR::IS,
            format!("{}", self.slices - k),
        );
        put(
            &mut o,
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            ds(&self.position(k)),
        );
        put(
            &mut o,
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds(&self.orientation),
        );
        put(
            &mut o,
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            format!("{}.9", self.study_uid),
        );
        put(&mut o, tags::SAMPLES_PER_PIXEL, VR::US, 1u16);
        put(
            &mut o,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2",
        );
        put(&mut o, tags::ROWS, VR::US, self.rows as u16);
        put(&mut o, tags::COLUMNS, VR::US, self.columns as u16);
        put(&mut o, tags::PIXEL_SPACING, VR::DS, ds(&self.pixel_spacing));
        put(&mut o, tags::BITS_ALLOCATED, VR::US, 16u16);
        put(&mut o, tags::BITS_STORED, VR::US, 12u16);
        put(&mut o, tags::HIGH_BIT, VR::US, 11u16);
        put(&mut o, tags::PIXEL_REPRESENTATION, VR::US, 0u16);
        put(
            &mut o,
            tags::RESCALE_INTERCEPT,
            VR::DS,
            ds(&[self.intercept]),
        );
        put(&mut o, tags::RESCALE_SLOPE, VR::DS, "1");
        let mut pixels = Vec::with_capacity(self.rows * self.columns);
        for y in 0..self.rows {
            for x in 0..self.columns {
                pixels.push(stored(x, y, k));
            }
        }
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(pixels.into()),
        ));
        o
    }

    /// Every slice as a Part 10 file, in shuffled order.
    pub fn files(&self) -> Vec<SourceFile> {
        self.files_with(|_, _| {})
    }

    /// Every slice, after `edit(k, dataset)`.
    pub fn files_with(&self, edit: impl Fn(usize, &mut InMemDicomObject)) -> Vec<SourceFile> {
        let mut order: Vec<usize> = (0..self.slices).collect();
        // Deterministic shuffle: odd slices first, then even, reversed.
        order.sort_by_key(|k| (k % 2 == 0, std::cmp::Reverse(*k)));
        order
            .into_iter()
            .map(|k| {
                let mut o = self.slice(k);
                edit(k, &mut o);
                SourceFile {
                    name: format!("s{}-{k:04}.dcm", self.series_number),
                    bytes: Bytes::from(part10(o, EXPLICIT_LE)),
                }
            })
            .collect()
    }

    /// Write the series as files into `dir`.
    pub fn write_dir(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for f in self.files() {
            std::fs::write(dir.join(&f.name), &f.bytes).unwrap();
        }
    }
}

/// Encode a dataset as a Part 10 file (with preamble).
pub fn part10(obj: InMemDicomObject, ts: &str) -> Vec<u8> {
    let class = obj
        .element(tags::SOP_CLASS_UID)
        .ok()
        .and_then(|e| e.to_str().ok().map(|s| s.to_string()))
        .unwrap_or_else(|| CT_STORAGE.into());
    let inst = obj
        .element(tags::SOP_INSTANCE_UID)
        .ok()
        .and_then(|e| e.to_str().ok().map(|s| s.to_string()))
        .unwrap_or_else(|| "1.2.3.4".into());
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(inst)
        .transfer_syntax(ts)
        .implementation_class_uid("1.2.826.0.1.3680043.9.7433.99")
        .build()
        .unwrap();
    let file = obj.with_exact_meta(meta);
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

/// Expected HU of voxel (x, y, k) for the default intercept.
pub fn expected_hu(spec: &SeriesSpec, x: usize, y: usize, k: usize) -> i16 {
    (stored(x, y, k) as f64 + spec.intercept) as i16
}
