//! The publisher as a pipeline stage ([`StageWorker`] for [`Stage::Publisher`]).
//!
//! Per job: load `result.json`, the study module from `volume.json` and the secondary-capture
//! series; build and store `sr.dcm`; deliver SR + SC to every network destination; take the
//! end-to-end latency (first instance received → last instance acknowledged), record it in the
//! SLA histogram and in `result.json` `timings_ms`; write directory destinations with that final
//! `result.json`; announce [`StudyDone`] on [`DONE_QUEUE`]; then apply the retention policy
//! ([`crate::config::Retention`]): delete the received files and the intermediate volume.

use crate::config::{Destination, PublisherConfig};
use crate::delivery::{self, Package};
use crate::error::PublishError;
use crate::fhir;
use crate::instance::Instance;
use crate::sr::{build_sr_with, InstanceRef};
use anyhow::anyhow;
use async_trait::async_trait;
use bytes::Bytes;
use spinescreen_proto::job::{StudyDone, DONE_QUEUE};
use spinescreen_proto::{
    EventKind, Job, Reason, ReasonCode, Stage, StudyEvent, StudyInfo, StudyKeys, StudyResult,
    StudyStatus, StudyUid, VolumeHeader, SCHEMA_VERSION,
};
use spinescreen_runtime::events::{announce_done, publish_event};
use spinescreen_runtime::storage::StorageError;
use spinescreen_runtime::{metrics, Message, StageContext, StageError, StageWorker, StudyStore};
use std::time::Instant;
use time::OffsetDateTime;

/// The publisher stage.
pub struct PublisherWorker {
    cfg: PublisherConfig,
    http: reqwest::Client,
}

impl PublisherWorker {
    /// A worker delivering per `cfg`.
    pub fn new(cfg: PublisherConfig) -> Result<Self, PublishError> {
        let http = delivery::http_client(&cfg)?;
        Ok(Self { cfg, http })
    }

