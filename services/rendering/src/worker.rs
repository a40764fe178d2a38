//! [`RenderingWorker`]: the rendering stage as a [`StageWorker`]. Loads `result.json` (always),
//! `detection.json` and the volume when they exist (the spine region the detection names, else
//! the full volume), renders, and stores `preview.png` and the secondary-capture instances
//! `sc/NNNN.dcm`.
//!
//! A study that ingest rejected has no volume and therefore no patient/study module to file
//! images under: it gets `preview.png` (the notice frame) but no SC series; the publisher's SR
//! carries the reason to the PACS.

use crate::config::RenderingConfig;
use crate::dicom::secondary_capture_series;
use crate::render::{render, render_not_analysed, RenderError, Rendered};
use anyhow::anyhow;
use async_trait::async_trait;
use spinescreen_proto::{Detection, HuSource, Job, RegionVolume, Stage, StudyResult, VolumeHeader};
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::volumes::{read_spine_volume, read_volume, VolumeReadError};
use spinescreen_runtime::{StageContext, StageError, StageWorker, StudyStore};

/// The rendering stage.
#[derive(Debug, Clone, Default)]
pub struct RenderingWorker {
    cfg: RenderingConfig,
}

impl RenderingWorker {
    /// A worker with these settings.
    pub fn new(cfg: RenderingConfig) -> Self {
        Self { cfg }
    }
}

fn storage_error(e: StorageError) -> StageError {
    match e {
        StorageError::InvalidKey(_) => StageError::Permanent(anyhow!(e)),
        other => StageError::Transient(anyhow!(other)),
    }
}

/// An object that may be absent: `Ok(None)` when it is.
async fn get_optional(store: &StudyStore, key: &str) -> Result<Option<bytes::Bytes>, StageError> {
    match store.get(key).await {
        Ok(b) => Ok(Some(b)),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(storage_error(e)),
    }
}

/// Inputs as loaded from storage. A volume whose voxels do not decode still yields its header.
struct Inputs {
    result: StudyResult,
    header: Option<VolumeHeader>,
    volume: Option<RegionVolume>,
    volume_problem: Option<String>,
    detection: Option<Detection>,
}

impl Inputs {
    /// Whether rendering read a voxel the spine region does not hold (redo on the full volume).
    fn missed_voxels(&self) -> bool {
        self.volume.as_ref().is_some_and(|v| v.misses() > 0)
    }
}

/// The frames and the secondary-capture files of a study.
type Output = (Rendered, Vec<Vec<u8>>);

fn render_inputs(inputs: &Inputs, cfg: &RenderingConfig) -> Result<Output, RenderError> {
    let rendered = match (&inputs.volume, &inputs.volume_problem) {
        (Some(v), _) => render(v, inputs.detection.as_ref(), &inputs.result, cfg)?,
        (None, problem) => render_not_analysed(&inputs.result, problem.as_deref(), cfg)?,
    };
    let files = match &inputs.header {
        Some(h) => secondary_capture_series(&rendered, h, &inputs.result, cfg)?,
        None => Vec::new(),
    };
    Ok((rendered, files))
}

/// Render off the async threads, handing the inputs back for a second try.
async fn render_blocking(
    inputs: Inputs,
    cfg: &RenderingConfig,
) -> Result<(Inputs, Result<Output, RenderError>), StageError> {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || {
        let out = render_inputs(&inputs, &cfg);
        (inputs, out)
    })
    .await
    .map_err(|e| StageError::Transient(anyhow!("render task: {e}")))
}

#[async_trait]
impl StageWorker for RenderingWorker {
    fn stage(&self) -> Stage {
        Stage::Rendering
    }

    async fn process(&self, job: Job, ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        let uid = job
            .study_uid
            .clone()
            .ok_or_else(|| StageError::Permanent(anyhow!("rendering job without a study UID")))?;
        let keys = uid.keys();
        let result_bytes = match ctx.store.get(&keys.result()).await {
            Ok(b) => b,
            Err(StorageError::NotFound(k)) => {
                return Err(StageError::Permanent(anyhow!("no result.json at {k}")))
            }
            Err(e) => return Err(storage_error(e)),
        };
        let mut result: StudyResult = serde_json::from_slice(&result_bytes)
            .map_err(|e| StageError::Permanent(anyhow!("result.json: {e}")))?;
        // The series description and burned-in name are the configured service's.
        result.service = ctx.service.clone();
        // A detection that does not parse is treated as missing (the frame says so).
        let detection = get_optional(&ctx.store, &keys.detection())
            .await?
            .and_then(|b| serde_json::from_slice::<Detection>(&b).ok());
        let region = detection.as_ref().and_then(|d| d.spine_region);
        let (header, volume, volume_problem) = match read_spine_volume(&ctx.store, &keys, region)
            .await
        {
            Ok(v) => (Some(v.header().clone()), Some(v), None),
            Err(VolumeReadError::NoHeader(_)) => (None, None, None),
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                // A volume whose voxels are missing or damaged still yields its header.
                let header = get_optional(&ctx.store, &keys.volume_header())
                    .await?
                    .and_then(|b| serde_json::from_slice::<VolumeHeader>(&b).ok());
                let problem = match e {
                    VolumeReadError::NoVoxels(_) => "The CT volume voxels are missing.".to_string(),
                    e => format!("The stored CT volume cannot be read: {e}."),
                };
                (header, None, Some(problem))
            }
        };
        let inputs = Inputs {
            result,
            header,
            volume,
            volume_problem,
            detection,
        };
        let (mut inputs, mut output) = render_blocking(inputs, &self.cfg).await?;
        if inputs.missed_voxels() {
            tracing::info!(
                study = %uid,
                "the reformat reached beyond the spine region; rendering from the full volume"
            );
            // Free the region before the full volume arrives.
            drop(inputs.volume.take());
            inputs.volume = Some(RegionVolume::whole(read_volume(&ctx.store, &keys).await?));
            (_, output) = render_blocking(inputs, &self.cfg).await?;
        }
        let (rendered, files) = output.map_err(|e| StageError::Permanent(anyhow!(e)))?;

        ctx.store
            .put(&keys.preview_png(), rendered.preview_png)
            .await
            .map_err(storage_error)?;
        let mut written = Vec::with_capacity(files.len());
        for (i, file) in files.into_iter().enumerate() {
            let key = keys.secondary_capture(i);
            ctx.store.put(&key, file).await.map_err(storage_error)?;
            written.push(key);
        }
        // A redelivery that renders fewer frames must not leave stale instances behind.
        for key in ctx
            .store
            .list(&keys.secondary_capture_prefix())
            .await
            .map_err(storage_error)?
        {
            if !written.contains(&key) {
                ctx.store.delete(&key).await.map_err(storage_error)?;
            }
        }
        tracing::info!(study = %uid, instances = written.len(), "rendered");
        Ok(vec![job])
    }
}
