//! Receivers: where DICOM instances arrive and become one ingest job per completed reception.
//!
//! Every receiver does the same three things: store each instance as received at
//! `incoming/<batch>/<SOPInstanceUID>.dcm` (`proto::uid::incoming_instance_key`), decide when
//! the reception is complete, and publish one [`Job::ingest`] to `spinescreen.ingest`. The
//! pixels never travel over the broker.
//!
//! - [`directory`]: [`stage_directory`], a directory tree (the CLI's `analyze DIR`).
//! - [`scp`]: [`run_scp`], the DICOM C-STORE SCP; a reception per study per association, complete
//!   on A-RELEASE, on abort, or after the inactivity timeout.
//! - [`stow`]: [`run_stow`], DICOMweb STOW-RS; a reception per study per request.
//!
//! Receivers take a [`CancellationToken`] (re-exported by `spinescreen_runtime`): cancelling it
//! stops accepting connections, completes the receptions in hand and returns.

pub mod directory;
pub mod scp;
pub mod stow;

pub use directory::{stage_directory, stage_directory_with_limits};
pub use scp::{run_scp, run_scp_on};
pub use stow::{run_stow, run_stow_on, stow_router};

use crate::config::IngestLimits;
use crate::error::IngestError;
use crate::guard::{check_part10, part10_body, Rejected};
use dicom_dictionary_std::tags;
use dicom_object::{file::ReadPreamble, OpenFileOptions};
use sha2::{Digest, Sha256};
use spinescreen_proto::uid::{incoming_batch_prefix, incoming_instance_key, validate_uid};
use spinescreen_proto::{Job, Stage};
use spinescreen_runtime::{Broker, StudyStore};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub use spinescreen_runtime::CancellationToken;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The UIDs a receiver needs from a Part 10 file, read from its header only.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InstanceIds {
    /// SOP Instance UID (from the File Meta Information, else the dataset), if valid.
    pub sop_instance_uid: Option<String>,
    /// SOP Class UID from the File Meta Information, if valid.
    pub sop_class_uid: Option<String>,
    /// Study Instance UID, if valid.
    pub study_uid: Option<String>,
    /// Why the pre-parse check ([`crate::guard`]) refused the file, if it did: the parser was
    /// not run, and a network receiver answers with a failure status.
    pub rejected: Option<String>,
}

/// Read the identifying UIDs of a Part 10 file without reading its pixel data. The file is
/// checked by [`crate::guard`] first; a refused file has only `rejected` set.
pub(crate) fn instance_ids(bytes: &[u8], limits: &IngestLimits) -> InstanceIds {
    let body = match check_part10(bytes, &limits.guard()) {
        Ok(c) => &bytes[c.offset..],
        // The header before cut pixels is sound, and the study should hear about it.
        Err(Rejected::TruncatedPixelData(_)) => match part10_body(bytes) {
            Some((offset, _)) => &bytes[offset..],
            None => return InstanceIds::default(),
        },
        Err(e) => {
            return InstanceIds {
                rejected: Some(e.to_string()),
                ..Default::default()
            }
        }
    };
    let Ok(obj) = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(body)
    else {
        return InstanceIds {
            rejected: Some("the DICOM header does not parse".into()),
            ..Default::default()
        };
    };
    let text = |tag| spinescreen_dicom::text_opt(&obj, tag).filter(|s| validate_uid(s).is_ok());
    let meta = |s: &str| {
        Some(s.trim_end_matches(['\0', ' ']).to_string()).filter(|s| validate_uid(s).is_ok())
    };
    InstanceIds {
        sop_instance_uid: meta(obj.meta().media_storage_sop_instance_uid())
            .or_else(|| text(tags::SOP_INSTANCE_UID)),
        sop_class_uid: meta(obj.meta().media_storage_sop_class_uid()),
        study_uid: text(tags::STUDY_INSTANCE_UID),
        rejected: None,
    }
}

