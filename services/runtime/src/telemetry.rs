//! Logs and traces. Logs go to stderr through `tracing-subscriber` (filter from `RUST_LOG`,
//! default `info`), as text or, on request, one JSON object per line; spans are also
//! OpenTelemetry spans (via `tracing-opentelemetry`) so that a study keeps one trace id across
//! all five stages.
//!
//! The trace context travels as W3C Trace Context (`traceparent`, `tracestate`; W3C
//! Recommendation "Trace Context", 2021) in the job's `trace_context` map and in the AMQP
//! message headers. Spans are exported over OTLP/HTTP (protobuf) only when an endpoint is
//! configured ([`TelemetryConfig`]); by default nothing leaves the process, so embedded mode
//! works offline and trace ids can still be joined with logs.

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The standard OpenTelemetry variable naming the OTLP base endpoint (`http://host:4318`).
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Variable choosing the log format (`text` or `json`).
pub const LOG_FORMAT_ENV: &str = "SPINESCREEN_LOG_FORMAT";
/// Path of the OTLP/HTTP trace resource below the base endpoint (OTLP specification, "OTLP/HTTP").
const OTLP_TRACES_PATH: &str = "/v1/traces";

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs and trace export (`[telemetry]` in the configuration file).
///
/// ```toml
/// [telemetry]
/// otlp_endpoint = "http://otel-collector:4318"   # off when absent
/// log_format = "json"                            # or "text" (default)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base endpoint; spans go to `{otlp_endpoint}/v1/traces`. `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// Log line format.
    pub log_format: LogFormat,
}

impl TelemetryConfig {
    /// Apply the environment: `OTEL_EXPORTER_OTLP_ENDPOINT` when the file names no endpoint,
    /// `SPINESCREEN_LOG_FORMAT` (`text`/`json`) over the file's `log_format`. `var` looks a
    /// variable up (`std::env::var(..).ok()` in production).
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        if self.otlp_endpoint.is_none() {
            self.otlp_endpoint = var(OTLP_ENDPOINT_ENV).filter(|v| !v.trim().is_empty());
        }
        if let Some(format) = var(LOG_FORMAT_ENV) {
            self.log_format = match format.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => anyhow::bail!("{LOG_FORMAT_ENV}={other:?}: expected text or json"),
            };
        }
        Ok(self)
    }

    /// The URL spans are posted to, if export is on.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_deref()?.trim().trim_end_matches('/');
        (!base.is_empty()).then(|| format!("{base}{OTLP_TRACES_PATH}"))
    }
}

/// Keeps the tracer provider alive; dropping it flushes and shuts the provider down.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// The tracer provider for `service_name`: with a batch OTLP/HTTP exporter when `config` names
/// an endpoint, with none otherwise. Fails on an endpoint that is not a valid URL.
pub fn tracer_provider(
    service_name: &str,
    config: &TelemetryConfig,
) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Some(url) = config.traces_url() else {
        return Ok(builder.build());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .build()
        .with_context(|| format!("building the OTLP span exporter for {url}"))?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// Install the global `tracing` subscriber (stderr logs in `config.log_format` + env filter +
/// OpenTelemetry layer), the W3C Trace Context propagator and the tracer provider of
/// [`tracer_provider`]. `service_name` becomes the OpenTelemetry `service.name` resource. If a
/// global subscriber is already installed (tests calling this twice) the existing one is kept.
pub fn init_tracing(
    service_name: &str,
    config: &TelemetryConfig,
) -> anyhow::Result<TelemetryGuard> {
    let provider = tracer_provider(service_name, config)?;
    let tracer = provider.tracer("spinescreen");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = config.log_format == LogFormat::Json;
    let _already_set = tracing_subscriber::registry()
        .with(filter)
        .with(json.then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_writer(std::io::stderr)
        }))
        .with((!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr)))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    if let Some(url) = config.traces_url() {
        tracing::info!(%url, "exporting traces over OTLP/HTTP");
    }
    Ok(TelemetryGuard { provider })
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
    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn telemetry_is_off_and_text_by_default() {
        let cfg = TelemetryConfig::default().with_env(env(&[])).unwrap();
        assert_eq!(cfg.traces_url(), None);
        assert_eq!(cfg.log_format, LogFormat::Text);
        assert!(tracer_provider("t", &cfg).is_ok());
    }

    #[test]
    fn telemetry_section_parses_and_env_fills_in() {
        let cfg: TelemetryConfig =
            toml::from_str("otlp_endpoint = \"http://collector:4318/\"\nlog_format = \"json\"")
                .unwrap();
        assert_eq!(cfg.log_format, LogFormat::Json);
        assert_eq!(
            cfg.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        // The file wins over OTEL_EXPORTER_OTLP_ENDPOINT; SPINESCREEN_LOG_FORMAT wins over the file.
        let cfg = cfg
            .with_env(env(&[
                (OTLP_ENDPOINT_ENV, "http://other:4318"),
                (LOG_FORMAT_ENV, "text"),
            ]))
            .unwrap();
        assert_eq!(
            cfg.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(cfg.log_format, LogFormat::Text);
        let from_env = TelemetryConfig::default()
            .with_env(env(&[
                (OTLP_ENDPOINT_ENV, "http://env:4318"),
                (LOG_FORMAT_ENV, "JSON"),
            ]))
            .unwrap();
        assert_eq!(
            from_env.traces_url().as_deref(),
            Some("http://env:4318/v1/traces")
        );
        assert_eq!(from_env.log_format, LogFormat::Json);
        assert!(TelemetryConfig::default()
            .with_env(env(&[(LOG_FORMAT_ENV, "xml")]))
            .is_err());
        assert!(toml::from_str::<TelemetryConfig>("log_format = \"xml\"").is_err());
    }

    #[test]
    fn invalid_endpoint_is_an_error() {
        let cfg = TelemetryConfig {
            otlp_endpoint: Some("not a url".into()),
            ..Default::default()
        };
        assert!(tracer_provider("t", &cfg).is_err());
    }

    /// A one-request OTLP/HTTP collector: answers 200 and hands back the request head and body.
    fn tiny_collector() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            tx.send((head, body)).unwrap();
        });
        (format!("http://{addr}"), rx)
    }

    #[test]
    fn spans_reach_an_otlp_http_collector() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let (endpoint, received) = tiny_collector();
        let cfg = TelemetryConfig {
            otlp_endpoint: Some(endpoint),
            ..Default::default()
        };
        let provider = tracer_provider("otlp-test-service", &cfg).unwrap();
        let mut span = provider.tracer("test").start("study");
        span.end();
        provider.force_flush().unwrap();
        let (head, body) = received
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert!(head.starts_with("POST /v1/traces "), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("application/x-protobuf"),
            "{head}"
        );
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("otlp-test-service") && text.contains("study"));
        provider.shutdown().unwrap();
    }
}
