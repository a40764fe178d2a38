//! Publisher configuration: report language, manufacturer, destinations and retry policy.

use serde::{Deserialize, Serialize};
pub use spinescreen_proto::Language;
use std::path::PathBuf;
use std::time::Duration;

/// SOP class of the SR (both carry the same TID 1500 content; ours uses no 3D coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SrStorage {
    /// Comprehensive 3D SR Storage, 1.2.840.10008.5.1.4.1.1.88.34 (PS3.3 A.35.13).
    #[default]
    Comprehensive3d,
    /// Comprehensive SR Storage, 1.2.840.10008.5.1.4.1.1.88.33 (PS3.3 A.35.3), for a PACS that
    /// does not accept Comprehensive 3D SR.
    Comprehensive,
}

impl SrStorage {
    /// The SOP Class UID.
    pub fn sop_class_uid(self) -> &'static str {
        match self {
            SrStorage::Comprehensive3d => "1.2.840.10008.5.1.4.1.1.88.34",
            SrStorage::Comprehensive => "1.2.840.10008.5.1.4.1.1.88.33",
        }
    }
}

/// Where finished studies go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// A DICOM Storage SCP (PACS), reached with C-STORE (PS3.4 Annex B, PS3.7 §9.1.1).
    Cstore {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// Called AE title (the PACS).
        called_ae: String,
        /// Calling AE title (us).
        calling_ae: String,
    },
    /// A DICOMweb STOW-RS endpoint (PS3.18 §10.5): `POST {url}` (the `…/studies` resource).
    Stow {
        /// Base URL of the studies resource, e.g. `http://pacs/dicom-web/studies`.
        url: String,
        /// Bearer token sent as `Authorization: Bearer …`, if any.
        #[serde(default)]
        bearer_token: Option<String>,
    },
    /// A JSON webhook: `POST {url}` with `result.json`, or a FHIR R4 DiagnosticReport.
    Webhook {
        /// Target URL.
        url: String,
        /// Send a FHIR R4 DiagnosticReport instead of `result.json`.
        #[serde(default)]
        fhir: bool,
    },
    /// A local directory: `<path>/<StudyInstanceUID>/{sr.dcm, sc/*.dcm, result.json, preview.png}`.
    Directory {
        /// Root directory.
        path: PathBuf,
    },
}

impl Destination {
    /// The kind, as used in the `destination` label of `spinescreen_deliveries_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Cstore { .. } => "cstore",
            Destination::Stow { .. } => "stow",
            Destination::Webhook { .. } => "webhook",
            Destination::Directory { .. } => "directory",
        }
    }
}

/// Bounded retries with exponential backoff, per destination and study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Total attempts (≥ 1).
    pub attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff_ms: u64,
    /// Upper bound of any wait.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_backoff_ms: 500,
            max_backoff_ms: 10_000,
        }
    }
}

impl RetryPolicy {
    /// Wait after failed attempt `n` (1-based): `initial · 2^(n−1)`, capped at `max`.
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        let exp = failed_attempt.saturating_sub(1).min(30);
        let ms = self
            .initial_backoff_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_backoff_ms);
        Duration::from_millis(ms)
    }
}

/// Everything the publisher stage needs besides the study itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublisherConfig {
    /// Language of the SR text items.
    pub language: Language,
    /// (0008,0070) Manufacturer, also the TID 1004 device observer manufacturer.
    pub manufacturer: String,
    /// SOP class of the SR.
    pub sr_storage: SrStorage,
    /// (0018,1000) Device Serial Number (Enhanced General Equipment module, PS3.3 C.7.5.2).
    pub device_serial_number: String,
    /// (0008,0080) Institution Name, if any.
    pub institution_name: Option<String>,
    /// Delivery targets; empty means the SR is only stored.
    pub destinations: Vec<Destination>,
    /// Retry policy for every destination.
    pub retry: RetryPolicy,
    /// Network timeout for one connection attempt, read or write (seconds).
    pub timeout_s: u64,
    /// What is deleted once a study has been delivered.
    pub retention: Retention,
}

/// Retention after delivery: received files are patient data and the voxels are large, so
/// neither is kept once the SR is delivered (counted in
/// `spinescreen_retention_deleted_total{kind}`). Kept: `result.json`, `sr.dcm`, the secondary
/// captures, `volume.json` (the study module a re-published SR needs) and ingest's
/// `received.json` (SOP Instance UIDs only, so a re-send is still recognised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    /// Delete the reception's files (`incoming/<batch>/`) after delivery.
    pub delete_received: bool,
    /// Delete the intermediate volume (`volume.i16` / `volume.zst`), the spine region
    /// (`spine_region.zst`, `spine_region.json`) and detection (`detection.json`) after delivery.
    pub delete_intermediates: bool,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            delete_received: true,
            delete_intermediates: true,
        }
    }
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            language: Language::En,
            manufacturer: "spinescreen".into(),
            sr_storage: SrStorage::default(),
            device_serial_number: "1".into(),
            institution_name: None,
            destinations: vec![],
            retry: RetryPolicy::default(),
            timeout_s: 30,
            retention: Retention::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let r = RetryPolicy {
            attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 350,
        };
        let waits: Vec<u64> = (1..=4).map(|n| r.backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, vec![100, 200, 350, 350]);
    }

    #[test]
    fn destinations_parse_from_toml_like_json() {
        let cfg: PublisherConfig = serde_json::from_value(serde_json::json!({
            "language": "ru",
            "destinations": [
                {"kind": "cstore", "host": "pacs", "port": 104, "called_ae": "PACS", "calling_ae": "SPINE"},
                {"kind": "stow", "url": "http://pacs/dicom-web/studies"},
                {"kind": "webhook", "url": "http://ris/hook", "fhir": true},
                {"kind": "directory", "path": "/tmp/out"}
            ]
        }))
        .unwrap();
        assert_eq!(cfg.language, Language::Ru);
        assert_eq!(cfg.destinations.len(), 4);
        assert_eq!(cfg.retry, RetryPolicy::default());
        assert!(PublisherConfig::default().destinations.is_empty());
    }
}
