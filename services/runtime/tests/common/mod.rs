//! Shared test fixtures: the real RabbitMQ and s3s-fs the suite runs against, and the in-memory
//! broker that must behave the same. A missing server FAILS the test (with how to start it),
//! unless `SPINESCREEN_SKIP_SERVICES=1`.

#![allow(dead_code)]

use spinescreen_runtime::broker::{
    AmqpBroker, AmqpOptions, Broker, Consumer, Delivery, MemoryBroker,
};
use spinescreen_runtime::StoreConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delivery limit every test broker is declared with.
pub const DELIVERY_LIMIT: u32 = 3;

/// Whether tests needing RabbitMQ / S3 should skip instead of fail.
pub fn skip_services() -> bool {
    std::env::var("SPINESCREEN_SKIP_SERVICES").is_ok_and(|v| v == "1")
}

/// `SPINESCREEN_TEST_AMQP_URL`, default the local RabbitMQ.
pub fn amqp_url() -> String {
    std::env::var("SPINESCREEN_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The S3 store of the test suite: `SPINESCREEN_TEST_S3_ENDPOINT` (default s3s-fs on
/// 127.0.0.1:8014), access key `K`, secret `S`, bucket `spinescreen-test`.
pub fn s3_config() -> StoreConfig {
    StoreConfig::S3 {
        endpoint: std::env::var("SPINESCREEN_TEST_S3_ENDPOINT")
            .unwrap_or_else(|_| "http://127.0.0.1:8014".into()),
        bucket: std::env::var("SPINESCREEN_TEST_S3_BUCKET")
            .unwrap_or_else(|_| "spinescreen-test".into()),
        region: "us-east-1".into(),
        access_key: std::env::var("SPINESCREEN_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "K".into()),
        secret_key: std::env::var("SPINESCREEN_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "S".into()),
        allow_http: true,
        unsigned_payload: false,
    }
}

/// Connect to the test RabbitMQ, or `None` when services are skipped. Panics (fails the test)
/// if RabbitMQ does not answer.
pub async fn amqp() -> Option<Arc<AmqpBroker>> {
    if skip_services() {
        eprintln!("SPINESCREEN_SKIP_SERVICES=1: skipping a RabbitMQ test");
        return None;
    }
    let options = AmqpOptions {
        delivery_limit: DELIVERY_LIMIT,
        connection_name: "spinescreen-runtime-tests".into(),
        ..AmqpOptions::default()
    };
    match AmqpBroker::connect(&amqp_url(), options).await {
        Ok(b) => Some(Arc::new(b)),
        Err(e) => panic!(
            "RabbitMQ is not reachable at {}: {e}. Run scripts/test.sh (it starts RabbitMQ) or set \
             SPINESCREEN_SKIP_SERVICES=1 to skip service tests",
            amqp_url()
        ),
    }
}

/// Which broker a behaviour test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Memory,
    Amqp,
}

/// A broker for one test, with the queues to delete afterwards.
pub struct Env {
    pub broker: Arc<dyn Broker>,
    amqp: Option<Arc<AmqpBroker>>,
    /// Unique per test so tests run in parallel and repeatedly.
    pub id: String,
}

impl Env {
    /// A fresh broker environment, or `None` if service tests are skipped.
    pub async fn new(backend: Backend) -> Option<Env> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Memory => Some(Env {
                broker: Arc::new(MemoryBroker::with_delivery_limit(DELIVERY_LIMIT)),
                amqp: None,
                id,
            }),
            Backend::Amqp => {
                let b = amqp().await?;
                Some(Env {
                    broker: b.clone(),
                    amqp: Some(b),
                    id,
                })
            }
        }
    }

    /// A queue name unique to this test.
    pub fn queue(&self, name: &str) -> String {
        format!("test-{}.{name}", self.id)
    }

    /// Delete queues (and their DLQs) this test declared on RabbitMQ.
    pub async fn cleanup(&self, queues: &[String]) {
        if let Some(b) = &self.amqp {
            for q in queues {
                let _ = b.delete_queue(q).await;
            }
        }
    }
}

/// The next delivery, or `None` if none arrives within `ms`.
pub async fn next_within(consumer: &mut Box<dyn Consumer>, ms: u64) -> Option<Delivery> {
    match tokio::time::timeout(Duration::from_millis(ms), consumer.next()).await {
        Ok(Some(Ok(d))) => Some(d),
        Ok(Some(Err(e))) => panic!("consumer error: {e}"),
        Ok(None) | Err(_) => None,
    }
}

/// Wait until `queue` holds `n` ready messages; false on timeout.
pub async fn wait_depth(broker: &dyn Broker, queue: &str, n: u64, timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        if broker.queue_depth(queue).await.ok() == Some(n) {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
