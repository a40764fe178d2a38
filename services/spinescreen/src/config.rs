//! The whole configuration of one process: the runtime keys at the top level of the TOML file,
//! then one table per stage (`[ingest]`, `[inference]`, `[rendering]`, `[publisher]`, `[ledger]`), with
//! `SPINESCREEN__SECTION__KEY` environment overrides applied by the runtime.

use anyhow::Context;
use serde::de::DeserializeOwned;
use spinescreen_inference::InferenceConfig;
use spinescreen_ingest::IngestConfig;
use spinescreen_ledger::LedgerConfig;
use spinescreen_publisher::PublisherConfig;
use spinescreen_rendering::RenderingConfig;
use spinescreen_runtime::RuntimeConfig;
use std::path::Path;

/// Configuration of every part a process may run.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// Broker, store, metrics, identity.
    pub runtime: RuntimeConfig,
    /// `[ingest]`.
    pub ingest: IngestConfig,
    /// `[inference]`.
    pub inference: InferenceConfig,
    /// `[rendering]`.
    pub rendering: RenderingConfig,
    /// `[publisher]`.
    pub publisher: PublisherConfig,
    /// `[ledger]` (the study ledger; only `worker ledger`, `studies` and `monitor` use it).
    pub ledger: LedgerConfig,
}

fn section<T: DeserializeOwned + Default>(value: &toml::Value, name: &str) -> anyhow::Result<T> {
    match value.get(name) {
        Some(v) => v
            .clone()
            .try_into()
            .with_context(|| format!("invalid [{name}] configuration")),
        None => Ok(T::default()),
    }
}

impl AppConfig {
    /// Load from an optional TOML file plus environment overrides; every default works on a laptop.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let value = spinescreen_runtime::load_config_value(path)?;
        Self::from_value(&value)
    }

    /// Build from an already merged configuration value.
    pub fn from_value(value: &toml::Value) -> anyhow::Result<Self> {
        Ok(Self {
            runtime: RuntimeConfig::from_value(value)?,
            ingest: section(value, "ingest")?,
            inference: section(value, "inference")?,
            rendering: section(value, "rendering")?,
            publisher: section(value, "publisher")?,
            ledger: section(value, "ledger")?,
        })
    }
}
