//! Vector helpers over patient-space points: the shared [`spinescreen_proto::vec3`] arithmetic.

pub use spinescreen_proto::vec3::*;
