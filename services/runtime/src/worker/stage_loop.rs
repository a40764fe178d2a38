//! The loop every stage runs: consume → decode → process → publish the next jobs (confirmed) →
//! ack. The input is acknowledged only after the stage's outputs are stored (by `process`) and
//! its next jobs are confirmed by the broker, so a crash at any point leads to a redelivery,
//! never to a lost study; stages are idempotent, so a redelivery only repeats work.

use crate::broker::{dlq_name, Delivery, Message, ATTEMPTS_HEADER, ERROR_HEADER, STAGE_HEADER};
use crate::config::RuntimeConfig;
use crate::events::{announce_existing, now_unix_ms, publish_event};
use crate::worker::delivered::delivered_status;
use crate::worker::{StageContext, StageError, StageWorker};
use crate::{http, metrics, telemetry};
use futures::FutureExt;
use spinescreen_proto::{EventKind, Job, Stage, StudyEvent, StudyStatus, StudyUid};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Longest header value written on a dead-lettered message.
const MAX_REASON_LEN: usize = 1024;

/// How a stage loop consumes and retries.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopOptions {
    /// Unsettled deliveries at once; also how many jobs are processed concurrently.
    pub prefetch: u16,
    /// Attempts (first delivery included) before a transiently failing job is dead-lettered.
    pub delivery_limit: u32,
    /// Pause before a transiently failed job is requeued.
    pub retry_delay: Duration,
    /// First pause before consuming again after the broker connection failed (doubles up to
    /// 30 s).
    pub reconnect_delay: Duration,
    /// How long shutdown waits for the jobs in hand; past it they are abandoned and the broker
    /// redelivers them.
    pub shutdown_grace: Duration,
}

impl Default for LoopOptions {
    fn default() -> Self {
        Self {
            prefetch: 1,
            delivery_limit: 3,
            retry_delay: Duration::from_secs(1),
            reconnect_delay: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(120),
        }
    }
}

impl LoopOptions {
    /// Prefetch, delivery limit and shutdown grace from the runtime configuration.
    pub fn from_config(config: &RuntimeConfig) -> Self {
        Self {
            prefetch: config.broker.prefetch(),
            delivery_limit: config.broker.delivery_limit(),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
            ..Self::default()
        }
    }
}

enum SessionEnd {
    Shutdown,
    ConsumerClosed,
}

