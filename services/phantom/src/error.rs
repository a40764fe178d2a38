//! [`PhantomError`]: why a phantom could not be generated or written.

use std::path::PathBuf;

/// Why a phantom could not be generated or written. Each variant names its cause so a caller
/// (or the CLI) can tell a bad request from an I/O failure.
#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    /// A value in the [`crate::PhantomSpec`] is out of range or inconsistent.
    #[error("invalid phantom option `{option}`: {reason}")]
    InvalidSpec {
        /// The option at fault (CLI spelling).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--fracture`/`--confounder` text could not be parsed.
    #[error("cannot parse {what} {text:?}: {reason}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The offending text.
        text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The requested vertebrae do not fit in the volume's field of view.
    #[error("field of view: {0}")]
    FieldOfView(String),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Building or encoding a DICOM object failed.
    #[error("DICOM encoding of {path}: {reason}")]
    Dicom {
        /// The file being written.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Encoding the preview PNG failed.
    #[error("PNG encoding of {path}: {reason}")]
    Png {
        /// The file being written.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl PhantomError {
    pub(crate) fn invalid(option: &'static str, reason: impl Into<String>) -> Self {
        PhantomError::InvalidSpec {
            option,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PhantomError::Io {
            path: path.into(),
            source,
        }
    }
}
