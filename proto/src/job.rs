//! The job envelope that travels over the broker, and the order of the pipeline.
//!
//! A job names a study (or, before ingest, a batch of received files) and carries only keys and
//! small metadata — never pixels. The pipeline order lives here, in [`Stage::next`], and nowhere
//! else: a worker finishes its stage and publishes the same envelope to the next stage's queue.

use crate::{result::StudyStatus, uid::StudyUid, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stage of the pipeline, in processing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// DICOM in → validated HU volume, or a technical defect.
    Ingest,
    /// HU volume → vertebrae with labels and keypoints.
    Inference,
    /// Keypoints → heights, Genant grades, bone density: `result.json`.
    Morphometry,
    /// Result → curved sagittal reformat series (secondary capture) and preview.
    Rendering,
    /// Result + images → one DICOM SR, delivered with the images to the destinations.
    Publisher,
}

impl Stage {
    /// Every stage in processing order.
    pub const ALL: [Stage; 5] = [
        Stage::Ingest,
        Stage::Inference,
        Stage::Morphometry,
        Stage::Rendering,
        Stage::Publisher,
    ];

    /// The stage after this one, `None` after the publisher.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Ingest => Some(Stage::Inference),
            Stage::Inference => Some(Stage::Morphometry),
            Stage::Morphometry => Some(Stage::Rendering),
            Stage::Rendering => Some(Stage::Publisher),
            Stage::Publisher => None,
        }
    }

    /// Lower-case name, as used in CLI targets, metrics labels and queue names.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Inference => "inference",
            Stage::Morphometry => "morphometry",
            Stage::Rendering => "rendering",
            Stage::Publisher => "publisher",
        }
    }

    /// Work queue of this stage (`spinescreen.<stage>`); its dead-letter queue is `<queue>.dlq`.
    pub fn queue(self) -> &'static str {
        match self {
            Stage::Ingest => "spinescreen.ingest",
            Stage::Inference => "spinescreen.inference",
            Stage::Morphometry => "spinescreen.morphometry",
            Stage::Rendering => "spinescreen.rendering",
            Stage::Publisher => "spinescreen.publisher",
        }
    }

    /// Parse a stage name (`ingest`, `inference`, …).
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Queue on which the publisher announces each finished study ([`StudyDone`]), for tools and
/// integrations (`spinescreen load`, a RIS bridge). Declared with [`DONE_QUEUE_MAX_LENGTH`].
pub const DONE_QUEUE: &str = "spinescreen.done";

/// AMQP header carrying why a job was dead-lettered by a worker (decode failure, permanent error,
/// transient error past the delivery limit).
pub const ERROR_HEADER: &str = "x-spinescreen-error";
/// AMQP header carrying which attempt failed last when a worker dead-letters a job.
pub const ATTEMPTS_HEADER: &str = "x-spinescreen-attempts";
/// AMQP header carrying the stage that dead-lettered a job.
pub const STAGE_HEADER: &str = "x-spinescreen-stage";

