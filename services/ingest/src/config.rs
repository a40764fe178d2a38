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
    /// Most frames one instance may declare (NumberOfFrames); checked, together with
    /// frames × rows × columns against `max_total_voxels`, before any frame is allocated.
    pub max_frames_per_instance: u32,
    /// Deepest nesting of sequences and items in one file (a sequence and its item are two
    /// levels). Enhanced CT needs about 6; deeper files are refused before parsing, so the
    /// recursive parser never sees them.
    pub max_nesting_depth: usize,
    /// Most data elements (items and fragments included) in one file. Each costs the parser
    /// far more memory than its bytes, so this bounds a file of many tiny elements.
    pub max_elements_per_instance: usize,
}

impl IngestLimits {
    /// The limits of the pre-parse check ([`crate::guard`]).
    pub(crate) fn guard(&self) -> crate::guard::GuardLimits {
        crate::guard::GuardLimits {
            max_bytes: self.max_bytes_per_file,
            max_nesting_depth: self.max_nesting_depth,
            max_elements: self.max_elements_per_instance,
        }
    }

    /// Why an instance of `frames` frames of `rows` × `columns` is over the limits, if it is.
    pub(crate) fn frames_over_limit(
        &self,
        frames: u32,
        rows: Option<u32>,
        columns: Option<u32>,
    ) -> Option<String> {
        if frames > self.max_frames_per_instance {
            return Some(format!(
                "NumberOfFrames {frames} is over the limit of {}",
                self.max_frames_per_instance
            ));
        }
        let voxels = u64::from(frames)
            .saturating_mul(u64::from(rows.unwrap_or(1)))
            .saturating_mul(u64::from(columns.unwrap_or(1)));
        (voxels > self.max_total_voxels).then(|| {
            format!(
                "{frames} frames of {} × {} are over the limit of {} voxels",
                rows.unwrap_or(1),
                columns.unwrap_or(1),
                self.max_total_voxels
            )
        })
    }
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
            max_frames_per_instance: 5_000,
            max_nesting_depth: 16,
            max_elements_per_instance: 200_000,
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
    /// Address to listen on (`0.0.0.0` for every IPv4 interface, `127.0.0.1` for this host
    /// only, `::` for IPv6).
    pub bind_address: String,
    /// A connection that sends no complete PDU for this long is closed (seconds): an idle TCP
    /// connection before the association request, and an association with nothing to say.
    /// Receptions in hand are completed first. Must exceed `inactivity_timeout_s` to let a
    /// sender keep an association open across a pause.
    pub idle_timeout_s: u64,
    /// Most connections served at once; further connections are closed on accept.
    pub max_associations: usize,
    /// Local write-ahead spool (one directory per receiver process, on a volume that outlives
    /// the process). When set, each instance is appended to the spool and flushed to disk
    /// before its C-STORE success, and a reception is uploaded as a few bundles
    /// (`incoming/<batch>/bundle-<seq>.bundle`); a receiver completes what an earlier process
    /// left there when it starts. When unset, each instance is stored as its own object before
    /// its C-STORE success (slower: one store round trip per instance on the sender's clock).
    pub spool_dir: Option<std::path::PathBuf>,
    /// A spool segment (and the bundle it becomes) is closed and uploaded once it holds this
    /// many MiB, while the association goes on.
    pub spool_segment_mib: u64,
    /// Flush each spooled instance to disk (`fdatasync`) before answering it. Turning it off
    /// keeps instances across a receiver crash but not across a node crash or power loss.
    pub spool_fsync: bool,
    /// A reception left in the spool by an earlier receiver process is completed this long
    /// after the start (seconds). A sender whose association was cut usually sends the study
    /// again at once: its new reception is published first, and the recovered one then adds
    /// nothing (rather than being analysed alone as a partial study first). A receiver that
    /// stops earlier completes them as it stops.
    pub spool_recovery_delay_s: u64,
}

impl Default for ScpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ae_title: "SPINESCREEN".into(),
            port: 11112,
            accepted_calling_aes: vec![],
            bind_address: "0.0.0.0".into(),
            idle_timeout_s: 30,
            max_associations: 32,
            spool_dir: None,
            spool_segment_mib: 32,
            spool_fsync: true,
            spool_recovery_delay_s: 60,
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
    /// If set, requests must carry `Authorization: Bearer <token>`; it is checked before any
    /// of the body is read.
    pub bearer_token: Option<String>,
    /// Address to listen on (see [`ScpConfig::bind_address`]).
    pub bind_address: String,
    /// Largest request body, bytes: a larger `Content-Length` is refused (413) before the body
    /// is read, and a body that grows past it is cut off.
    pub max_request_bytes: u64,
    /// Time to receive a request's headers, seconds, counted from the connection (or the end
    /// of the previous request on a keep-alive connection); then the connection is closed. So
    /// this is also the idle timeout of a connection.
    pub header_timeout_s: u64,
    /// Time to receive a whole request (headers and body), seconds; then 408 and close.
    pub request_timeout_s: u64,
    /// Most connections served at once; further connections are closed on accept.
    pub max_connections: usize,
}

impl Default for StowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 8042,
            bearer_token: None,
            bind_address: "0.0.0.0".into(),
            max_request_bytes: 1 << 30,
            header_timeout_s: 10,
            request_timeout_s: 300,
            max_connections: 64,
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
