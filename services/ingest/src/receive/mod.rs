//! Receivers: where DICOM instances arrive and become one ingest job per completed reception.
//!
//! Every receiver does the same three things: keep each instance as received, decide when the
//! reception is complete, and publish one [`Job::ingest`] to `spinescreen.ingest` once the
//! reception is stored under `incoming/<batch>/`. The pixels never travel over the broker.
//!
//! A reception is stored as a few bundles, `incoming/<batch>/bundle-<seq>.bundle`
//! ([`spinescreen_proto::bundle`]): the C-STORE SCP appends each instance to a local
//! write-ahead spool before answering it and uploads the spool's segments (`spool`), STOW-RS and
//! a directory assemble bundles in memory. The C-STORE SCP without `scp.spool_dir` stores each
//! instance as its own object before answering it (`incoming/<batch>/<SOPInstanceUID>.dcm`,
//! the layout before bundles; ingest reads both).
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
mod spool;
pub mod stow;

pub use directory::{stage_directory, stage_directory_with_limits};
pub use scp::{run_scp, run_scp_on};
pub use stow::{run_stow, run_stow_on, stow_router};

use crate::config::IngestLimits;
use crate::error::IngestError;
use crate::guard::{check_part10, part10_body, Rejected};
use dicom_dictionary_std::tags;
use dicom_object::{file::ReadPreamble, OpenFileOptions};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use spinescreen_proto::bundle::record_header;
use spinescreen_proto::uid::{
    incoming_batch_prefix, incoming_bundle_key, incoming_instance_key, validate_uid,
};
use spinescreen_proto::{Job, Stage};
use spinescreen_runtime::{Broker, StudyStore};
use spool::{SpoolConfig, SpoolWriter};
use std::collections::HashMap;
use std::sync::Arc;
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

/// Name of one received file in its reception: its SOP Instance UID when it has a valid one,
/// else `unidentified-<hash>` (so even a file that is not DICOM is kept, and ingest can report
/// it).
pub(crate) fn entry_name(bytes: &[u8], sop_instance_uid: Option<&str>) -> String {
    if let Some(uid) = sop_instance_uid.filter(|u| validate_uid(u).is_ok()) {
        return uid.to_string();
    }
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("unidentified-{hex}")
}

/// Storage key for one received file stored as its own object (the per-instance layout):
/// `incoming/<batch>/<SOPInstanceUID>.dcm`, or `…/unidentified-<hash>.bin`.
pub(crate) fn instance_key(
    batch: &str,
    bytes: &[u8],
    sop_instance_uid: Option<&str>,
) -> Result<String, IngestError> {
    let name = entry_name(bytes, sop_instance_uid);
    if validate_uid(&name).is_ok() {
        return incoming_instance_key(batch, &name)
            .map_err(|e| IngestError::Receive(e.to_string()));
    }
    let prefix = incoming_batch_prefix(batch).map_err(|e| IngestError::Receive(e.to_string()))?;
    Ok(format!("{prefix}{name}.bin"))
}

/// A bundle assembled in memory is stored once it holds this many bytes.
pub(crate) const BUNDLE_BYTES: usize = 32 << 20;
/// Bundles stored at once.
const BUNDLE_PUTS: usize = 4;

/// How a receiver keeps the instances of its receptions until ingest reads them.
#[derive(Debug, Clone, Default)]
pub(crate) enum Keeping {
    /// Each instance its own object (`incoming/<batch>/<SOPInstanceUID>.dcm`), stored before
    /// it is acknowledged: the C-STORE SCP without a spool directory.
    #[default]
    PerInstance,
    /// Bundles of [`BUNDLE_BYTES`] assembled in memory and stored before the reception is
    /// acknowledged as a whole (STOW-RS answers once per request; a directory is its own copy).
    Bundles,
    /// A local write-ahead spool, uploaded as bundles: the C-STORE SCP with `scp.spool_dir`.
    Spool(Arc<SpoolConfig>),
}

/// Bundles of one reception assembled in memory (the pieces are the received buffers, not
/// copies).
#[derive(Debug, Default)]
struct MemoryBundles {
    /// Full bundles not stored yet: sequence number and pieces.
    sealed: Vec<(u32, Vec<bytes::Bytes>)>,
    current: Vec<bytes::Bytes>,
    current_len: usize,
    next_seq: u32,
}

impl MemoryBundles {
    fn append(&mut self, name: &str, data: bytes::Bytes) {
        if self.current.is_empty() {
            self.current.push(bytes::Bytes::from_static(
                spinescreen_proto::bundle::BUNDLE_MAGIC,
            ));
            self.current_len = spinescreen_proto::bundle::BUNDLE_MAGIC.len();
        }
        let header = record_header(name, data.len() as u64);
        self.current_len += header.len() + data.len();
        self.current.push(header.into());
        self.current.push(data);
        if self.current_len >= BUNDLE_BYTES {
            self.seal();
        }
    }

    fn seal(&mut self) {
        if !self.current.is_empty() {
            self.sealed
                .push((self.next_seq, std::mem::take(&mut self.current)));
            self.next_seq += 1;
            self.current_len = 0;
        }
    }

