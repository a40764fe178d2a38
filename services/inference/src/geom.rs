//! Vector helpers: the shared [`spinescreen_proto::vec3`] arithmetic, under the name this crate
//! has always used.

pub use spinescreen_proto::vec3::*;
