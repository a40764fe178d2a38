//! `truth.csv`: the reference standard of a calibration set.
//!
//! A header row names the columns; order is free and unknown columns are ignored.
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `case_id` | yes | folder name of the study under `--studies` / `--results`: 1–128 of `[A-Za-z0-9._-]`, not `.`/`..` |
//! | `positive` | yes | `1`/`0`, `true`/`false`, `yes`/`no`: a compression deformity > 25 % (Genant ≥ 2) is present |
//! | `grades` | no | per-vertebra Genant grades, `;`-separated `LEVEL=GRADE`, e.g. `T12=2;L1=3` |
//!
//! When the `grades` column exists, a case's cell lists the levels whose grade is known to be ≥ 1
//! (grade 0 may be listed too); every other level is grade 0. An empty cell means "no deformity
//! anywhere"; `NA` or `?` means "grades unknown for this case" (it is left out of the Genant
//! confusion matrix). Cells are plain: no quoting, no commas inside a field.

use spinescreen_proto::{GenantGrade, VertebraLevel};
use std::collections::{BTreeMap, BTreeSet};

/// One reference case.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthCase {
    /// Study folder name.
    pub case_id: String,
    /// Whether a Genant ≥ 2 deformity is present.
    pub positive: bool,
    /// Per-vertebra grades when known (unlisted levels are grade 0).
    pub grades: Option<BTreeMap<VertebraLevel, GenantGrade>>,
}

/// A truth file that cannot be used; carries the 1-based line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TruthError {
    /// No header, or a required column missing.
    #[error("truth.csv header: {0}")]
    Header(String),
    /// A data row is malformed.
    #[error("truth.csv line {line}: {message}")]
    Row {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No data rows.
    #[error("truth.csv lists no cases")]
    Empty,
}

/// Whether a case id is a safe single path component.
pub fn valid_case_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "positive" => Some(true),
        "0" | "false" | "no" | "n" | "negative" => Some(false),
        _ => None,
    }
}

/// Parse `T12=2;L1=3` (empty → no deformity; `NA`/`?` → unknown).
pub fn parse_grades(cell: &str) -> Result<Option<BTreeMap<VertebraLevel, GenantGrade>>, String> {
    let cell = cell.trim();
    if cell.eq_ignore_ascii_case("na") || cell == "?" {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for item in cell.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (level, grade) = item
            .split_once('=')
            .ok_or_else(|| format!("grade entry {item:?} is not LEVEL=GRADE"))?;
        let level = level.trim().to_ascii_uppercase();
        let Ok(level) = level.parse::<VertebraLevel>() else {
            return Err(format!("unknown vertebra level {level:?}"));
        };
        let g: u8 = grade
            .trim()
            .parse()
            .map_err(|_| format!("grade {grade:?} of {level} is not 0-3"))?;
        let g = GenantGrade::try_from(g)?;
        if out.insert(level, g).is_some() {
            return Err(format!("level {level} listed twice"));
        }
    }
    Ok(Some(out))
}

/// Parse a whole truth file.
pub fn parse_truth_csv(text: &str) -> Result<Vec<TruthCase>, TruthError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_start_matches('\u{feff}').trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (_, header) = lines
        .next()
        .ok_or_else(|| TruthError::Header("empty file".into()))?;
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let id_col = col("case_id").ok_or_else(|| TruthError::Header("no case_id column".into()))?;
    let pos_col = col("positive").ok_or_else(|| TruthError::Header("no positive column".into()))?;
    let grades_col = col("grades");
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (line, text) in lines {
        let cells: Vec<&str> = text.split(',').map(str::trim).collect();
        let row_err = |message: String| TruthError::Row { line, message };
        if cells.len() != cols.len() {
            return Err(row_err(format!(
                "{} cells, header has {}",
                cells.len(),
                cols.len()
            )));
        }
        let id = cells[id_col];
        if !valid_case_id(id) {
            return Err(row_err(format!(
                "case_id {id:?} must be 1-128 of [A-Za-z0-9._-]"
            )));
        }
        if !seen.insert(id.to_string()) {
            return Err(row_err(format!("case_id {id:?} repeated")));
        }
        let positive = parse_bool(cells[pos_col])
            .ok_or_else(|| row_err(format!("positive {:?} is not 1/0", cells[pos_col])))?;
        let grades = match grades_col {
            Some(c) => parse_grades(cells[c]).map_err(row_err)?,
            None => None,
        };
        out.push(TruthCase {
            case_id: id.to_string(),
            positive,
            grades,
        });
    }
    if out.is_empty() {
        return Err(TruthError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_parses() {
        let t = parse_truth_csv("case_id,positive\nc1,1\nc2,0\n").unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].positive && !t[1].positive);
        assert_eq!(t[0].grades, None);
    }

    #[test]
    fn grades_column_parses_levels() {
        let t = parse_truth_csv(
            "positive,case_id,grades,site\nyes,a,T12=2;L1=3,x\nno,b,,y\nno,c,NA,z\n",
        )
        .unwrap();
        let g = t[0].grades.as_ref().unwrap();
        assert_eq!(g[&VertebraLevel::T12], GenantGrade::Moderate);
        assert_eq!(g[&VertebraLevel::L1], GenantGrade::Severe);
        assert_eq!(t[1].grades, Some(BTreeMap::new()));
        assert_eq!(t[2].grades, None);
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let e = parse_truth_csv("case_id,positive\nc1,maybe\n").unwrap_err();
        assert!(matches!(e, TruthError::Row { line: 2, .. }), "{e}");
        let e = parse_truth_csv("case_id,positive\n../x,1\n").unwrap_err();
        assert!(matches!(e, TruthError::Row { line: 2, .. }));
        let e = parse_truth_csv("case_id,positive\na,1\na,0\n").unwrap_err();
        assert!(matches!(e, TruthError::Row { line: 3, .. }));
        let e = parse_truth_csv("case_id,positive,grades\na,1,T13=2\n").unwrap_err();
        assert!(matches!(e, TruthError::Row { line: 2, .. }));
        let e = parse_truth_csv("case_id,positive,grades\na,1,L1=4\n").unwrap_err();
        assert!(matches!(e, TruthError::Row { line: 2, .. }));
        assert!(matches!(
            parse_truth_csv("id,positive\n"),
            Err(TruthError::Header(_))
        ));
        assert_eq!(
            parse_truth_csv("case_id,positive\n"),
            Err(TruthError::Empty)
        );
    }
}
