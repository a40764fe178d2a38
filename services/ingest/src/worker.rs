//! [`IngestWorker`]: the ingest stage as a pipeline worker.
//!
//! Consumes a job naming a reception (`incoming/<batch>/`: bundles, read with one GET each, or
//! instances stored one object each, the layout before bundles), builds the volume with
//! [`crate::build_volume_with_report`], stores `volume.json` + `volume.zst` (volume format 2) and passes the job on
//! with its `study_uid`. A study that cannot be analysed gets a `result.json` with status
//! `technical_defect` and the coded reason instead, and its job flows on with that status so the
//! publisher still sends an SR. Storage failures are transient (the runtime retries); nothing
//! about the input can make the stage fail or panic.
//!
//! A study's reception accumulates: `studies/<uid>/received.json` records every instance
//! received for it, by SOP Instance UID. A reception with no new instance leaves the study's
//! result as it is (the job is announced done with it); one with new instances is processed
//! together with the earlier ones still stored; and a reception that would turn a finished
//! analysis into a technical defect is recorded but does not replace it.

use crate::build::{build_volume_with_report, IngestReport, SourceFile};
use crate::config::{IngestConfig, IngestLimits};
use crate::receive::{instance_ids, InstanceIds};
use crate::source::SourceHeaders;
use crate::uidgen::derived_uid;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use spinescreen_proto::bundle::{entry_ref, parse_bundle, parse_entry_ref};
use spinescreen_proto::uid::is_bundle_key;
use spinescreen_proto::{
    HuVolume, Job, Reason, ReasonCode, SourceInfo, Stage, StudyResult, StudyStatus, StudyUid,
};
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::volumes::write_volume;
use spinescreen_runtime::{StageContext, StageError, StageWorker, StudyStore};
use std::collections::{BTreeMap, BTreeSet};

/// Files fetched from storage at once.
const FETCH_CONCURRENCY: usize = 16;
/// Bundles fetched from storage at once (each up to `scp.spool_segment_mib`, 32 MiB by default).
const BUNDLE_CONCURRENCY: usize = 4;

/// The ingest stage.
#[derive(Debug, Clone)]
pub struct IngestWorker {
    limits: IngestLimits,
}

impl IngestWorker {
    /// A worker with the limits of `config`.
    pub fn new(config: &IngestConfig) -> Self {
        Self {
            limits: config.limits.clone(),
        }
    }
}

fn transient(e: impl std::fmt::Display) -> StageError {
    StageError::Transient(anyhow::anyhow!("{e}"))
}

/// The instances received for one study across receptions (`studies/<uid>/received.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Received {
    /// SOP Instance UID → storage key of the file as received.
    instances: BTreeMap<String, String>,
    /// The job that last added instances: if it is delivered again (the worker stopped before
    /// acknowledging it), it is processed again rather than taken for a re-send.
    #[serde(default)]
    last_job: Option<String>,
}

async fn load_received(store: &StudyStore, uid: &StudyUid) -> Result<Received, StageError> {
    match store.get(&uid.keys().received()).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(study_uid = %uid, error = %e, "received.json unreadable; starting afresh");
            Received::default()
        })),
        Err(StorageError::NotFound(_)) => Ok(Received::default()),
        Err(e) => Err(transient(e)),
    }
}

/// The study's current `result.json`, if it has a readable one.
async fn load_result(
    store: &StudyStore,
    uid: &StudyUid,
) -> Result<Option<StudyResult>, StageError> {
    match store.get(&uid.keys().result()).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(transient(e)),
    }
}

/// Announce that this job is finished with the study's existing result (nothing to redo).
async fn announce_unchanged(
    ctx: &StageContext,
    job: &Job,
    uid: &StudyUid,
    previous: &StudyResult,
) -> Result<(), StageError> {
    spinescreen_runtime::events::announce_existing(&*ctx.broker, job, uid, previous.status)
        .await
        .map_err(transient)
}

