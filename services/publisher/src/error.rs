//! Why publishing failed.

/// Errors of SR building and delivery. Each says what was being done, so the dead-letter
/// reason is readable on its own.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The result or study information cannot make a valid SR (bad UID, non-finite number…).
    #[error("invalid input for the SR: {0}")]
    InvalidInput(String),
    /// A stored DICOM instance could not be read.
    #[error("unreadable DICOM instance {what}: {detail}")]
    BadInstance {
        /// Which instance (storage key or SOP Instance UID).
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Encoding the SR failed.
    #[error("encoding the SR: {0}")]
    Encode(String),
    /// A destination did not accept the study (after retries, when returned by delivery).
    #[error("delivery to {destination} failed: {detail}")]
    Delivery {
        /// Destination kind and address.
        destination: String,
        /// What went wrong on the last attempt.
        detail: String,
    },
}
