//! Drawing shared by the rendering stage (overlays and burned-in text on the reformats) and the
//! eval report (`roc.png`): one raster, one line rasteriser, one font.
//!
//! A library, not a stage: it knows nothing of studies or jobs, so sharing it keeps the stages'
//! only contract in `proto/`.
//!
//! # Layout
//! - [`image`]: [`RgbImage`] — pixels, blending, anti-aliased lines, rectangles, PNG encoding.
//! - [`text`]: the embedded DejaVu Sans font rasterised with `ab_glyph`: measuring, wrapping and
//!   drawing a line of text (with a halo, or plain: across or upward).

pub mod image;
pub mod text;

pub use image::{hstack, Rgb, RgbImage, BLACK};
pub use text::{draw_plain_text, draw_text, Direction};
