//! [`RenderingConfig`]: how the reformats look (language, slab, projection, window).

use serde::{Deserialize, Serialize};
pub use spinescreen_proto::Language;

/// How the voxels across the slab thickness are combined into one pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// Mean HU across the slab: a thick-slab reformat with low noise (the default).
    #[default]
    Average,
    /// Maximum HU across the slab (maximum intensity projection): cortical bone stands out.
    Mip,
}

impl Projection {
    /// Short name for the image header (`average`, `MIP`).
    pub fn label(self) -> &'static str {
        match self {
            Projection::Average => "average",
            Projection::Mip => "MIP",
        }
    }
}

/// Rendering settings (`[rendering]` in the service configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RenderingConfig {
    /// Language of the burned-in text.
    pub language: Language,
    /// Slab thickness in mm (the seed's display used a 1 cm curved sagittal slab).
    pub slab_mm: f64,
    /// Average or maximum intensity across the slab.
    pub projection: Projection,
    /// Window centre (level), HU. Bone window: 400.
    pub window_center: f64,
    /// Window width, HU. Bone window: 1800.
    pub window_width: f64,
    /// Width of the reformat across the spine (anterior–posterior for the sagittal frame,
    /// left–right for the coronal frame), mm.
    pub field_mm: f64,
    /// Series Number (0020,0011) of the secondary-capture series.
    pub series_number: u32,
}

impl Default for RenderingConfig {
    fn default() -> Self {
        Self {
            language: Language::En,
            slab_mm: 10.0,
            projection: Projection::Average,
            window_center: 400.0,
            window_width: 1800.0,
            field_mm: 120.0,
            series_number: 9901,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_the_defaults() {
        let cfg: RenderingConfig = serde_json::from_str(r#"{"language":"ru"}"#).unwrap();
        assert_eq!(cfg.language, Language::Ru);
        assert_eq!(cfg.slab_mm, 10.0);
        assert_eq!(cfg.projection, Projection::Average);
    }
}