/// Run `worker` on its stage's queue until `shutdown` is cancelled.
///
/// Declares the stage's queue and the next stage's queue, consumes with `opts.prefetch`, and for
/// each delivery: decodes the [`Job`] (undecodable or unknown schema version → `<queue>.dlq`
/// with header `x-spinescreen-error`, acked); calls [`StageWorker::process`] inside a span that
/// continues the job's trace; records `spinescreen_stage_duration_seconds`; adds
/// `timings_ms[<stage>]` and the trace context to each outgoing job and publishes it to the next
/// stage's queue with confirms; only then acks. A [`StageError::Transient`] is requeued until the
/// attempt reaches `opts.delivery_limit`, then dead-lettered with its reason; a
/// [`StageError::Permanent`] (or a panic) is dead-lettered at once.
///
/// If the broker connection fails, the loop consumes again with backoff. On shutdown it stops
/// taking deliveries, finishes the jobs in hand (up to `opts.shutdown_grace`; past it they are
/// abandoned and redelivered), and returns `Ok(())`.
pub async fn run_stage(
    worker: Arc<dyn StageWorker>,
    ctx: StageContext,
    opts: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    metrics::register_all();
    let stage = worker.stage();
    http::expect_stages(&[stage.name()]);
    let mut backoff = opts.reconnect_delay;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let started = Instant::now();
        let outcome = session(&worker, &ctx, &opts, &shutdown).await;
        http::set_stage_ready(stage.name(), false);
        match outcome {
            Ok(SessionEnd::Shutdown) => {
                tracing::info!(stage = stage.name(), "stage loop stopped");
                return Ok(());
            }
            Ok(SessionEnd::ConsumerClosed) => {
                tracing::warn!(
                    stage = stage.name(),
                    "consumer closed by the broker; consuming again"
                )
            }
            Err(e) => {
                tracing::warn!(stage = stage.name(), error = %e, "broker failure; consuming again")
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = opts.reconnect_delay;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn session(
    worker: &Arc<dyn StageWorker>,
    ctx: &StageContext,
    opts: &LoopOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<SessionEnd> {
    let stage = worker.stage();
    ctx.broker.declare(stage.queue()).await?;
    if let Some(next) = stage.next() {
        ctx.broker.declare(next.queue()).await?;
    }
    let mut consumer = ctx.broker.consume(stage.queue(), opts.prefetch).await?;
    http::set_stage_ready(stage.name(), true);
    tracing::info!(
        stage = stage.name(),
        queue = stage.queue(),
        prefetch = opts.prefetch,
        "consuming"
    );
    let mut in_hand: JoinSet<()> = JoinSet::new();
    let end = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Ok(SessionEnd::Shutdown),
            Some(joined) = in_hand.join_next(), if !in_hand.is_empty() => {
                if let Err(e) = joined {
                    tracing::error!(stage = stage.name(), error = %e, "job task failed");
                }
            }
            delivery = consumer.next() => match delivery {
                Some(Ok(d)) => {
                    let (w, c, o, s) = (worker.clone(), ctx.clone(), opts.clone(), shutdown.clone());
                    in_hand.spawn(async move { handle(w, c, o, s, d).await });
                }
                Some(Err(e)) => break Err(anyhow::Error::from(e)),
                None => break Ok(SessionEnd::ConsumerClosed),
            },
        }
    };
    http::set_stage_ready(stage.name(), false);
    if !in_hand.is_empty() {
        tracing::info!(
            stage = stage.name(),
            jobs = in_hand.len(),
            "finishing jobs in hand"
        );
        let drain = async { while in_hand.join_next().await.is_some() {} };
        if tokio::time::timeout(opts.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                stage = stage.name(),
                "jobs in hand exceeded the shutdown grace; abandoning them for redelivery"
            );
            in_hand.abort_all();
            while in_hand.join_next().await.is_some() {}
        }
    }
    // Dropping the consumer returns deliveries prefetched but never started.
    drop(consumer);
    end
}

/// Decrements the in-flight gauge even if the job's task is aborted.
struct InFlight(Stage);

impl InFlight {
    fn enter(stage: Stage) -> Self {
        metrics::JOBS_IN_FLIGHT
            .with_label_values(&[stage.name()])
            .inc();
        Self(stage)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::JOBS_IN_FLIGHT
            .with_label_values(&[self.0.name()])
            .dec();
    }
}

fn count(stage: Stage, outcome: &str) {
    metrics::JOBS
        .with_label_values(&[stage.name(), outcome])
        .inc();
}

async fn handle(
    worker: Arc<dyn StageWorker>,
    ctx: StageContext,
    opts: LoopOptions,
    shutdown: CancellationToken,
    delivery: Delivery,
) {
    let stage = worker.stage();
    let Delivery {
        message,
        attempt,
        acker,
    } = delivery;
    let job = match Job::from_bytes(&message.body) {
        Ok(job) => job,
        Err(e) => {
            tracing::warn!(stage = stage.name(), error = %e, "undecodable job; dead-lettering");
            dead_letter(&ctx, stage, None, message, &e.to_string(), attempt, &*acker).await;
            return;
        }
    };
    let parent = if telemetry::has_span(&telemetry::extract_context(&job.trace_context)) {
        telemetry::extract_context(&job.trace_context)
    } else {
        telemetry::extract_context(&message.headers)
    };
    let span = tracing::info_span!(
        "stage",
        stage = stage.name(),
        job_id = %job.job_id,
        attempt = attempt,
        otel.name = format!("spinescreen.{}", stage.name()),
    );
    let _ = span.set_parent(parent.clone());
    let observed = job.clone();
    async move {
        let event =
            |kind: EventKind| StudyEvent::new(&observed, stage, kind, attempt, now_unix_ms());
        if let Some(delivered) = already_delivered(&ctx, stage, &observed).await {
            answer_duplicate(
                &ctx, stage, &opts, &shutdown, &observed, delivered, message, attempt, &*acker,
            )
            .await;
            return;
        }
        publish_event(&*ctx.broker, &event(EventKind::Started)).await;
        let in_flight = InFlight::enter(stage);
        let started = Instant::now();
        let result = AssertUnwindSafe(worker.process(job, &ctx))
            .catch_unwind()
            .await;
        let elapsed = started.elapsed();
        drop(in_flight);
        metrics::STAGE_DURATION
            .with_label_values(&[stage.name()])
            .observe(elapsed.as_secs_f64());
        match result {
            Ok(Ok(outgoing)) => {
                let finished = finished_events(&observed, stage, attempt, &outgoing);
                let mut out_cx = tracing::Span::current().context();
                if !telemetry::has_span(&out_cx) {
                    // No OpenTelemetry layer installed: carry the incoming context forward so the
                    // study still keeps one trace id.
                    out_cx = parent;
                }
                match forward(&ctx, stage, outgoing, elapsed, &out_cx).await {
                    Ok(()) => match acker.ack().await {
                        Ok(()) => {
                            count(stage, "ok");
                            tracing::info!(ms = elapsed.as_millis() as u64, "job done");
                            for e in &finished {
                                publish_event(&*ctx.broker, e).await;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "ack failed; the job will be redelivered")
                        }
                    },
                    Err(reason) => {
                        tracing::warn!(error = %reason, "publishing the next job failed");
                        publish_event(&*ctx.broker, &event(EventKind::Failed).with_reason(&reason))
                            .await;
                        retry_or_dead_letter(
                            &ctx,
                            stage,
                            &opts,
                            &shutdown,
                            Some(&observed),
                            message,
                            attempt,
                            &reason,
                            &*acker,
                        )
                        .await;
                    }
                }
            }
            Ok(Err(StageError::Transient(e))) => {
                let reason = format!("transient: {e:#}");
                tracing::warn!(error = %reason, "job failed");
                publish_event(&*ctx.broker, &event(EventKind::Failed).with_reason(&reason)).await;
                retry_or_dead_letter(
                    &ctx,
                    stage,
                    &opts,
                    &shutdown,
                    Some(&observed),
                    message,
                    attempt,
                    &reason,
                    &*acker,
                )
                .await;
            }
            Ok(Err(StageError::Permanent(e))) => {
                // Inputs deleted under it by another copy's retention read as a permanent error.
                if let Some(delivered) = already_delivered(&ctx, stage, &observed).await {
                    answer_duplicate(
                        &ctx, stage, &opts, &shutdown, &observed, delivered, message, attempt,
                        &*acker,
                    )
                    .await;
                    return;
                }
                let reason = format!("permanent: {e:#}");
                tracing::warn!(error = %reason, "job failed permanently; dead-lettering");
                dead_letter(
                    &ctx,
                    stage,
                    Some(&observed),
                    message,
                    &reason,
                    attempt,
                    &*acker,
                )
                .await;
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                let reason = format!("stage panicked: {what}");
                tracing::error!(error = %reason, "dead-lettering");
                dead_letter(
                    &ctx,
                    stage,
                    Some(&observed),
                    message,
                    &reason,
                    attempt,
                    &*acker,
                )
                .await;
            }
        }
    }
    .instrument(span)
    .await
}

/// The study and its status when another copy of `job` has already been delivered
/// ([`delivered_status`]). Ingest is never a copy's answer: its job has no study yet, and it
/// handles its own redeliveries (a re-send adds nothing, a redelivery is built again).
async fn already_delivered(
    ctx: &StageContext,
    stage: Stage,
    job: &Job,
) -> Option<(StudyUid, StudyStatus)> {
    if stage == Stage::Ingest {
        return None;
    }
    delivered_status(&ctx.store, job).await
}

/// Answer a copy of a delivered job: announce the study's existing result and acknowledge the
/// copy, which goes no further. An announcement that fails is retried like a transient error.
#[allow(clippy::too_many_arguments)]
async fn answer_duplicate(
    ctx: &StageContext,
    stage: Stage,
    opts: &LoopOptions,
    shutdown: &CancellationToken,
    job: &Job,
    (uid, status): (StudyUid, StudyStatus),
    message: Message,
    attempt: u32,
    acker: &dyn crate::broker::Acker,
) {
    match announce_existing(&*ctx.broker, job, &uid, status).await {
        Ok(()) => match acker.ack().await {
            Ok(()) => {
                count(stage, "duplicate");
                tracing::info!(
                    study = %uid,
                    "another copy of this job was already delivered; answered with its result"
                );
            }
            Err(e) => tracing::warn!(error = %e, "ack failed; the job will be redelivered"),
        },
        Err(e) => {
            let reason = format!("announcing a delivered copy: {e}");
            tracing::warn!(error = %reason, "job failed");
            retry_or_dead_letter(
                ctx,
                stage,
                opts,
                shutdown,
                Some(job),
                message,
                attempt,
                &reason,
                acker,
            )
            .await;
        }
    }
}

/// The `finished` events of a job: one per outgoing job (ingest may split a reception, and only
/// its outgoing jobs know their study), or one for the job itself at the last stage. Ingest also
/// reports when each study was `received`.
fn finished_events(job: &Job, stage: Stage, attempt: u32, outgoing: &[Job]) -> Vec<StudyEvent> {
    let now = now_unix_ms();
    let subjects: Vec<&Job> = if outgoing.is_empty() {
        vec![job]
    } else {
        outgoing.iter().collect()
    };
    let mut events = vec![];
    for subject in subjects {
        if stage == Stage::Ingest {
            let at = subject.received_at_unix_ms;
            events.push(StudyEvent::new(
                subject,
                stage,
                EventKind::Received,
                attempt,
                at,
            ));
        }
        events.push(StudyEvent::new(
            subject,
            stage,
            EventKind::Finished,
            attempt,
            now,
        ));
    }
    events
}

/// Publish the outgoing jobs to the next stage, each confirmed.
async fn forward(
    ctx: &StageContext,
    stage: Stage,
    outgoing: Vec<Job>,
    elapsed: Duration,
    cx: &opentelemetry::Context,
) -> Result<(), String> {
    let Some(next) = stage.next() else {
        if !outgoing.is_empty() {
            tracing::warn!(
                jobs = outgoing.len(),
                "last stage returned jobs; there is no next stage, dropping them"
            );
        }
        return Ok(());
    };
    for mut job in outgoing {
        job.timings_ms
            .insert(stage.name().to_string(), elapsed.as_millis() as u64);
        if telemetry::has_span(cx) {
            job.trace_context.remove("traceparent");
            job.trace_context.remove("tracestate");
            telemetry::inject_into(cx, &mut job.trace_context);
        }
        let message = Message {
            body: job.to_bytes(),
            headers: job.trace_context.clone(),
        };
        ctx.broker
            .publish(next.queue(), message)
            .await
            .map_err(|e| format!("publish to {}: {e}", next.queue()))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn retry_or_dead_letter(
    ctx: &StageContext,
    stage: Stage,
    opts: &LoopOptions,
    shutdown: &CancellationToken,
    job: Option<&Job>,
    message: Message,
    attempt: u32,
    reason: &str,
    acker: &dyn crate::broker::Acker,
) {
    if attempt < opts.delivery_limit {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(opts.retry_delay) => {}
        }
        match acker.requeue().await {
            Ok(()) => {
                count(stage, "retry");
                if let Some(job) = job {
                    let event =
                        StudyEvent::new(job, stage, EventKind::Retried, attempt, now_unix_ms())
                            .with_reason(reason);
                    publish_event(&*ctx.broker, &event).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "requeue failed; the broker will redeliver"),
        }
    } else {
        let reason = format!("{reason} (attempt {attempt} of {})", opts.delivery_limit);
        dead_letter(ctx, stage, job, message, &reason, attempt, acker).await;
    }
}

/// Publish the message to `<queue>.dlq` with the reason, then ack it. If the dead-letter
/// publish fails the message is requeued instead, never dropped.
async fn dead_letter(
    ctx: &StageContext,
    stage: Stage,
    job: Option<&Job>,
    mut message: Message,
    reason: &str,
    attempt: u32,
    acker: &dyn crate::broker::Acker,
) {
    let mut reason = reason.replace(['\r', '\n'], " ");
    if reason.len() > MAX_REASON_LEN {
        let mut cut = MAX_REASON_LEN;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    message.headers.insert(ERROR_HEADER.into(), reason.clone());
    message
        .headers
        .insert(ATTEMPTS_HEADER.into(), attempt.to_string());
    message
        .headers
        .insert(STAGE_HEADER.into(), stage.name().to_string());
    let dlq = dlq_name(stage.queue());
    match ctx.broker.publish(&dlq, message).await {
        Ok(()) => match acker.ack().await {
            Ok(()) => {
                count(stage, "dead_letter");
                if let Some(job) = job {
                    let event = StudyEvent::new(
                        job,
                        stage,
                        EventKind::DeadLettered,
                        attempt,
                        now_unix_ms(),
                    )
                    .with_reason(reason);
                    publish_event(&*ctx.broker, &event).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "ack after dead-lettering failed; a duplicate may follow")
            }
        },
        Err(e) => {
            tracing::error!(error = %e, queue = %dlq, "dead-letter publish failed; requeueing instead");
            if let Err(e) = acker.requeue().await {
                tracing::warn!(error = %e, "requeue failed; the broker will redeliver");
            }
        }
    }
}
