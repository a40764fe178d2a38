//! One received file parsed into what selection, validation and decoding need.
//!
//! Each file becomes an [`Instance`]: its identifying UIDs, the attributes of the Image Plane
//! (PS3.3 C.7.6.2), Image Pixel (C.7.6.3) and CT Image (C.8.2.1) modules, one [`Frame`] per
//! frame (Enhanced CT frames take their geometry from the functional groups, PS3.3 C.7.6.16),
//! and the pixel data itself. Attributes are kept as `Option`s: a missing one only matters if
//! the instance belongs to the series that is finally chosen.

use crate::config::IngestLimits;
use crate::guard::{check_part10, part10_body, Checked, Rejected};
use crate::uidgen::derived_uid;
use dicom_core::{header::HasLength, value::Value, PrimitiveValue, Tag};
use dicom_dictionary_std::tags;
use dicom_object::{file::ReadPreamble, DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use spinescreen_proto::uid::validate_uid;
use spinescreen_proto::StudyInfo;

/// CT Image Storage (PS3.4 B.5).
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Enhanced CT Image Storage.
pub const ENHANCED_CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2.1";
/// Legacy Converted Enhanced CT Image Storage.
pub const LEGACY_ENHANCED_CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2.2";

/// Pixel data as read from the file.
pub(crate) enum Pixels {
    /// Native (uncompressed) 16-bit samples, already in host order.
    Words(Vec<u16>),
    /// Native 8-bit samples, or 16-bit samples stored as bytes (little-endian); for files in an
    /// uncompressed little-endian transfer syntax, a zero-copy view of the received file.
    Bytes(bytes::Bytes),
    /// Encapsulated (compressed) pixel data: the whole object, decoded frame by frame later.
    Encapsulated(Box<DefaultDicomObject>),
    /// Pixel data present in the header but cut short (truncated file).
    Truncated,
    /// No Pixel Data element.
    Missing,
}

/// Geometry and rescale of one frame (a slice).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    /// Frame number within the instance (0 for single-frame images).
    pub index: u32,
    /// (0020,0032) Image Position (Patient).
    pub position: Option<[f64; 3]>,
    /// (0020,0037) Image Orientation (Patient): row cosines then column cosines.
    pub orientation: Option<[f64; 6]>,
    /// (0028,0030) Pixel Spacing: row spacing (between rows), column spacing (between columns).
    pub pixel_spacing: Option<[f64; 2]>,
    /// (0018,0050) Slice Thickness.
    pub thickness: Option<f64>,
    /// (0028,1053) Rescale Slope (1 when absent).
    pub slope: f64,
    /// (0028,1052) Rescale Intercept (0 when absent).
    pub intercept: f64,
}

/// A parsed DICOM instance.
pub(crate) struct Instance {
    /// Where it came from (storage key or file name; never patient data).
    pub source: String,
    /// Transfer syntax UID of the file.
    pub transfer_syntax: String,
    /// (0008,0018).
    pub sop_instance_uid: String,
    /// (0008,0016).
    pub sop_class_uid: String,
    /// (0020,000D).
    pub study_uid: String,
    /// (0020,000E).
    pub series_uid: String,
    /// (0020,0011).
    pub series_number: String,
    /// (0008,0060).
    pub modality: String,
    /// (0008,0008) Image Type values, upper-case.
    pub image_type: Vec<String>,
    /// (0020,0052).
    pub frame_of_reference_uid: String,
    /// (0028,0010) Rows; `None` if missing or not a number.
    pub rows: Option<u32>,
    /// (0028,0011) Columns.
    pub columns: Option<u32>,
    /// (0028,0002) Samples per Pixel.
    pub samples_per_pixel: u16,
    /// (0028,0100) Bits Allocated.
    pub bits_allocated: Option<u16>,
    /// (0028,0101) Bits Stored.
    pub bits_stored: Option<u16>,
    /// (0028,0103) Pixel Representation (1 = signed).
    pub signed: bool,
    /// (0028,0120) Pixel Padding Value and (0028,0121) Pixel Padding Range Limit, raw stored
    /// values (PS3.3 C.7.5.1.1.2).
    pub padding: Option<(i32, Option<i32>)>,
    /// (0018,1120) Gantry/Detector Tilt, degrees.
    pub gantry_tilt: Option<f64>,
    /// Attributes that are present but unusable (wrong VR or unparsable), by keyword.
    pub malformed: Vec<&'static str>,
    /// UID attributes that were unusable and replaced (File Meta copy or derived), by keyword.
    pub replaced_uids: Vec<&'static str>,
    /// One entry per frame.
    pub frames: Vec<Frame>,
    /// The pixels.
    pub pixels: Pixels,
    /// Patient and study module.
    pub study: StudyInfo,
}

