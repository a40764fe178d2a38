//! The patient and study modules of the source series, copied into every derived object
//! (secondary capture, SR) so the PACS files them under the right patient and study.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifying and descriptive attributes of the source study (PS3.3 C.7.1.1, C.7.2.1).
///
/// Holds protected health information: its `Debug` output redacts name, ID and birth date, and
/// it must never be logged field by field.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyInfo {
    /// (0010,0010) Patient's Name — PHI.
    pub patient_name: String,
    /// (0010,0020) Patient ID — PHI.
    pub patient_id: String,
    /// (0010,0030) Patient's Birth Date — PHI.
    pub patient_birth_date: String,
    /// (0010,0040) Patient's Sex.
    pub patient_sex: String,
    /// (0010,1010) Patient's Age, e.g. `067Y`.
    pub patient_age: String,
    /// (0020,000D) Study Instance UID.
    pub study_instance_uid: String,
    /// (0008,0020) Study Date.
    pub study_date: String,
    /// (0008,0030) Study Time.
    pub study_time: String,
    /// (0020,0010) Study ID.
    pub study_id: String,
    /// (0008,0050) Accession Number.
    pub accession_number: String,
    /// (0008,0090) Referring Physician's Name.
    pub referring_physician_name: String,
    /// (0008,1030) Study Description.
    pub study_description: String,
    /// (0020,000E) Series Instance UID of the analysed series.
    pub series_instance_uid: String,
    /// (0020,0011) Series Number of the analysed series.
    pub series_number: String,
    /// (0020,0052) Frame of Reference UID of the analysed series.
    pub frame_of_reference_uid: String,
    /// (0008,0016) SOP Class UID of the analysed instances.
    pub sop_class_uid: String,
    /// SOP Instance UIDs of the analysed series, in volume (slice) order.
    pub sop_instance_uids: Vec<String>,
    /// (0018,0010) Contrast/Bolus Agent, if the series says one was given (raises HU by 10–20).
    pub contrast_agent: Option<String>,
}

impl fmt::Debug for StudyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StudyInfo")
            .field("patient_name", &"<redacted>")
            .field("patient_id", &"<redacted>")
            .field("patient_birth_date", &"<redacted>")
            .field("study_instance_uid", &self.study_instance_uid)
            .field("series_instance_uid", &self.series_instance_uid)
            .field("instances", &self.sop_instance_uids.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_patient_identifiers() {
        let s = StudyInfo {
            patient_name: "Doe^Jane".into(),
            patient_id: "MRN123".into(),
            patient_birth_date: "19400101".into(),
            ..Default::default()
        };
        let text = format!("{s:?}");
        assert!(!text.contains("Doe") && !text.contains("MRN123") && !text.contains("1940"));
    }
}
