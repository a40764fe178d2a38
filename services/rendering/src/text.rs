//! Burned-in text: the embedded DejaVu Sans font from `spinescreen-canvas`, drawn with a dark
//! halo ([`draw_text`]) so it reads on bone, air and the panel alike.

pub use spinescreen_canvas::text::{
    draw_text, font_available, line_height, rasterize, text_width, wrap, TextMask,
};
