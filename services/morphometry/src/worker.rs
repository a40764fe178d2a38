//! [`MorphometryWorker`]: the pipeline stage around [`crate::measure()`].
//!
//! Thin by design: load `detection.json` and the HU volume (the spine region the detection
//! names, else the full volume; keys from [`spinescreen_proto::StudyUid::keys`]), measure, store
//! `result.json`, pass the job on.

use crate::measure::measure;
use async_trait::async_trait;
use spinescreen_proto::{
    Detection, Job, Reason, ReasonCode, RegionVolume, Stage, StudyResult, StudyStatus, StudyUid,
    SCHEMA_VERSION,
};
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::volumes::{read_spine_volume, read_volume};
use spinescreen_runtime::{StageContext, StageError, StageWorker};
use std::sync::Arc;

/// The morphometry stage.
///
/// - `technical_defect` jobs pass through untouched (ingest already stored their result.json).
/// - A detection that abstained (or an `abstained` job) gives an `abstained` result.json with the
///   detector's reason.
/// - Otherwise the study is measured and its result.json stored; a study in which nothing could
///   be graded becomes `abstained` (`TOO_FEW_VERTEBRAE`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MorphometryWorker;

impl MorphometryWorker {
    /// A morphometry worker (it holds no state; configuration comes with the [`StageContext`]).
    pub fn new() -> Self {
        Self
    }
}

fn transient(e: StorageError) -> StageError {
    StageError::Transient(anyhow::Error::new(e))
}

/// Read an object; `Ok(None)` when absent.
async fn get_optional(ctx: &StageContext, key: &str) -> Result<Option<Vec<u8>>, StageError> {
    match ctx.store.get(key).await {
        Ok(b) => Ok(Some(b.to_vec())),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(StorageError::InvalidKey(k)) => Err(StageError::Permanent(anyhow::anyhow!(
            "invalid storage key {k:?}"
        ))),
        Err(e) => Err(transient(e)),
    }
}

async fn store_result(
    ctx: &StageContext,
    uid: &StudyUid,
    result: &StudyResult,
) -> Result<(), StageError> {
    let bytes = serde_json::to_vec_pretty(result)
        .map_err(|e| StageError::Permanent(anyhow::anyhow!("result.json serialization: {e}")))?;
    ctx.store
        .put(&uid.keys().result(), bytes)
        .await
        .map_err(transient)
}

/// Measure off the async threads (sampling ROIs is CPU work); also says whether the
/// measurement read a voxel the spine region does not hold (then it must be redone on the full
/// volume).
async fn measure_blocking(
    detection: &Arc<Detection>,
    volume: RegionVolume,
    ctx: &StageContext,
) -> Result<(StudyResult, bool), StageError> {
    let (detection, service) = (detection.clone(), ctx.service.clone());
    tokio::task::spawn_blocking(move || {
        let result = measure(&detection, &volume, &service);
        (result, volume.misses() > 0)
    })
    .await
    .map_err(|e| StageError::Transient(anyhow::anyhow!("measurement task failed: {e}")))
}

#[async_trait]
impl StageWorker for MorphometryWorker {
    fn stage(&self) -> Stage {
        Stage::Morphometry
    }

    async fn process(&self, mut job: Job, ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        let uid = job.study_uid.clone().ok_or_else(|| {
            StageError::Permanent(anyhow::anyhow!(
                "morphometry job {} carries no study UID",
                job.job_id
            ))
        })?;
        if job.status == StudyStatus::TechnicalDefect {
            return Ok(vec![job]);
        }
        let keys = uid.keys();
        let detection = match get_optional(ctx, &keys.detection()).await? {
            Some(bytes) => {
                let d: Detection = serde_json::from_slice(&bytes).map_err(|e| {
                    StageError::Permanent(anyhow::anyhow!("malformed detection.json: {e}"))
                })?;
                if d.schema_version != SCHEMA_VERSION {
                    return Err(StageError::Permanent(anyhow::anyhow!(
                        "detection.json schema version {} (this build speaks {SCHEMA_VERSION})",
                        d.schema_version
                    )));
                }
                Some(d)
            }
            None => None,
        };

        let abstained_upstream = job.status == StudyStatus::Abstained;
        let detector_abstained = detection
            .as_ref()
            .is_some_and(|d| d.status != StudyStatus::Ok);
        if abstained_upstream || detector_abstained {
            if detection.is_none() && ctx.store.exists(&keys.result()).await.map_err(transient)? {
                // The stage that abstained already wrote its result.json.
                return Ok(vec![job]);
            }
            let reason = detection
                .as_ref()
                .and_then(|d| d.reason.clone())
                .unwrap_or_else(|| {
                    Reason::new(
                        ReasonCode::INTERNAL_ERROR,
                        "an earlier stage abstained without recording why",
                    )
                });
            let mut result = StudyResult::not_analysed(
                uid.to_string(),
                StudyStatus::Abstained,
                reason,
                ctx.service.clone(),
            );
            if let Some(d) = &detection {
                result.detector = d.detector.clone();
                result.notes = d.notes.clone();
            }
            result.timings_ms = job.timings_ms.clone();
            store_result(ctx, &uid, &result).await?;
            job.status = StudyStatus::Abstained;
            tracing::info!(job_id = %job.job_id, study = %uid, "detector abstained; result stored");
            return Ok(vec![job]);
        }

        let detection = detection.ok_or_else(|| {
            StageError::Permanent(anyhow::anyhow!("missing object {}", keys.detection()))
        })?;
        let detection = Arc::new(detection);
        let volume = read_spine_volume(&ctx.store, &keys, detection.spine_region).await?;
        let (mut result, missed) = measure_blocking(&detection, volume, ctx).await?;
        if missed {
            tracing::info!(
                job_id = %job.job_id,
                "a measurement reached beyond the spine region; measuring on the full volume"
            );
            let volume = RegionVolume::whole(read_volume(&ctx.store, &keys).await?);
            (result, _) = measure_blocking(&detection, volume, ctx).await?;
        }
        result.study_instance_uid = uid.to_string();
        result.timings_ms = job.timings_ms.clone();
        if result.status != StudyStatus::Ok {
            job.status = result.status;
        }
        store_result(ctx, &uid, &result).await?;
        tracing::info!(
            job_id = %job.job_id,
            study = %uid,
            status = result.status.as_str(),
            vertebrae = result.vertebrae.len(),
            has_fracture = ?result.has_fracture,
            "morphometry stored"
        );
        Ok(vec![job])
    }
}