/// Why a file did not parse as DICOM (not a defect by itself: receptions may carry other files).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NotDicom {
    /// The file.
    pub source: String,
    /// Parser message (no patient data: dicom-rs reports tags and positions).
    pub why: String,
    /// Whether it was refused for exceeding a configured limit (`OVERSIZE`), not for being
    /// unreadable.
    pub oversize: bool,
}

/// Parse one file. A file whose header parses but whose pixel data is cut short is returned
/// with [`Pixels::Truncated`], so the defect can be named precisely. The file is checked by
/// [`crate::guard`] first, so the parser never sees a hostile length or nesting; a file over a
/// limit is [`Parsed::Oversize`].
pub(crate) fn parse_instance(
    source: &str,
    bytes: &bytes::Bytes,
    limits: &IngestLimits,
) -> Result<Instance, NotDicom> {
    let not = |why: String| NotDicom {
        source: source.to_string(),
        why,
        oversize: false,
    };
    let checked = check_part10(bytes, &limits.guard());
    let offset = match &checked {
        Ok(c) => c.offset,
        Err(Rejected::TruncatedPixelData(_)) => part10_body(bytes).map(|(o, _)| o).unwrap_or(0),
        Err(Rejected::OverLimit(why)) => {
            return Err(NotDicom {
                source: source.to_string(),
                why: why.clone(),
                oversize: true,
            })
        }
        Err(e) => return Err(not(e.to_string())),
    };
    let body = &bytes[offset..];
    let head_only = || {
        OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .read_until(tags::PIXEL_DATA)
            .from_reader(body)
    };
    let full = match checked {
        // Uncompressed little-endian pixels: parse the header only and take the pixels straight
        // from the received bytes, with no copy.
        Ok(Checked {
            native_pixel_data: Some((start, len)),
            ..
        }) => {
            let head = head_only().map_err(|e| not(e.to_string()))?;
            let pixels = Pixels::Bytes(bytes.slice(start..start + len));
            return from_object(source, bytes, head, Some(pixels), limits);
        }
        Ok(_) => OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .from_reader(body)
            .map_err(|e| e.to_string()),
        // A Pixel Data element cut short is a truncated image: read its header below.
        Err(why) => Err(why.to_string()),
    };
    match full {
        Ok(obj) => from_object(source, bytes, obj, None, limits),
        Err(full_err) => {
            // Retry up to the pixel data: a truncated image still tells us its series.
            let head = head_only().map_err(|_| not(full_err.clone()))?;
            if head.element_opt(tags::MODALITY).ok().flatten().is_none() {
                return Err(not(full_err));
            }
            from_object(source, bytes, head, Some(Pixels::Truncated), limits)
        }
    }
}

/// An attribute's text with DICOM padding (trailing NUL or space) removed; empty when absent.
pub(crate) use spinescreen_dicom::text;

/// A numeric attribute: `Ok(None)` when absent or empty, `Err(())` when present but unusable.
fn floats(obj: &InMemDicomObject, tag: Tag) -> Result<Option<Vec<f64>>, ()> {
    match obj.element_opt(tag) {
        Ok(None) => Ok(None),
        Err(_) => Err(()),
        Ok(Some(e)) => {
            if e.is_empty() {
                return Ok(None);
            }
            match e.value() {
                Value::Primitive(_) => {}
                _ => return Err(()),
            }
            let v = e.to_multi_float64().map_err(|_| ())?;
            if v.iter().all(|x| x.is_finite()) {
                Ok(Some(v))
            } else {
                Err(())
            }
        }
    }
}

fn fixed<const N: usize>(
    obj: &InMemDicomObject,
    tag: Tag,
    name: &'static str,
    malformed: &mut Vec<&'static str>,
) -> Option<[f64; N]> {
    match floats(obj, tag) {
        Ok(Some(v)) if v.len() >= N => {
            let mut out = [0f64; N];
            out.copy_from_slice(&v[..N]);
            Some(out)
        }
        Ok(None) => None,
        _ => {
            malformed.push(name);
            None
        }
    }
}

