//! The events feed: what happened to a job, stage by stage, for the study ledger.
//!
//! Every stage publishes a [`StudyEvent`] on [`EVENTS_QUEUE`] when it receives, starts,
//! finishes, fails, retries or dead-letters a job, and the publisher when it delivers to a
//! destination. Events are best-effort observations: they never make a job fail, and a fleet
//! without a ledger (nobody declared the queue) simply drops them. Each event has a
//! deterministic [`StudyEvent::event_id`], so a replayed or duplicated event is recognised.

use crate::job::{Job, Stage};
use crate::{StudyUid, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

/// Queue of the events feed; declared by its consumer (the ledger).
pub const EVENTS_QUEUE: &str = "spinescreen.events";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The service received the study (at the reception time of its first instance).
    Received,
    /// A stage took the job (one per attempt).
    Started,
    /// A stage finished the job and passed it on.
    Finished,
    /// A stage failed the job (transient); `reason` says why.
    Failed,
    /// The failed job was put back for another attempt.
    Retried,
    /// The job was moved to the stage's dead-letter queue; `reason` says why.
    DeadLettered,
    /// The publisher delivered the study's instances to one destination.
    Delivered,
    /// The publisher gave up on one destination; `reason` says why.
    DeliveryFailed,
}

impl EventKind {
    /// The wire spelling (`received`, `dead_lettered`, …), also used in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Started => "started",
            EventKind::Finished => "finished",
            EventKind::Failed => "failed",
            EventKind::Retried => "retried",
            EventKind::DeadLettered => "dead_lettered",
            EventKind::Delivered => "delivered",
            EventKind::DeliveryFailed => "delivery_failed",
        }
    }
}

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyEvent {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Deterministic identity (see [`StudyEvent::new`]): the ledger's idempotency key.
    pub event_id: String,
    /// The job (one reception).
    pub job_id: String,
    /// The study, once ingest has read it.
    pub study_uid: Option<StudyUid>,
    /// The stage that reports.
    pub stage: Stage,
    /// What happened.
    pub kind: EventKind,
    /// Delivery attempt of the job at that stage (1 on first delivery).
    pub attempt: u32,
    /// Unix epoch milliseconds when it happened.
    pub at_unix_ms: u64,
    /// Storage prefix of the received files (what `studies retry` re-ingests).
    pub incoming_prefix: String,
    /// When the study's first instance was received (Unix ms).
    pub received_at_unix_ms: u64,
    /// Failure or dead-letter reason; never patient data.
    #[serde(default)]
    pub reason: Option<String>,
    /// Delivery destination, as the publisher describes it (no credentials).
    #[serde(default)]
    pub destination: Option<String>,
    /// SOP Instance UIDs delivered to `destination`.
    #[serde(default)]
    pub instances: Vec<String>,
}

impl StudyEvent {
    /// An event about `job` at `stage`. The id is `job/stage/kind/attempt/study/destination`:
    /// the same observation always gets the same id (a `received` event ignores the attempt),
    /// and two different observations never share one.
    pub fn new(job: &Job, stage: Stage, kind: EventKind, attempt: u32, at_unix_ms: u64) -> Self {
        let mut event = Self {
            schema_version: SCHEMA_VERSION,
            event_id: String::new(),
            job_id: job.job_id.clone(),
            study_uid: job.study_uid.clone(),
            stage,
            kind,
            attempt,
            at_unix_ms,
            incoming_prefix: job.incoming_prefix.clone(),
            received_at_unix_ms: job.received_at_unix_ms,
            reason: None,
            destination: None,
            instances: vec![],
        };
        event.event_id = event.identity();
        event
    }

    /// The same event with a reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The same event about one destination (and the instances delivered there).
    pub fn with_destination(
        mut self,
        destination: impl Into<String>,
        instances: Vec<String>,
    ) -> Self {
        self.destination = Some(destination.into());
        self.instances = instances;
        self.event_id = self.identity();
        self
    }

    fn identity(&self) -> String {
        let attempt = match self.kind {
            EventKind::Received => 0,
            _ => self.attempt,
        };
        format!(
            "{}/{}/{}/{}/{}/{}",
            self.job_id,
            self.stage.name(),
            self.kind.as_str(),
            attempt,
            self.study_uid.as_ref().map(StudyUid::as_str).unwrap_or("-"),
            self.destination.as_deref().unwrap_or("-"),
        )
    }

    /// Encode for the wire (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode from the wire, rejecting unknown schema versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::job::JobDecodeError> {
        use crate::job::JobDecodeError;
        let event: StudyEvent = serde_json::from_slice(bytes).map_err(JobDecodeError::Malformed)?;
        if event.schema_version != SCHEMA_VERSION {
            return Err(JobDecodeError::UnknownVersion(event.schema_version));
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        let mut job = Job::ingest("j1".into(), "incoming/j1/".into(), 1_000);
        job.study_uid = Some(StudyUid::new("1.2.3").unwrap());
        job
    }

    #[test]
    fn same_observation_same_id_different_observations_differ() {
        let a = StudyEvent::new(&job(), Stage::Inference, EventKind::Started, 1, 5);
        let again = StudyEvent::new(&job(), Stage::Inference, EventKind::Started, 1, 9);
        assert_eq!(a.event_id, again.event_id, "a replay is recognised");
        let retry = StudyEvent::new(&job(), Stage::Inference, EventKind::Started, 2, 9);
        assert_ne!(
            a.event_id, retry.event_id,
            "a second attempt is a new event"
        );
        let d1 = StudyEvent::new(&job(), Stage::Publisher, EventKind::Delivered, 1, 9)
            .with_destination("cstore A@h:104", vec!["1.2.3.4".into()]);
        let d2 = StudyEvent::new(&job(), Stage::Publisher, EventKind::Delivered, 1, 9)
            .with_destination("stow http://x", vec![]);
        assert_ne!(d1.event_id, d2.event_id);
        let r1 = StudyEvent::new(&job(), Stage::Ingest, EventKind::Received, 1, 9);
        let r2 = StudyEvent::new(&job(), Stage::Ingest, EventKind::Received, 3, 9);
        assert_eq!(r1.event_id, r2.event_id, "a study is received once per job");
    }

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let e = StudyEvent::new(&job(), Stage::Ingest, EventKind::Failed, 1, 5).with_reason("x");
        assert_eq!(StudyEvent::from_bytes(&e.to_bytes()).unwrap(), e);
        let mut other = e.clone();
        other.schema_version = 99;
        assert!(StudyEvent::from_bytes(&other.to_bytes()).is_err());
    }
}
