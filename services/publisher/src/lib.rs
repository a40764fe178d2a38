//! spinescreen publisher (in progress).
