//! With tracing initialised, each stage opens its own span as a child of the incoming trace
//! context and hands that span to the next stage: one study, one trace, one span per stage.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use spinescreen_proto::{Job, ServiceInfo, Stage};
use spinescreen_runtime::broker::{Broker, MemoryBroker, Message};
use spinescreen_runtime::telemetry::{extract_context, init_tracing, trace_id};
use spinescreen_runtime::{
    run_stage, CancellationToken, LoopOptions, StageContext, StageError, StageWorker, StoreConfig,
    StudyStore,
};
use std::sync::Arc;
use std::time::Duration;

struct PassThrough;

#[async_trait]
impl StageWorker for PassThrough {
    fn stage(&self) -> Stage {
        Stage::Inference
    }
    async fn process(&self, job: Job, _ctx: &StageContext) -> Result<Vec<Job>, StageError> {
        Ok(vec![job])
    }
}

fn span_id(map: &std::collections::BTreeMap<String, String>) -> String {
    use opentelemetry::trace::TraceContextExt;
    extract_context(map)
        .span()
        .span_context()
        .span_id()
        .to_string()
}

#[tokio::test]
async fn stage_span_is_a_child_of_the_incoming_trace() {
    let _guard = init_tracing("spinescreen-test", &Default::default()).unwrap();
    let broker = Arc::new(MemoryBroker::new());
    let dir = tempfile::tempdir().unwrap();
    let ctx = StageContext {
        store: StudyStore::from_config(&StoreConfig::Local {
            root: dir.path().to_path_buf(),
        })
        .unwrap(),
        broker: broker.clone(),
        service: ServiceInfo {
            name: "t".into(),
            version: "0".into(),
        },
    };
    broker.declare(Stage::Inference.queue()).await.unwrap();
    broker.declare(Stage::Morphometry.queue()).await.unwrap();
    let mut job = Job::ingest("trace-1".into(), "incoming/t/".into(), 1);
    job.trace_context.insert(
        "traceparent".into(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    );
    broker
        .publish(
            Stage::Inference.queue(),
            Message {
                body: job.to_bytes(),
                headers: Default::default(),
            },
        )
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let loop_task = tokio::spawn(run_stage(
        Arc::new(PassThrough),
        ctx,
        LoopOptions::default(),
        shutdown.clone(),
    ));
    let mut next = broker.consume(Stage::Morphometry.queue(), 1).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), next.next())
        .await
        .expect("forwarded")
        .unwrap()
        .unwrap();
    let out = Job::from_bytes(&d.message.body).unwrap();
    assert_eq!(
        trace_id(&out.trace_context).as_deref(),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    let child = span_id(&out.trace_context);
    assert_ne!(child, "b7ad6b7169203331", "the stage opened its own span");
    assert_ne!(child, "0000000000000000");
    assert_eq!(
        span_id(&d.message.headers),
        child,
        "headers carry the same context"
    );
    shutdown.cancel();
    loop_task.await.unwrap().unwrap();
}
