//! Configuration: one TOML file plus environment overrides, every default fit for a laptop.
//!
//! The whole file is read into one [`toml::Value`] by [`load_config_value`]; the binary
//! deserializes its full configuration (this crate's [`RuntimeConfig`] at the top level plus one
//! section per stage) from it. An environment variable `SPINESCREEN__A__B=v` sets key `b` of
//! table `a` (double underscore = nesting, names lower-cased); `v` is read as a TOML scalar
//! (`3`, `true`, `1.5`, `"quoted"`) when it parses as one, else taken as a string.
//!
//! ```toml
//! service_name = "spinescreen"
//! metrics_addr = "0.0.0.0:9464"
//! [broker]
//! kind = "amqp"
//! url = "amqp://guest:guest@rabbitmq:5672/%2f"
//! prefetch = 1
//! delivery_limit = 3
//! [store]
//! kind = "s3"
//! endpoint = "http://minio:9000"
//! bucket = "spinescreen"
//! access_key = "…"
//! secret_key = "…"
//! allow_http = true
//! [telemetry]
//! otlp_endpoint = "http://otel-collector:4318"   # optional; also OTEL_EXPORTER_OTLP_ENDPOINT
//! log_format = "json"                            # or "text"; also SPINESCREEN_LOG_FORMAT
//! ```

use crate::broker::{AmqpBroker, AmqpOptions, Broker, MemoryBroker};
use crate::storage::StoreConfig;
use crate::telemetry::TelemetryConfig;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SPINESCREEN__";

/// What every worker needs: identity, broker, store, metrics endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeConfig {
    /// Service name in traces, logs and derived DICOM objects.
    pub service_name: String,
    /// The job transport.
    pub broker: BrokerConfig,
    /// The study object store.
    pub store: StoreConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: SocketAddr,
    /// Seconds a worker may take to finish the job in hand after SIGTERM before it gives up
    /// (the job is then redelivered); keep below Kubernetes' `terminationGracePeriodSeconds`.
    pub shutdown_grace_secs: u64,
    /// Log format and trace export (`[telemetry]`); off by default.
    pub telemetry: TelemetryConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            service_name: "spinescreen".into(),
            broker: BrokerConfig::default(),
            store: StoreConfig::default(),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            shutdown_grace_secs: 120,
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl RuntimeConfig {
    /// Read the runtime part of a configuration value (other top-level keys are ignored).
    pub fn from_value(value: &toml::Value) -> anyhow::Result<Self> {
        value
            .clone()
            .try_into()
            .context("invalid runtime configuration")
    }
}

/// The job transport. TOML: `[broker] kind = "memory"` or `kind = "amqp"`. Its `Debug` output
/// hides the password in the URL.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BrokerConfig {
    /// In-process queues (embedded mode); all stages must run in this process.
    Memory {
        /// Unsettled deliveries per consumer.
        #[serde(default = "default_prefetch")]
        prefetch: u16,
        /// Attempts before a failing job is dead-lettered.
        #[serde(default = "default_delivery_limit")]
        delivery_limit: u32,
    },
    /// RabbitMQ.
    Amqp {
        /// AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
        #[serde(default = "default_amqp_url")]
        url: String,
        /// Unsettled deliveries per consumer (`basic.qos`).
        #[serde(default = "default_prefetch")]
        prefetch: u16,
        /// Attempts before a failing job is dead-lettered (also the queues' `x-delivery-limit`).
        #[serde(default = "default_delivery_limit")]
        delivery_limit: u32,
    },
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokerConfig::Memory {
                prefetch,
                delivery_limit,
            } => f
                .debug_struct("Memory")
                .field("prefetch", prefetch)
                .field("delivery_limit", delivery_limit)
                .finish(),
            BrokerConfig::Amqp {
                url,
                prefetch,
                delivery_limit,
            } => f
                .debug_struct("Amqp")
                .field("url", &redact_url(url))
                .field("prefetch", prefetch)
                .field("delivery_limit", delivery_limit)
                .finish(),
        }
    }
}

