//! spinescreen eval (in progress).
