//! spinescreen rendering (in progress).
