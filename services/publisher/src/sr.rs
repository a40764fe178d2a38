//! The structured report: a Comprehensive 3D SR (PS3.3 A.35.13; or, by configuration, a
//! Comprehensive SR, A.35.3) whose content follows TID 1500
//! "Measurement Report" (PS3.16), with one TID 1501 measurement group per vertebra.
//!
//! Content tree:
//!
//! ```text
//! CONTAINER (126000, DCM, "Imaging Measurement Report")          TID 1500 row 1
//!  ├ HAS CONCEPT MOD  CODE  Language = eng | rus                TID 1204
//!  ├ HAS OBS CONTEXT  CODE  Observer Type = Device              TID 1002
//!  ├ HAS OBS CONTEXT  UIDREF/TEXT device UID, name, manufacturer, model   TID 1004
//!  ├ HAS CONCEPT MOD  CODE  Procedure reported = CT (LN 25045-6) TID 1500 row 4
//!  ├ CONTAINS CONTAINER Image Library → Image Library Group → IMAGE (source CT)  TID 1600
//!  ├ CONTAINS CONTAINER (126010, DCM, "Imaging Measurements")   TID 1500 row 6
//!  │   └ CONTAINS CONTAINER Measurement Group, one per vertebra TID 1501
//!  │        ├ HAS OBS CONTEXT TEXT Tracking Identifier = "L1"; UIDREF Tracking UID
//!  │        ├ HAS CONCEPT MOD CODE Finding Site = SCT vertebra
//!  │        ├ CONTAINS NUM heights (mm), height loss (%), mean/median attenuation ([hnsf'U])
//!  │        └ CONTAINS CODE Genant grade, deformity type          TID 1501 row 11
//!  └ CONTAINS CONTAINER (C0034375, UMLS, "Qualitative Evaluations")  TID 1500 row 12
//!      └ CONTAINS TEXT service name, description, conclusion, user guide  TID 1500 row 14
//! ```
//!
//! The SOP Instance UID depends only on the study and the result's content ([`crate::uid`]), so
//! re-publishing the same result replaces rather than duplicates the SR at the PACS.

use crate::codes::{self, Code};
use crate::config::{Language, PublisherConfig, SrStorage};
use crate::error::PublishError;
use crate::text;
use crate::uid::{self, SrUids};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use spinescreen_dicom::{
    implementation_version_name, patient_study_module, IMPLEMENTATION_CLASS_UID,
};
use spinescreen_proto::{DeformityType, ServiceInfo, StudyInfo, StudyResult};
use time::OffsetDateTime;

/// Transfer syntax the SR is written in: Explicit VR Little Endian.
pub const SR_TRANSFER_SYNTAX_UID: &str = uids::EXPLICIT_VR_LITTLE_ENDIAN;
/// Series Number of the SR series (fixed: one SR series per study).
pub const SR_SERIES_NUMBER: &str = "990";
/// CT Image Storage, assumed for source instances whose class was not recorded.
const CT_IMAGE_STORAGE: &str = uids::CT_IMAGE_STORAGE;

/// A reference to one composite instance (source image or derived secondary capture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRef {
    /// Series Instance UID.
    pub series_instance_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
}

/// Relationship of a content item to its parent (PS3.3 C.17.3.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    Contains,
    HasObsContext,
    HasConceptMod,
}

impl Rel {
    fn as_str(self) -> &'static str {
        match self {
            Rel::Contains => "CONTAINS",
            Rel::HasObsContext => "HAS OBS CONTEXT",
            Rel::HasConceptMod => "HAS CONCEPT MOD",
        }
    }
}

/// The value of a content item (PS3.3 C.17.3.2.1 value types used here).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Container(Vec<Item>),
    Text(String),
    Code(Code),
    Num { value: f64, unit: Code },
    UidRef(String),
    Image { class: String, instance: String },
}

/// One content item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    rel: Rel,
    concept: Option<Code>,
    value: Value,
}

