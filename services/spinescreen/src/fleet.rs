//! Starting workers: one stage (`worker <stage>`) or all of them (`all`, `analyze`, `demo`) over
//! the same broker and store. There is no second code path for the embedded mode: the embedded
//! default is simply the in-memory broker and a local-directory store.

use crate::config::AppConfig;
use anyhow::Context;
use spinescreen_proto::{ServiceInfo, Stage};
use spinescreen_runtime::{
    run_stage, Broker, CancellationToken, LoopOptions, StageContext, StageWorker, StudyStore,
};
use std::sync::Arc;
use tokio::task::JoinSet;

/// Software version reported in results, SR and SC objects.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The service identity from configuration.
pub fn service_info(config: &AppConfig) -> ServiceInfo {
    ServiceInfo {
        name: config.runtime.service_name.clone(),
        version: VERSION.to_string(),
    }
}

/// Build the worker of one stage from its configuration section.
pub fn build_worker(stage: Stage, config: &AppConfig) -> anyhow::Result<Arc<dyn StageWorker>> {
    Ok(match stage {
        Stage::Ingest => Arc::new(spinescreen_ingest::IngestWorker::new(&config.ingest)),
        Stage::Inference => Arc::new(
            spinescreen_inference::InferenceWorker::new(&config.inference)
                .context("starting the inference worker")?,
        ),
        Stage::Morphometry => Arc::new(spinescreen_morphometry::worker::MorphometryWorker::new()),
        Stage::Rendering => Arc::new(spinescreen_rendering::worker::RenderingWorker::new(
            config.rendering.clone(),
        )),
        Stage::Publisher => Arc::new(
            spinescreen_publisher::PublisherWorker::new(config.publisher.clone())
                .context("starting the publisher")?,
        ),
    })
}

/// Spawn the consume loops of `stages` (and, with ingest, the configured DICOM receivers) into
/// `tasks`. Every task stops when `shutdown` is cancelled, after finishing its job in hand.
pub async fn spawn_stages(
    stages: &[Stage],
    config: &AppConfig,
    broker: Arc<dyn Broker>,
    store: StudyStore,
    shutdown: CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let ctx = StageContext {
        store: store.clone(),
        broker: broker.clone(),
        service: service_info(config),
    };
    let opts = LoopOptions::from_config(&config.runtime);
    for &stage in stages {
        let worker = build_worker(stage, config)?;
        tasks.spawn(run_stage(
            worker,
            ctx.clone(),
            opts.clone(),
            shutdown.clone(),
        ));
    }
    Ok(())
}

/// Connect the broker and open the store named by the configuration.
pub async fn connect(config: &AppConfig) -> anyhow::Result<(Arc<dyn Broker>, StudyStore)> {
    let broker = spinescreen_runtime::connect_broker(&config.runtime.broker)
        .await
        .context("connecting to the broker")?;
    let store = StudyStore::from_config(&config.runtime.store).context("opening the store")?;
    Ok((broker, store))
}

/// Spawn ingest's enabled DICOM receivers (C-STORE SCP, STOW-RS) into `tasks`.
pub fn spawn_receivers(
    config: &AppConfig,
    broker: Arc<dyn Broker>,
    store: StudyStore,
    shutdown: CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) {
    let ingest = config.ingest.clone();
    if ingest.scp.enabled {
        let (cfg, store, broker, shutdown) = (
            ingest.clone(),
            store.clone(),
            broker.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            spinescreen_ingest::run_scp(&cfg, store, broker, shutdown)
                .await
                .context("C-STORE SCP")
        });
    }
    if ingest.stow.enabled {
        tasks.spawn(async move {
            spinescreen_ingest::run_stow(&ingest, store, broker, shutdown)
                .await
                .context("STOW-RS receiver")
        });
    }
}
