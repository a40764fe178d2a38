//! spinescreen morphometry (in progress).