fn default_prefetch() -> u16 {
    1
}
fn default_delivery_limit() -> u32 {
    3
}
fn default_amqp_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig::Memory {
            prefetch: default_prefetch(),
            delivery_limit: default_delivery_limit(),
        }
    }
}

impl BrokerConfig {
    /// Unsettled deliveries per consumer.
    pub fn prefetch(&self) -> u16 {
        match self {
            BrokerConfig::Memory { prefetch, .. } | BrokerConfig::Amqp { prefetch, .. } => {
                *prefetch
            }
        }
    }

    /// Attempts before a failing job is dead-lettered.
    pub fn delivery_limit(&self) -> u32 {
        match self {
            BrokerConfig::Memory { delivery_limit, .. }
            | BrokerConfig::Amqp { delivery_limit, .. } => *delivery_limit,
        }
    }
}

/// Connect the broker `config` names. A memory broker is new and empty: call this once per
/// process and share the result between stages.
pub async fn connect_broker(config: &BrokerConfig) -> anyhow::Result<Arc<dyn Broker>> {
    Ok(match config {
        BrokerConfig::Memory { delivery_limit, .. } => {
            Arc::new(MemoryBroker::with_delivery_limit(*delivery_limit))
        }
        BrokerConfig::Amqp {
            url,
            delivery_limit,
            ..
        } => {
            let options = AmqpOptions {
                delivery_limit: *delivery_limit,
                ..AmqpOptions::default()
            };
            Arc::new(
                AmqpBroker::connect(url, options)
                    .await
                    .with_context(|| format!("connect to RabbitMQ at {}", redact_url(url)))?,
            )
        }
    })
}

/// `url` with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Read the TOML file at `path` (if given) and apply the `SPINESCREEN__…` environment
/// overrides of this process.
pub fn load_config_value(path: Option<&Path>) -> anyhow::Result<toml::Value> {
    load_config_value_with(path, std::env::vars())
}

/// [`load_config_value`] with explicit environment variables (for tests and embedding).
pub fn load_config_value_with(
    path: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<toml::Value> {
    let mut root = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("read config file {}", p.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("parse config file {}", p.display()))?
        }
        None => toml::Table::new(),
    };
    let mut overrides: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    for (key, value) in overrides {
        apply_override(&mut root, &key[ENV_PREFIX.len()..], &value)
            .with_context(|| format!("environment override {key}"))?;
    }
    Ok(toml::Value::Table(root))
}

fn apply_override(root: &mut toml::Table, path: &str, value: &str) -> anyhow::Result<()> {
    let segments: Vec<String> = path
        .split("__")
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let Some((last, parents)) = segments.split_last() else {
        anyhow::bail!("empty key");
    };
    let mut table = root;
    for seg in parents {
        let entry = table
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            other => anyhow::bail!("{seg} is a {}, not a table", other.type_str()),
        };
    }
    let value = if is_secret_or_address(last) {
        toml::Value::String(value.to_string())
    } else {
        parse_scalar(value)
    };
    table.insert(last.clone(), value);
    Ok(())
}

/// Keys whose values are always text, even when they look like numbers (a numeric S3 key or
/// token must not become an integer).
fn is_secret_or_address(key: &str) -> bool {
    [
        "url", "endpoint", "key", "token", "password", "secret", "bucket",
    ]
    .iter()
    .any(|suffix| key.ends_with(suffix))
}

