//! The C-STORE receiver's write-ahead spool: each received instance is appended to a local file
//! (and flushed to disk) before its C-STORE success is sent, and the reception is uploaded as a
//! few large bundles ([`spinescreen_proto::bundle`]) instead of one object per instance.
//!
//! Layout under `scp.spool_dir`:
//!
//! ```text
//! .lock                       held (flock) by the one receiver that owns the spool
//! <batch>/reception.json      {"received_at_unix_ms": …}, written before the first instance
//! <batch>/00000.seg           bundle segment 0: the bytes of incoming/<batch>/bundle-00000.bundle
//! <batch>/00001.seg           …
//! ```
//!
//! A segment is closed once it holds `scp.spool_segment_mib` and uploaded in the background
//! while the association goes on; when the reception completes the last segment is uploaded,
//! every upload awaited, the ingest job published, and only then the batch directory removed.
//! A receiver that finds batch directories when it starts (it was killed, or the store or the
//! broker failed at completion) uploads what they hold and publishes their jobs
//! ([`recover_spool`], `scp.spool_recovery_delay_s` after the start, so that a sender's re-send
//! of a cut-off study is published first and the recovered reception adds to it): an acknowledged instance is on disk until its job is published. A
//! record cut short at the end of a segment is an instance whose write was interrupted, never
//! acknowledged, and is dropped.

use crate::error::IngestError;
use spinescreen_proto::bundle::{record_header, whole_records_len, BUNDLE_MAGIC};
use spinescreen_proto::uid::{incoming_batch_prefix, incoming_bundle_key};
use spinescreen_proto::Job;
use spinescreen_runtime::{Broker, StudyStore};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Where and how a receiver spools.
#[derive(Debug, Clone)]
pub(crate) struct SpoolConfig {
    /// The spool directory (one per receiver process).
    pub dir: PathBuf,
    /// A segment is closed (and uploaded) once it holds this many bytes.
    pub segment_bytes: u64,
    /// Flush each instance to disk (`fdatasync`) before it is acknowledged.
    pub fsync: bool,
}

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> IngestError {
    IngestError::Receive(format!("spool: {what}: {e}"))
}

/// The `reception.json` of a spooled reception.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SpoolMeta {
    received_at_unix_ms: u64,
}

/// Flush a directory's entries (a new file's name) to disk.
fn sync_dir(dir: &Path) -> Result<(), IngestError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir.display(), e))
}

fn segment_path(dir: &Path, seq: u32) -> PathBuf {
    dir.join(format!("{seq:05}.seg"))
}

/// Take the spool: create it and hold its lock for the life of the returned file, so that two
/// receivers never share (and recover each other's) receptions.
pub(crate) fn lock_spool(dir: &Path) -> Result<File, IngestError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir.display(), e))?;
    let path = dir.join(".lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(path.display(), e))?;
    lock.try_lock().map_err(|_| {
        IngestError::Receive(format!(
            "spool {} is in use by another receiver (each receiver needs its own spool_dir)",
            dir.display()
        ))
    })?;
    Ok(lock)
}

/// The spool of one reception being received.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    config: Arc<SpoolConfig>,
    batch: String,
    dir: PathBuf,
    seq: u32,
    file: Arc<File>,
    len: u64,
    /// Closed segments' background uploads.
    uploads: Vec<(u32, JoinHandle<Result<(), IngestError>>)>,
    /// Segments stored.
    uploaded: std::collections::BTreeSet<u32>,
    /// A failed write could not be cut off: no further instance is taken.
    broken: bool,
}

impl SpoolWriter {
    /// Start the spool of `batch`: its directory, `reception.json` and the first segment.
    pub async fn create(
        config: Arc<SpoolConfig>,
        batch: &str,
        received_at_unix_ms: u64,
    ) -> Result<Self, IngestError> {
        let dir = config.dir.join(batch);
        let (cfg, d) = (config.clone(), dir.clone());
        let file = tokio::task::spawn_blocking(move || -> Result<File, IngestError> {
            std::fs::create_dir_all(&d).map_err(|e| io_err(d.display(), e))?;
            let meta = serde_json::to_vec(&SpoolMeta {
                received_at_unix_ms,
            })
            .map_err(|e| IngestError::Receive(e.to_string()))?;
            let meta_path = d.join("reception.json");
            let mut m = File::create(&meta_path).map_err(|e| io_err(meta_path.display(), e))?;
            m.write_all(&meta)
                .map_err(|e| io_err(meta_path.display(), e))?;
            if cfg.fsync {
                m.sync_all().map_err(|e| io_err(meta_path.display(), e))?;
                sync_dir(&cfg.dir)?;
            }
            new_segment(&cfg, &d, 0)
        })
        .await
        .map_err(|e| IngestError::Receive(e.to_string()))??;
        Ok(Self {
            config,
            batch: batch.to_string(),
            dir,
            seq: 0,
            file: Arc::new(file),
            len: BUNDLE_MAGIC.len() as u64,
            uploads: vec![],
            uploaded: Default::default(),
            broken: false,
        })
    }