/// Fetch files by key: a plain key is an instance stored as its own object, an
/// [`entry_ref`](spinescreen_proto::bundle::entry_ref) is an instance inside a bundle (each
/// bundle named is read once, with one GET). With `missing_ok`, files that are gone (deleted by
/// retention) are skipped.
async fn fetch(
    store: &StudyStore,
    keys: Vec<String>,
    missing_ok: bool,
) -> Result<Vec<SourceFile>, StageError> {
    let (refs, plain): (Vec<String>, Vec<String>) =
        keys.into_iter().partition(|k| parse_entry_ref(k).is_some());
    let mut fetched: Vec<Option<SourceFile>> = futures::stream::iter(plain)
        .map(|key| async move {
            match store.get(&key).await {
                Ok(bytes) => Ok(Some(SourceFile { name: key, bytes })),
                Err(StorageError::NotFound(_)) if missing_ok => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await
        .map_err(transient)?;
    let bundles: BTreeSet<String> = refs
        .iter()
        .filter_map(|r| parse_entry_ref(r).map(|(k, _)| k.to_string()))
        .collect();
    let bundles: BTreeMap<String, Option<bytes::Bytes>> = futures::stream::iter(bundles)
        .map(|key| async move {
            match store.get(&key).await {
                Ok(bytes) => Ok((key, Some(bytes))),
                Err(StorageError::NotFound(_)) if missing_ok => Ok((key, None)),
                Err(e) => Err(e),
            }
        })
        .buffered(BUNDLE_CONCURRENCY)
        .try_collect()
        .await
        .map_err(transient)?;
    for r in &refs {
        let Some((key, range)) = parse_entry_ref(r) else {
            continue;
        };
        let Some(Some(bundle)) = bundles.get(key) else {
            continue;
        };
        let (start, end) = (range.start as usize, range.end as usize);
        if start > end || end > bundle.len() {
            return Err(StageError::Permanent(anyhow::anyhow!(
                "received.json names bytes {start}..{end} of {key}, which holds {} bytes",
                bundle.len()
            )));
        }
        fetched.push(Some(SourceFile {
            name: r.clone(),
            bytes: bundle.slice(start..end),
        }));
    }
    Ok(fetched.into_iter().flatten().collect())
}

/// Read a reception stored under `incoming/<batch>/`: bundles (one GET each, a few at once,
/// each instance a view of its bundle named by its
/// [`entry_ref`](spinescreen_proto::bundle::entry_ref); an instance recorded twice counts once,
/// the later copy) and instances stored as their own objects (the layout before bundles).
/// A bundle that does not parse is a permanent error: the job is dead-lettered with the reason
/// and the reception stays in storage.
async fn fetch_reception(
    store: &StudyStore,
    keys: Vec<String>,
) -> Result<Vec<SourceFile>, StageError> {
    let (bundle_keys, plain): (Vec<String>, Vec<String>) =
        keys.into_iter().partition(|k| is_bundle_key(k));
    let bundles: Vec<(String, bytes::Bytes)> = futures::stream::iter(bundle_keys)
        .map(|key| async move { store.get(&key).await.map(|b| (key, b)) })
        .buffered(BUNDLE_CONCURRENCY)
        .try_collect()
        .await
        .map_err(transient)?;
    let mut files = vec![];
    let mut by_name: std::collections::HashMap<String, usize> = Default::default();
    for (key, bundle) in &bundles {
        let entries = parse_bundle(bundle).map_err(|e| {
            StageError::Permanent(anyhow::anyhow!("reception bundle {key} unreadable: {e}"))
        })?;
        for entry in entries {
            let file = SourceFile {
                name: entry_ref(key, &entry.data),
                bytes: bundle.slice(entry.data.clone()),
            };
            match by_name.get(&entry.name) {
                Some(&i) => files[i] = file,
                None => {
                    by_name.insert(entry.name, files.len());
                    files.push(file);
                }
            }
        }
    }
    drop(bundles);
    files.extend(fetch(store, plain, false).await?);
    Ok(files)
}

/// The stored object that holds a file fetched by [`fetch`] (its bundle, or itself).
fn stored_object(name: &str) -> &str {
    parse_entry_ref(name).map_or(name, |(key, _)| key)
}

/// One reception read and built, before anything is stored.
struct Reception {
    /// The study its files name, if one names a usable Study Instance UID.
    study: Option<StudyUid>,
    /// The study's record of instances received before this reception.
    received: Received,
    /// The study's result before this reception, if it has a readable one.
    previous: Option<StudyResult>,
    /// `(SOP Instance UID, storage key)` of each instance in this reception.
    batch_instances: Vec<(String, String)>,
    /// The volume, or the technical defect that stops it.
    result: Result<HuVolume, Reason>,
    /// What was received and what was made of each series.
    report: IngestReport,
    /// Accession number and scanner, for the study ledger.
    source: Option<SourceInfo>,
}

impl Reception {
    /// A reception with more files than `limit`: refused before a file is fetched.
    fn oversized(files: usize, limit: usize) -> Self {
        Self {
            study: None,
            received: Received::default(),
            previous: None,
            batch_instances: vec![],
            result: Err(Reason::new(
                ReasonCode::OVERSIZE,
                format!("{files} files exceed the limit of {limit} instances"),
            )),
            report: IngestReport::default(),
            source: None,
        }
    }
}

impl Received {
    /// Record this reception's instances as received by `job_id`.
    fn record(&mut self, batch_instances: Vec<(String, String)>, job_id: &str) {
        self.instances.extend(batch_instances);
        self.last_job = Some(job_id.to_string());
    }

    /// Storage keys of the instances received earlier and not re-sent in this batch.
    fn earlier_than(&self, batch_instances: &[(String, String)]) -> Vec<String> {
        let in_batch: BTreeSet<&String> = batch_instances.iter().map(|(s, _)| s).collect();
        self.instances
            .iter()
            .filter(|(sop, _)| !in_batch.contains(sop))
            .map(|(_, key)| key.clone())
            .collect()
    }
}

impl IngestWorker {
    /// Fetch the reception's files, join them to the study's earlier instances and build the
    /// volume; `None` when the reception adds nothing to a study with a result (the job is then
    /// already announced done and the re-sent copies deleted).
    async fn gather(
        &self,
        ctx: &StageContext,
        job: &Job,
        mut files: Vec<SourceFile>,
    ) -> Result<Option<Reception>, StageError> {
        let store = &ctx.store;
        // Which study this reception belongs to, and which of its instances are new: a
        // study's reception accumulates across associations and requests.
        let ids = self.read_instance_ids(&files).await?;
        let study = ids
            .iter()
            .find_map(|i| i.study_uid.as_deref())
            .and_then(|u| StudyUid::new(u).ok());
        let batch_instances: Vec<(String, String)> = files
            .iter()
            .zip(&ids)
            .filter_map(|(f, i)| Some((i.sop_instance_uid.clone()?, f.name.clone())))
            .collect();
        let mut received = Received::default();
        let mut previous = None;
        if let Some(uid) = &study {
            received = load_received(store, uid).await?;
            previous = load_result(store, uid).await?;
            let new = batch_instances
                .iter()
                .filter(|(sop, _)| !received.instances.contains_key(sop))
                .count();
            let redelivered = received.last_job.as_deref() == Some(job.job_id.as_str());
            if let (0, Some(prev), false) = (new, &previous, redelivered) {
                answer_resend(ctx, job, uid, prev, &files).await?;
                return Ok(None);
            }
            let earlier = received.earlier_than(&batch_instances);
            if !earlier.is_empty() {
                tracing::info!(job_id = %job.job_id, study_uid = %uid, new, earlier = earlier.len(), "adding the study's earlier instances");
                files.extend(fetch(store, earlier, true).await?);
            }
        }
        let (result, report, source) = self.build(files).await?;
        Ok(Some(Reception {
            study,
            received,
            previous,
            batch_instances,
            result,
            report,
            source,
        }))
    }

    /// Each file's study and SOP instance UIDs, read off the thread pool.
    async fn read_instance_ids(
        &self,
        files: &[SourceFile],
    ) -> Result<Vec<InstanceIds>, StageError> {
        let limits = self.limits.clone();
        let headers = files.to_vec();
        tokio::task::spawn_blocking(move || {
            headers
                .iter()
                .map(|f| instance_ids(&f.bytes, &limits))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(transient)
    }

    /// Build the volume and read the source off the thread pool.
    async fn build(
        &self,
        files: Vec<SourceFile>,
    ) -> Result<(Result<HuVolume, Reason>, IngestReport, Option<SourceInfo>), StageError> {
        let limits = self.limits.clone();
        tokio::task::spawn_blocking(move || {
            // The source's headers first: the build frees each file once it is decoded.
            let headers = SourceHeaders::read(&files);
            let (result, report) = build_volume_with_report(files, &limits);
            let chosen = result
                .as_ref()
                .ok()
                .map(|v| v.header.study.series_instance_uid.as_str());
            let study = report.study_uid.as_deref();
            let source = headers.choose(study, chosen);
            (result, report, source)
        })
        .await
        .map_err(transient)
    }
}

/// A reception with no new instance for a study that has a result: announce the job done
/// with that result and delete the re-sent copies.
async fn answer_resend(
    ctx: &StageContext,
    job: &Job,
    uid: &StudyUid,
    previous: &StudyResult,
    files: &[SourceFile],
) -> Result<(), StageError> {
    tracing::info!(
        job_id = %job.job_id,
        study_uid = %uid,
        files = files.len(),
        "nothing new in this reception; the study's result stands"
    );
    announce_unchanged(ctx, job, uid, previous).await?;
    // Copies of instances already recorded: patient data with no further use.
    let objects: BTreeSet<&str> = files.iter().map(|f| stored_object(&f.name)).collect();
    for key in objects {
        if let Err(e) = ctx.store.delete(key).await {
            tracing::warn!(error = %e, "could not delete a re-sent file");
        }
    }
    Ok(())
}

/// Log what the reception held, series by series, and each correction made to the input.
fn log_report(job: &Job, report: &IngestReport) {
    for note in &report.series {
        tracing::info!(
            job_id = %job.job_id,
            series_number = %note.series_number,
            modality = %note.modality,
            instances = note.instances,
            outcome = %note.outcome,
            "series"
        );
    }
    for note in &report.notes {
        tracing::warn!(job_id = %job.job_id, note = %note, "input corrected");
    }
}

/// Store the volume (frames first, header last: a reader that finds the header finds the
/// voxels); the study it belongs to.
async fn store_volume(
    ctx: &StageContext,
    job: &Job,
    volume: HuVolume,
    files: usize,
) -> Result<StudyUid, StageError> {
    let uid = StudyUid::new(&volume.header.study.study_instance_uid)
        .map_err(|e| StageError::Permanent(anyhow::anyhow!("{e}")))?;
    let keys = uid.keys();
    write_volume(&ctx.store, &keys, std::sync::Arc::new(volume))
        .await
        .map_err(transient)?;
    tracing::info!(job_id = %job.job_id, study_uid = %uid, files, "volume stored");
    Ok(uid)
}

/// Store a `technical_defect` result with its reason, under the reception's study or, when no
/// file named one, a study UID derived from the job; that study.
async fn store_defect(
    ctx: &StageContext,
    job: &Job,
    report: &IngestReport,
    reason: Reason,
) -> Result<StudyUid, StageError> {
    let uid = report
        .study_uid
        .as_deref()
        .and_then(|u| StudyUid::new(u).ok())
        .or_else(|| {
            StudyUid::new(derived_uid("spinescreen.ingest.job", job.job_id.as_bytes())).ok()
        })
        .ok_or_else(|| StageError::Permanent(anyhow::anyhow!("cannot derive a study UID")))?;
    tracing::warn!(
        job_id = %job.job_id,
        study_uid = %uid,
        code = %reason.code,
        reason = %reason.text,
        not_dicom = report.not_dicom.len(),
        "technical defect"
    );
    let result = StudyResult::not_analysed(
        uid.to_string(),
        StudyStatus::TechnicalDefect,
        reason,
        ctx.service.clone(),
    );
    let bytes = serde_json::to_vec_pretty(&result).map_err(transient)?;
    ctx.store
        .put(&uid.keys().result(), bytes)
        .await
        .map_err(transient)?;
    Ok(uid)
}

/// Store the reception's source (accession number, scanner) for the study ledger; the
/// study's own UID wins over a stray file's.
async fn store_source(
    ctx: &StageContext,
    uid: &StudyUid,
    mut source: SourceInfo,
) -> Result<(), StageError> {
    source.study_instance_uid = uid.to_string();
    let bytes = serde_json::to_vec_pretty(&source).map_err(transient)?;
    ctx.store
        .put(&uid.keys().source(), bytes)
        .await
        .map_err(transient)
}

#[async_trait]
impl StageWorker for IngestWorker {
    fn stage(&self) -> Stage {
        Stage::Ingest
    }

    async fn process(&self, mut job: Job, ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        if !job.incoming_prefix.starts_with("incoming/") {
            return Err(StageError::Permanent(anyhow::anyhow!(
                "job {} has incoming_prefix {:?}, not under incoming/",
                job.job_id,
                job.incoming_prefix
            )));
        }
        let keys = ctx
            .store
            .list(&job.incoming_prefix)
            .await
            .map_err(transient)?;
        let reception = if keys.len() > self.limits.max_instances {
            // Do not even fetch an oversized reception stored one object per instance.
            Reception::oversized(keys.len(), self.limits.max_instances)
        } else {
            let files = fetch_reception(&ctx.store, keys).await?;
            if files.len() > self.limits.max_instances {
                Reception::oversized(files.len(), self.limits.max_instances)
            } else {
                match self.gather(ctx, &job, files).await? {
                    Some(reception) => reception,
                    None => return Ok(vec![]),
                }
            }
        };
        let Reception {
            study,
            mut received,
            previous,
            batch_instances,
            result,
            report,
            source,
        } = reception;
        log_report(&job, &report);
        // A reception that adds instances but makes the study unusable (say, a partial re-send
        // after retention deleted the first one) must not replace a finished analysis.
        if let (Err(reason), Some(uid), Some(prev)) = (&result, &study, &previous) {
            if prev.status != StudyStatus::TechnicalDefect {
                tracing::warn!(
                    job_id = %job.job_id,
                    study_uid = %uid,
                    code = %reason.code,
                    "this reception alone is a technical defect; the study's earlier result stands"
                );
                received.record(batch_instances, &job.job_id);
                save_received(&ctx.store, uid, &received).await?;
                announce_unchanged(ctx, &job, uid, prev).await?;
                return Ok(vec![]);
            }
        }
        let uid = match result {
            Ok(volume) => store_volume(ctx, &job, volume, report.files).await?,
            Err(reason) => {
                let uid = store_defect(ctx, &job, &report, reason).await?;
                job.status = StudyStatus::TechnicalDefect;
                uid
            }
        };
        job.study_uid = Some(uid.clone());
        if let Some(study) = &study {
            received.record(batch_instances, &job.job_id);
            save_received(&ctx.store, study, &received).await?;
        }
        if let Some(source) = source {
            store_source(ctx, &uid, source).await?;
        }
        Ok(vec![job])
    }
}

async fn save_received(
    store: &StudyStore,
    uid: &StudyUid,
    received: &Received,
) -> Result<(), StageError> {
    let bytes = serde_json::to_vec(received).map_err(transient)?;
    store
        .put(&uid.keys().received(), bytes)
        .await
        .map_err(transient)
}
