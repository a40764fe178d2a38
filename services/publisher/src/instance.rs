//! A DICOM Part-10 file ready for delivery: its identity (SOP class, instance, series, transfer
//! syntax) and where its data set starts, so C-STORE can send the data set as stored without
//! re-encoding it (PS3.10 §7.1: preamble, `DICM`, file meta group, data set).

use crate::error::PublishError;
use bytes::Bytes;
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTable;

/// One instance to deliver.
#[derive(Debug, Clone)]
pub struct Instance {
    /// (0002,0002) Media Storage SOP Class UID.
    pub sop_class_uid: String,
    /// (0002,0003) Media Storage SOP Instance UID.
    pub sop_instance_uid: String,
    /// (0002,0010) Transfer Syntax UID of the data set.
    pub transfer_syntax_uid: String,
    /// (0020,000E) Series Instance UID.
    pub series_instance_uid: String,
    /// (0020,000D) Study Instance UID.
    pub study_instance_uid: String,
    /// The whole Part-10 file.
    pub file: Bytes,
    /// Offset of the data set in `file` (after the file meta group).
    dataset_offset: usize,
}

impl Instance {
    /// Parse a Part-10 file. `what` names it in errors (a storage key).
    pub fn from_part10(file: Bytes, what: &str) -> Result<Self, PublishError> {
        let bad = |detail: String| PublishError::BadInstance {
            what: what.to_string(),
            detail,
        };
        if file.len() < 132 || &file[128..132] != b"DICM" {
            return Err(bad("not a DICOM Part-10 file (no DICM prefix)".into()));
        }
        let meta = FileMetaTable::from_reader(&file[128..])
            .map_err(|e| bad(format!("file meta group: {e}")))?;
        // The meta group starts with (0002,0000) UL, explicit VR: 12 bytes, then its value
        // says how many bytes follow (PS3.10 §7.1).
        let dataset_offset = 132usize
            .checked_add(12)
            .and_then(|o| o.checked_add(meta.information_group_length as usize))
            .filter(|&o| o <= file.len())
            .ok_or_else(|| bad("file meta group length runs past the end".into()))?;
        let sop_class_uid = meta.media_storage_sop_class_uid().to_string();
        let sop_instance_uid = meta.media_storage_sop_instance_uid().to_string();
        let transfer_syntax_uid = meta.transfer_syntax().to_string();
        for (name, uid) in [
            ("SOP Class UID", &sop_class_uid),
            ("SOP Instance UID", &sop_instance_uid),
            ("Transfer Syntax UID", &transfer_syntax_uid),
        ] {
            spinescreen_proto::uid::validate_uid(uid).map_err(|e| bad(format!("{name}: {e}")))?;
        }
        let obj = dicom_object::OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .from_reader(&file[128..])
            .map_err(|e| bad(format!("data set: {e}")))?;
        let text = |tag| -> Result<String, PublishError> {
            spinescreen_dicom::text_opt(&obj, tag).ok_or_else(|| bad(format!("missing {tag}")))
        };
        let series_instance_uid = text(tags::SERIES_INSTANCE_UID)?;
        let study_instance_uid = text(tags::STUDY_INSTANCE_UID)?;
        Ok(Self {
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid,
            series_instance_uid,
            study_instance_uid,
            file,
            dataset_offset,
        })
    }

    /// The data set bytes, in [`Self::transfer_syntax_uid`].
    pub fn dataset(&self) -> &[u8] {
        &self.file[self.dataset_offset..]
    }

    /// A reference to this instance, for the SR's evidence sequences.
    pub fn reference(&self) -> crate::sr::InstanceRef {
        crate::sr::InstanceRef {
            series_instance_uid: self.series_instance_uid.clone(),
            sop_class_uid: self.sop_class_uid.clone(),
            sop_instance_uid: self.sop_instance_uid.clone(),
        }
    }
}
