//! [`SourceInfo`] of a reception: accession number, scanner (station name, manufacturer, model)
//! and the series chosen, read from the header of one file of that series.
//!
//! Only these attributes are read; the patient module is not touched, so nothing here can leak
//! a patient identifier into the ledger.

use crate::build::SourceFile;
use crate::instance::text;
use dicom_dictionary_std::tags;
use dicom_object::{file::ReadPreamble, OpenFileOptions};
use rayon::prelude::*;
use spinescreen_proto::SourceInfo;

/// Headers parsed at most while looking for a file of the chosen series.
const MAX_HEADERS: usize = 64;

/// The source of a reception. `series_uid` is the chosen series (`None` when none was chosen,
/// e.g. a technical defect); the first file of that series whose header parses is read, else
/// the first parsable file of `study_uid`, else the first parsable file. `None` when no file
/// has a readable DICOM header.
pub fn read_source(
    files: &[SourceFile],
    study_uid: Option<&str>,
    series_uid: Option<&str>,
) -> Option<SourceInfo> {
    SourceHeaders::read(files).choose(study_uid, series_uid)
}

/// The headers [`read_source`] chooses from, read before the files are handed to
/// [`crate::build_volume`] (which frees them as it decodes) and chosen from once the series is
/// known.
#[derive(Debug, Clone, Default)]
pub struct SourceHeaders(Vec<SourceInfo>);

impl SourceHeaders {
    /// The readable headers among the first files of a reception, in file order.
    pub fn read(files: &[SourceFile]) -> Self {
        let first = &files[..files.len().min(MAX_HEADERS)];
        Self(first.par_iter().filter_map(|f| header(&f.bytes)).collect())
    }

    /// The source, chosen as [`read_source`] says.
    pub fn choose(&self, study_uid: Option<&str>, series_uid: Option<&str>) -> Option<SourceInfo> {
        let mut fallback: Option<&SourceInfo> = None;
        for info in &self.0 {
            if series_uid.is_some_and(|s| s == info.series_instance_uid) {
                return Some(info.clone());
            }
            let same_study = study_uid.is_some_and(|s| s == info.study_instance_uid);
            let better = match fallback {
                None => true,
                Some(f) => same_study && study_uid.is_some_and(|s| s != f.study_instance_uid),
            };
            if better {
                fallback = Some(info);
            }
        }
        let mut info = fallback?.clone();
        if series_uid.is_none() {
            // No series was analysed: say which study and scanner, not which series.
            info.series_instance_uid.clear();
            info.series_number.clear();
            info.series_description.clear();
        }
        Some(info)
    }
}

fn header(bytes: &[u8]) -> Option<SourceInfo> {
    let body = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        &bytes[128..]
    } else if bytes.starts_with(b"DICM") {
        bytes
    } else {
        return None;
    };
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(body)
        .ok()?;
    Some(SourceInfo {
        study_instance_uid: text(&obj, tags::STUDY_INSTANCE_UID),
        accession_number: text(&obj, tags::ACCESSION_NUMBER),
        station_name: text(&obj, tags::STATION_NAME),
        manufacturer: text(&obj, tags::MANUFACTURER),
        model: text(&obj, tags::MANUFACTURER_MODEL_NAME),
        series_instance_uid: text(&obj, tags::SERIES_INSTANCE_UID),
        series_number: text(&obj, tags::SERIES_NUMBER),
        series_description: text(&obj, tags::SERIES_DESCRIPTION),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

    fn file(series: &str, station: &str) -> SourceFile {
        let mut o = InMemDicomObject::new_empty();
        let mut put = |tag, vr, v: &str| {
            o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        };
        put(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2");
        put(tags::SOP_INSTANCE_UID, VR::UI, &format!("{series}.1"));
        put(tags::PATIENT_NAME, VR::PN, "Doe^Jane");
        put(tags::PATIENT_ID, VR::LO, "MRN123");
        put(tags::ACCESSION_NUMBER, VR::SH, "12345");
        put(tags::STATION_NAME, VR::SH, station);
        put(tags::MANUFACTURER, VR::LO, "ACME");
        put(tags::MANUFACTURER_MODEL_NAME, VR::LO, "Scan 64");
        put(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3");
        put(tags::SERIES_INSTANCE_UID, VR::UI, series);
        put(tags::SERIES_NUMBER, VR::IS, "3");
        put(tags::SERIES_DESCRIPTION, VR::LO, "Chest 1mm");
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
            .media_storage_sop_instance_uid(format!("{series}.1"));
        let mut bytes = vec![]; // write_all writes the preamble and DICM itself
        o.with_meta(meta).unwrap().write_all(&mut bytes).unwrap();
        SourceFile {
            name: format!("{series}.dcm"),
            bytes: bytes.into(),
        }
    }

    #[test]
    fn reads_the_chosen_series_scanner_without_patient_data() {
        let files = vec![
            SourceFile {
                name: "junk".into(),
                bytes: bytes::Bytes::from_static(b"not dicom"),
            },
            file("1.2.3.9", "CT-1"),
            file("1.2.3.4", "CT-3"),
        ];
        let s = read_source(&files, Some("1.2.3"), Some("1.2.3.4")).unwrap();
        assert_eq!(s.accession_number, "12345");
        assert_eq!(s.station_name, "CT-3");
        assert_eq!(
            (s.manufacturer.as_str(), s.model.as_str()),
            ("ACME", "Scan 64")
        );
        assert_eq!(s.series_instance_uid, "1.2.3.4");
        assert_eq!(s.series_description, "Chest 1mm");
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("Doe") && !json.contains("MRN123"), "{json}");
    }

    #[test]
    fn without_a_chosen_series_names_the_scanner_only() {
        let files = vec![file("1.2.3.9", "CT-1")];
        let s = read_source(&files, None, None).unwrap();
        assert_eq!(s.station_name, "CT-1");
        assert!(s.series_instance_uid.is_empty());
        assert!(read_source(&files[..0], None, None).is_none());
    }
}
