//! Delivery of one study to one destination, with bounded retries and exponential backoff.
//!
//! A destination either acknowledges everything (every C-STORE status 0x0000, STOW-RS 200 with
//! no failed instance, webhook 2xx, files written) or the delivery fails with the last attempt's
//! reason. The worker turns that failure into a transient stage error: the runtime requeues the
//! job up to its delivery limit and then dead-letters it with the reason. Redelivery is safe
//! because the SR's SOP Instance UID is deterministic and SC UIDs come from the renderer.

pub mod cstore;
pub mod directory;
pub mod stow;
pub mod webhook;

use crate::config::{Destination, PublisherConfig};
use crate::error::PublishError;
use crate::instance::Instance;
use bytes::Bytes;
use spinescreen_runtime::metrics;
use std::time::Duration;

/// Everything delivered for one study.
#[derive(Debug, Clone)]
pub struct Package {
    /// Study Instance UID (validated; used as a directory name).
    pub study_uid: String,
    /// The SR.
    pub sr: Instance,
    /// The secondary-capture series, in order.
    pub sc: Vec<Instance>,
    /// `result.json` as it should be delivered.
    pub result_json: Vec<u8>,
    /// Body for FHIR webhooks (a DiagnosticReport), when any destination wants one.
    pub fhir_json: Option<Vec<u8>>,
    /// `preview.png`, if the renderer made one.
    pub preview_png: Option<Bytes>,
}

impl Package {
    /// Instances in sending order: the images first, then the SR that references them.
    pub fn instances(&self) -> Vec<&Instance> {
        self.sc.iter().chain(std::iter::once(&self.sr)).collect()
    }
}

/// A human-readable name of a destination, without credentials.
pub fn describe(dest: &Destination) -> String {
    match dest {
        Destination::Cstore {
            host,
            port,
            called_ae,
            ..
        } => format!("cstore {called_ae}@{host}:{port}"),
        Destination::Stow { url, .. } => format!("stow {url}"),
        Destination::Webhook { url, fhir } => {
            format!("webhook {url}{}", if *fhir { " (FHIR)" } else { "" })
        }
        Destination::Directory { path } => format!("directory {}", path.display()),
    }
}

/// One attempt.
async fn attempt(
    dest: &Destination,
    pkg: &Package,
    cfg: &PublisherConfig,
    http: &reqwest::Client,
) -> Result<(), String> {
    match dest {
        Destination::Cstore {
            host,
            port,
            called_ae,
            calling_ae,
        } => {
            let target = cstore::CstoreTarget {
                host,
                port: *port,
                called_ae,
                calling_ae,
                timeout: Duration::from_secs(cfg.timeout_s.max(1)),
            };
            cstore::store_all(&target, &pkg.instances()).await
        }
        Destination::Stow { url, bearer_token } => {
            stow::store_all(http, url, bearer_token.as_deref(), &pkg.instances()).await
        }
        Destination::Webhook { url, fhir } => {
            if *fhir {
                let body = pkg
                    .fhir_json
                    .clone()
                    .ok_or_else(|| "no FHIR DiagnosticReport was prepared".to_string())?;
                webhook::post_json(http, url, "application/fhir+json", body).await
            } else {
                webhook::post_json(http, url, "application/json", pkg.result_json.clone()).await
            }
        }
        Destination::Directory { path } => directory::write(path, pkg).await.map(|_| ()),
    }
}

/// An HTTP client with the configured timeout.
pub fn http_client(cfg: &PublisherConfig) -> Result<reqwest::Client, PublishError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_s.max(1)))
        .build()
        .map_err(|e| PublishError::Delivery {
            destination: "http client".into(),
            detail: e.to_string(),
        })
}

/// Deliver `pkg` to `dest`, retrying per `cfg.retry`; counts `spinescreen_deliveries_total`.
pub async fn deliver(
    dest: &Destination,
    pkg: &Package,
    cfg: &PublisherConfig,
    http: &reqwest::Client,
) -> Result<(), PublishError> {
    let attempts = cfg.retry.attempts.max(1);
    let mut last = String::new();
    for n in 1..=attempts {
        match attempt(dest, pkg, cfg, http).await {
            Ok(()) => {
                metrics::DELIVERIES
                    .with_label_values(&[dest.kind(), "ok"])
                    .inc();
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(
                    destination = %describe(dest),
                    attempt = n,
                    of = attempts,
                    error = %e,
                    "delivery attempt failed"
                );
                last = e;
                if n < attempts {
                    metrics::DELIVERIES
                        .with_label_values(&[dest.kind(), "retry"])
                        .inc();
                    tokio::time::sleep(cfg.retry.backoff(n)).await;
                }
            }
        }
    }
    metrics::DELIVERIES
        .with_label_values(&[dest.kind(), "failed"])
        .inc();
    Err(PublishError::Delivery {
        destination: describe(dest),
        detail: format!("{attempts} attempt(s), last: {last}"),
    })
}
