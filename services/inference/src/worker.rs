//! The inference stage worker: load the volume, run the detector off the async runtime, store
//! the spine region (the part of the volume the later stages read) and `detection.json`, and
//! mark the job abstained when the detector abstained.

use crate::{ClassicalDetector, Detector, InferenceConfig};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use spinescreen_proto::{Detection, HuVolume, Job, RegionBox, Stage, StudyStatus};
use spinescreen_runtime::volumes::{read_volume, write_spine_region};
use spinescreen_runtime::{storage::StorageError, StageContext, StageError, StageWorker};
use std::sync::Arc;

/// The inference [`StageWorker`].
pub struct InferenceWorker {
    detector: Arc<dyn Detector>,
}

impl InferenceWorker {
    /// Build the worker for a configuration: `classical`, or `onnx` with a manifest.
    pub fn new(cfg: &InferenceConfig) -> anyhow::Result<Self> {
        let detector: Arc<dyn Detector> = match cfg.detector.as_str() {
            "classical" => Arc::new(ClassicalDetector::default()),
            "onnx" => {
                let manifest = cfg
                    .onnx_manifest
                    .as_ref()
                    .ok_or_else(|| anyhow!("detector \"onnx\" needs onnx_manifest"))?;
                Arc::new(
                    crate::onnx::OnnxDetector::from_manifest(manifest)
                        .with_context(|| format!("loading ONNX model {}", manifest.display()))?,
                )
            }
            other => return Err(anyhow!("unknown detector {other:?} (classical | onnx)")),
        };
        Ok(Self { detector })
    }

    /// A worker around any detector (tests, embedding).
    pub fn with_detector(detector: Arc<dyn Detector>) -> Self {
        Self { detector }
    }
}

fn storage(e: StorageError) -> StageError {
    match e {
        StorageError::InvalidKey(_) | StorageError::NotFound(_) => {
            StageError::Permanent(anyhow::Error::new(e))
        }
        StorageError::Store(_) => StageError::Transient(anyhow::Error::new(e)),
    }
}

/// The spine region of a detection (its box and the voxels cut out), or `None` when it found
/// nothing the later stages read (they then read the full volume).
fn spine_region(detection: &Detection, volume: &HuVolume) -> Option<(RegionBox, HuVolume)> {
    let placement = RegionBox::for_detection(detection, &volume.header)?;
    match placement.crop(volume) {
        Ok(region) => Some((placement, region)),
        Err(e) => {
            // Not reachable (the box is clipped to the grid); the full volume still serves.
            tracing::warn!(error = %e, "spine region not stored");
            None
        }
    }
}

#[async_trait]
impl StageWorker for InferenceWorker {
    fn stage(&self) -> Stage {
        Stage::Inference
    }

    async fn process(&self, mut job: Job, ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        if job.status != StudyStatus::Ok {
            return Ok(vec![job]);
        }
        let uid = job
            .study_uid
            .clone()
            .ok_or_else(|| StageError::Permanent(anyhow!("inference job without a study UID")))?;
        let keys = uid.keys();
        let volume = read_volume(&ctx.store, &keys).await?;
        let detector = self.detector.clone();
        let (mut detection, region) = tokio::task::spawn_blocking(move || {
            let detection = detector.detect(&volume);
            let region = spine_region(&detection, &volume);
            (detection, region)
        })
        .await
        .map_err(|e| StageError::Transient(anyhow!("detector task failed: {e}")))?;
        // The region is stored before the detection that names it, so a reader that finds the
        // name finds the voxels.
        if let Some((placement, region)) = region {
            write_spine_region(&ctx.store, &keys, Arc::new(region), placement)
                .await
                .map_err(storage)?;
            detection.spine_region = Some(placement);
        }
        let bytes = serde_json::to_vec_pretty(&detection)
            .map_err(|e| StageError::Permanent(anyhow!("serializing detection: {e}")))?;
        ctx.store
            .put(&keys.detection(), bytes)
            .await
            .map_err(storage)?;
        tracing::info!(
            status = detection.status.as_str(),
            vertebrae = detection.vertebrae.len(),
            detector = %detection.detector,
            spine_region = ?detection.spine_region.map(|r| r.dims),
            "inference done"
        );
        if detection.status == StudyStatus::Abstained {
            job.status = StudyStatus::Abstained;
        }
        Ok(vec![job])
    }
}
