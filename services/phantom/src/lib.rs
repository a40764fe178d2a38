//! spinescreen phantom (in progress).
