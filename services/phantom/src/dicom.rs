//! The phantom as a DICOM CT series: CT Image Storage (PS3.4 B.5; IOD PS3.3 A.3), one file per
//! slice, explicit VR little endian (PS3.5 A.2), signed 16-bit pixels stored as `HU + 1024` with
//! Rescale Intercept −1024 / Slope 1 (PS3.3 C.11.1.1.2), plus `truth.json` beside the slices.
//! Instance 1 is the most cranial slice, as a head-first chest acquisition numbers them.

use crate::{Phantom, PhantomError, CT_IMAGE_STORAGE};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use rayon::prelude::*;
use spinescreen_proto::StudyInfo;
use std::path::{Path, PathBuf};

/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Offset added to HU to get stored values.
const STORED_OFFSET: i32 = 1024;

/// Format a Decimal String value (PS3.5 6.2: at most 16 characters).
pub fn ds(x: f64) -> String {
    for prec in (0..=6).rev() {
        let s = format!("{:.*}", prec, x);
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        let s = if s == "-0" { "0".to_string() } else { s };
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{:.0}", x)
}

fn ds_multi(v: &[f64]) -> String {
    v.iter().map(|x| ds(*x)).collect::<Vec<_>>().join("\\")
}

/// Write the series into `dir` (created if missing): `CT000001.dcm`… (instance 1 = top slice)
/// and `truth.json`. Returns the slice paths in instance order.
pub fn write_dicom_series(phantom: &Phantom, dir: &Path) -> Result<Vec<PathBuf>, PhantomError> {
    std::fs::create_dir_all(dir).map_err(|e| PhantomError::io(dir, e))?;
    let h = &phantom.volume.header;
    let [nx, ny, nz] = h.dims;
    let paths: Vec<PathBuf> = (1..=nz)
        .map(|n| dir.join(format!("CT{n:06}.dcm")))
        .collect();
    paths
        .par_iter()
        .enumerate()
        .try_for_each(|(idx, path)| -> Result<(), PhantomError> {
            let instance = idx + 1;
            let k = nz - instance;
            let bytes =
                slice_file(phantom, k, instance, nx, ny).map_err(|reason| PhantomError::Dicom {
                    path: path.clone(),
                    reason,
                })?;
            std::fs::write(path, bytes).map_err(|e| PhantomError::io(path, e))
        })?;
    let truth_path = dir.join("truth.json");
    let json = serde_json::to_vec_pretty(&phantom.truth).map_err(|e| PhantomError::Dicom {
        path: truth_path.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&truth_path, json).map_err(|e| PhantomError::io(&truth_path, e))?;
    Ok(paths)
}

fn el(tag: dicom_core::Tag, vr: VR, v: impl Into<PrimitiveValue>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, v.into())
}

/// Encode one slice (volume index `k`) as a Part 10 file.
fn slice_file(
    phantom: &Phantom,
    k: usize,
    instance: usize,
    nx: usize,
    ny: usize,
) -> Result<Vec<u8>, String> {
    let h = &phantom.volume.header;
    let st = &h.study;
    let sop_uid = st
        .sop_instance_uids
        .get(k)
        .cloned()
        .ok_or_else(|| format!("no SOP Instance UID for slice {k}"))?;
    let mut o = InMemDicomObject::new_empty();
    put_sop_common_and_study(&mut o, st, &sop_uid);
    put_ct_acquisition(&mut o, phantom, nx);
    put_image_plane(&mut o, phantom, k, instance);
    put_image_pixel(&mut o, phantom, k, nx, ny);
    encode_part10(o, nx, ny)
}

/// A text value.
fn text(x: &str) -> PrimitiveValue {
    PrimitiveValue::from(x.to_string())
}

/// SOP Common (C.12.1), General Series and Equipment, then the Patient, Patient Study and
/// General Study modules copied from the study.
fn put_sop_common_and_study(o: &mut InMemDicomObject, st: &StudyInfo, sop_uid: &str) {
    o.put(el(tags::SPECIFIC_CHARACTER_SET, VR::CS, text("ISO_IR 100")));
    o.put(el(
        tags::IMAGE_TYPE,
        VR::CS,
        text("ORIGINAL\\PRIMARY\\AXIAL"),
    ));
    o.put(el(tags::SOP_CLASS_UID, VR::UI, text(CT_IMAGE_STORAGE)));
    o.put(el(tags::SOP_INSTANCE_UID, VR::UI, text(sop_uid)));
    o.put(el(tags::SERIES_DATE, VR::DA, text(&st.study_date)));
    o.put(el(tags::CONTENT_DATE, VR::DA, text(&st.study_date)));
    o.put(el(tags::SERIES_TIME, VR::TM, text(&st.study_time)));
    o.put(el(tags::CONTENT_TIME, VR::TM, text(&st.study_time)));
    o.put(el(tags::MODALITY, VR::CS, text("CT")));
    o.put(el(tags::MANUFACTURER, VR::LO, text("spinescreen")));
    o.put(el(
        tags::STUDY_DESCRIPTION,
        VR::LO,
        text(&st.study_description),
    ));
    o.put(el(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        text("Phantom chest 1mm"),
    ));
    o.put(el(
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        text("spinescreen-phantom"),
    ));
    // Patient (C.7.1.1), Patient Study (C.7.2.2), General Study (C.7.2.1)
    for e in spinescreen_dicom::patient_study_module(st, &st.study_instance_uid) {
        o.put(e);
    }
}

/// CT acquisition (C.8.2.1): fixed technique, the slice thickness, and (population studies)
/// the drawn kernel and contrast agent.
fn put_ct_acquisition(o: &mut InMemDicomObject, phantom: &Phantom, nx: usize) {
    let h = &phantom.volume.header;
    o.put(el(tags::SCAN_OPTIONS, VR::CS, text("HELICAL MODE")));
    o.put(el(
        tags::SLICE_THICKNESS,
        VR::DS,
        text(&ds(h.spacing_mm[2])),
    ));
    o.put(el(tags::KVP, VR::DS, text("120")));
    o.put(el(
        tags::SPACING_BETWEEN_SLICES,
        VR::DS,
        text(&ds(h.spacing_mm[2])),
    ));
    o.put(el(
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        text(env!("CARGO_PKG_VERSION")),
    ));
    o.put(el(tags::DATA_COLLECTION_DIAMETER, VR::DS, text("500")));
    o.put(el(
        tags::RECONSTRUCTION_DIAMETER,
        VR::DS,
        text(&ds(h.spacing_mm[0] * nx as f64)),
    ));
    o.put(el(tags::GANTRY_DETECTOR_TILT, VR::DS, text("0")));
    o.put(el(tags::TABLE_HEIGHT, VR::DS, text("150")));
    o.put(el(tags::ROTATION_DIRECTION, VR::CS, text("CW")));
    o.put(el(tags::EXPOSURE_TIME, VR::IS, text("500")));
    o.put(el(tags::X_RAY_TUBE_CURRENT, VR::IS, text("200")));
    // Population studies name their drawn kernel (Siemens-style: B30f soft, B70f sharp) and
    // contrast agent; the classic phantom keeps B30f and no agent.
    let pop = phantom.truth.options.population.as_ref();
    let kernel = match pop.map(|p| p.kernel) {
        Some(crate::population::Kernel::Sharp) => "B70f",
        _ => "B30f",
    };
    o.put(el(tags::CONVOLUTION_KERNEL, VR::SH, text(kernel)));
    if pop.is_some_and(|p| p.contrast_blood_hu.is_some()) {
        o.put(el(
            tags::CONTRAST_BOLUS_AGENT,
            VR::LO,
            text("IODINATED CONTRAST"),
        ));
    }
    o.put(el(tags::PATIENT_POSITION, VR::CS, text("HFS")));
    o.put(el(tags::BODY_PART_EXAMINED, VR::CS, text("CHEST")));
}

/// Series, instance and frame of reference identity and the Image Plane module (C.7.6.2) of
/// slice `k`.
fn put_image_plane(o: &mut InMemDicomObject, phantom: &Phantom, k: usize, instance: usize) {
    let h = &phantom.volume.header;
    let st = &h.study;
    let pos = h.index_to_patient([0.0, 0.0, k as f64]);
    o.put(el(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        text(&st.series_instance_uid),
    ));
    o.put(el(tags::SERIES_NUMBER, VR::IS, text(&st.series_number)));
    o.put(el(tags::ACQUISITION_NUMBER, VR::IS, text("1")));
    o.put(el(
        tags::INSTANCE_NUMBER,
        VR::IS,
        text(&instance.to_string()),
    ));
    o.put(el(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        text(&ds_multi(&pos)),
    ));
    o.put(el(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        text("1\\0\\0\\0\\1\\0"),
    ));
    o.put(el(
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        text(&st.frame_of_reference_uid),
    ));
    o.put(el(tags::POSITION_REFERENCE_INDICATOR, VR::LO, text("")));
    o.put(el(tags::SLICE_LOCATION, VR::DS, text(&ds(pos[2]))));
}

/// Image Pixel (C.7.6.3) and CT Image (C.8.2.1) attributes and slice `k`'s pixels, stored as
/// `HU + 1024` (clamped to 16 bits).
fn put_image_pixel(o: &mut InMemDicomObject, phantom: &Phantom, k: usize, nx: usize, ny: usize) {
    let h = &phantom.volume.header;
    let slice = phantom.volume.voxels.index_axis(ndarray::Axis(0), k);
    let pixels: Vec<u16> = slice
        .iter()
        .map(|&v| {
            ((v as i32 + STORED_OFFSET).clamp(i16::MIN as i32, i16::MAX as i32) as i16) as u16
        })
        .collect();
    o.put(el(
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    o.put(el(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        text("MONOCHROME2"),
    ));
    o.put(el(tags::ROWS, VR::US, PrimitiveValue::from(ny as u16)));
    o.put(el(tags::COLUMNS, VR::US, PrimitiveValue::from(nx as u16)));
    o.put(el(
        tags::PIXEL_SPACING,
        VR::DS,
        text(&ds_multi(&[h.spacing_mm[1], h.spacing_mm[0]])),
    ));
    o.put(el(
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16u16),
    ));
    o.put(el(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16)));
    o.put(el(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16)));
    o.put(el(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    o.put(el(tags::WINDOW_CENTER, VR::DS, text("400\\40")));
    o.put(el(tags::WINDOW_WIDTH, VR::DS, text("1800\\400")));
    o.put(el(
        tags::RESCALE_INTERCEPT,
        VR::DS,
        text(&ds(-(STORED_OFFSET as f64))),
    ));
    o.put(el(tags::RESCALE_SLOPE, VR::DS, text("1")));
    o.put(el(tags::RESCALE_TYPE, VR::LO, text("HU")));
    o.put(el(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
}

/// The data set behind a File Meta Information group (explicit VR little endian), as bytes.
fn encode_part10(o: InMemDicomObject, nx: usize, ny: usize) -> Result<Vec<u8>, String> {
    let file = o
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_VR_LE)
                .implementation_class_uid(spinescreen_dicom::IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(spinescreen_dicom::implementation_version_name()),
        )
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(nx * ny * 2 + 4096);
    file.write_all(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(0.703125), "0.703125");
        assert_eq!(ds(-1024.0), "-1024");
        assert_eq!(ds(-0.0000001), "0");
        assert!(ds(-123456.123456789).len() <= 16);
        assert_eq!(ds_multi(&[1.0, 0.5]), "1\\0.5");
    }
}
