//! `spinescreen analyze DICOM_DIR --out OUT`: the whole pipeline in one process on the embedded
//! runtime (in-memory queues, a local-directory store), then the study's outputs copied to OUT.
//!
//! The job takes exactly the path a PACS study takes in the fleet: files are staged under
//! `incoming/<batch>/`, an ingest job is published, each stage's worker consumes and publishes,
//! and the publisher announces the finished study on `spinescreen.done`.

use crate::{config::AppConfig, fleet};
use anyhow::{bail, Context};
use spinescreen_proto::{job::DONE_QUEUE, Stage, StudyDone, StudyResult, StudyUid};
use spinescreen_runtime::{
    broker::memory::MemoryBroker, Broker, CancellationToken, StoreConfig, StudyStore,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Options of one embedded analysis.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Directory of DICOM files (searched recursively).
    pub input: PathBuf,
    /// Output directory: result.json, sr.dcm, sc/*.dcm, preview.png.
    pub out: PathBuf,
    /// Keep intermediate objects here instead of a temporary directory.
    pub store_dir: Option<PathBuf>,
    /// Give up waiting for the result after this long.
    pub timeout: Duration,
}

/// What `analyze` produced.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The final `result.json`.
    pub result: StudyResult,
    /// Files written under the output directory.
    pub files: Vec<PathBuf>,
}

/// Run the embedded pipeline on one directory and write its outputs.
pub async fn analyze(config: &AppConfig, opts: &AnalyzeOptions) -> anyhow::Result<Analysis> {
    if !opts.input.is_dir() {
        bail!("{} is not a directory of DICOM files", opts.input.display());
    }
    let temp;
    let store_root = match &opts.store_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary store")?;
            temp.path().to_path_buf()
        }
    };
    let store = StudyStore::from_config(&StoreConfig::Local { root: store_root })?;
    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::with_delivery_limit(
        config.runtime.broker.delivery_limit(),
    ));
    broker.declare(DONE_QUEUE).await?;
    let mut done = broker.consume(DONE_QUEUE, 16).await?;

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    fleet::spawn_stages(
        &Stage::ALL,
        config,
        broker.clone(),
        store.clone(),
        shutdown.clone(),
        &mut tasks,
    )
    .await?;

    let job =
        spinescreen_ingest::stage_directory_with_limits(&store, &opts.input, &config.ingest.limits)
            .await
            .with_context(|| format!("reading {}", opts.input.display()))?;
    let job_id = job.job_id.clone();
    spinescreen_runtime::broker::submit(broker.as_ref(), Stage::Ingest, &job).await?;

    let finished = tokio::time::timeout(opts.timeout, async {
        loop {
            let Some(delivery) = done.next().await else {
                bail!("the pipeline stopped before the study was published");
            };
            let delivery = delivery?;
            let announced: StudyDone = serde_json::from_slice(&delivery.message.body)
                .context("malformed completion message")?;
            delivery.acker.ack().await?;
            if announced.job_id == job_id {
                return Ok(announced);
            }
        }
    })
    .await;
    shutdown.cancel();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) = joined {
            tracing::warn!("worker stopped with an error: {e:#}");
        }
    }
    let finished = match finished {
        Ok(result) => result?,
        Err(_) => bail!(
            "no result within {} s; a stage may have dead-lettered the job",
            opts.timeout.as_secs()
        ),
    };
    let files = export_outputs(&store, &finished.study_uid, &opts.out).await?;
    let result: StudyResult = serde_json::from_slice(&std::fs::read(opts.out.join("result.json"))?)
        .context("reading the final result.json")?;
    Ok(Analysis { result, files })
}

/// Copy a finished study's user-facing outputs from the store into `out`.
pub async fn export_outputs(
    store: &StudyStore,
    study: &StudyUid,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let keys = study.keys();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = vec![];
    for (key, name) in [
        (keys.result(), "result.json"),
        (keys.structured_report(), "sr.dcm"),
        (keys.preview_png(), "preview.png"),
    ] {
        if store.exists(&key).await? {
            let path = out.join(name);
            std::fs::write(&path, store.get(&key).await?)?;
            written.push(path);
        }
    }
    let sc = store.list(&keys.secondary_capture_prefix()).await?;
    if !sc.is_empty() {
        let dir = out.join("sc");
        std::fs::create_dir_all(&dir)?;
        for key in sc {
            let name = key.rsplit('/').next().unwrap_or("frame.dcm").to_string();
            let path = dir.join(name);
            std::fs::write(&path, store.get(&key).await?)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// One line per vertebra and the conclusion, for the terminal.
pub fn summary(result: &StudyResult) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "study {}  status {}",
        result.study_instance_uid,
        result.status.as_str()
    );
    if let Some(reason) = &result.reason {
        let _ = writeln!(s, "reason {}: {}", reason.code, reason.text);
    }
    if !result.vertebrae.is_empty() {
        let _ = writeln!(
            s,
            "{:<5} {:>6} {:>6} {:>6} {:>9} {:>5}  type",
            "level", "Ha mm", "Hm mm", "Hp mm", "deformity", "grade"
        );
    }
    for v in &result.vertebrae {
        let _ = writeln!(
            s,
            "{:<5} {:>6.1} {:>6.1} {:>6.1} {:>8.0}% {:>5}  {:?}{}",
            v.label,
            v.heights_mm.anterior,
            v.heights_mm.middle,
            v.heights_mm.posterior,
            v.deformity * 100.0,
            u8::from(v.genant_grade),
            v.deformity_type,
            if v.flags.is_empty() {
                String::new()
            } else {
                let flags: Vec<&str> = v.flags.iter().map(|f| f.as_str()).collect();
                format!("  [{}]", flags.join(", "))
            }
        );
    }
    if let Some(f) = result.has_fracture {
        let _ = writeln!(
            s,
            "has_fracture {}  fracture_probability {:.2}",
            f,
            result.fracture_probability.unwrap_or(0.0)
        );
    }
    if let Some(bd) = &result.bone_density {
        let _ = writeln!(
            s,
            "bone density {} {:.0} HU: {} (ISCD), {} (Pickhardt)",
            bd.level, bd.hu, bd.iscd_category, bd.pickhardt_category
        );
    }
    let timings: Vec<String> = result
        .timings_ms
        .iter()
        .map(|(k, v)| format!("{k} {v} ms"))
        .collect();
    let _ = writeln!(s, "timings: {}", timings.join(", "));
    s
}
