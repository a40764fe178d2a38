//! Logs and traces. Logs go to stderr through `tracing-subscriber` (filter from `RUST_LOG`,
//! default `info`); spans are also OpenTelemetry spans (via `tracing-opentelemetry`) so that a
//! study keeps one trace id across all five stages.
//!
//! The trace context travels as W3C Trace Context (`traceparent`, `tracestate`; W3C
//! Recommendation "Trace Context", 2021) in the job's `trace_context` map and in the AMQP
//! message headers. The tracer provider has no exporter, so everything works offline; trace and
//! span ids appear in the propagated headers and can be joined with logs.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::collections::BTreeMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Keeps the tracer provider alive; dropping it flushes and shuts the provider down.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Install the global `tracing` subscriber (fmt to stderr + env filter + OpenTelemetry layer)
/// and the W3C Trace Context propagator. `service_name` becomes the OpenTelemetry
/// `service.name` resource. If a global subscriber is already installed (tests calling this
/// twice) the existing one is kept.
pub fn init_tracing(service_name: &str) -> TelemetryGuard {
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_string())
                .build(),
        )
        .build();
    let tracer = provider.tracer("spinescreen");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _already_set = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    TelemetryGuard { provider }
}

struct MapInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

struct MapExtractor<'a>(&'a BTreeMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Write `cx` as W3C `traceparent`/`tracestate` entries into `map` (nothing if `cx` carries
/// no valid span).
pub fn inject_into(cx: &Context, map: &mut BTreeMap<String, String>) {
    TraceContextPropagator::new().inject_context(cx, &mut MapInjector(map));
}

/// Write the current `tracing` span's trace context into `map` as `traceparent`/`tracestate`.
pub fn inject_context(map: &mut BTreeMap<String, String>) {
    inject_into(&tracing::Span::current().context(), map);
}

/// Read a W3C trace context from `map`; an empty context if there is none or it is malformed.
pub fn extract_context(map: &BTreeMap<String, String>) -> Context {
    TraceContextPropagator::new().extract(&MapExtractor(map))
}

/// Whether `cx` carries a valid (local or remote) span.
pub fn has_span(cx: &Context) -> bool {
    cx.span().span_context().is_valid()
}

/// The trace id of `map`'s `traceparent`, if any (for logs and tests).
pub fn trace_id(map: &BTreeMap<String, String>) -> Option<String> {
    let cx = extract_context(map);
    has_span(&cx).then(|| cx.span().span_context().trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_survives_extract_and_inject() {
        let mut map = BTreeMap::new();
        map.insert(
            "traceparent".to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
        );
        let cx = extract_context(&map);
        assert!(has_span(&cx));
        let mut out = BTreeMap::new();
        inject_into(&cx, &mut out);
        assert_eq!(out.get("traceparent"), map.get("traceparent"));
        assert_eq!(
            trace_id(&out).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn malformed_traceparent_gives_empty_context() {
        let mut map = BTreeMap::new();
        map.insert("traceparent".to_string(), "garbage".to_string());
        assert!(!has_span(&extract_context(&map)));
        assert_eq!(trace_id(&map), None);
    }
}