fn scalar(
    obj: &InMemDicomObject,
    tag: Tag,
    name: &'static str,
    malformed: &mut Vec<&'static str>,
) -> Option<f64> {
    fixed::<1>(obj, tag, name, malformed).map(|[v]| v)
}

fn uint(
    obj: &InMemDicomObject,
    tag: Tag,
    name: &'static str,
    malformed: &mut Vec<&'static str>,
) -> Option<u32> {
    match scalar(obj, tag, name, malformed) {
        Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 => Some(v as u32),
        Some(_) => {
            malformed.push(name);
            None
        }
        None => None,
    }
}

/// First item of a sequence attribute.
fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .and_then(|i| i.first())
}

/// Frame attributes from a functional-group item (shared or per-frame), PS3.3 C.7.6.16.2.
fn apply_functional_group(
    group: &InMemDicomObject,
    frame: &mut Frame,
    malformed: &mut Vec<&'static str>,
) {
    if let Some(pos) = first_item(group, tags::PLANE_POSITION_SEQUENCE) {
        if let Some(p) = fixed::<3>(
            pos,
            tags::IMAGE_POSITION_PATIENT,
            "ImagePositionPatient",
            malformed,
        ) {
            frame.position = Some(p);
        }
    }
    if let Some(or) = first_item(group, tags::PLANE_ORIENTATION_SEQUENCE) {
        if let Some(o) = fixed::<6>(
            or,
            tags::IMAGE_ORIENTATION_PATIENT,
            "ImageOrientationPatient",
            malformed,
        ) {
            frame.orientation = Some(o);
        }
    }
    if let Some(m) = first_item(group, tags::PIXEL_MEASURES_SEQUENCE) {
        if let Some(s) = fixed::<2>(m, tags::PIXEL_SPACING, "PixelSpacing", malformed) {
            frame.pixel_spacing = Some(s);
        }
        if let Some(t) = scalar(m, tags::SLICE_THICKNESS, "SliceThickness", malformed) {
            frame.thickness = Some(t);
        }
    }
    if let Some(r) = first_item(group, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE) {
        if let Some(s) = scalar(r, tags::RESCALE_SLOPE, "RescaleSlope", malformed) {
            frame.slope = s;
        }
        if let Some(i) = scalar(r, tags::RESCALE_INTERCEPT, "RescaleIntercept", malformed) {
            frame.intercept = i;
        }
    }
}

/// An [`Instance`] from a parsed object; `pixels` when the caller already has them (a zero-copy
/// view of the received bytes, or [`Pixels::Truncated`]), else taken out of `obj`.
fn from_object(
    source: &str,
    bytes: &[u8],
    obj: DefaultDicomObject,
    pixels: Option<Pixels>,
    limits: &IngestLimits,
) -> Result<Instance, NotDicom> {
    let transfer_syntax = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    // Unusable attributes by keyword, in the order they are read.
    let mut malformed = Vec::new();
    let m = &mut malformed;
    let base = base_frame(&obj, m);
    let n_frames = uint(&obj, tags::NUMBER_OF_FRAMES, "NumberOfFrames", m)
        .unwrap_or(1)
        .max(1);
    // Before one frame is allocated: NumberOfFrames is a header field any sender can set.
    let rows = uint(&obj, tags::ROWS, "Rows", m);
    let columns = uint(&obj, tags::COLUMNS, "Columns", m);
    if let Some(why) = limits.frames_over_limit(n_frames, rows, columns) {
        return Err(NotDicom {
            source: source.to_string(),
            why,
            oversize: true,
        });
    }
    let frames = frames(&obj, base, n_frames, m);
    let image_type = text(&obj, tags::IMAGE_TYPE)
        .split('\\')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    let format = pixel_format(&obj, m);
    let gantry_tilt = scalar(&obj, tags::GANTRY_DETECTOR_TILT, "GantryDetectorTilt", m);
    let mut study = study_info(&obj);
    let (sop_instance_uid, replaced_uids) = usable_sop_uids(&obj, bytes, &mut study);
    let modality = text(&obj, tags::MODALITY).to_ascii_uppercase();
    let pixels = match pixels {
        Some(p) => p,
        None => take_pixels(obj),
    };
    Ok(Instance {
        source: source.to_string(),
        transfer_syntax,
        sop_instance_uid,
        sop_class_uid: study.sop_class_uid.clone(),
        study_uid: study.study_instance_uid.clone(),
        series_uid: study.series_instance_uid.clone(),
        series_number: study.series_number.clone(),
        modality,
        image_type,
        frame_of_reference_uid: study.frame_of_reference_uid.clone(),
        rows,
        columns,
        samples_per_pixel: format.samples_per_pixel,
        bits_allocated: format.bits_allocated,
        bits_stored: format.bits_stored,
        signed: format.signed,
        padding: format.padding,
        gantry_tilt,
        malformed,
        replaced_uids,
        frames,
        pixels,
        study,
    })
}

