//! The review worksheet: one row per sampled study, the service's columns filled in, the
//! experts' columns (the experiment's audit vocabulary) left empty. CSV (RFC 4180).

use spinescreen_eval::audit::{csv_field, EXPERT_COLUMNS};

/// The service's columns, in order.
pub const SERVICE_COLUMNS: [&str; 13] = [
    "study_uid",
    "accession_number",
    "station_name",
    "received_at_utc",
    "status",
    "reason_code",
    "service_conclusion",
    "fracture_levels",
    "fracture_probability",
    "bone_density",
    "processing_s",
    "sla_met",
    "preview",
];

/// Expert column for free-text notes on a technical defect (non-standard study, artefacts…).
pub const DEFECT_NOTES_COLUMN: &str = "defect_notes";

/// Every column of the sheet: the service's, the experiment's audit columns, the defect notes.
pub fn header() -> Vec<&'static str> {
    let mut h = SERVICE_COLUMNS.to_vec();
    h.extend(EXPERT_COLUMNS);
    h.push(DEFECT_NOTES_COLUMN);
    h
}

/// The sheet as CSV: the header, then each row of service values with the expert cells empty.
pub fn to_csv(rows: &[Vec<String>]) -> String {
    let columns = header();
    let mut out = columns.join(",");
    out.push('\n');
    for row in rows {
        let mut cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        cells.resize(columns.len(), String::new());
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Parse CSV text (RFC 4180: quoted fields may hold commas, doubled quotes and line breaks)
/// into rows of cells. Blank lines are skipped.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = vec![];
    let mut row: Vec<String> = vec![];
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    cell.push(c);
                }
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut cell)),
            '\r' => {}
            '\n' => {
                line += 1;
                row.push(std::mem::take(&mut cell));
                if !(row.len() == 1 && row[0].trim().is_empty()) {
                    rows.push(std::mem::take(&mut row));
                } else {
                    row.clear();
                }
            }
            _ => cell.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quoted field at line {line}"));
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    Ok(rows)
}

/// An expert's yes/no: `yes`/`no`, `y`/`n`, `1`/`0`, `true`/`false`, `да`/`нет`; `None` when
/// empty or anything else (not reviewed on this point).
pub fn parse_yes_no(cell: &str) -> Option<bool> {
    match cell.trim().to_lowercase().as_str() {
        "yes" | "y" | "1" | "true" | "да" => Some(true),
        "no" | "n" | "0" | "false" | "нет" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_quotes_commas_and_line_breaks() {
        let rows = vec![vec![
            "1.2.3".to_string(),
            "A,1".into(),
            "say \"hi\"\nthere".into(),
        ]];
        let text = to_csv(&rows);
        let back = parse_csv(&text).unwrap();
        assert_eq!(back[0], header());
        assert_eq!(&back[1][..3], &rows[0][..]);
        assert_eq!(back[1].len(), header().len());
        assert!(parse_csv("\"open").is_err());
        assert_eq!(parse_yes_no(" Yes "), Some(true));
        assert_eq!(parse_yes_no("нет"), Some(false));
        assert_eq!(parse_yes_no(""), None);
    }
}