impl Item {
    fn new(rel: Rel, concept: Code, value: Value) -> Self {
        Self {
            rel,
            concept: Some(concept),
            value,
        }
    }
    fn text(rel: Rel, concept: Code, text: impl Into<String>) -> Self {
        Self::new(rel, concept, Value::Text(text.into()))
    }
    fn code(rel: Rel, concept: Code, value: Code) -> Self {
        Self::new(rel, concept, Value::Code(value))
    }
    fn num(concept: Code, value: f64, unit: Code) -> Self {
        Self::new(Rel::Contains, concept, Value::Num { value, unit })
    }
    fn container(rel: Rel, concept: Code, children: Vec<Item>) -> Self {
        Self::new(rel, concept, Value::Container(children))
    }
}

/// Build the study's SR as DICOM Part-10 bytes, dated now, without derived-series evidence.
///
/// `study` is the patient/study module of the source series; when it is unavailable (a
/// technical defect before ingest could read it) pass `StudyInfo::default()`: the SR then carries
/// the result's Study Instance UID and empty type-2 patient attributes.
pub fn build_sr(
    result: &StudyResult,
    study: &StudyInfo,
    cfg: &PublisherConfig,
    service: &ServiceInfo,
) -> Result<Vec<u8>, PublishError> {
    build_sr_with(result, study, cfg, service, &[], OffsetDateTime::now_utc())
}

/// [`build_sr`] with the instances this service derived (the secondary-capture series, added to
/// the evidence) and an explicit creation time (content date/time).
pub fn build_sr_with(
    result: &StudyResult,
    study: &StudyInfo,
    cfg: &PublisherConfig,
    service: &ServiceInfo,
    derived: &[InstanceRef],
    created: OffsetDateTime,
) -> Result<Vec<u8>, PublishError> {
    let study_uid = study_uid_of(result, study)?;
    for r in derived {
        for uid in [
            &r.series_instance_uid,
            &r.sop_class_uid,
            &r.sop_instance_uid,
        ] {
            check_uid("derived instance", uid)?;
        }
    }
    let uids = sr_uids(result, &study_uid, cfg);
    let root = content_tree(result, study, &study_uid, cfg, service)?;

    let mut obj = InMemDicomObject::new_empty();
    put_header(&mut obj, study, &study_uid, &uids, cfg, service, created);
    put_evidence(&mut obj, study, &study_uid, derived);
    put_root(&mut obj, &root)?;

    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(SR_TRANSFER_SYNTAX_UID)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(implementation_version_name()),
        )
        .map_err(|e| PublishError::Encode(e.to_string()))?;
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| PublishError::Encode(e.to_string()))?;
    Ok(out)
}

/// The SOP Instance UID [`build_sr`] gives this result (same study + same content + same SOP
/// class = same UID).
pub fn sr_sop_instance_uid(
    result: &StudyResult,
    study: &StudyInfo,
    cfg: &PublisherConfig,
) -> Result<String, PublishError> {
    let study_uid = study_uid_of(result, study)?;
    Ok(sr_uids(result, &study_uid, cfg).sop_instance)
}

fn sr_uids(result: &StudyResult, study_uid: &str, cfg: &PublisherConfig) -> SrUids {
    let version = uid::result_version(result);
    match cfg.sr_storage {
        SrStorage::Comprehensive3d => SrUids::new(study_uid, &version),
        // Another SOP class is another instance: never reuse the 3D SR's UID for it.
        SrStorage::Comprehensive => SrUids::new(study_uid, &format!("{version}/88.33")),
    }
}

fn check_uid(what: &str, uid: &str) -> Result<(), PublishError> {
    spinescreen_proto::uid::validate_uid(uid)
        .map_err(|e| PublishError::InvalidInput(format!("{what}: {e}")))
}

fn study_uid_of(result: &StudyResult, study: &StudyInfo) -> Result<String, PublishError> {
    let from_result = result.study_instance_uid.trim_end_matches(['\0', ' ']);
    check_uid("result study_instance_uid", from_result)?;
    let from_study = study.study_instance_uid.trim_end_matches(['\0', ' ']);
    if !from_study.is_empty() && from_study != from_result {
        return Err(PublishError::InvalidInput(format!(
            "result is for study {from_result} but the study module is for {from_study}"
        )));
    }
    Ok(from_result.to_string())
}

