//! A stage as a value: [`StageWorker`] turns one job into the next; the runtime's loop does the
//! rest (decode, timing, publish to the next stage with confirms, ack, retry, dead-letter).

mod delivered;
mod stage_loop;

pub use stage_loop::{run_stage, LoopOptions};

use crate::{broker::Broker, storage::StudyStore};
use async_trait::async_trait;
use spinescreen_proto::{Job, ServiceInfo, Stage};
use std::sync::Arc;

/// What a stage may use while processing a job.
#[derive(Clone)]
pub struct StageContext {
    /// Study objects.
    pub store: StudyStore,
    /// The broker (the publisher uses it to announce finished studies).
    pub broker: Arc<dyn Broker>,
    /// Configured service name and software version (result.json `service`, SR/SC series
    /// description).
    pub service: ServiceInfo,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Worth retrying (storage or network hiccup); after the delivery limit it is dead-lettered.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed (malformed job): dead-letter at once with this reason.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

/// One stage of the pipeline.
#[async_trait]
pub trait StageWorker: Send + Sync + 'static {
    /// Which stage this is (decides the queue consumed and the queue published to).
    fn stage(&self) -> Stage;

    /// Process one job: load inputs from the store, compute, store outputs, and return the jobs
    /// for the next stage (normally one; ingest may split a reception into several studies).
    /// Must be idempotent: a redelivered job overwrites the same keys with the same content.
    async fn process(&self, job: Job, ctx: &StageContext) -> Result<Vec<Job>, StageError>;
}