    /// Append one instance and flush it to disk; once this returns, the instance survives the
    /// receiver's death. A full segment is closed and its upload started. A failed write is cut
    /// off again, so the segment holds only whole records; if even that fails, the writer
    /// refuses every further instance (the torn tail is dropped when the segment is uploaded).
    pub async fn append(
        &mut self,
        store: &StudyStore,
        name: &str,
        data: bytes::Bytes,
    ) -> Result<(), IngestError> {
        if self.broken {
            return Err(IngestError::Receive(
                "spool: an earlier write failed; this reception takes no more instances".into(),
            ));
        }
        let header = record_header(name, data.len() as u64);
        let added = (header.len() + data.len()) as u64;
        let (file, fsync, path, before) = (
            self.file.clone(),
            self.config.fsync,
            segment_path(&self.dir, self.seq),
            self.len,
        );
        let written = tokio::task::spawn_blocking(move || -> Result<(), (IngestError, bool)> {
            let mut f: &File = &file;
            let result = f
                .write_all(&header)
                .and_then(|_| f.write_all(&data))
                .and_then(|_| if fsync { f.sync_data() } else { Ok(()) });
            match result {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Cut the partial record off, so the next one follows a whole record.
                    let restored =
                        file.set_len(before).is_ok() && f.seek(SeekFrom::Start(before)).is_ok();
                    Err((io_err(path.display(), e), restored))
                }
            }
        })
        .await
        .map_err(|e| IngestError::Receive(e.to_string()))?;
        if let Err((e, restored)) = written {
            self.broken = !restored;
            return Err(e);
        }
        self.len += added;
        // Uploaded at an earlier, failed completion: it has changed since.
        self.uploaded.remove(&self.seq);
        if self.len >= self.config.segment_bytes {
            // The instance is spooled whatever happens here: a segment that cannot be closed
            // just grows (and is uploaded whole at completion).
            if let Err(e) = self.rotate(store).await {
                tracing::warn!(error = %e, "could not open a new spool segment; the current one grows");
            }
        }
        Ok(())
    }

    /// Open the next segment, then close the current one and start its upload.
    async fn rotate(&mut self, store: &StudyStore) -> Result<(), IngestError> {
        let (cfg, d, next) = (self.config.clone(), self.dir.clone(), self.seq + 1);
        let file = tokio::task::spawn_blocking(move || new_segment(&cfg, &d, next))
            .await
            .map_err(|e| IngestError::Receive(e.to_string()))??;
        let closed = self.seq;
        self.uploads.push((
            closed,
            tokio::spawn(upload_segment(
                store.clone(),
                self.dir.clone(),
                self.batch.clone(),
                closed,
            )),
        ));
        self.seq = next;
        self.file = Arc::new(file);
        self.len = BUNDLE_MAGIC.len() as u64;
        Ok(())
    }

    /// Upload every segment not yet uploaded (the background uploads are awaited; a failed
    /// one is retried here). The spool stays on disk until [`SpoolWriter::remove`].
    pub async fn upload(&mut self, store: &StudyStore) -> Result<(), IngestError> {
        for (seq, handle) in self.uploads.drain(..) {
            match handle.await {
                Ok(Ok(())) => {
                    self.uploaded.insert(seq);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, seq, "segment upload failed; retrying"),
                Err(e) => tracing::warn!(error = %e, seq, "segment upload task failed; retrying"),
            }
        }
        let last_has_records = self.len > BUNDLE_MAGIC.len() as u64;
        let pending: Vec<u32> = (0..=self.seq)
            .filter(|seq| !self.uploaded.contains(seq))
            .filter(|seq| *seq != self.seq || last_has_records)
            .collect();
        let (dir, batch) = (&self.dir, &self.batch);
        let results = futures::future::join_all(pending.into_iter().map(|seq| {
            let upload = upload_segment(store.clone(), dir.clone(), batch.clone(), seq);
            async move { (seq, upload.await) }
        }))
        .await;
        let mut failed = None;
        for (seq, r) in results {
            match r {
                Ok(()) => {
                    self.uploaded.insert(seq);
                }
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Remove the reception's spool (its job is published).
    pub async fn remove(&self) {
        if let Err(e) = tokio::fs::remove_dir_all(&self.dir).await {
            tracing::warn!(error = %e, dir = %self.dir.display(), "could not remove a completed spool");
        }
    }
}

/// Create segment `seq` with the bundle magic (and its directory entry on disk).
fn new_segment(cfg: &SpoolConfig, dir: &Path, seq: u32) -> Result<File, IngestError> {
    let path = segment_path(dir, seq);
    let mut f = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(path.display(), e))?;
    f.write_all(BUNDLE_MAGIC)
        .map_err(|e| io_err(path.display(), e))?;
    if cfg.fsync {
        f.sync_data().map_err(|e| io_err(path.display(), e))?;
        sync_dir(dir)?;
    }
    Ok(f)
}

/// Upload segment `seq` of a spooled reception as its bundle, without a torn last record.
/// `Ok(false)` when the segment holds no whole record (nothing uploaded).
async fn upload_whole_records(
    store: &StudyStore,
    dir: &Path,
    batch: &str,
    seq: u32,
) -> Result<bool, IngestError> {
    let path = segment_path(dir, seq);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| io_err(path.display(), e))?;
    let whole = whole_records_len(&bytes);
    if whole <= BUNDLE_MAGIC.len() {
        return Ok(false);
    }
    if whole < bytes.len() {
        tracing::warn!(
            segment = %path.display(),
            dropped_bytes = bytes.len() - whole,
            "spool segment ends in an interrupted write (never acknowledged); dropped"
        );
    }
    let key = incoming_bundle_key(batch, seq).map_err(|e| IngestError::Receive(e.to_string()))?;
    let mut bytes = bytes;
    bytes.truncate(whole);
    store
        .put(&key, bytes)
        .await
        .map_err(|e| IngestError::Storage(e.to_string()))?;
    Ok(true)
}

