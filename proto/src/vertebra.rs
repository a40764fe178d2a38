//! The vertebra vocabulary of the contract: [`VertebraLevel`] (`C1` … `S1`) and [`VertebraFlag`]
//! (`cement`, `not_gradable`, …), each defined once and spelled on the wire exactly as before
//! (`"T12"`, `"ring_corrected"`).
//!
//! Forward compatibility: a flag this build does not know is kept as
//! [`VertebraFlag::Unknown`] with its spelling and written back unchanged, so a newer stage's flag
//! survives an older stage's round trip; an older reader treats it as informative only (it never
//! blocks grading there). A level outside `C1` … `S1` is an error: levels are a closed set.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! levels {
    ($($name:ident),+ $(,)?) => {
        /// A vertebral level, cranial to caudal (`C1` … `S1`); on the wire its name, e.g. `"T12"`.
        /// Ordered cranial (smaller) to caudal.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum VertebraLevel {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                $name,
            )+
        }

        impl VertebraLevel {
            /// Every level, cranial to caudal; `ALL[level.index()] == level`.
            pub const ALL: [VertebraLevel; 25] = [$(VertebraLevel::$name),+];

            /// The wire spelling (`"T12"`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(VertebraLevel::$name => stringify!($name),)+
                }
            }
        }
    };
}

levels!(
    C1, C2, C3, C4, C5, C6, C7, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, L1, L2, L3, L4,
    L5, S1,
);

impl VertebraLevel {
    /// Position in [`VertebraLevel::ALL`] (`C1` = 0, `T1` = 7, `T12` = 18, `L5` = 23, `S1` = 24).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The level at `index` in [`VertebraLevel::ALL`], if there is one.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    /// Labels in spine order joined into ranges of consecutive levels (`T1–T8`, `T10, T11`,
    /// `L2`): how a report names the levels it assessed.
    pub fn ranges(labels: &[VertebraLevel]) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < labels.len() {
            let mut j = i;
            while j + 1 < labels.len() && labels[j].offset(1) == Some(labels[j + 1]) {
                j += 1;
            }
            out.push(if j > i + 1 {
                format!("{}–{}", labels[i], labels[j])
            } else if j == i + 1 {
                format!("{}, {}", labels[i], labels[j])
            } else {
                labels[i].to_string()
            });
            i = j + 1;
        }
        out
    }

    /// The level `steps` below (positive, caudal) or above (negative, cranial) this one.
    pub fn offset(self, steps: isize) -> Option<Self> {
        self.index()
            .checked_add_signed(steps)
            .and_then(Self::from_index)
    }

    /// `T1` … `T12`.
    pub fn is_thoracic(self) -> bool {
        (VertebraLevel::T1..=VertebraLevel::T12).contains(&self)
    }

    /// `L1` … `L5`.
    pub fn is_lumbar(self) -> bool {
        (VertebraLevel::L1..=VertebraLevel::L5).contains(&self)
    }
}

/// A label that is not one of `C1` … `S1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vertebra level {0:?} (expected C1..C7, T1..T12, L1..L5 or S1)")]
pub struct UnknownLevel(pub String);

impl FromStr for VertebraLevel {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Self, UnknownLevel> {
        Self::ALL
            .iter()
            .copied()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownLevel(s.to_string()))
    }
}

impl fmt::Display for VertebraLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for VertebraLevel {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for VertebraLevel {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for VertebraLevel {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<VertebraLevel> for str {
    fn eq(&self, other: &VertebraLevel) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<VertebraLevel> for &str {
    fn eq(&self, other: &VertebraLevel) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<VertebraLevel> for String {
    fn eq(&self, other: &VertebraLevel) -> bool {
        self == other.as_str()
    }
}

impl Serialize for VertebraLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VertebraLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a stage noted about one vertebra that changes how it may be graded or read. On the wire
/// each is its snake_case name (`"ring_corrected"`); see the module docs for unknown flags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VertebraFlag {
    /// `cement`: vertebroplasty cement in the body; reported as treated, not graded.
    Cement,
    /// `hardware`: metal in or next to the body; not graded.
    Hardware,
    /// `ring_artifact`: a ring artefact crosses the body and could not be corrected; not graded.
    RingArtifact,
    /// `ring_corrected`: a ring artefact crossing the body was subtracted before measuring: its
    /// heights stand, its attenuation is not read.
    RingCorrected,
    /// `schmorl_node`: a focal endplate pit; the middle height is not used.
    SchmorlNode,
    /// `label_uncertain`: the level name rests on a weak anchor.
    LabelUncertain,
    /// `not_gradable`: reported, never graded.
    NotGradable,
    /// `truncated`: cut by the scan's edge; its keypoints on the cut side lie on the edge, so its
    /// heights are lower bounds.
    Truncated,
    /// `implausible_shape`: heights no vertebral body has (a misread); not graded.
    ImplausibleShape,
    /// `endplates_not_traced`: a vertebra in view between measured ones whose endplates could not
    /// be traced: named and placed between its discs, reported as not assessable, never used as a
    /// neighbour.
    EndplatesNotTraced,
    /// `not_measurable`: morphometry found no usable heights in its keypoints.
    NotMeasurable,
    /// A flag this build does not know (written by a newer stage), kept with its spelling.
    Unknown(String),
}

impl VertebraFlag {
    /// Flags that exclude a vertebra from grading: it is reported with its measured heights and
    /// deformity, but with grade 0, type `none`, and does not count toward the study's fracture
    /// reading; its trabecular HU is not read.
    pub const NOT_GRADED: [VertebraFlag; 3] = [
        VertebraFlag::NotGradable,
        VertebraFlag::Cement,
        VertebraFlag::Hardware,
    ];

