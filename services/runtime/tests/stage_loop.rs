//! `run_stage` against both brokers: success forwards a timed, traced job and acks; failures
//! retry up to the delivery limit and then land in the DLQ with their reason; shutdown finishes
//! the job in hand.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use common::{next_within, wait_depth, Backend, Env, DELIVERY_LIMIT};
use spinescreen_proto::{Job, ServiceInfo, Stage, StudyUid};
use spinescreen_runtime::broker::{dlq_name, Broker, Message, Namespaced, ERROR_HEADER};
use spinescreen_runtime::{
    run_stage, CancellationToken, LoopOptions, StageContext, StageError, StageWorker, StoreConfig,
    StudyStore,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[derive(Clone, Copy)]
enum Behaviour {
    Succeed,
    Transient,
    Permanent,
    Sleep(u64),
}

struct FakeIngest {
    behaviour: Behaviour,
    calls: AtomicU32,
    started: tokio::sync::Notify,
}

#[async_trait]
impl StageWorker for FakeIngest {
    fn stage(&self) -> Stage {
        Stage::Ingest
    }
    async fn process(&self, mut job: Job, _ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        match self.behaviour {
            Behaviour::Succeed => {}
            Behaviour::Transient => {
                return Err(StageError::Transient(anyhow::anyhow!("storage hiccup")))
            }
            Behaviour::Permanent => {
                return Err(StageError::Permanent(anyhow::anyhow!("not a CT series")))
            }
            Behaviour::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
        job.study_uid = Some(StudyUid::new("1.2.826.0.1.3680043.2.1125.1").unwrap());
        Ok(vec![job])
    }
}

struct Rig {
    env: Env,
    ns: Arc<Namespaced>,
    worker: Arc<FakeIngest>,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start(backend: Backend, behaviour: Behaviour, opts: LoopOptions) -> Option<Rig> {
        let env = Env::new(backend).await?;
        let ns = Arc::new(Namespaced::new(
            env.broker.clone(),
            format!("test-{}.", env.id),
        ));
        let dir = tempfile::tempdir().unwrap();
        let store = StudyStore::from_config(&StoreConfig::Local {
            root: dir.path().to_path_buf(),
        })
        .unwrap();
        let ctx = StageContext {
            store,
            broker: ns.clone(),
            service: ServiceInfo {
                name: "spinescreen-test".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
        };
        let worker = Arc::new(FakeIngest {
            behaviour,
            calls: AtomicU32::new(0),
            started: tokio::sync::Notify::new(),
        });
        let shutdown = CancellationToken::new();
        // Declare before publishing: the loop declares too, but we publish right away.
        ns.declare(Stage::Ingest.queue()).await.unwrap();
        ns.declare(Stage::Inference.queue()).await.unwrap();
        let handle = tokio::spawn(run_stage(worker.clone(), ctx, opts, shutdown.clone()));
        Some(Rig {
            env,
            ns,
            worker,
            shutdown,
            handle: Some(handle),
            _dir: dir,
        })
    }

    async fn publish_job(&self, job_id: &str) {
        let mut job = Job::ingest(job_id.into(), format!("incoming/{job_id}/"), 1);
        job.trace_context
            .insert("traceparent".into(), TRACEPARENT.into());
        let message = Message {
            body: job.to_bytes(),
            headers: job.trace_context.clone(),
        };
        self.ns
            .publish(Stage::Ingest.queue(), message)
            .await
            .unwrap();
    }

    /// Cancel and wait for `run_stage` to return (queues kept).
    async fn shut_down(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("run_stage returns after shutdown")
                .unwrap()
                .unwrap();
        }
    }

    async fn stop(mut self) {
        self.shut_down().await;
        self.env
            .cleanup(&[
                self.ns.real_name(Stage::Ingest.queue()),
                self.ns.real_name(Stage::Inference.queue()),
            ])
            .await;
    }
}

fn fast() -> LoopOptions {
    LoopOptions {
        prefetch: 1,
        delivery_limit: DELIVERY_LIMIT,
        retry_delay: Duration::from_millis(10),
        reconnect_delay: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(10),
    }
}

async fn success_forwards_timed_traced_job_then_acks(backend: Backend) {
    let Some(rig) = Rig::start(backend, Behaviour::Succeed, fast()).await else {
        return;
    };
    rig.publish_job("ok-1").await;
    let mut next = rig.ns.consume(Stage::Inference.queue(), 1).await.unwrap();
    let d = next_within(&mut next, 10_000)
        .await
        .expect("next stage got a job");
    let job = Job::from_bytes(&d.message.body).unwrap();
    assert_eq!(job.job_id, "ok-1");
    assert!(job.study_uid.is_some());
    assert!(
        job.timings_ms.contains_key("ingest"),
        "{:?}",
        job.timings_ms
    );
    let trace = spinescreen_runtime::telemetry::trace_id(&job.trace_context);
    assert_eq!(
        trace.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        "one study, one trace"
    );
    assert_eq!(
        spinescreen_runtime::telemetry::trace_id(&d.message.headers).as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        "trace context also travels in the message headers"
    );
    d.acker.ack().await.unwrap();
    drop(next);
    // The input was acked: nothing waits in the ingest queue or its DLQ.
    assert!(wait_depth(&*rig.ns, Stage::Ingest.queue(), 0, Duration::from_secs(5)).await);
    assert_eq!(
        rig.ns
            .queue_depth(&dlq_name(Stage::Ingest.queue()))
            .await
            .unwrap(),
        0
    );
    assert_eq!(rig.worker.calls.load(Ordering::SeqCst), 1);
    rig.stop().await;
}

async fn failing_job_lands_in_dlq_with_reason(backend: Backend) {
    let Some(rig) = Rig::start(backend, Behaviour::Transient, fast()).await else {
        return;
    };
    rig.publish_job("flaky-1").await;
    let dlq = dlq_name(Stage::Ingest.queue());
    assert!(
        wait_depth(&*rig.ns, &dlq, 1, Duration::from_secs(15)).await,
        "job never reached the DLQ"
    );
    assert_eq!(rig.worker.calls.load(Ordering::SeqCst), DELIVERY_LIMIT);
    let mut dead = rig.ns.consume(&dlq, 1).await.unwrap();
    let d = next_within(&mut dead, 5000).await.expect("DLQ message");
    let reason = d
        .message
        .headers
        .get(ERROR_HEADER)
        .cloned()
        .unwrap_or_default();
    assert!(
        reason.contains("storage hiccup"),
        "reason header: {reason:?}"
    );
    assert_eq!(
        d.message
            .headers
            .get("x-spinescreen-attempts")
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(Job::from_bytes(&d.message.body).unwrap().job_id, "flaky-1");
    d.acker.ack().await.unwrap();
    drop(dead);
    assert_eq!(
        rig.ns.queue_depth(Stage::Inference.queue()).await.unwrap(),
        0
    );
    rig.stop().await;
}

async fn permanent_failure_is_dead_lettered_at_once(backend: Backend) {
    let Some(rig) = Rig::start(backend, Behaviour::Permanent, fast()).await else {
        return;
    };
    rig.publish_job("bad-1").await;
    let dlq = dlq_name(Stage::Ingest.queue());
    assert!(wait_depth(&*rig.ns, &dlq, 1, Duration::from_secs(10)).await);
    assert_eq!(rig.worker.calls.load(Ordering::SeqCst), 1);
    let mut dead = rig.ns.consume(&dlq, 1).await.unwrap();
    let d = next_within(&mut dead, 5000).await.expect("DLQ message");
    let reason = d
        .message
        .headers
        .get(ERROR_HEADER)
        .cloned()
        .unwrap_or_default();
    assert!(reason.contains("not a CT series"), "{reason:?}");
    d.acker.ack().await.unwrap();
    drop(dead);
    rig.stop().await;
}

async fn undecodable_job_is_dead_lettered(backend: Backend) {
    let Some(rig) = Rig::start(backend, Behaviour::Succeed, fast()).await else {
        return;
    };
    let mut future = Job::ingest("future-1".into(), "incoming/f/".into(), 1);
    future.schema_version = 99;
    for body in [b"{not json".to_vec(), future.to_bytes()] {
        rig.ns
            .publish(
                Stage::Ingest.queue(),
                Message {
                    body,
                    headers: Default::default(),
                },
            )
            .await
            .unwrap();
    }
    let dlq = dlq_name(Stage::Ingest.queue());
    assert!(wait_depth(&*rig.ns, &dlq, 2, Duration::from_secs(10)).await);
    assert_eq!(
        rig.worker.calls.load(Ordering::SeqCst),
        0,
        "never reached the stage"
    );
    let mut dead = rig.ns.consume(&dlq, 2).await.unwrap();
    let mut reasons = vec![];
    for _ in 0..2 {
        let d = next_within(&mut dead, 5000).await.expect("DLQ message");
        reasons.push(
            d.message
                .headers
                .get(ERROR_HEADER)
                .cloned()
                .unwrap_or_default(),
        );
        d.acker.ack().await.unwrap();
    }
    assert!(reasons[0].contains("malformed"), "{reasons:?}");
    assert!(reasons[1].contains("version 99"), "{reasons:?}");
    drop(dead);
    rig.stop().await;
}

async fn shutdown_finishes_job_in_hand(backend: Backend) {
    let Some(mut rig) = Rig::start(backend, Behaviour::Sleep(700), fast()).await else {
        return;
    };
    rig.publish_job("slow-1").await;
    tokio::time::timeout(Duration::from_secs(10), rig.worker.started.notified())
        .await
        .expect("job started");
    rig.shut_down().await;
    // The job in hand was finished and forwarded, and its input acked: nothing is lost or left.
    assert!(
        wait_depth(
            &*rig.ns,
            Stage::Inference.queue(),
            1,
            Duration::from_secs(5)
        )
        .await
    );
    assert!(wait_depth(&*rig.ns, Stage::Ingest.queue(), 0, Duration::from_secs(5)).await);
    assert_eq!(rig.worker.calls.load(Ordering::SeqCst), 1);
    rig.stop().await;
}

async fn shutdown_past_grace_returns_job_to_queue(backend: Backend) {
    let opts = LoopOptions {
        shutdown_grace: Duration::from_millis(200),
        ..fast()
    };
    let Some(mut rig) = Rig::start(backend, Behaviour::Sleep(30_000), opts).await else {
        return;
    };
    rig.publish_job("stuck-1").await;
    tokio::time::timeout(Duration::from_secs(10), rig.worker.started.notified())
        .await
        .expect("job started");
    rig.shut_down().await;
    // Abandoned, not lost: the job is back in its queue for the next worker.
    assert!(wait_depth(&*rig.ns, Stage::Ingest.queue(), 1, Duration::from_secs(10)).await);
    assert_eq!(
        rig.ns.queue_depth(Stage::Inference.queue()).await.unwrap(),
        0
    );
    let mut again = rig.ns.consume(Stage::Ingest.queue(), 1).await.unwrap();
    let d = next_within(&mut again, 5000).await.expect("redelivered");
    assert_eq!(d.attempt, 2);
    d.acker.ack().await.unwrap();
    drop(again);
    rig.stop().await;
}

/// RabbitMQ cancels a consumer whose queue is deleted (an operator mistake, a failover): the
/// loop must notice, declare again and keep working instead of going quiet.
#[tokio::test]
async fn amqp_loop_recovers_when_its_consumer_is_cancelled() {
    let Some(rig) = Rig::start(Backend::Amqp, Behaviour::Succeed, fast()).await else {
        return;
    };
    let amqp = common::amqp().await.expect("RabbitMQ");
    // Let the loop start consuming, then pull the queue from under it.
    for _ in 0..100 {
        if spinescreen_runtime::http::is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    amqp.delete_queue(&rig.ns.real_name(Stage::Ingest.queue()))
        .await
        .unwrap();
    // Publishing succeeds again once the loop has re-declared its queue.
    let mut published = false;
    for _ in 0..100 {
        let job = Job::ingest("after-cancel".into(), "incoming/a/".into(), 1);
        let message = Message {
            body: job.to_bytes(),
            headers: Default::default(),
        };
        if rig.ns.publish(Stage::Ingest.queue(), message).await.is_ok() {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "the loop never re-declared its queue");
    assert!(
        wait_depth(
            &*rig.ns,
            Stage::Inference.queue(),
            1,
            Duration::from_secs(10)
        )
        .await,
        "the job published after the cancel was not processed"
    );
    rig.stop().await;
}

/// Close the RabbitMQ connection whose client-provided name is `name` (via rabbitmqctl).
fn close_connection_named(name: &str) -> bool {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl runs (the suite's RabbitMQ is local)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut closed = false;
    for line in text.lines().filter(|l| l.contains(name)) {
        let pid = line.split_whitespace().next().unwrap_or_default();
        let status = std::process::Command::new("rabbitmqctl")
            .args([
                "-q",
                "close_connection",
                pid,
                "test: simulated network failure",
            ])
            .status()
            .expect("rabbitmqctl runs");
        closed |= status.success();
    }
    closed
}

/// The network drops the worker's connection: the loop reconnects and keeps consuming.
#[tokio::test]
async fn amqp_loop_reconnects_after_connection_loss() {
    if common::skip_services() {
        return;
    }
    let name = format!(
        "spinescreen-reconnect-test-{}",
        uuid::Uuid::new_v4().simple()
    );
    let options = spinescreen_runtime::broker::AmqpOptions {
        delivery_limit: DELIVERY_LIMIT,
        connection_name: name.clone(),
        ..Default::default()
    };
    let worker_broker = Arc::new(
        spinescreen_runtime::broker::AmqpBroker::connect(&common::amqp_url(), options)
            .await
            .expect("RabbitMQ is reachable (run scripts/test.sh)"),
    );
    let env = Env::new(Backend::Amqp).await.expect("RabbitMQ");
    let prefix = format!("test-{}.", env.id);
    let worker_ns = Arc::new(Namespaced::new(worker_broker, prefix.clone()));
    let other_ns = Namespaced::new(env.broker.clone(), prefix);
    let dir = tempfile::tempdir().unwrap();
    let ctx = StageContext {
        store: StudyStore::from_config(&StoreConfig::Local {
            root: dir.path().to_path_buf(),
        })
        .unwrap(),
        broker: worker_ns.clone(),
        service: ServiceInfo {
            name: "t".into(),
            version: "0".into(),
        },
    };
    let worker = Arc::new(FakeIngest {
        behaviour: Behaviour::Succeed,
        calls: AtomicU32::new(0),
        started: tokio::sync::Notify::new(),
    });
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run_stage(worker.clone(), ctx, fast(), shutdown.clone()));
    for _ in 0..100 {
        if spinescreen_runtime::http::is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        close_connection_named(&name),
        "no connection named {name} to close"
    );

    let job = Job::ingest("after-reconnect".into(), "incoming/r/".into(), 1);
    other_ns
        .publish(
            Stage::Ingest.queue(),
            Message {
                body: job.to_bytes(),
                headers: Default::default(),
            },
        )
        .await
        .unwrap();
    assert!(
        wait_depth(
            &other_ns,
            Stage::Inference.queue(),
            1,
            Duration::from_secs(20)
        )
        .await,
        "the worker did not come back after losing its connection"
    );
    assert_eq!(worker.calls.load(Ordering::SeqCst), 1);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    env.cleanup(&[
        other_ns.real_name(Stage::Ingest.queue()),
        other_ns.real_name(Stage::Inference.queue()),
    ])
    .await;
}

/// A later stage whose inputs are gone: it fails permanently, as morphometry does when
/// retention deleted `detection.json`; with `mark_delivered` it first stores the delivered
/// marker, as if another copy's publisher finished while it ran.
struct InputsGone {
    mark_delivered: bool,
    calls: AtomicU32,
}

#[async_trait]
impl StageWorker for InputsGone {
    fn stage(&self) -> Stage {
        Stage::Morphometry
    }
    async fn process(&self, job: Job, ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.mark_delivered {
            let keys = job.study_uid.as_ref().unwrap().keys();
            ctx.store
                .put(&keys.delivered(&job.job_id), Vec::new())
                .await
                .unwrap();
        }
        Err(StageError::Permanent(anyhow::anyhow!(
            "missing object detection.json"
        )))
    }
}

/// Copies of a job that another copy already delivered are answered with the study's result
/// (announced done, acknowledged), never dead-lettered: whether the marker is there before the
/// copy starts (the stage is not even run) or appears while it runs. A job with no marker
/// whose inputs are gone is still dead-lettered.
async fn copies_of_a_delivered_job_are_answered_not_dead_lettered(backend: Backend) {
    use spinescreen_proto::job::{StudyDone, DONE_QUEUE};
    use spinescreen_proto::{Reason, ReasonCode, StudyResult, StudyStatus};
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let ns = Arc::new(Namespaced::new(
        env.broker.clone(),
        format!("test-{}.", env.id),
    ));
    let dir = tempfile::tempdir().unwrap();
    let store = StudyStore::from_config(&StoreConfig::Local {
        root: dir.path().to_path_buf(),
    })
    .unwrap();
    let service = ServiceInfo {
        name: "spinescreen-test".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let uid = StudyUid::new("1.2.826.0.1.3680043.2.1125.7").unwrap();
    let keys = uid.keys();
    let result = StudyResult::not_analysed(
        uid.to_string(),
        StudyStatus::Abstained,
        Reason::new(ReasonCode::INTERNAL_ERROR, "test"),
        service.clone(),
    );
    store
        .put(&keys.result(), serde_json::to_vec(&result).unwrap())
        .await
        .unwrap();
    store
        .put(&keys.delivered("before"), Vec::new())
        .await
        .unwrap();
    let queue = Stage::Morphometry.queue();
    let dlq = dlq_name(queue);
    ns.declare(queue).await.unwrap();
    ns.declare(DONE_QUEUE).await.unwrap();
    let mut done = ns.consume(DONE_QUEUE, 4).await.unwrap();

    for (mark_delivered, job_id, runs, answered) in [
        (false, "before", 0, true),
        (true, "during", 1, true),
        (false, "never", 1, false),
    ] {
        let worker = Arc::new(InputsGone {
            mark_delivered,
            calls: AtomicU32::new(0),
        });
        let ctx = StageContext {
            store: store.clone(),
            broker: ns.clone(),
            service: service.clone(),
        };
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(run_stage(worker.clone(), ctx, fast(), shutdown.clone()));
        let mut job = Job::ingest(job_id.into(), format!("incoming/{job_id}/"), 1);
        job.study_uid = Some(uid.clone());
        let message = Message {
            body: job.to_bytes(),
            headers: Default::default(),
        };
        ns.publish(queue, message).await.unwrap();
        if answered {
            let d = next_within(&mut done, 10_000)
                .await
                .unwrap_or_else(|| panic!("{job_id}: not announced"));
            let a: StudyDone = serde_json::from_slice(&d.message.body).unwrap();
            d.acker.ack().await.unwrap();
            assert_eq!(
                (a.job_id.as_str(), a.status, a.result_key.as_str()),
                (job_id, StudyStatus::Abstained, keys.result().as_str())
            );
            assert!(wait_depth(&*ns, queue, 0, Duration::from_secs(5)).await);
            assert_eq!(ns.queue_depth(&dlq).await.unwrap(), 0, "{job_id}");
        } else {
            assert!(
                wait_depth(&*ns, &dlq, 1, Duration::from_secs(10)).await,
                "{job_id}: not dead-lettered"
            );
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(worker.calls.load(Ordering::SeqCst), runs, "{job_id}");
    }
    drop(done);
    env.cleanup(&[
        ns.real_name(queue),
        ns.real_name(&dlq),
        ns.real_name(DONE_QUEUE),
    ])
    .await;
}

macro_rules! on_both_brokers {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Memory).await } )*
        }
        mod amqp {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Amqp).await } )*
        }
    };
}

on_both_brokers!(
    success_forwards_timed_traced_job_then_acks,
    copies_of_a_delivered_job_are_answered_not_dead_lettered,
    failing_job_lands_in_dlq_with_reason,
    permanent_failure_is_dead_lettered_at_once,
    undecodable_job_is_dead_lettered,
    shutdown_finishes_job_in_hand,
    shutdown_past_grace_returns_job_to_queue,
);
