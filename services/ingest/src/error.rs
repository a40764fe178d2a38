//! Errors of the ingest crate's I/O-facing functions.
//!
//! The study-level outcome of a defective input is not an error but a coded
//! [`spinescreen_proto::Reason`] (see [`crate::build_volume`]); `IngestError` is for what stops a
//! function from running at all: an unreadable file, a store or broker failure, a bad config.

use std::path::PathBuf;

/// Why an ingest operation could not complete.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A NIfTI file is malformed or uses a feature this reader does not support.
    #[error("NIfTI {path}: {message}")]
    Nifti {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Object storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The broker failed.
    #[error("broker: {0}")]
    Broker(String),
    /// A receiver could not start or a reception could not be recorded.
    #[error("receive: {0}")]
    Receive(String),
}