    /// The wire spelling (`"ring_corrected"`).
    pub fn as_str(&self) -> &str {
        match self {
            VertebraFlag::Cement => "cement",
            VertebraFlag::Hardware => "hardware",
            VertebraFlag::RingArtifact => "ring_artifact",
            VertebraFlag::RingCorrected => "ring_corrected",
            VertebraFlag::SchmorlNode => "schmorl_node",
            VertebraFlag::LabelUncertain => "label_uncertain",
            VertebraFlag::NotGradable => "not_gradable",
            VertebraFlag::Truncated => "truncated",
            VertebraFlag::ImplausibleShape => "implausible_shape",
            VertebraFlag::EndplatesNotTraced => "endplates_not_traced",
            VertebraFlag::NotMeasurable => "not_measurable",
            VertebraFlag::Unknown(s) => s,
        }
    }

    /// The flag spelled `s`; a spelling this build does not know gives [`VertebraFlag::Unknown`].
    pub fn parse(s: &str) -> Self {
        const KNOWN: [VertebraFlag; 11] = [
            VertebraFlag::Cement,
            VertebraFlag::Hardware,
            VertebraFlag::RingArtifact,
            VertebraFlag::RingCorrected,
            VertebraFlag::SchmorlNode,
            VertebraFlag::LabelUncertain,
            VertebraFlag::NotGradable,
            VertebraFlag::Truncated,
            VertebraFlag::ImplausibleShape,
            VertebraFlag::EndplatesNotTraced,
            VertebraFlag::NotMeasurable,
        ];
        KNOWN
            .into_iter()
            .find(|f| f.as_str() == s)
            .unwrap_or_else(|| VertebraFlag::Unknown(s.to_string()))
    }

    /// Whether this flag excludes its vertebra from grading ([`VertebraFlag::NOT_GRADED`]).
    pub fn blocks_grading(&self) -> bool {
        Self::NOT_GRADED.contains(self)
    }
}

impl From<&str> for VertebraFlag {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl fmt::Display for VertebraFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for VertebraFlag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VertebraFlag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn consecutive_levels_are_written_as_ranges() {
        use VertebraLevel::*;
        assert_eq!(
            VertebraLevel::ranges(&[T1, T2, T3, T5, T7, T8, L2]),
            ["T1–T3", "T5", "T7, T8", "L2"]
        );
        // T12 to L1 is consecutive across the thoracolumbar junction.
        assert_eq!(VertebraLevel::ranges(&[T11, T12, L1]), ["T11–L1"]);
        assert!(VertebraLevel::ranges(&[]).is_empty());
    }

    use super::*;

    #[test]
    fn levels_keep_their_wire_names_and_order() {
        assert_eq!(VertebraLevel::ALL.len(), 25);
        for (i, l) in VertebraLevel::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
            assert_eq!(VertebraLevel::from_index(i), Some(*l));
            let json = serde_json::to_string(l).unwrap();
            assert_eq!(json, format!("\"{}\"", l.as_str()));
            assert_eq!(serde_json::from_str::<VertebraLevel>(&json).unwrap(), *l);
        }
        assert_eq!(VertebraLevel::T1.index(), 7);
        assert_eq!(VertebraLevel::T12.index(), 18);
        assert_eq!(VertebraLevel::L5.index(), 23);
        assert_eq!(VertebraLevel::S1.as_str(), "S1");
        assert_eq!(VertebraLevel::T12.offset(1), Some(VertebraLevel::L1));
        assert_eq!(VertebraLevel::C1.offset(-1), None);
        assert_eq!(VertebraLevel::S1.offset(1), None);
        assert!(VertebraLevel::T12.is_thoracic() && !VertebraLevel::L1.is_thoracic());
        assert!(VertebraLevel::L5.is_lumbar() && !VertebraLevel::S1.is_lumbar());
        assert!(serde_json::from_str::<VertebraLevel>("\"T13\"").is_err());
        assert!("t12".parse::<VertebraLevel>().is_err());
        assert_eq!(VertebraLevel::L1, "L1");
        assert_eq!(format!("{:<4}|", VertebraLevel::L1), "L1  |");
    }

    #[test]
    fn flags_keep_their_wire_names_and_unknown_ones_survive() {
        for name in [
            "cement",
            "hardware",
            "ring_artifact",
            "ring_corrected",
            "schmorl_node",
            "label_uncertain",
            "not_gradable",
            "truncated",
            "implausible_shape",
            "endplates_not_traced",
            "not_measurable",
        ] {
            let f: VertebraFlag = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert!(!matches!(f, VertebraFlag::Unknown(_)), "{name} not known");
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{name}\""));
        }
        let future: Vec<VertebraFlag> =
            serde_json::from_str(r#"["cement","a_future_flag"]"#).unwrap();
        assert_eq!(
            future,
            vec![
                VertebraFlag::Cement,
                VertebraFlag::Unknown("a_future_flag".into())
            ]
        );
        assert!(!future[1].blocks_grading());
        assert_eq!(
            serde_json::to_string(&future).unwrap(),
            r#"["cement","a_future_flag"]"#
        );
        assert!(VertebraFlag::Cement.blocks_grading());
        assert!(VertebraFlag::NotGradable.blocks_grading());
        assert!(!VertebraFlag::Truncated.blocks_grading());
    }
}
