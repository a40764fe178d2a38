//! [`Language`]: the language of every human-readable text a stage writes (burned-in image text,
//! report text). Configured as `language = "en"` or `"ru"` in `[rendering]` and `[publisher]`.

use serde::{Deserialize, Serialize};

/// Language of the text a stage writes for people (image annotations, report items).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English (`"en"`).
    #[default]
    En,
    /// Russian (`"ru"`).
    Ru,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_round_trip() {
        for (text, lang) in [("\"en\"", Language::En), ("\"ru\"", Language::Ru)] {
            let parsed: Language = serde_json::from_str(text).unwrap();
            assert_eq!(parsed, lang);
            assert_eq!(serde_json::to_string(&lang).unwrap(), text);
        }
        assert!(serde_json::from_str::<Language>("\"de\"").is_err());
        assert_eq!(Language::default(), Language::En);
    }
}
