//! spinescreen ingest (in progress).