/// The dead-letter queue of a work queue: `<queue>.dlq`.
pub fn dlq_name(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// The study ledger's own copy of every [`DONE_QUEUE`] announcement: each consumer has its own
/// queue, so the ledger and a tool reading [`DONE_QUEUE`] never take each other's messages.
/// Declared by the ledger; while nobody has declared it, the copies are dropped.
pub const DONE_LEDGER_QUEUE: &str = "spinescreen.done.ledger";

/// Length bound (`x-max-length`, oldest dropped first) of [`DONE_QUEUE`] and
/// [`DONE_LEDGER_QUEUE`]: a safety net so that announcements nobody reads cannot fill the
/// broker. About a week of a busy city service; at about 200 bytes each, 20 MB.
pub const DONE_QUEUE_MAX_LENGTH: i64 = 100_000;

/// Whether `queue` (possibly behind a namespace prefix) is one of the done queues, which carry
/// [`DONE_QUEUE_MAX_LENGTH`].
pub fn is_done_queue(queue: &str) -> bool {
    [DONE_QUEUE, DONE_LEDGER_QUEUE]
        .iter()
        .any(|q| queue == *q || queue.strip_suffix(q).is_some_and(|p| p.ends_with('.')))
}

/// The message every stage consumes and produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Must equal [`SCHEMA_VERSION`]; a worker dead-letters versions it does not know.
    pub schema_version: u32,
    /// Unique per reception; stable across stages and redeliveries (idempotency key).
    pub job_id: String,
    /// Storage prefix of the received DICOM files (`incoming/<batch>/`), set by the receiver.
    pub incoming_prefix: String,
    /// The study, once ingest has read it; `None` only on ingest jobs.
    pub study_uid: Option<StudyUid>,
    /// `ok` while the study is analysable; a technical defect or abstention is carried
    /// through the remaining stages so the PACS still gets an SR saying why.
    pub status: StudyStatus,
    /// Unix epoch milliseconds when the first instance of the study was received (SLA clock).
    pub received_at_unix_ms: u64,
    /// Wall time spent in each finished stage, by stage name.
    pub timings_ms: BTreeMap<String, u64>,
    /// W3C trace context (`traceparent`, `tracestate`) so one study is one trace. The AMQP
    /// broker also copies it into message headers.
    pub trace_context: BTreeMap<String, String>,
}

impl Job {
    /// A fresh ingest job for files stored under `incoming_prefix`.
    pub fn ingest(job_id: String, incoming_prefix: String, received_at_unix_ms: u64) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            job_id,
            incoming_prefix,
            study_uid: None,
            status: StudyStatus::Ok,
            received_at_unix_ms,
            timings_ms: BTreeMap::new(),
            trace_context: BTreeMap::new(),
        }
    }

    /// Encode for the wire (JSON).
    #[allow(
        clippy::expect_used,
        reason = "a Job has string map keys and no custom serializer: encoding cannot fail"
    )]
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("Job serializes")
    }

    /// Decode from the wire, rejecting unknown schema versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JobDecodeError> {
        let job: Job = serde_json::from_slice(bytes).map_err(JobDecodeError::Malformed)?;
        if job.schema_version != SCHEMA_VERSION {
            return Err(JobDecodeError::UnknownVersion(job.schema_version));
        }
        Ok(job)
    }
}

/// A job message that cannot be processed by this build.
#[derive(Debug, thiserror::Error)]
pub enum JobDecodeError {
    /// Not a valid job document.
    #[error("malformed job message: {0}")]
    Malformed(serde_json::Error),
    /// Produced by an incompatible version of the contract.
    #[error("job schema version {0} is not supported (this build speaks {SCHEMA_VERSION})")]
    UnknownVersion(u32),
}

/// Announced on [`DONE_QUEUE`] when the publisher has delivered (or given up on) a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyDone {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The job this completes.
    pub job_id: String,
    /// The study.
    pub study_uid: StudyUid,
    /// Final status of the study.
    pub status: StudyStatus,
    /// Key of the final `result.json`.
    pub result_key: String,
    /// End-to-end latency: first instance received → last instance acknowledged (ms).
    pub end_to_end_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_visits_every_stage_once_in_order() {
        let mut s = Some(Stage::Ingest);
        let mut seen = vec![];
        while let Some(stage) = s {
            seen.push(stage);
            s = stage.next();
        }
        assert_eq!(seen, Stage::ALL);
    }

    #[test]
    fn job_round_trips_and_rejects_other_versions() {
        let job = Job::ingest("j1".into(), "incoming/j1/".into(), 5);
        assert_eq!(Job::from_bytes(&job.to_bytes()).unwrap(), job);
        let mut other = job.clone();
        other.schema_version = 99;
        assert!(matches!(
            Job::from_bytes(&other.to_bytes()),
            Err(JobDecodeError::UnknownVersion(99))
        ));
        assert!(Job::from_bytes(b"not json").is_err());
    }
}