fn language_code(lang: Language) -> Code {
    match lang {
        Language::En => codes::LANG_ENGLISH,
        Language::Ru => codes::LANG_RUSSIAN,
    }
}

fn genant_code(g: spinescreen_proto::GenantGrade) -> Code {
    codes::GENANT_VALUES[u8::from(g) as usize]
}

fn deformity_code(t: DeformityType) -> Code {
    match t {
        DeformityType::None => codes::DEFORMITY_NONE,
        DeformityType::Wedge => codes::DEFORMITY_WEDGE,
        DeformityType::Biconcave => codes::DEFORMITY_BICONCAVE,
        DeformityType::Crush => codes::DEFORMITY_CRUSH,
    }
}

/// The TID 1500 content tree of a result.
pub(crate) fn content_tree(
    result: &StudyResult,
    study: &StudyInfo,
    study_uid: &str,
    cfg: &PublisherConfig,
    service: &ServiceInfo,
) -> Result<Vec<Item>, PublishError> {
    use Rel::*;
    let lang = cfg.language;
    let mut root = vec![
        // TID 1204
        Item::code(
            HasConceptMod,
            codes::LANGUAGE_OF_CONTENT,
            language_code(lang),
        ),
        // TID 1001 → TID 1002 → TID 1004
        Item::code(HasObsContext, codes::OBSERVER_TYPE, codes::DEVICE),
        Item::new(
            HasObsContext,
            codes::DEVICE_OBSERVER_UID,
            Value::UidRef(uid::device_observer_uid(&cfg.manufacturer, &service.name)),
        ),
        Item::text(HasObsContext, codes::DEVICE_OBSERVER_NAME, &service.name),
        Item::text(
            HasObsContext,
            codes::DEVICE_OBSERVER_MANUFACTURER,
            &cfg.manufacturer,
        ),
        Item::text(
            HasObsContext,
            codes::DEVICE_OBSERVER_MODEL_NAME,
            format!("{} {}", service.name, service.version),
        ),
        // TID 1500 row 4
        Item::code(
            HasConceptMod,
            codes::PROCEDURE_REPORTED,
            codes::CT_UNSPECIFIED_BODY_REGION,
        ),
    ];

    // TID 1600: the source images the measurements were made on.
    let class = if study.sop_class_uid.is_empty() {
        CT_IMAGE_STORAGE.to_string()
    } else {
        study.sop_class_uid.clone()
    };
    let images: Vec<Item> = study
        .sop_instance_uids
        .iter()
        .map(|inst| {
            check_uid("source SOP Instance UID", inst)?;
            Ok(Item {
                rel: Contains,
                concept: None,
                value: Value::Image {
                    class: class.clone(),
                    instance: inst.clone(),
                },
            })
        })
        .collect::<Result<_, PublishError>>()?;
    let library = if images.is_empty() {
        vec![]
    } else {
        vec![Item::container(
            Contains,
            codes::IMAGE_LIBRARY_GROUP,
            images,
        )]
    };
    root.push(Item::container(Contains, codes::IMAGE_LIBRARY, library));

    // TID 1500 row 6 / TID 1501: one measurement group per vertebra.
    let mut groups = Vec::with_capacity(result.vertebrae.len());
    for v in &result.vertebrae {
        let mut g = vec![
            Item::text(HasObsContext, codes::TRACKING_IDENTIFIER, v.label.as_str()),
            Item::new(
                HasObsContext,
                codes::TRACKING_UNIQUE_IDENTIFIER,
                Value::UidRef(uid::tracking_uid(study_uid, v.label.as_str())),
            ),
        ];
        if let Some(site) = codes::vertebra_code(v.label) {
            g.push(Item::code(HasConceptMod, codes::FINDING_SITE, site));
        }
        let h = v.heights_mm;
        g.push(Item::num(
            codes::ANTERIOR_HEIGHT,
            h.anterior,
            codes::UCUM_MM,
        ));
        g.push(Item::num(codes::MIDDLE_HEIGHT, h.middle, codes::UCUM_MM));
        g.push(Item::num(
            codes::POSTERIOR_HEIGHT,
            h.posterior,
            codes::UCUM_MM,
        ));
        g.push(Item::num(
            codes::HEIGHT_LOSS,
            v.deformity * 100.0,
            codes::UCUM_PERCENT,
        ));
        if let Some(t) = v.trabecular_hu {
            g.push(Item::num(codes::MEAN_ATTENUATION, t.mean, codes::UCUM_HU));
            g.push(Item::num(
                codes::MEDIAN_ATTENUATION,
                t.median,
                codes::UCUM_HU,
            ));
        }
        g.push(Item::code(
            Contains,
            codes::GENANT_GRADE,
            genant_code(v.genant_grade),
        ));
        g.push(Item::code(
            Contains,
            codes::DEFORMITY_TYPE,
            deformity_code(v.deformity_type),
        ));
        groups.push(Item::container(Contains, codes::MEASUREMENT_GROUP, g));
    }
    root.push(Item::container(
        Contains,
        codes::IMAGING_MEASUREMENTS,
        groups,
    ));

    // TID 1500 rows 12–14: the experiment's mandatory text items.
    root.push(Item::container(
        Contains,
        codes::QUALITATIVE_EVALUATIONS,
        vec![
            Item::text(Contains, codes::SERVICE_NAME, &service.name),
            Item::text(
                Contains,
                codes::SERVICE_DESCRIPTION,
                text::description(lang),
            ),
            Item::text(Contains, codes::CONCLUSION, text::conclusion(result, lang)),
            Item::text(Contains, codes::USER_GUIDE, text::user_guide(lang)),
        ],
    ));
    Ok(root)
}