/// Storage key for one received file: by SOP Instance UID when it has a valid one, else by a
/// content hash (so even a file that is not DICOM is kept, and ingest can report it).
pub(crate) fn instance_key(
    batch: &str,
    bytes: &[u8],
    sop_instance_uid: Option<&str>,
) -> Result<String, IngestError> {
    if let Some(uid) = sop_instance_uid {
        if let Ok(key) = incoming_instance_key(batch, uid) {
            return Ok(key);
        }
    }
    let prefix = incoming_batch_prefix(batch).map_err(|e| IngestError::Receive(e.to_string()))?;
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{prefix}unidentified-{hex}.bin"))
}

/// One reception in progress: a batch of stored files that will become one ingest job.
#[derive(Debug, Clone)]
pub(crate) struct Reception {
    /// Batch id (a UUID), also the job id.
    pub batch: String,
    /// When the first file arrived (the SLA clock starts here).
    pub received_at_unix_ms: u64,
    /// Files stored.
    pub files: usize,
}

impl Reception {
    /// A new, empty reception with a fresh batch id.
    pub fn new() -> Self {
        Self {
            batch: uuid::Uuid::new_v4().to_string(),
            received_at_unix_ms: now_ms(),
            files: 0,
        }
    }

    /// Store one file of this reception; returns its key.
    pub async fn store(
        &mut self,
        store: &StudyStore,
        bytes: bytes::Bytes,
        sop_instance_uid: Option<&str>,
    ) -> Result<String, IngestError> {
        let key = instance_key(&self.batch, &bytes, sop_instance_uid)?;
        store
            .put(&key, bytes)
            .await
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        if self.files == 0 {
            self.received_at_unix_ms = now_ms();
        }
        self.files += 1;
        Ok(key)
    }

    /// The ingest job for this reception.
    pub fn job(&self) -> Result<Job, IngestError> {
        let prefix =
            incoming_batch_prefix(&self.batch).map_err(|e| IngestError::Receive(e.to_string()))?;
        Ok(Job::ingest(
            self.batch.clone(),
            prefix,
            self.received_at_unix_ms,
        ))
    }
}

/// Receptions of one connection or request, one per study (instances without a readable Study
/// Instance UID share one).
#[derive(Debug, Default)]
pub(crate) struct Receptions {
    by_study: HashMap<Option<String>, Reception>,
}

impl Receptions {
    /// Store a Part 10 file in the reception of its study.
    pub async fn store(
        &mut self,
        store: &StudyStore,
        bytes: bytes::Bytes,
        ids: &InstanceIds,
    ) -> Result<(), IngestError> {
        let reception = self
            .by_study
            .entry(ids.study_uid.clone())
            .or_insert_with(Reception::new);
        reception
            .store(store, bytes, ids.sop_instance_uid.as_deref())
            .await?;
        Ok(())
    }

    /// Whether nothing has been stored.
    pub fn is_empty(&self) -> bool {
        self.by_study.is_empty()
    }

    /// Publish one ingest job per study and start afresh. Returns the jobs published.
    pub async fn complete(&mut self, broker: &dyn Broker) -> Result<Vec<Job>, IngestError> {
        let mut jobs = vec![];
        let mut receptions: Vec<(Option<String>, Reception)> = self.by_study.drain().collect();
        receptions.sort_by_key(|(_, r)| r.received_at_unix_ms);
        let mut pending = receptions.into_iter();
        while let Some((study, r)) = pending.next() {
            let published = match r.job() {
                Ok(job) => publish(broker, &job).await.map(|_| job),
                Err(e) => Err(e),
            };
            match published {
                Ok(job) => {
                    tracing::info!(job_id = %job.job_id, files = r.files, "reception complete; ingest job published");
                    jobs.push(job);
                }
                Err(e) => {
                    // Keep what could not be announced, so a later attempt can publish it.
                    self.by_study.insert(study, r);
                    self.by_study.extend(pending);
                    return Err(e);
                }
            }
        }
        Ok(jobs)
    }
}

/// Publish an ingest job (declaring the queue first; declaring is idempotent).
pub async fn publish(broker: &dyn Broker, job: &Job) -> Result<(), IngestError> {
    spinescreen_runtime::broker::submit(broker, Stage::Ingest, job)
        .await
        .map_err(|e| IngestError::Broker(e.to_string()))
}
