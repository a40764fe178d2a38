//! [`IngestWorker`]: the ingest stage as a pipeline worker.
//!
//! Consumes a job naming a reception (`incoming/<batch>/`), builds the volume with
//! [`crate::build_volume_with_report`], stores `volume.json` + `volume.i16` and passes the job on
//! with its `study_uid`. A study that cannot be analysed gets a `result.json` with status
//! `technical_defect` and the coded reason instead, and its job flows on with that status so the
//! publisher still sends an SR. Storage failures are transient (the runtime retries); nothing
//! about the input can make the stage fail or panic.

use crate::build::{build_volume_with_report, voxel_bytes, SourceFile};
use crate::config::{IngestConfig, IngestLimits};
use crate::source::read_source;
use crate::uidgen::derived_uid;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use spinescreen_proto::{Job, Reason, ReasonCode, Stage, StudyResult, StudyStatus, StudyUid};
use spinescreen_runtime::{StageContext, StageError, StageWorker};

/// Files fetched from storage at once.
const FETCH_CONCURRENCY: usize = 16;

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
        let (result, report, source) = if keys.len() > self.limits.max_instances {
            // Do not even fetch an oversized reception.
            (
                Err(Reason::new(
                    ReasonCode::OVERSIZE,
                    format!(
                        "{} files exceed the limit of {} instances",
                        keys.len(),
                        self.limits.max_instances
                    ),
                )),
                Default::default(),
                None,
            )
        } else {
            let store = &ctx.store;
            let files: Vec<SourceFile> = futures::stream::iter(keys)
                .map(|key| async move {
                    let bytes = store.get(&key).await?;
                    Ok::<_, spinescreen_runtime::storage::StorageError>(SourceFile {
                        name: key,
                        bytes,
                    })
                })
                .buffered(FETCH_CONCURRENCY)
                .try_collect()
                .await
                .map_err(transient)?;
            let limits = self.limits.clone();
            tokio::task::spawn_blocking(move || {
                let (result, report) = build_volume_with_report(&files, &limits);
                let chosen = result
                    .as_ref()
                    .ok()
                    .map(|v| v.header.study.series_instance_uid.as_str());
                let study = report.study_uid.as_deref();
                let source = read_source(&files, study, chosen);
                (result, report, source)
            })
            .await
            .map_err(transient)?
        };
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
        match result {
            Ok(volume) => {
                let uid = StudyUid::new(&volume.header.study.study_instance_uid)
                    .map_err(|e| StageError::Permanent(anyhow::anyhow!("{e}")))?;
                let keys = uid.keys();
                let header = volume.header_bytes();
                let voxels = tokio::task::spawn_blocking(move || voxel_bytes(&volume))
                    .await
                    .map_err(transient)?;
                // Voxels first: a reader that finds the header finds the voxels too.
                ctx.store
                    .put(&keys.volume_voxels(), voxels)
                    .await
                    .map_err(transient)?;
                ctx.store
                    .put(&keys.volume_header(), header)
                    .await
                    .map_err(transient)?;
                tracing::info!(job_id = %job.job_id, study_uid = %uid, files = report.files, "volume stored");
                job.study_uid = Some(uid);
            }
            Err(reason) => {
                let uid = report
                    .study_uid
                    .as_deref()
                    .and_then(|u| StudyUid::new(u).ok())
                    .or_else(|| {
                        StudyUid::new(derived_uid("spinescreen.ingest.job", job.job_id.as_bytes()))
                            .ok()
                    })
                    .ok_or_else(|| {
                        StageError::Permanent(anyhow::anyhow!("cannot derive a study UID"))
                    })?;
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
                job.study_uid = Some(uid);
                job.status = StudyStatus::TechnicalDefect;
            }
        }
        if let (Some(uid), Some(mut source)) = (&job.study_uid, source) {
            // For the study ledger; the study's own UID wins over a stray file's.
            source.study_instance_uid = uid.to_string();
            let bytes = serde_json::to_vec_pretty(&source).map_err(transient)?;
            ctx.store
                .put(&uid.keys().source(), bytes)
                .await
                .map_err(transient)?;
        }
        Ok(vec![job])
    }
}