    /// Delete what the retention policy says once the study is delivered. A failure is logged,
    /// not retried: the study is already delivered and announced.
    async fn apply_retention(&self, job: &Job, keys: &StudyKeys, store: &StudyStore) {
        let mut doomed: Vec<(&'static str, String)> = vec![];
        if self.cfg.retention.delete_received && job.incoming_prefix.starts_with("incoming/") {
            match store.list(&job.incoming_prefix).await {
                Ok(listed) => doomed.extend(listed.into_iter().map(|k| ("received", k))),
                Err(e) => tracing::warn!(error = %e, "retention: cannot list the received files"),
            }
        }
        if self.cfg.retention.delete_intermediates {
            doomed.push(("intermediate", keys.volume_voxels()));
            doomed.push(("intermediate", keys.volume_frames()));
            doomed.push(("intermediate", keys.spine_region_frames()));
            doomed.push(("intermediate", keys.spine_region_header()));
            doomed.push(("intermediate", keys.detection()));
        }
        for (kind, key) in doomed {
            match store.delete(&key).await {
                Ok(()) => metrics::RETENTION_DELETED.with_label_values(&[kind]).inc(),
                Err(e) => tracing::warn!(error = %e, kind, "retention: delete failed"),
            }
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &PublisherConfig {
        &self.cfg
    }
}

fn transient(e: impl std::fmt::Display) -> StageError {
    StageError::Transient(anyhow!("{e}"))
}

fn permanent(e: impl std::fmt::Display) -> StageError {
    StageError::Permanent(anyhow!("{e}"))
}

fn storage(what: &str, e: StorageError) -> StageError {
    match e {
        StorageError::InvalidKey(_) => permanent(format!("{what}: {e}")),
        _ => transient(format!("{what}: {e}")),
    }
}

fn now_unix_ms() -> u64 {
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    u64::try_from(now).unwrap_or(0)
}

/// `result.json`, or — when it is missing or unreadable — a result saying so, so the PACS still
/// receives an SR for the study instead of silence.
async fn load_result(
    store: &StudyStore,
    keys: &StudyKeys,
    study_uid: &StudyUid,
    job: &Job,
    ctx: &StageContext,
) -> Result<StudyResult, StageError> {
    let not_analysed = |text: String| {
        tracing::error!(study = %study_uid, "{text}; publishing an internal-error SR");
        let status = match job.status {
            StudyStatus::Ok => StudyStatus::TechnicalDefect,
            other => other,
        };
        StudyResult::not_analysed(
            study_uid.to_string(),
            status,
            Reason::new(ReasonCode::INTERNAL_ERROR, text),
            ctx.service.clone(),
        )
    };
    match store.get(&keys.result()).await {
        Ok(bytes) => match serde_json::from_slice::<StudyResult>(&bytes) {
            Ok(r) if r.study_instance_uid == study_uid.as_str() => Ok(r),
            Ok(r) => Err(permanent(format!(
                "result.json of {study_uid} is for study {}",
                r.study_instance_uid
            ))),
            Err(e) => Ok(not_analysed(format!("result.json unreadable: {e}"))),
        },
        Err(StorageError::NotFound(_)) => {
            Ok(not_analysed("result.json missing at the publisher".into()))
        }
        Err(e) => Err(storage("reading result.json", e)),
    }
}

/// The patient/study module from `volume.json`; a study that never got a volume (technical
/// defect at ingest) gets only its Study Instance UID.
async fn load_study(
    store: &StudyStore,
    keys: &StudyKeys,
    study_uid: &StudyUid,
) -> Result<StudyInfo, StageError> {
    let minimal = || StudyInfo {
        study_instance_uid: study_uid.to_string(),
        ..Default::default()
    };
    match store.get(&keys.volume_header()).await {
        Ok(bytes) => match serde_json::from_slice::<VolumeHeader>(&bytes) {
            Ok(h) => Ok(h.study),
            Err(e) => {
                tracing::warn!(study = %study_uid, error = %e, "volume.json unreadable; SR without patient module");
                Ok(minimal())
            }
        },
        Err(StorageError::NotFound(_)) => Ok(minimal()),
        Err(e) => Err(storage("reading volume.json", e)),
    }
}

/// The secondary-capture instances under `studies/<uid>/sc/`, in key order.
async fn load_sc(
    store: &StudyStore,
    keys: &StudyKeys,
    study_uid: &StudyUid,
) -> Result<Vec<Instance>, StageError> {
    let listed = store
        .list(&keys.secondary_capture_prefix())
        .await
        .map_err(|e| storage("listing the secondary captures", e))?;
    let mut out = vec![];
    for key in listed.iter().filter(|k| k.ends_with(".dcm")) {
        let bytes = store
            .get(key)
            .await
            .map_err(|e| storage("reading a secondary capture", e))?;
        let inst = Instance::from_part10(bytes, key).map_err(permanent)?;
        if inst.study_instance_uid != study_uid.as_str() {
            return Err(permanent(format!(
                "{key} belongs to study {}, not {study_uid}",
                inst.study_instance_uid
            )));
        }
        out.push(inst);
    }
    Ok(out)
}

async fn load_optional(store: &StudyStore, key: &str) -> Result<Option<Bytes>, StageError> {
    match store.get(key).await {
        Ok(b) => Ok(Some(b)),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(storage(key, e)),
    }
}

/// Tell the study ledger how one destination went: `delivered` with the SOP Instance UIDs it
/// acknowledged, or `delivery_failed` with why (best effort, see
/// [`spinescreen_runtime::events`]). The stage does not know its delivery attempt; the events
/// carry attempt 1, so a redelivered study's repeat delivery is recorded once.
async fn report_delivery(
    ctx: &StageContext,
    job: &Job,
    dest: &Destination,
    pkg: &Package,
    outcome: &Result<(), PublishError>,
) {
    let now = spinescreen_runtime::events::now_unix_ms();
    let event = match outcome {
        Ok(()) => StudyEvent::new(job, Stage::Publisher, EventKind::Delivered, 1, now)
            .with_destination(
                delivery::describe(dest),
                pkg.instances()
                    .iter()
                    .map(|i| i.sop_instance_uid.clone())
                    .collect(),
            ),
        Err(e) => StudyEvent::new(job, Stage::Publisher, EventKind::DeliveryFailed, 1, now)
            .with_destination(delivery::describe(dest), vec![])
            .with_reason(e.to_string()),
    };
    publish_event(&*ctx.broker, &event).await;
}

#[async_trait]
impl StageWorker for PublisherWorker {
    fn stage(&self) -> Stage {
        Stage::Publisher
    }

    async fn process(&self, job: Job, ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        let started = Instant::now();
        let study_uid = job
            .study_uid
            .clone()
            .ok_or_else(|| permanent("publisher job without a study_uid"))?;
        let keys = study_uid.keys();
        let store = &ctx.store;

        let mut result = load_result(store, &keys, &study_uid, &job, ctx).await?;
        let study = load_study(store, &keys, &study_uid).await?;
        let sc = load_sc(store, &keys, &study_uid).await?;
        let preview_png = load_optional(store, &keys.preview_png()).await?;

        let derived: Vec<InstanceRef> = sc.iter().map(Instance::reference).collect();
        let created = OffsetDateTime::now_utc();
        let sr_bytes = build_sr_with(&result, &study, &self.cfg, &ctx.service, &derived, created)
            .map_err(permanent)?;
        store
            .put(&keys.structured_report(), sr_bytes.clone())
            .await
            .map_err(|e| storage("storing sr.dcm", e))?;
        let sr = Instance::from_part10(Bytes::from(sr_bytes), "sr.dcm").map_err(permanent)?;
        let sr_uid = sr.sop_instance_uid.clone();

        let wants_fhir = self
            .cfg
            .destinations
            .iter()
            .any(|d| matches!(d, Destination::Webhook { fhir: true, .. }));
        let issued = created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let fhir_json = wants_fhir.then(|| {
            let report =
                fhir::diagnostic_report(&result, &study, &self.cfg, &ctx.service, &sr_uid, &issued);
            serde_json::to_vec(&report).unwrap_or_default()
        });
        let mut pkg = Package {
            study_uid: study_uid.to_string(),
            sr,
            sc,
            result_json: serde_json::to_vec_pretty(&result).map_err(permanent)?,
            fhir_json,
            preview_png,
        };

        // Network destinations first: the SLA clock stops at their last acknowledgement.
        let (local, remote): (Vec<&Destination>, Vec<&Destination>) = self
            .cfg
            .destinations
            .iter()
            .partition(|d| matches!(d, Destination::Directory { .. }));
        let mut failures = vec![];
        for dest in remote {
            let outcome = delivery::deliver(dest, &pkg, &self.cfg, &self.http).await;
            report_delivery(ctx, &job, dest, &pkg, &outcome).await;
            if let Err(e) = outcome {
                failures.push(e.to_string());
            }
        }
        if !failures.is_empty() {
            return Err(transient(failures.join("; ")));
        }

        let end_to_end_ms = now_unix_ms().saturating_sub(job.received_at_unix_ms);
        let mut timings = result.timings_ms.clone();
        timings.extend(job.timings_ms.iter().map(|(k, v)| (k.clone(), *v)));
        timings.insert(
            Stage::Publisher.name().to_string(),
            started.elapsed().as_millis() as u64,
        );
        timings.insert("end_to_end".to_string(), end_to_end_ms);
        result.timings_ms = timings;
        pkg.result_json = serde_json::to_vec_pretty(&result).map_err(permanent)?;
        store
            .put(&keys.result(), pkg.result_json.clone())
            .await
            .map_err(|e| storage("storing result.json", e))?;

        for dest in local {
            let outcome = delivery::deliver(dest, &pkg, &self.cfg, &self.http).await;
            report_delivery(ctx, &job, dest, &pkg, &outcome).await;
            outcome.map_err(transient)?;
        }

        metrics::observe_study(result.status.as_str(), end_to_end_ms as f64 / 1000.0);
        let done = StudyDone {
            schema_version: SCHEMA_VERSION,
            job_id: job.job_id.clone(),
            study_uid: study_uid.clone(),
            status: result.status,
            result_key: keys.result(),
            end_to_end_ms,
        };
        announce_done(
            &*ctx.broker,
            Message {
                body: serde_json::to_vec(&done).map_err(permanent)?,
                headers: job.trace_context.clone(),
            },
        )
        .await
        .map_err(|e| transient(format!("announcing on {DONE_QUEUE}: {e}")))?;
        tracing::info!(
            study = %study_uid,
            status = result.status.as_str(),
            sr = %sr_uid,
            end_to_end_ms,
            "study published"
        );
        // Any other copy of this job now answers with this result (the runtime's
        // `worker::delivered`): retention is about to delete the inputs it would need.
        if let Err(e) = store.put(&keys.delivered(&job.job_id), Vec::new()).await {
            tracing::warn!(error = %e, "the delivered marker was not stored; a duplicate copy of this job may be dead-lettered");
        }
        self.apply_retention(&job, &keys, store).await;
        Ok(vec![])
    }
}
