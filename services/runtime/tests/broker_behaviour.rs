//! The broker contract, written once and run against both the real RabbitMQ (AMQP) and the
//! in-memory broker: they must be indistinguishable to a stage.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{next_within, wait_depth, Backend, Env, DELIVERY_LIMIT};
use spinescreen_runtime::broker::{dlq_name, BrokerError, Message};
use std::collections::BTreeMap;
use std::time::Duration;

fn message(body: &str) -> Message {
    let mut headers = BTreeMap::new();
    headers.insert(
        "traceparent".to_string(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
    );
    headers.insert("x-test".to_string(), "value".to_string());
    Message {
        body: body.as_bytes().to_vec(),
        headers,
    }
}

async fn publish_consume_ack_round_trip_with_confirms(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let q = env.queue("roundtrip");
    env.broker.declare(&q).await.unwrap();
    env.broker.declare(&q).await.expect("declare is idempotent");
    // publish returns only once the broker confirmed the message
    env.broker.publish(&q, message("hello")).await.unwrap();
    assert!(wait_depth(&*env.broker, &q, 1, Duration::from_secs(5)).await);

    let mut consumer = env.broker.consume(&q, 1).await.unwrap();
    let d = next_within(&mut consumer, 5000).await.expect("delivered");
    assert_eq!(d.message.body, b"hello");
    assert_eq!(d.attempt, 1);
    assert_eq!(
        d.message.headers.get("x-test").map(String::as_str),
        Some("value")
    );
    assert_eq!(
        d.message.headers.get("traceparent"),
        message("").headers.get("traceparent")
    );
    d.acker.ack().await.unwrap();
    assert!(
        next_within(&mut consumer, 300).await.is_none(),
        "an acked message is never redelivered"
    );
    drop(consumer);
    // Acked is gone for good, even after the consumer left.
    assert!(wait_depth(&*env.broker, &q, 0, Duration::from_secs(5)).await);
    env.cleanup(&[q]).await;
}

async fn publish_to_undeclared_queue_is_not_confirmed(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let q = env.queue("never-declared");
    let err = env.broker.publish(&q, message("lost?")).await.unwrap_err();
    assert!(matches!(err, BrokerError::NotConfirmed(_)), "{err}");
}

async fn consumer_death_redelivers_job(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let q = env.queue("death");
    env.broker.declare(&q).await.unwrap();
    env.broker.publish(&q, message("job-1")).await.unwrap();

    let mut dying = env.broker.consume(&q, 1).await.unwrap();
    let d = next_within(&mut dying, 5000).await.expect("first delivery");
    assert_eq!(d.attempt, 1);
    // The worker dies holding the job: neither ack nor requeue.
    drop(d);
    drop(dying);

    let mut survivor = env.broker.consume(&q, 1).await.unwrap();
    let again = next_within(&mut survivor, 5000)
        .await
        .expect("the job comes back to another consumer");
    assert_eq!(again.message.body, b"job-1");
    assert_eq!(again.attempt, 2);
    again.acker.ack().await.unwrap();
    assert!(next_within(&mut survivor, 300).await.is_none());
    drop(survivor);
    env.cleanup(&[q]).await;
}

async fn requeue_increments_attempt_then_broker_dead_letters(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let q = env.queue("requeue");
    env.broker.declare(&q).await.unwrap();
    env.broker.publish(&q, message("poison")).await.unwrap();
    let mut consumer = env.broker.consume(&q, 1).await.unwrap();
    let mut attempts = vec![];
    while let Some(d) = next_within(&mut consumer, 1500).await {
        attempts.push(d.attempt);
        d.acker.requeue().await.unwrap();
        assert!(attempts.len() <= 10, "never dead-lettered: {attempts:?}");
    }
    // Returned more than the delivery limit → the broker dead-letters it by itself.
    let expected: Vec<u32> = (1..=DELIVERY_LIMIT + 1).collect();
    assert_eq!(attempts, expected);
    let dlq = dlq_name(&q);
    assert!(wait_depth(&*env.broker, &dlq, 1, Duration::from_secs(5)).await);
    let mut dead = env.broker.consume(&dlq, 1).await.unwrap();
    let d = next_within(&mut dead, 5000).await.expect("in the DLQ");
    assert_eq!(d.message.body, b"poison");
    assert_eq!(
        d.message
            .headers
            .get("x-first-death-reason")
            .map(String::as_str),
        Some("delivery_limit")
    );
    d.acker.ack().await.unwrap();
    drop(dead);
    drop(consumer);
    env.cleanup(&[q]).await;
}

async fn prefetch_is_honoured(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let q = env.queue("prefetch");
    env.broker.declare(&q).await.unwrap();
    for i in 0..3 {
        env.broker
            .publish(&q, message(&format!("m{i}")))
            .await
            .unwrap();
    }
    let mut consumer = env.broker.consume(&q, 2).await.unwrap();
    let a = next_within(&mut consumer, 5000).await.expect("first");
    let b = next_within(&mut consumer, 5000).await.expect("second");
    assert_eq!(
        (a.message.body.as_slice(), b.message.body.as_slice()),
        (&b"m0"[..], &b"m1"[..])
    );
    assert!(
        next_within(&mut consumer, 500).await.is_none(),
        "a third delivery would exceed prefetch 2"
    );
    a.acker.ack().await.unwrap();
    let c = next_within(&mut consumer, 5000)
        .await
        .expect("credit freed by the ack");
    assert_eq!(c.message.body, b"m2");
    b.acker.ack().await.unwrap();
    c.acker.ack().await.unwrap();
    drop(consumer);
    env.cleanup(&[q]).await;
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
    publish_consume_ack_round_trip_with_confirms,
    publish_to_undeclared_queue_is_not_confirmed,
    consumer_death_redelivers_job,
    requeue_increments_attempt_then_broker_dead_letters,
    prefetch_is_honoured,
);
