//! An attribute's text as stored, without the padding DICOM adds to even lengths.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

/// The attribute's value as text with trailing padding (NUL or space) removed; `None` when it is
/// absent or not text.
pub fn text_opt(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
}

/// The attribute's text with padding and surrounding white space removed; empty when absent.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    text_opt(obj, tag)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;

    #[test]
    fn padding_is_removed_and_absence_is_none() {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3\0"),
        ));
        obj.put(DataElement::new(
            tags::PATIENT_SEX,
            VR::CS,
            PrimitiveValue::from(" F "),
        ));
        assert_eq!(
            text_opt(&obj, tags::STUDY_INSTANCE_UID).as_deref(),
            Some("1.2.3")
        );
        assert_eq!(text_opt(&obj, tags::PATIENT_SEX).as_deref(), Some(" F"));
        assert_eq!(text(&obj, tags::PATIENT_SEX), "F");
        assert_eq!(text_opt(&obj, tags::ACCESSION_NUMBER), None);
        assert_eq!(text(&obj, tags::ACCESSION_NUMBER), "");
    }
}
