//! Starting workers: one stage (`worker <stage>`), the DICOM receivers (`worker receiver`) or
//! all of them (`all`, `analyze`, `demo`) over the same broker and store. There is no second code path for the embedded mode: the embedded
//! default is simply the in-memory broker and a local-directory store.

use crate::config::AppConfig;
use anyhow::Context;
use spinescreen_proto::{ServiceInfo, Stage};
use spinescreen_runtime::{
    http, run_stage, Broker, CancellationToken, LoopOptions, StageContext, StageWorker, StudyStore,
};
use std::sync::Arc;
use tokio::net::TcpListener;
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

/// Spawn the consume loops of `stages` into `tasks` (the DICOM receivers are
/// [`spawn_receivers`]). Every task stops when `shutdown` is cancelled, after finishing its job in hand.
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

/// Names the DICOM receivers report under in `/readyz`.
pub const SCP_READINESS: &str = "c-store-scp";
/// See [`SCP_READINESS`].
pub const STOW_READINESS: &str = "stow-rs";

/// Bind the enabled DICOM receivers (C-STORE SCP, STOW-RS) and spawn them into `tasks`
/// (`worker receiver` and `all`). Each is marked ready in `/readyz` once its port is bound, so a
/// Service routes to a pod only when it listens; it is marked not ready when it stops.
///
/// Fails when a port cannot be bound, or when `require_one` is set and both are disabled (a
/// receiver process with nothing to listen on would never be ready).
pub async fn spawn_receivers(
    config: &AppConfig,
    broker: Arc<dyn Broker>,
    store: StudyStore,
    shutdown: CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    require_one: bool,
) -> anyhow::Result<()> {
    let ingest = config.ingest.clone();
    if require_one && !ingest.scp.enabled && !ingest.stow.enabled {
        anyhow::bail!(
            "both DICOM receivers are disabled ([ingest.scp] and [ingest.stow] enabled = false); \
             `worker receiver` has nothing to run"
        );
    }
    if ingest.scp.enabled {
        let listener = bind(&ingest.scp.bind_address, ingest.scp.port, "C-STORE SCP").await?;
        let (cfg, store, broker, shutdown) = (
            ingest.clone(),
            store.clone(),
            broker.clone(),
            shutdown.clone(),
        );
        http::expect_stages(&[SCP_READINESS]);
        http::set_stage_ready(SCP_READINESS, true);
        tasks.spawn(async move {
            let outcome =
                spinescreen_ingest::receive::run_scp_on(listener, &cfg, store, broker, shutdown)
                    .await
                    .context("C-STORE SCP");
            http::set_stage_ready(SCP_READINESS, false);
            outcome
        });
    }
    if ingest.stow.enabled {
        let listener = bind(&ingest.stow.bind_address, ingest.stow.port, "STOW-RS").await?;
        http::expect_stages(&[STOW_READINESS]);
        http::set_stage_ready(STOW_READINESS, true);
        tasks.spawn(async move {
            let outcome = spinescreen_ingest::receive::run_stow_on(
                listener, &ingest, store, broker, shutdown,
            )
            .await
            .context("STOW-RS receiver");
            http::set_stage_ready(STOW_READINESS, false);
            outcome
        });
    }
    Ok(())
}

async fn bind(address: &str, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind((address, port))
        .await
        .with_context(|| format!("{what}: cannot listen on {address}:{port}"))
}
