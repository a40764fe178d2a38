//! [`secondary_capture_series`]: the rendered frames as a DICOM Secondary Capture series in the
//! source study, one SC Image Storage instance per frame (PS3.3 A.8.1, SOP Class
//! 1.2.840.10008.5.1.4.1.1.7), Part-10 files in Explicit VR Little Endian (PS3.10 §7).
//!
//! Modules written: Patient (C.7.1.1), General Study (C.7.2.1), Patient Study (C.7.2.2), General
//! Series (C.7.3.1) with a Related Series Sequence naming the analysed series, General Equipment
//! (C.7.5.1), SC Equipment (C.8.6.1, Conversion Type `WSD`), General Image (C.7.6.1) with
//! Burned In Annotation `YES` and a Source Image Sequence naming every analysed instance, Image
//! Pixel (C.7.6.3: RGB, Planar Configuration 0), SOP Common (C.12.1, UTF-8 character set).
//!
//! UIDs are `2.25.<n>` (PS3.5 B.2) where `n` is a name-based UUID (RFC 9562 version 8) from a
//! SHA-256 of the study UID, the result content and the pixels, so a redelivered job writes the
//! same instances again, while changed content gets new UIDs as PS3.3 requires.

use crate::canvas::RgbImage;
use crate::config::RenderingConfig;
use crate::frame::FrameKind;
use crate::render::{RenderError, Rendered};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use sha2::{Digest, Sha256};
use spinescreen_dicom::{
    derived_uid, implementation_version_name, patient_study_module, IMPLEMENTATION_CLASS_UID,
};
use spinescreen_proto::uid::validate_uid;
use spinescreen_proto::{StudyInfo, StudyResult, VolumeHeader};

/// SOP Class of every instance written.
pub const SC_SOP_CLASS: &str = uids::SECONDARY_CAPTURE_IMAGE_STORAGE;
/// CT Image Storage, assumed for source instances whose class was not recorded.
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
/// What identifies the content of the series: the result without its timings (which change
/// on every run) and the pixels of every frame.
fn content_digest(rendered: &Rendered, result: &StudyResult) -> Result<Vec<u8>, RenderError> {
    let mut stable = result.clone();
    stable.timings_ms.clear();
    let json = serde_json::to_vec(&stable).map_err(|e| RenderError::Dicom(e.to_string()))?;
    let mut h = Sha256::new();
    h.update(&json);
    for f in &rendered.frames {
        h.update((f.width as u64).to_le_bytes());
        h.update((f.height as u64).to_le_bytes());
        h.update(&f.data);
    }
    Ok(h.finalize().to_vec())
}

fn str_el(tag: dicom_core::Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn u16_el(tag: dicom_core::Tag, value: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(value))
}

