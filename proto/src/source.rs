//! Where a study came from: the scanner and the series chosen, without any patient identifier.
//!
//! Ingest stores it as `studies/<uid>/source.json` ([`crate::StudyKeys::source`]) so the study
//! ledger can answer "where is accession 12345?" and "what did scanner CT-3 send us?". It never
//! holds the patient's name, ID or birth date.

use serde::{Deserialize, Serialize};

/// Scanner and series of one study. Every field may be empty when the header lacks it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceInfo {
    /// (0020,000D) Study Instance UID.
    pub study_instance_uid: String,
    /// (0008,0050) Accession Number.
    pub accession_number: String,
    /// (0008,1010) Station Name of the scanner.
    pub station_name: String,
    /// (0008,0070) Manufacturer.
    pub manufacturer: String,
    /// (0008,1090) Manufacturer's Model Name.
    pub model: String,
    /// (0020,000E) Series Instance UID of the series chosen for analysis (empty if none was).
    pub series_instance_uid: String,
    /// (0020,0011) Series Number of that series.
    pub series_number: String,
    /// (0008,103E) Series Description of that series.
    pub series_description: String,
}