// --- encoding ---

type Elem = dicom_object::mem::InMemElement;

fn s(tag: Tag, vr: VR, value: impl Into<String>) -> Elem {
    let value: String = value.into();
    if value.is_empty() {
        DataElement::new(tag, vr, PrimitiveValue::Empty)
    } else {
        DataElement::new(tag, vr, PrimitiveValue::from(value))
    }
}

fn sq(tag: Tag, items: Vec<InMemDicomObject>) -> Elem {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn code_item(c: Code) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        s(tags::CODE_VALUE, VR::SH, c.value),
        s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, c.scheme),
        s(tags::CODE_MEANING, VR::LO, c.meaning),
    ])
}

fn da(t: OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
}

fn tm(t: OffsetDateTime) -> String {
    format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
}

/// A DS value (PS3.5 Table 6.2-1: at most 16 characters).
fn ds(value: f64) -> Result<String, PublishError> {
    if !value.is_finite() {
        return Err(PublishError::InvalidInput(format!(
            "measurement {value} is not a finite number"
        )));
    }
    let v = format!("{:.2}", value);
    let v = v.trim_end_matches('0').trim_end_matches('.').to_string();
    let v = if v == "-0" { "0".to_string() } else { v };
    if v.len() > 16 {
        return Err(PublishError::InvalidInput(format!(
            "measurement {value} does not fit a DICOM decimal string"
        )));
    }
    Ok(v)
}

