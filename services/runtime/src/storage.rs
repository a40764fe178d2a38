//! Study objects in object storage (S3-compatible or a local directory) via `object_store`.

use bytes::Bytes;
use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where study objects live. TOML: `[store] kind = "local"` with `root`, or `kind = "s3"` with
/// the fields of [`StoreConfig::S3`].
/// Its `Debug` output never shows the secret key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoreConfig {
    /// A directory on local disk (created if missing); the embedded default.
    Local {
        /// Root directory, e.g. `./spinescreen-data`.
        root: std::path::PathBuf,
    },
    /// An S3-compatible service (AWS S3, MinIO, Ceph RGW, s3s-fs), addressed path-style.
    S3 {
        /// Endpoint URL, e.g. `http://127.0.0.1:8014`; empty for AWS itself.
        #[serde(default)]
        endpoint: String,
        /// Bucket name; the bucket must exist.
        bucket: String,
        /// Region (signing only for most non-AWS servers).
        #[serde(default = "default_region")]
        region: String,
        /// Access key id.
        #[serde(default)]
        access_key: String,
        /// Secret access key.
        #[serde(default)]
        secret_key: String,
        /// Allow `http://` endpoints (local test servers).
        #[serde(default)]
        allow_http: bool,
        /// Sign requests without hashing their bodies (`UNSIGNED-PAYLOAD`): neither the worker
        /// nor the server hashes every byte stored (SHA-256). For an endpoint reached over TLS or
        /// a trusted network; volumes and region frames carry their own zstd checksums either way.
        #[serde(default)]
        unsigned_payload: bool,
    },
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Local { root } => f.debug_struct("Local").field("root", root).finish(),
            StoreConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key: _,
                allow_http,
                unsigned_payload,
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("region", region)
                .field("access_key", access_key)
                .field("secret_key", &"<redacted>")
                .field("allow_http", allow_http)
                .field("unsigned_payload", unsigned_payload)
                .finish(),
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Local {
            root: "./spinescreen-data".into(),
        }
    }
}

/// Errors from storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key is not a valid object path.
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    /// No object under this key.
    #[error("object not found: {0}")]
    NotFound(String),
    /// The store failed (network, permissions…); usually transient.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// Object storage for study data. Keys come from [`spinescreen_proto::StudyKeys`] and
/// [`spinescreen_proto::uid::incoming_batch_prefix`], which validate UIDs.
#[derive(Clone)]
pub struct StudyStore {
    inner: Arc<dyn ObjectStore>,
}

impl StudyStore {
    /// Wrap any object store.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }

    /// Open the store `config` names: a local directory (created if missing) or an S3 bucket
    /// addressed path-style (`http://endpoint/bucket/key`).
    pub fn from_config(config: &StoreConfig) -> Result<Self, StorageError> {
        let inner: Arc<dyn ObjectStore> = match config {
            StoreConfig::Local { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    StorageError::Store(object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: format!("create {}: {e}", root.display()).into(),
                    })
                })?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(root)?)
            }
            StoreConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key,
                allow_http,
                unsigned_payload,
            } => {
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_virtual_hosted_style_request(false)
                    .with_allow_http(*allow_http)
                    .with_unsigned_payload(*unsigned_payload);
                if !endpoint.is_empty() {
                    b = b.with_endpoint(endpoint);
                }
                if !access_key.is_empty() {
                    b = b
                        .with_access_key_id(access_key)
                        .with_secret_access_key(secret_key);
                }
                Arc::new(b.build()?)
            }
        };
        Ok(Self::new(inner))
    }

    fn path(key: &str) -> Result<Path, StorageError> {
        if key.split('/').any(|seg| seg == ".." || seg == ".") || key.starts_with('/') {
            return Err(StorageError::InvalidKey(key.to_string()));
        }
        Path::parse(key).map_err(|_| StorageError::InvalidKey(key.to_string()))
    }

    /// Store bytes under `key`, replacing any previous object.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<(), StorageError> {
        let path = Self::path(key)?;
        self.inner
            .put(&path, PutPayload::from_bytes(bytes.into()))
            .await?;
        Ok(())
    }

    /// Store the concatenation of `parts` under `key` in one object, without copying them into
    /// one buffer first.
    pub async fn put_parts(&self, key: &str, parts: Vec<Bytes>) -> Result<(), StorageError> {
        let path = Self::path(key)?;
        self.inner
            .put(&path, parts.into_iter().collect::<PutPayload>())
            .await?;
        Ok(())
    }

    /// Read the object under `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = Self::path(key)?;
        match self.inner.get(&path).await {
            Ok(r) => Ok(r.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound(key.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes `range` of the object under `key` (one ranged read).
    pub async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, StorageError> {
        let path = Self::path(key)?;
        match self.inner.get_range(&path, range).await {
            Ok(b) => Ok(b),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound(key.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// The object under `key` as a stream of byte pieces, as they arrive.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, StorageError>>, StorageError>
    {
        use futures::StreamExt;
        let path = Self::path(key)?;
        match self.inner.get(&path).await {
            Ok(r) => Ok(r
                .into_stream()
                .map(|p| p.map_err(StorageError::from))
                .boxed()),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound(key.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Start writing the object under `key` piece by piece (multipart upload on S3); it appears
    /// only when [`object_store::WriteMultipart::finish`] succeeds.
    pub async fn put_multipart(
        &self,
        key: &str,
    ) -> Result<object_store::WriteMultipart, StorageError> {
        let path = Self::path(key)?;
        let upload = self.inner.put_multipart(&path).await?;
        Ok(object_store::WriteMultipart::new(upload))
    }

    /// Whether an object exists under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = Self::path(key)?;
        match self.inner.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys of all objects under `prefix`, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        use futures::TryStreamExt;
        let path = Self::path(prefix.trim_end_matches('/'))?;
        let mut keys: Vec<String> = self
            .inner
            .list(Some(&path))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }

    /// Delete the object under `key` (no error if absent).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = Self::path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
