//! The inference stage worker: load the volume, run the detector off the async runtime, store
//! `detection.json`, and mark the job abstained when the detector abstained.

use crate::{ClassicalDetector, Detector, InferenceConfig};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use spinescreen_proto::{Job, Stage, StudyStatus};
use spinescreen_runtime::volumes::read_volume;
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
        let detection = tokio::task::spawn_blocking(move || detector.detect(&volume))
            .await
            .map_err(|e| StageError::Transient(anyhow!("detector task failed: {e}")))?;
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
            "inference done"
        );
        if detection.status == StudyStatus::Abstained {
            job.status = StudyStatus::Abstained;
        }
        Ok(vec![job])
    }
}
