//! The Patient (PS3.3 C.7.1.1), Patient Study (C.7.2.2) and General Study (C.7.2.1) modules of an
//! object derived from a source study (secondary capture, SR), copied from its [`StudyInfo`] so
//! the PACS files the object under the same patient and study.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use spinescreen_proto::StudyInfo;

/// The longest value a VR allows, in characters (PS3.5 Table 6.2-1), for the attributes copied
/// here whose source may be longer than the standard allows.
const LO_MAX: usize = 64;
const SH_MAX: usize = 16;

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The module's elements for `study` under `study_uid`: patient name, ID, birth date and sex
/// (type 2, empty when unknown), age when known, and the study's UID, date, time, referring
/// physician, ID and accession number. Patient ID (LO) and Study ID / Accession Number (SH) are
/// cut to their VR's length.
pub fn patient_study_module(
    study: &StudyInfo,
    study_uid: &str,
) -> Vec<DataElement<InMemDicomObject>> {
    let el = |tag, vr, value: &str| {
        let value = if value.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::from(value)
        };
        DataElement::new(tag, vr, value)
    };
    let mut out = vec![
        el(tags::PATIENT_NAME, VR::PN, &study.patient_name),
        el(
            tags::PATIENT_ID,
            VR::LO,
            &truncate(&study.patient_id, LO_MAX),
        ),
        el(tags::PATIENT_BIRTH_DATE, VR::DA, &study.patient_birth_date),
        el(tags::PATIENT_SEX, VR::CS, &study.patient_sex),
    ];
    if !study.patient_age.is_empty() {
        out.push(el(tags::PATIENT_AGE, VR::AS, &study.patient_age));
    }
    out.extend([
        el(tags::STUDY_INSTANCE_UID, VR::UI, study_uid),
        el(tags::STUDY_DATE, VR::DA, &study.study_date),
        el(tags::STUDY_TIME, VR::TM, &study.study_time),
        el(
            tags::REFERRING_PHYSICIAN_NAME,
            VR::PN,
            &study.referring_physician_name,
        ),
        el(tags::STUDY_ID, VR::SH, &truncate(&study.study_id, SH_MAX)),
        el(
            tags::ACCESSION_NUMBER,
            VR::SH,
            &truncate(&study.accession_number, SH_MAX),
        ),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::text;

    #[test]
    fn the_module_copies_the_study_and_cuts_long_values() {
        let study = StudyInfo {
            patient_id: "P".repeat(70),
            patient_sex: "F".into(),
            accession_number: "A".repeat(20),
            study_date: "20261201".into(),
            ..Default::default()
        };
        let obj = InMemDicomObject::from_element_iter(patient_study_module(&study, "1.2.3"));
        assert_eq!(text(&obj, tags::STUDY_INSTANCE_UID), "1.2.3");
        assert_eq!(text(&obj, tags::PATIENT_ID).len(), 64);
        assert_eq!(text(&obj, tags::ACCESSION_NUMBER).len(), 16);
        assert_eq!(text(&obj, tags::STUDY_DATE), "20261201");
        assert!(obj.element_opt(tags::PATIENT_AGE).unwrap().is_none());
        assert!(obj.element_opt(tags::PATIENT_NAME).unwrap().is_some());
    }
}