/// A TOML scalar if `text` is one (`3`, `true`, `"x"`), else the text as a string.
fn parse_scalar(text: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Probe {
        v: toml::Value,
    }
    match toml::from_str::<Probe>(&format!("v = {text}")) {
        Ok(p) if !matches!(p.v, toml::Value::Table(_) | toml::Value::Array(_)) => p.v,
        _ => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn numeric_secrets_stay_strings() {
        let v = load_config_value_with(
            None,
            vars(&[
                ("SPINESCREEN__STORE__KIND", "s3"),
                ("SPINESCREEN__STORE__BUCKET", "2024"),
                ("SPINESCREEN__STORE__ACCESS_KEY", "12345678"),
                ("SPINESCREEN__STORE__SECRET_KEY", "1.5"),
            ]),
        )
        .unwrap();
        let c = RuntimeConfig::from_value(&v).unwrap();
        match c.store {
            StoreConfig::S3 {
                access_key,
                secret_key,
                bucket,
                ..
            } => {
                assert_eq!(access_key, "12345678");
                assert_eq!(secret_key, "1.5");
                assert_eq!(bucket, "2024");
            }
            other => panic!("expected S3, got {other:?}"),
        }
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let v = load_config_value_with(None, vars(&[])).unwrap();
        let c = RuntimeConfig::from_value(&v).unwrap();
        assert_eq!(c, RuntimeConfig::default());
        assert_eq!(c.metrics_addr.to_string(), "127.0.0.1:9464");
        assert!(matches!(c.broker, BrokerConfig::Memory { .. }));
        assert_eq!(c.store, StoreConfig::default());
    }

    #[test]
    fn env_overrides_file_and_nests_on_double_underscore() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "service_name = \"from-file\"\n[broker]\nkind = \"amqp\"\nprefetch = 4\n[ingest]\nmin_slices = 40"
        )
        .unwrap();
        let v = load_config_value_with(
            Some(f.path()),
            vars(&[
                ("SPINESCREEN__BROKER__PREFETCH", "2"),
                ("SPINESCREEN__STORE__KIND", "s3"),
                ("SPINESCREEN__STORE__BUCKET", "b1"),
                ("SPINESCREEN__STORE__ALLOW_HTTP", "true"),
                ("SPINESCREEN__STORE__ENDPOINT", "http://127.0.0.1:8014"),
                ("SPINESCREEN__INGEST__MIN_SLICES", "50"),
                ("OTHER__X", "ignored"),
            ]),
        )
        .unwrap();
        let c = RuntimeConfig::from_value(&v).unwrap();
        assert_eq!(c.service_name, "from-file");
        assert_eq!(c.broker.prefetch(), 2);
        assert_eq!(c.broker.delivery_limit(), 3);
        assert!(
            matches!(&c.broker, BrokerConfig::Amqp { url, .. } if url.contains("127.0.0.1:5672"))
        );
        assert_eq!(
            c.store,
            StoreConfig::S3 {
                endpoint: "http://127.0.0.1:8014".into(),
                bucket: "b1".into(),
                region: "us-east-1".into(),
                access_key: String::new(),
                secret_key: String::new(),
                allow_http: true,
                unsigned_payload: false,
            }
        );
        assert_eq!(v["ingest"]["min_slices"].as_integer(), Some(50));
    }

    #[test]
    fn quoted_env_value_stays_a_string() {
        let v =
            load_config_value_with(None, vars(&[("SPINESCREEN__SERVICE_NAME", "\"42\"")])).unwrap();
        assert_eq!(v["service_name"].as_str(), Some("42"));
    }

    #[test]
    fn missing_file_and_bad_values_are_errors() {
        assert!(load_config_value_with(Some(Path::new("/nonexistent/x.toml")), vars(&[])).is_err());
        let v =
            load_config_value_with(None, vars(&[("SPINESCREEN__METRICS_ADDR", "nope")])).unwrap();
        assert!(RuntimeConfig::from_value(&v).is_err());
        let clash = vars(&[("SPINESCREEN__A", "1"), ("SPINESCREEN__A__B", "2")]);
        assert!(load_config_value_with(None, clash).is_err());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = RuntimeConfig {
            broker: BrokerConfig::Amqp {
                url: "amqp://u:hunter2@h/%2f".into(),
                prefetch: 1,
                delivery_limit: 3,
            },
            store: StoreConfig::S3 {
                endpoint: String::new(),
                bucket: "b".into(),
                region: "r".into(),
                access_key: "AK".into(),
                secret_key: "topsecret".into(),
                allow_http: false,
                unsigned_payload: false,
            },
            ..RuntimeConfig::default()
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("topsecret"),
            "{text}"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact_url("amqp://host"), "amqp://host");
    }
}
