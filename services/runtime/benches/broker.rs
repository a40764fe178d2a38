//! Cost of moving one job between stages: publish (confirmed) → consume → ack, on the in-memory
//! broker and on RabbitMQ (skipped if RabbitMQ does not answer). Run: `cargo bench -p
//! spinescreen-runtime --bench broker`.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use spinescreen_proto::Job;
use spinescreen_runtime::broker::{
    AmqpBroker, AmqpOptions, Broker, Consumer, MemoryBroker, Message,
};
use std::sync::Arc;

fn job_message() -> Message {
    let job = Job::ingest("bench".into(), "incoming/bench/".into(), 1);
    Message {
        body: job.to_bytes(),
        headers: job.trace_context.clone(),
    }
}

async fn hop(broker: &dyn Broker, consumer: &mut Box<dyn Consumer>, queue: &str) {
    broker.publish(queue, job_message()).await.expect("publish");
    let d = consumer.next().await.expect("delivery").expect("no error");
    d.acker.ack().await.expect("ack");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("job_hop");
    group.sample_size(30);

    let memory: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let mut mem_consumer = rt.block_on(async {
        memory.declare("bench").await.expect("declare");
        memory.consume("bench", 1).await.expect("consume")
    });
    group.bench_function("memory", |b| {
        b.iter(|| rt.block_on(hop(&*memory, &mut mem_consumer, "bench")))
    });

    let url = std::env::var("SPINESCREEN_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    match rt.block_on(AmqpBroker::connect(&url, AmqpOptions::default())) {
        Ok(amqp) => {
            let queue = format!("bench-{}", uuid::Uuid::new_v4().simple());
            let mut consumer = rt.block_on(async {
                amqp.declare(&queue).await.expect("declare");
                amqp.consume(&queue, 1).await.expect("consume")
            });
            group.bench_function("rabbitmq_quorum_confirmed", |b| {
                b.iter(|| rt.block_on(hop(&amqp, &mut consumer, &queue)))
            });
            drop(consumer);
            let _ = rt.block_on(amqp.delete_queue(&queue));
        }
        Err(e) => eprintln!("RabbitMQ not reachable ({e}); skipping the AMQP benchmark"),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
