//! Prometheus metrics every worker exports at `/metrics`. All live in the default registry so a
//! stage crate can observe them without plumbing. Names here are what the Grafana dashboard and
//! the alert rules in `deploy/` query; change them together.
#![allow(
    clippy::expect_used,
    reason = "static metric definitions: a bad name or a second registration is a programming error, \
              caught on first use by the tests"
)]

use prometheus::{
    register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge_vec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
};
use std::sync::LazyLock;

/// The service-level agreement: a study must be back at the PACS within 6.5 minutes.
pub const SLA_SECONDS: f64 = 390.0;

/// Buckets of the end-to-end histogram; 390 s is one of them so "share within SLA" is exact.
pub const STUDY_LATENCY_BUCKETS: [f64; 12] = [
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    240.0,
    SLA_SECONDS,
    600.0,
    1800.0,
];

/// `spinescreen_stage_duration_seconds{stage}`: wall time of one job in one stage.
pub static STAGE_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "spinescreen_stage_duration_seconds",
        "Wall time of one job in one stage",
        &["stage"],
        vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0]
    )
    .expect("metric registers once")
});

/// `spinescreen_study_latency_seconds`: first instance received → last instance acknowledged.
pub static STUDY_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "spinescreen_study_latency_seconds",
        "End-to-end latency per study, first instance received to last instance acknowledged by the destination",
        STUDY_LATENCY_BUCKETS.to_vec()
    )
    .expect("metric registers once")
});

/// `spinescreen_studies_over_sla_total`: studies whose end-to-end latency exceeded 390 s.
pub static STUDIES_OVER_SLA: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "spinescreen_studies_over_sla_total",
        "Studies delivered later than the 390 s SLA"
    )
    .expect("metric registers once")
});

/// `spinescreen_studies_total{status}`: finished studies by status (ok, technical_defect, abstained).
pub static STUDIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "spinescreen_studies_total",
        "Finished studies by final status",
        &["status"]
    )
    .expect("metric registers once")
});

/// `spinescreen_jobs_total{stage,outcome}`: jobs handled, outcome `ok`, `retry`, `dead_letter` or
/// `duplicate` (a copy of a job another copy already delivered, answered with its result).
pub static JOBS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "spinescreen_jobs_total",
        "Jobs handled by stage and outcome (ok, retry, dead_letter, duplicate)",
        &["stage", "outcome"]
    )
    .expect("metric registers once")
});

/// `spinescreen_reception_retries_total`: attempts to complete a spooled reception (upload its
/// bundles, publish its ingest job) that failed and will be tried again: the store or the broker
/// is down while the receiver keeps answering senders from its spool.
pub static RECEPTION_RETRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "spinescreen_reception_retries_total",
        "Failed attempts to complete a spooled reception (store or broker down), tried again"
    )
    .expect("metric registers once")
});

/// `spinescreen_jobs_in_flight{stage}`: jobs being processed now.
pub static JOBS_IN_FLIGHT: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "spinescreen_jobs_in_flight",
        "Jobs being processed now",
        &["stage"]
    )
    .expect("metric registers once")
});

/// `spinescreen_deliveries_total{destination,outcome}`: publisher deliveries (`ok`, `retry`, `failed`).
pub static DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "spinescreen_deliveries_total",
        "Publisher deliveries by destination kind and outcome",
        &["destination", "outcome"]
    )
    .expect("metric registers once")
});

/// `spinescreen_retention_deleted_total{kind}`: deletions made by the retention policy after
/// delivery (an object already gone counts too) (`received`: received instances; `intermediate`: volume voxels and detection).
pub static RETENTION_DELETED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "spinescreen_retention_deleted_total",
        "Objects deleted by the retention policy after delivery, by kind",
        &["kind"]
    )
    .expect("metric registers once")
});

/// `spinescreen_station_studies_today{station}`: studies received since 00:00 UTC per scanner
/// (station name), from the study ledger.
pub static STATION_STUDIES_TODAY: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "spinescreen_station_studies_today",
        "Studies received since 00:00 UTC per scanner station, from the study ledger",
        &["station"]
    )
    .expect("metric registers once")
});

/// `spinescreen_station_defects_today{station,reason,scanner_fault}`: studies received since
/// 00:00 UTC that were not analysed, per scanner and reason code; `scanner_fault="true"` for the
/// reasons that point at the scanner (ring artefacts, broken geometry, undecodable pixels…).
pub static STATION_DEFECTS_TODAY: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "spinescreen_station_defects_today",
        "Studies received since 00:00 UTC that were not analysed, per scanner station and reason",
        &["station", "reason", "scanner_fault"]
    )
    .expect("metric registers once")
});

/// Record a finished study: latency histogram, SLA breach counter, status counter.
pub fn observe_study(status: &str, end_to_end_seconds: f64) {
    STUDY_LATENCY.observe(end_to_end_seconds);
    if end_to_end_seconds > SLA_SECONDS {
        STUDIES_OVER_SLA.inc();
    }
    STUDIES.with_label_values(&[status]).inc();
}

/// Touch every metric, and create the known label series at zero, so every series the
/// dashboard and alerts query exists in `/metrics` before its first observation (a rate over a
/// series that does not exist yet is empty, and an alert on it can never fire).
pub fn register_all() {
    LazyLock::force(&STUDY_LATENCY);
    LazyLock::force(&STUDIES_OVER_SLA);
    LazyLock::force(&DELIVERIES);
    LazyLock::force(&RECEPTION_RETRIES);
    for stage in spinescreen_proto::Stage::ALL {
        let stage = stage.name();
        STAGE_DURATION.with_label_values(&[stage]);
        JOBS_IN_FLIGHT.with_label_values(&[stage]);
        for outcome in ["ok", "retry", "dead_letter"] {
            JOBS.with_label_values(&[stage, outcome]);
        }
    }
    for status in ["ok", "technical_defect", "abstained"] {
        STUDIES.with_label_values(&[status]);
    }
    for kind in ["received", "intermediate"] {
        RETENTION_DELETED.with_label_values(&[kind]);
    }
}

/// The default registry in Prometheus text format.
pub fn render() -> String {
    use prometheus::Encoder;
    register_all();
    crate::process_memory::refresh();
    let mut buf = Vec::new();
    if let Err(e) = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut buf) {
        tracing::warn!(error = %e, "metrics could not be encoded");
    }
    String::from_utf8_lossy(&buf).into_owned()
}
