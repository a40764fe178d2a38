//! A directory tree as one reception (what `spinescreen analyze DIR` uses).

use super::{instance_ids, Keeping, Reception};
use crate::build::collect_files;
use crate::config::IngestLimits;
use crate::error::IngestError;
use spinescreen_proto::Job;
use spinescreen_runtime::StudyStore;
use std::path::Path;

/// Store every regular file under `dir` (recursively; symbolic links are not followed) as one
/// reception and return its ingest job, which the caller publishes or processes.
///
/// The files are stored as bundles (`incoming/<batch>/bundle-<seq>.bundle`, each stored once
/// full, so at most one is held in memory). DICOM files are named by SOP Instance UID; anything
/// else is stored too, under a hashed name, so that ingest reports `NO_DICOM` for a directory of non-DICOM files instead of the
/// reception silently vanishing. An empty directory is an error (there is nothing to report
/// on).
///
/// Files are stored even when [`crate::guard`] refuses them (under [`IngestLimits::default`]):
/// the ingest worker then reports the defect.
pub async fn stage_directory(store: &StudyStore, dir: &Path) -> Result<Job, IngestError> {
    stage_directory_with_limits(store, dir, &IngestLimits::default()).await
}

/// [`stage_directory`] with the configured limits for reading each file's UIDs.
pub async fn stage_directory_with_limits(
    store: &StudyStore,
    dir: &Path,
    limits: &IngestLimits,
) -> Result<Job, IngestError> {
    let dir_owned = dir.to_path_buf();
    let paths = tokio::task::spawn_blocking(move || {
        let mut paths = vec![];
        collect_files(&dir_owned, &mut paths).map(|_| paths)
    })
    .await
    .map_err(|e| IngestError::Receive(e.to_string()))??;
    if paths.is_empty() {
        return Err(IngestError::Receive(format!(
            "{} holds no files",
            dir.display()
        )));
    }
    let mut reception = Reception::new(Keeping::Bundles);
    for path in paths {
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| IngestError::Io {
                path: path.clone(),
                source,
            })?;
        let ids = instance_ids(&bytes, limits);
        reception
            .store(
                store,
                bytes::Bytes::from(bytes),
                ids.sop_instance_uid.as_deref(),
            )
            .await?;
        reception.store_full_bundles(store).await?;
    }
    reception.finish(store).await?;
    reception.job()
}