fn item_dataset(item: &Item) -> Result<InMemDicomObject, PublishError> {
    let mut o = InMemDicomObject::new_empty();
    o.put(s(tags::RELATIONSHIP_TYPE, VR::CS, item.rel.as_str()));
    if let Some(c) = item.concept {
        o.put(sq(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code_item(c)]));
    }
    match &item.value {
        Value::Container(children) => {
            o.put(s(tags::VALUE_TYPE, VR::CS, "CONTAINER"));
            o.put(s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"));
            if !children.is_empty() {
                o.put(sq(tags::CONTENT_SEQUENCE, children_datasets(children)?));
            }
        }
        Value::Text(t) => {
            o.put(s(tags::VALUE_TYPE, VR::CS, "TEXT"));
            o.put(s(tags::TEXT_VALUE, VR::UT, t.as_str()));
        }
        Value::Code(c) => {
            o.put(s(tags::VALUE_TYPE, VR::CS, "CODE"));
            o.put(sq(tags::CONCEPT_CODE_SEQUENCE, vec![code_item(*c)]));
        }
        Value::Num { value, unit } => {
            o.put(s(tags::VALUE_TYPE, VR::CS, "NUM"));
            let measured = InMemDicomObject::from_element_iter([
                s(tags::NUMERIC_VALUE, VR::DS, ds(*value)?),
                sq(
                    tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
                    vec![code_item(*unit)],
                ),
            ]);
            o.put(sq(tags::MEASURED_VALUE_SEQUENCE, vec![measured]));
        }
        Value::UidRef(u) => {
            o.put(s(tags::VALUE_TYPE, VR::CS, "UIDREF"));
            o.put(s(tags::UID, VR::UI, u.as_str()));
        }
        Value::Image { class, instance } => {
            o.put(s(tags::VALUE_TYPE, VR::CS, "IMAGE"));
            o.put(sq(
                tags::REFERENCED_SOP_SEQUENCE,
                vec![InMemDicomObject::from_element_iter([
                    s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, class.as_str()),
                    s(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance.as_str()),
                ])],
            ));
        }
    }
    Ok(o)
}

fn children_datasets(children: &[Item]) -> Result<Vec<InMemDicomObject>, PublishError> {
    children.iter().map(item_dataset).collect()
}

/// SR Document Content module of the root (PS3.3 C.17.3) with the TID 1500 template id.
fn put_root(obj: &mut InMemDicomObject, root: &[Item]) -> Result<(), PublishError> {
    obj.put(s(tags::VALUE_TYPE, VR::CS, "CONTAINER"));
    obj.put(sq(
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(codes::IMAGING_MEASUREMENT_REPORT)],
    ));
    obj.put(s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"));
    obj.put(sq(
        tags::CONTENT_TEMPLATE_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            s(tags::MAPPING_RESOURCE, VR::CS, "DCMR"),
            s(tags::TEMPLATE_IDENTIFIER, VR::CS, "1500"),
        ])],
    ));
    obj.put(sq(tags::CONTENT_SEQUENCE, children_datasets(root)?));
    Ok(())
}

