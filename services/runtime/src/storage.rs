//! Study objects in object storage (S3-compatible or a local directory) via `object_store`.

use bytes::Bytes;
use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

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

    /// Read the object under `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = Self::path(key)?;
        match self.inner.get(&path).await {
            Ok(r) => Ok(r.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound(key.into())),
            Err(e) => Err(e.into()),
        }
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