fn seq_el(tag: dicom_core::Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        str_el(tags::CODE_VALUE, VR::SH, value),
        str_el(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        str_el(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

/// Encode the rendered frames as a Secondary Capture series in the source study: one Part-10
/// file per frame, in frame order. Needs the source volume's header for the patient and study
/// modules and the references to the analysed series.
pub fn secondary_capture_series(
    rendered: &Rendered,
    volume_header: &VolumeHeader,
    result: &StudyResult,
    cfg: &RenderingConfig,
) -> Result<Vec<Vec<u8>>, RenderError> {
    if rendered.frames.is_empty() {
        return Err(RenderError::NoFrames);
    }
    let study = &volume_header.study;
    let study_uid = if study.study_instance_uid.is_empty() {
        result.study_instance_uid.as_str()
    } else {
        study.study_instance_uid.as_str()
    };
    validate_uid(study_uid).map_err(|e| RenderError::Dicom(e.to_string()))?;
    let digest = content_digest(rendered, result)?;
    let series = Series {
        study,
        study_uid,
        series_uid: derived_uid(&[study_uid.as_bytes(), b"sc-series", &digest]),
        source_items: source_image_items(study),
        result,
        cfg,
    };
    let mut files = Vec::with_capacity(rendered.frames.len());
    for (index, frame) in rendered.frames.iter().enumerate() {
        let sop_uid = derived_uid(&[
            study_uid.as_bytes(),
            b"sc-instance",
            &digest,
            &(index as u64).to_le_bytes(),
        ]);
        let kind = rendered
            .kinds
            .get(index)
            .copied()
            .unwrap_or(FrameKind::Notice);
        files.push(sc_instance(&series, index, kind, frame, &sop_uid)?);
    }
    Ok(files)
}

/// What every instance of one series shares.
struct Series<'a> {
    study: &'a StudyInfo,
    study_uid: &'a str,
    series_uid: String,
    /// Source Image Sequence items: every analysed instance with a valid UID.
    source_items: Vec<InMemDicomObject>,
    result: &'a StudyResult,
    cfg: &'a RenderingConfig,
}

/// The Source Image Sequence items naming every analysed instance.
fn source_image_items(study: &StudyInfo) -> Vec<InMemDicomObject> {
    let sop_class_source = if study.sop_class_uid.is_empty() {
        CT_IMAGE_STORAGE
    } else {
        study.sop_class_uid.as_str()
    };
    study
        .sop_instance_uids
        .iter()
        .filter(|u| validate_uid(u).is_ok())
        .map(|u| {
            InMemDicomObject::from_element_iter([
                str_el(tags::REFERENCED_SOP_CLASS_UID, VR::UI, sop_class_source),
                str_el(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, u),
                seq_el(
                    tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                    vec![code_item(
                        "121322",
                        "DCM",
                        "Source image for image processing operation",
                    )],
                ),
            ])
        })
        .collect()
}

/// One SC Image Storage instance (Part-10 bytes) for frame `index`.
fn sc_instance(
    series: &Series,
    index: usize,
    kind: FrameKind,
    frame: &RgbImage,
    sop_uid: &str,
) -> Result<Vec<u8>, RenderError> {
    let mut obj = InMemDicomObject::new_empty();
    // SOP Common
    obj.put(str_el(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"));
    obj.put(str_el(tags::SOP_CLASS_UID, VR::UI, SC_SOP_CLASS));
    obj.put(str_el(tags::SOP_INSTANCE_UID, VR::UI, sop_uid));
    // Patient, Patient Study, General Study
    for el in patient_study_module(series.study, series.study_uid) {
        obj.put(el);
    }
    if !series.study.study_description.is_empty() {
        obj.put(str_el(
            tags::STUDY_DESCRIPTION,
            VR::LO,
            &truncate(&series.study.study_description, 64),
        ));
    }
    put_series_and_equipment(&mut obj, series);
    put_general_image(&mut obj, series, index, kind);
    put_image_pixel(&mut obj, frame)?;
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(implementation_version_name()),
        )
        .map_err(|e| RenderError::Dicom(e.to_string()))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| RenderError::Dicom(e.to_string()))?;
    Ok(bytes)
}

/// General Series (with the Related Series Sequence naming the analysed series), General
/// Equipment and SC Equipment.
fn put_series_and_equipment(obj: &mut InMemDicomObject, series: &Series) {
    let (study, service, cfg) = (series.study, &series.result.service, series.cfg);
    // General Series
    obj.put(str_el(tags::MODALITY, VR::CS, "OT"));
    obj.put(str_el(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &series.series_uid,
    ));
    obj.put(str_el(
        tags::SERIES_NUMBER,
        VR::IS,
        &cfg.series_number.to_string(),
    ));
    obj.put(str_el(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &truncate(&service.name, 64),
    ));
    // The spine is unpaired, so Laterality (type 2C) is absent (PS3.3 C.7.3.1).
    obj.put(str_el(tags::BODY_PART_EXAMINED, VR::CS, "SPINE"));
    if validate_uid(&study.series_instance_uid).is_ok() {
        obj.put(seq_el(
            tags::RELATED_SERIES_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                str_el(tags::STUDY_INSTANCE_UID, VR::UI, series.study_uid),
                str_el(
                    tags::SERIES_INSTANCE_UID,
                    VR::UI,
                    &study.series_instance_uid,
                ),
                seq_el(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, vec![]),
            ])],
        ));
    }
    // General Equipment, SC Equipment
    obj.put(str_el(
        tags::MANUFACTURER,
        VR::LO,
        &truncate(&service.name, 64),
    ));
    obj.put(str_el(
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        &truncate(&service.version, 64),
    ));
    obj.put(str_el(tags::CONVERSION_TYPE, VR::CS, "WSD"));
    obj.put(str_el(
        tags::SECONDARY_CAPTURE_DEVICE_MANUFACTURER,
        VR::LO,
        &truncate(&service.name, 64),
    ));
    obj.put(str_el(
        tags::SECONDARY_CAPTURE_DEVICE_SOFTWARE_VERSIONS,
        VR::LO,
        &truncate(&service.version, 64),
    ));
}