/// Patient, General Study, Patient Study, SR Document Series, General and Enhanced General
/// Equipment, SR Document General (flags, dates) and SOP Common modules.
fn put_header(
    obj: &mut InMemDicomObject,
    study: &StudyInfo,
    study_uid: &str,
    uids: &SrUids,
    cfg: &PublisherConfig,
    service: &ServiceInfo,
    created: OffsetDateTime,
) {
    let (date, time) = (da(created), tm(created));
    let elems = [
        // SOP Common (C.12.1): UTF-8 so Russian text and names survive.
        s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        s(tags::INSTANCE_CREATION_DATE, VR::DA, date.clone()),
        s(tags::INSTANCE_CREATION_TIME, VR::TM, time.clone()),
        s(tags::SOP_CLASS_UID, VR::UI, cfg.sr_storage.sop_class_uid()),
        s(tags::SOP_INSTANCE_UID, VR::UI, uids.sop_instance.clone()),
        // SR Document Series (C.17.1): our own series, described by the service name.
        s(tags::MODALITY, VR::CS, "SR"),
        s(tags::SERIES_INSTANCE_UID, VR::UI, uids.series.clone()),
        s(tags::SERIES_NUMBER, VR::IS, SR_SERIES_NUMBER),
        s(tags::SERIES_DATE, VR::DA, date.clone()),
        s(tags::SERIES_TIME, VR::TM, time.clone()),
        s(tags::SERIES_DESCRIPTION, VR::LO, service.name.clone()),
        sq(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]),
        // General Equipment (C.7.5.1) + Enhanced General Equipment (C.7.5.2).
        s(tags::MANUFACTURER, VR::LO, cfg.manufacturer.clone()),
        s(tags::MANUFACTURER_MODEL_NAME, VR::LO, service.name.clone()),
        s(
            tags::DEVICE_SERIAL_NUMBER,
            VR::LO,
            cfg.device_serial_number.clone(),
        ),
        s(tags::SOFTWARE_VERSIONS, VR::LO, service.version.clone()),
        // SR Document General (C.17.2).
        s(tags::INSTANCE_NUMBER, VR::IS, "1"),
        s(tags::COMPLETION_FLAG, VR::CS, "COMPLETE"),
        s(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED"),
        s(tags::CONTENT_DATE, VR::DA, date),
        s(tags::CONTENT_TIME, VR::TM, time),
        sq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]),
        // SOP Common: declare the private coding scheme (C.12.1.1.2).
        sq(
            tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                s(
                    tags::CODING_SCHEME_DESIGNATOR,
                    VR::SH,
                    codes::PRIVATE_SCHEME,
                ),
                s(tags::CODING_SCHEME_NAME, VR::ST, codes::PRIVATE_SCHEME_NAME),
                s(
                    tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION,
                    VR::ST,
                    cfg.manufacturer.clone(),
                ),
            ])],
        ),
    ];
    for e in elems {
        obj.put(e);
    }
    // Patient (C.7.1.1, type 2: empty when unknown), Patient Study, General Study (C.7.2.1).
    for e in patient_study_module(study, study_uid) {
        obj.put(e);
    }
    if !study.study_description.is_empty() {
        obj.put(s(
            tags::STUDY_DESCRIPTION,
            VR::LO,
            study.study_description.clone(),
        ));
    }
    if let Some(inst) = cfg.institution_name.as_deref().filter(|i| !i.is_empty()) {
        obj.put(s(tags::INSTITUTION_NAME, VR::LO, inst));
    }
}

/// Current Requested Procedure Evidence (PS3.3 C.17.2.3): the analysed source series and the
/// derived secondary-capture series, grouped by series.
fn put_evidence(
    obj: &mut InMemDicomObject,
    study: &StudyInfo,
    study_uid: &str,
    derived: &[InstanceRef],
) {
    let mut refs: Vec<InstanceRef> = vec![];
    if !study.series_instance_uid.is_empty() {
        let class = if study.sop_class_uid.is_empty() {
            CT_IMAGE_STORAGE
        } else {
            study.sop_class_uid.as_str()
        };
        refs.extend(study.sop_instance_uids.iter().map(|i| InstanceRef {
            series_instance_uid: study.series_instance_uid.clone(),
            sop_class_uid: class.to_string(),
            sop_instance_uid: i.clone(),
        }));
    }
    refs.extend(derived.iter().cloned());
    if refs.is_empty() {
        return;
    }
    let mut series: Vec<(String, Vec<InMemDicomObject>)> = vec![];
    for r in refs {
        let item = InMemDicomObject::from_element_iter([
            s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, r.sop_class_uid),
            s(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                r.sop_instance_uid,
            ),
        ]);
        match series.iter_mut().find(|(s, _)| *s == r.series_instance_uid) {
            Some((_, items)) => items.push(item),
            None => series.push((r.series_instance_uid, vec![item])),
        }
    }
    let series_items = series
        .into_iter()
        .map(|(uid, items)| {
            InMemDicomObject::from_element_iter([
                s(tags::SERIES_INSTANCE_UID, VR::UI, uid),
                sq(tags::REFERENCED_SOP_SEQUENCE, items),
            ])
        })
        .collect();
    obj.put(sq(
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            s(tags::STUDY_INSTANCE_UID, VR::UI, study_uid),
            sq(tags::REFERENCED_SERIES_SEQUENCE, series_items),
        ])],
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_and_reject_non_finite() {
        assert_eq!(ds(23.456).unwrap(), "23.46");
        assert_eq!(ds(45.0).unwrap(), "45");
        assert_eq!(ds(-0.001).unwrap(), "0");
        assert!(ds(f64::NAN).is_err());
        assert!(ds(1e20).is_err());
    }
}
