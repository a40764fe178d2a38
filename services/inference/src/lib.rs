//! spinescreen inference (in progress).