    /// Store the sealed bundles; those that fail stay sealed.
    async fn put_sealed(&mut self, store: &StudyStore, batch: &str) -> Result<(), IngestError> {
        let sealed = std::mem::take(&mut self.sealed);
        let results: Vec<_> = futures::stream::iter(sealed)
            .map(|(seq, parts)| async move {
                let key = match incoming_bundle_key(batch, seq) {
                    Ok(k) => k,
                    Err(e) => return (seq, parts, Err(IngestError::Receive(e.to_string()))),
                };
                let r = store
                    .put_parts(&key, parts.clone())
                    .await
                    .map_err(|e| IngestError::Storage(e.to_string()));
                (seq, parts, r)
            })
            .buffer_unordered(BUNDLE_PUTS)
            .collect()
            .await;
        let mut failed = None;
        for (seq, parts, r) in results {
            if let Err(e) = r {
                self.sealed.push((seq, parts));
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// One reception in progress: a batch of received files that will become one ingest job.
#[derive(Debug)]
pub(crate) struct Reception {
    /// Batch id (a UUID), also the job id.
    pub batch: String,
    /// When the first file arrived (the SLA clock starts here).
    pub received_at_unix_ms: u64,
    /// Files received.
    pub files: usize,
    keeping: Keeping,
    memory: MemoryBundles,
    spool: Option<SpoolWriter>,
}

impl Reception {
    /// A new, empty reception with a fresh batch id.
    pub fn new(keeping: Keeping) -> Self {
        Self {
            batch: uuid::Uuid::new_v4().to_string(),
            received_at_unix_ms: now_ms(),
            files: 0,
            keeping,
            memory: MemoryBundles::default(),
            spool: None,
        }
    }

    /// Keep one file of this reception. Once this returns, the file is as durable as the
    /// reception's [`Keeping`] makes it: stored (per instance), on the local disk (spool), or
    /// in memory until [`Reception::finish`] (bundles).
    pub async fn store(
        &mut self,
        store: &StudyStore,
        bytes: bytes::Bytes,
        sop_instance_uid: Option<&str>,
    ) -> Result<(), IngestError> {
        if self.files == 0 {
            self.received_at_unix_ms = now_ms();
        }
        match &self.keeping {
            Keeping::PerInstance => {
                let key = instance_key(&self.batch, &bytes, sop_instance_uid)?;
                store
                    .put(&key, bytes)
                    .await
                    .map_err(|e| IngestError::Storage(e.to_string()))?;
            }
            Keeping::Bundles => {
                let name = entry_name(&bytes, sop_instance_uid);
                self.memory.append(&name, bytes);
            }
            Keeping::Spool(config) => {
                let name = entry_name(&bytes, sop_instance_uid);
                if self.spool.is_none() {
                    self.spool = Some(
                        SpoolWriter::create(config.clone(), &self.batch, self.received_at_unix_ms)
                            .await?,
                    );
                }
                if let Some(spool) = &mut self.spool {
                    spool.append(store, &name, bytes).await?;
                }
            }
        }
        self.files += 1;
        Ok(())
    }

    /// Store the bundles already full (a directory stages them as it goes, holding at most one
    /// bundle in memory).
    pub async fn store_full_bundles(&mut self, store: &StudyStore) -> Result<(), IngestError> {
        self.memory.put_sealed(store, &self.batch).await
    }

    /// Store whatever this reception still holds (the last bundle, the spool's segments), so
    /// that its job can be published.
    pub async fn finish(&mut self, store: &StudyStore) -> Result<(), IngestError> {
        self.memory.seal();
        self.memory.put_sealed(store, &self.batch).await?;
        if let Some(spool) = &mut self.spool {
            spool.upload(store).await?;
        }
        Ok(())
    }

    /// The job is published: drop the local spool.
    async fn published(&mut self) {
        if let Some(spool) = self.spool.take() {
            spool.remove().await;
        }
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
    keeping: Keeping,
}

impl Receptions {
    /// No reception yet; each will keep its files as `keeping` says.
    pub fn new(keeping: Keeping) -> Self {
        Self {
            by_study: HashMap::new(),
            keeping,
        }
    }

    /// Keep a Part 10 file in the reception of its study.
    pub async fn store(
        &mut self,
        store: &StudyStore,
        bytes: bytes::Bytes,
        ids: &InstanceIds,
    ) -> Result<(), IngestError> {
        let keeping = &self.keeping;
        let reception = self
            .by_study
            .entry(ids.study_uid.clone())
            .or_insert_with(|| Reception::new(keeping.clone()));
        reception
            .store(store, bytes, ids.sop_instance_uid.as_deref())
            .await
    }

    /// Whether received instances are kept in a local spool (durable before they are stored).
    pub fn is_spooled(&self) -> bool {
        matches!(self.keeping, Keeping::Spool(_))
    }

    /// Whether nothing has been received.
    pub fn is_empty(&self) -> bool {
        self.by_study.is_empty()
    }

    /// Store what each reception still holds, publish one ingest job per study and start
    /// afresh. Returns the jobs published. A reception that cannot be stored or published is
    /// kept, so a later attempt can complete it (a spooled one is also completed by the next
    /// receiver process that finds it).
    pub async fn complete(
        &mut self,
        store: &StudyStore,
        broker: &dyn Broker,
    ) -> Result<Vec<Job>, IngestError> {
        let mut jobs = vec![];
        let mut receptions: Vec<(Option<String>, Reception)> = self.by_study.drain().collect();
        receptions.sort_by_key(|(_, r)| r.received_at_unix_ms);
        let mut pending = receptions.into_iter();
        while let Some((study, mut r)) = pending.next() {
            let published = match r.finish(store).await.and_then(|_| r.job()) {
                Ok(job) => publish(broker, &job).await.map(|_| job),
                Err(e) => Err(e),
            };
            match published {
                Ok(job) => {
                    r.published().await;
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