/// General Image: instance number, orientation and derivation of the frame's kind, burned-in
/// annotation, and the Source Image Sequence for image frames.
fn put_general_image(obj: &mut InMemDicomObject, series: &Series, index: usize, kind: FrameKind) {
    let (orientation, derivation) = match kind {
        FrameKind::Sagittal => (
            "P\\F",
            "Curved planar reformation along the spine centreline, sagittal, with Genant overlays",
        ),
        FrameKind::Coronal => (
            "L\\F",
            "Curved planar reformation, coronal, with vertebra levels",
        ),
        FrameKind::Notice => ("", "Text frame: study not graded"),
    };
    obj.put(str_el(tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY"));
    obj.put(str_el(
        tags::INSTANCE_NUMBER,
        VR::IS,
        &(index + 1).to_string(),
    ));
    obj.put(str_el(tags::PATIENT_ORIENTATION, VR::CS, orientation));
    obj.put(str_el(tags::BURNED_IN_ANNOTATION, VR::CS, "YES"));
    obj.put(str_el(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"));
    obj.put(str_el(tags::DERIVATION_DESCRIPTION, VR::ST, derivation));
    if kind != FrameKind::Notice && !series.source_items.is_empty() {
        obj.put(seq_el(
            tags::SOURCE_IMAGE_SEQUENCE,
            series.source_items.clone(),
        ));
    }
}

/// Image Pixel: 8-bit RGB, planar configuration 0.
fn put_image_pixel(obj: &mut InMemDicomObject, frame: &RgbImage) -> Result<(), RenderError> {
    let (rows, cols) = (
        u16::try_from(frame.height).map_err(|_| RenderError::Dicom("frame too tall".into()))?,
        u16::try_from(frame.width).map_err(|_| RenderError::Dicom("frame too wide".into()))?,
    );
    obj.put(u16_el(tags::SAMPLES_PER_PIXEL, 3));
    obj.put(str_el(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB"));
    obj.put(u16_el(tags::PLANAR_CONFIGURATION, 0));
    obj.put(u16_el(tags::ROWS, rows));
    obj.put(u16_el(tags::COLUMNS, cols));
    obj.put(u16_el(tags::BITS_ALLOCATED, 8));
    obj.put(u16_el(tags::BITS_STORED, 8));
    obj.put(u16_el(tags::HIGH_BIT, 7));
    obj.put(u16_el(tags::PIXEL_REPRESENTATION, 0));
    let mut pixels = frame.data.clone();
    if pixels.len() % 2 == 1 {
        pixels.push(0); // OB values have even length (PS3.5 §7.1.1)
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pixels),
    ));
    Ok(())
}

/// DICOM strings are limited in length per VR (PS3.5 §6.2); cut on a character boundary.
fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}
