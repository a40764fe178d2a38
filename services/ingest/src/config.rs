//! Configuration of the ingest stage and its receivers (the `[ingest]` table of the service
//! config). Every field has a default, so an empty table is a working configuration.

use serde::{Deserialize, Serialize};

/// Size limits that guard against decompression bombs and absurd inputs. A study that exceeds
/// any of them is a technical defect with code `OVERSIZE`, decided from the headers before any
/// pixel data is decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestLimits {
    /// Most instances (files) one reception may hold.
    pub max_instances: usize,
    /// Largest single file, bytes (larger files are not parsed).
    pub max_bytes_per_file: u64,
    /// Most voxels of the built volume (rows × columns × slices).
    pub max_total_voxels: u64,
    /// Largest rows or columns of one image.
    pub max_matrix: u32,
    /// Fewest slices a series needs to be analysable (`TOO_FEW_SLICES` below it).
    pub min_slices: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_instances: 5_000,
            max_bytes_per_file: 256 << 20,
            // 1024 × 1024 × 2000 slices: 4 GiB of i16, far beyond any chest CT.
            max_total_voxels: 1024 * 1024 * 2000,
            max_matrix: 2048,
            min_slices: 16,
        }
    }
}

/// The DICOM C-STORE SCP (PS3.4 Annex B, PS3.7 §9.1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScpConfig {
    /// Whether to listen at all.
    pub enabled: bool,
    /// Called AE title this SCP answers to (association requests to another title are rejected).
    pub ae_title: String,
    /// TCP port.
    pub port: u16,
    /// Calling AE titles allowed to send; empty accepts any.
    pub accepted_calling_aes: Vec<String>,
}

impl Default for ScpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ae_title: "SPINESCREEN".into(),
            port: 11112,
            accepted_calling_aes: vec![],
        }
    }
}

/// The DICOMweb STOW-RS endpoint (PS3.18 §10.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StowConfig {
    /// Whether to listen at all.
    pub enabled: bool,
    /// TCP port.
    pub port: u16,
    /// If set, requests must carry `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
}

impl Default for StowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 8042,
            bearer_token: None,
        }
    }
}

/// Configuration of the ingest stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Decompression-bomb and size guards.
    pub limits: IngestLimits,
    /// A reception with no new instance for this long is treated as complete (seconds), for
    /// senders that keep an association open or send a study over several associations.
    pub inactivity_timeout_s: u64,
    /// C-STORE SCP.
    pub scp: ScpConfig,
    /// STOW-RS endpoint.
    pub stow: StowConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            limits: IngestLimits::default(),
            inactivity_timeout_s: 10,
            scp: ScpConfig::default(),
            stow: StowConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_takes_the_documented_defaults() {
        let c: IngestConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, IngestConfig::default());
        assert_eq!(c.inactivity_timeout_s, 10);
        assert_eq!(c.scp.ae_title, "SPINESCREEN");
        assert_eq!(c.scp.port, 11112);
        assert_eq!(c.stow.port, 8042);
        let partial: IngestConfig =
            serde_json::from_str(r#"{"scp": {"port": 104}, "limits": {"max_instances": 3}}"#)
                .unwrap();
        assert_eq!(partial.scp.port, 104);
        assert_eq!(partial.scp.ae_title, "SPINESCREEN");
        assert_eq!(partial.limits.max_instances, 3);
        assert_eq!(partial.limits.max_matrix, 2048);
    }
}
