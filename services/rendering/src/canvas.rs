//! The raster the frames are drawn on ([`RgbImage`], from `spinescreen-canvas`) and the
//! overlay colours.

pub use spinescreen_canvas::{hstack, Rgb, RgbImage};

/// Overlay colours (grades follow the seed's display: 0–1 green, 2 yellow, 3 red).
pub mod colour {
    use super::Rgb;
    /// Genant 0–1.
    pub const GREEN: Rgb = [40, 220, 60];
    /// Genant 2.
    pub const YELLOW: Rgb = [255, 215, 0];
    /// Genant 3.
    pub const RED: Rgb = [255, 30, 30];
    /// Not gradable.
    pub const GREY: Rgb = [160, 160, 170];
    /// Plain text.
    pub const WHITE: Rgb = [255, 255, 255];
    /// Secondary text.
    pub const LIGHT: Rgb = [200, 205, 215];
    /// Text halo and panel background.
    pub const BLACK: Rgb = spinescreen_canvas::BLACK;
    /// Panel background.
    pub const PANEL: Rgb = [18, 20, 26];
    /// Centreline trace.
    pub const CYAN: Rgb = [0, 200, 255];
}