async fn upload_segment(
    store: StudyStore,
    dir: PathBuf,
    batch: String,
    seq: u32,
) -> Result<(), IngestError> {
    upload_whole_records(&store, &dir, &batch, seq)
        .await
        .map(|_| ())
}

/// The receptions in the spool (batch ids), e.g. those an earlier receiver process left.
pub(crate) async fn spooled_batches(dir: &Path) -> Result<Vec<String>, IngestError> {
    let mut batches = vec![];
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| io_err(dir.display(), e))?;
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| io_err(dir.display(), e))?
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.path().is_dir() && incoming_batch_prefix(&name).is_ok() {
            batches.push(name);
        }
    }
    batches.sort();
    Ok(batches)
}

/// Complete the spooled receptions `batches` (left by an earlier receiver process): upload
/// each one's segments as bundles, publish its ingest job, remove it. Returns the jobs
/// published. A reception that fails stays in the spool (and is tried again at the next
/// start); the others go on.
pub(crate) async fn recover_spool(
    dir: &Path,
    batches: &[String],
    store: &StudyStore,
    broker: &dyn Broker,
) -> Vec<Job> {
    let mut jobs = vec![];
    for batch in batches {
        match recover_one(&dir.join(batch), batch, store, broker).await {
            Ok(Some(job)) => jobs.push(job),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, batch = %batch, "could not complete a spooled reception; kept for the next start")
            }
        }
    }
    jobs
}

async fn recover_one(
    dir: &Path,
    batch: &str,
    store: &StudyStore,
    broker: &dyn Broker,
) -> Result<Option<Job>, IngestError> {
    let received_at_unix_ms = match tokio::fs::read(dir.join("reception.json")).await {
        Ok(b) => serde_json::from_slice::<SpoolMeta>(&b)
            .map(|m| m.received_at_unix_ms)
            .unwrap_or_else(|_| super::now_ms()),
        Err(_) => super::now_ms(),
    };
    let mut segments = vec![];
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| io_err(dir.display(), e))?;
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| io_err(dir.display(), e))?
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(seq) = name
            .strip_suffix(".seg")
            .and_then(|s| s.parse::<u32>().ok())
        {
            segments.push(seq);
        }
    }
    segments.sort_unstable();
    let mut stored = 0;
    for seq in segments {
        if upload_whole_records(store, dir, batch, seq).await? {
            stored += 1;
        }
    }
    let job = if stored > 0 {
        let prefix =
            incoming_batch_prefix(batch).map_err(|e| IngestError::Receive(e.to_string()))?;
        let job = Job::ingest(batch.to_string(), prefix, received_at_unix_ms);
        super::publish(broker, &job).await?;
        tracing::info!(job_id = %job.job_id, bundles = stored, "spooled reception recovered; ingest job published");
        Some(job)
    } else {
        None
    };
    tokio::fs::remove_dir_all(dir)
        .await
        .map_err(|e| io_err(dir.display(), e))?;
    Ok(job)
}