/// The geometry and rescale in the top-level data set (a single-frame image's, a multi-frame
/// image's defaults).
fn base_frame(obj: &InMemDicomObject, m: &mut Vec<&'static str>) -> Frame {
    Frame {
        index: 0,
        position: fixed::<3>(obj, tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient", m),
        orientation: fixed::<6>(
            obj,
            tags::IMAGE_ORIENTATION_PATIENT,
            "ImageOrientationPatient",
            m,
        ),
        pixel_spacing: fixed::<2>(obj, tags::PIXEL_SPACING, "PixelSpacing", m),
        thickness: scalar(obj, tags::SLICE_THICKNESS, "SliceThickness", m),
        slope: scalar(obj, tags::RESCALE_SLOPE, "RescaleSlope", m).unwrap_or(1.0),
        intercept: scalar(obj, tags::RESCALE_INTERCEPT, "RescaleIntercept", m).unwrap_or(0.0),
    }
}

/// One [`Frame`] per frame: `base` alone for a single-frame image; for a multi-frame or
/// Enhanced image, `base` overridden by the shared then each frame's functional groups.
fn frames(
    obj: &InMemDicomObject,
    base: Frame,
    n_frames: u32,
    m: &mut Vec<&'static str>,
) -> Vec<Frame> {
    let per_frame_element = obj
        .element_opt(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .flatten();
    if n_frames <= 1 && per_frame_element.is_none() {
        return vec![base];
    }
    let mut shared = base;
    if let Some(s) = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE) {
        apply_functional_group(s, &mut shared, m);
    }
    let per_frame: &[InMemDicomObject] = per_frame_element.and_then(|e| e.items()).unwrap_or(&[]);
    (0..n_frames)
        .map(|i| {
            let mut f = shared.clone();
            f.index = i;
            if let Some(item) = per_frame.get(i as usize) {
                apply_functional_group(item, &mut f, m);
            } else if n_frames > 1 {
                // Without per-frame positions all frames would share one position.
                f.position = None;
            }
            f
        })
        .collect()
}

/// How the pixel samples are stored (Image Pixel module, PS3.3 C.7.6.3).
struct PixelFormat {
    samples_per_pixel: u16,
    bits_allocated: Option<u16>,
    bits_stored: Option<u16>,
    signed: bool,
    padding: Option<(i32, Option<i32>)>,
}

fn pixel_format(obj: &InMemDicomObject, m: &mut Vec<&'static str>) -> PixelFormat {
    let signed = uint(obj, tags::PIXEL_REPRESENTATION, "PixelRepresentation", m) == Some(1);
    let padding = scalar(obj, tags::PIXEL_PADDING_VALUE, "PixelPaddingValue", m).map(|p| {
        let limit = scalar(
            obj,
            tags::PIXEL_PADDING_RANGE_LIMIT,
            "PixelPaddingRangeLimit",
            m,
        );
        (p as i32, limit.map(|l| l as i32))
    });
    PixelFormat {
        samples_per_pixel: uint(obj, tags::SAMPLES_PER_PIXEL, "SamplesPerPixel", m).unwrap_or(1)
            as u16,
        bits_allocated: uint(obj, tags::BITS_ALLOCATED, "BitsAllocated", m).map(|v| v as u16),
        bits_stored: uint(obj, tags::BITS_STORED, "BitsStored", m).map(|v| v as u16),
        signed,
        padding,
    }
}

/// The Patient, General Study and General Series attributes as written in the file (SOP UIDs
/// not yet checked).
fn study_info(obj: &InMemDicomObject) -> StudyInfo {
    let agent = text(obj, tags::CONTRAST_BOLUS_AGENT);
    StudyInfo {
        patient_name: text(obj, tags::PATIENT_NAME),
        patient_id: text(obj, tags::PATIENT_ID),
        patient_birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
        patient_sex: text(obj, tags::PATIENT_SEX),
        patient_age: text(obj, tags::PATIENT_AGE),
        study_instance_uid: text(obj, tags::STUDY_INSTANCE_UID),
        study_date: text(obj, tags::STUDY_DATE),
        study_time: text(obj, tags::STUDY_TIME),
        study_id: text(obj, tags::STUDY_ID),
        accession_number: text(obj, tags::ACCESSION_NUMBER),
        referring_physician_name: text(obj, tags::REFERRING_PHYSICIAN_NAME),
        study_description: text(obj, tags::STUDY_DESCRIPTION),
        series_instance_uid: text(obj, tags::SERIES_INSTANCE_UID),
        series_number: text(obj, tags::SERIES_NUMBER),
        frame_of_reference_uid: text(obj, tags::FRAME_OF_REFERENCE_UID),
        sop_class_uid: text(obj, tags::SOP_CLASS_UID),
        sop_instance_uids: vec![],
        contrast_agent: (!agent.is_empty()).then_some(agent),
    }
}

/// Usable SOP Instance and SOP Class UIDs: the data set's, else the File Meta Information's
/// copy, else (instance UID only) one derived from the file's bytes. Sets
/// `study.sop_class_uid`; returns the SOP Instance UID and the keywords of the UIDs replaced.
fn usable_sop_uids(
    obj: &DefaultDicomObject,
    bytes: &[u8],
    study: &mut StudyInfo,
) -> (String, Vec<&'static str>) {
    // Anonymisers sometimes blank the dataset's SOP UIDs; the File Meta Information keeps them
    // (PS3.10 §7.1, Media Storage SOP Class/Instance UID).
    let meta_uid = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
    if study.sop_class_uid.is_empty() {
        study.sop_class_uid = meta_uid(&obj.meta().media_storage_sop_class_uid);
    }
    // An unusable SOP Instance UID (empty, overlong, not digits and dots) would make the SR
    // unbuildable: take the File Meta Information's copy, else derive one from the file's
    // bytes (stable across re-sends), and say so.
    let mut sop_instance_uid = text(obj, tags::SOP_INSTANCE_UID);
    let mut replaced_uids = vec![];
    if validate_uid(&sop_instance_uid).is_err() {
        let meta = meta_uid(&obj.meta().media_storage_sop_instance_uid);
        if validate_uid(&meta).is_ok() {
            sop_instance_uid = meta;
        } else {
            sop_instance_uid = derived_uid("spinescreen.ingest.instance", bytes);
        }
        if !text(obj, tags::SOP_INSTANCE_UID).is_empty() {
            replaced_uids.push("SOPInstanceUID");
        }
    }
    if validate_uid(&study.sop_class_uid).is_err() {
        let meta = meta_uid(&obj.meta().media_storage_sop_class_uid);
        if !study.sop_class_uid.is_empty() {
            replaced_uids.push("SOPClassUID");
        }
        study.sop_class_uid = if validate_uid(&meta).is_ok() {
            meta
        } else {
            String::new()
        };
    }
    (sop_instance_uid, replaced_uids)
}

/// Move the pixel data out of the object: native samples as a buffer, encapsulated frames with
/// the object that describes them.
fn take_pixels(mut obj: DefaultDicomObject) -> Pixels {
    let encapsulated = match obj.element_opt(tags::PIXEL_DATA) {
        Ok(Some(e)) => matches!(e.value(), Value::PixelSequence(_)),
        _ => return Pixels::Missing,
    };
    if encapsulated {
        return Pixels::Encapsulated(Box::new(obj));
    }
    let Ok(e) = obj.take_element(tags::PIXEL_DATA) else {
        return Pixels::Missing;
    };
    match e.into_value() {
        Value::Primitive(PrimitiveValue::U16(v)) => Pixels::Words(v.into_vec()),
        Value::Primitive(PrimitiveValue::I16(v)) => {
            Pixels::Words(v.into_iter().map(|x| x as u16).collect())
        }
        Value::Primitive(PrimitiveValue::U8(v)) => Pixels::Bytes(bytes::Bytes::from(v.into_vec())),
        Value::Primitive(PrimitiveValue::Empty) => Pixels::Missing,
        Value::Primitive(other) => match other.to_bytes() {
            std::borrow::Cow::Borrowed(b) => Pixels::Bytes(bytes::Bytes::copy_from_slice(b)),
            std::borrow::Cow::Owned(b) => Pixels::Bytes(bytes::Bytes::from(b)),
        },
        _ => Pixels::Missing,
    }
}
