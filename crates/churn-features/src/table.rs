//! Reading a plain feature table (a CSV or Parquet file with one row per customer):
//! the output of `churn-train features`, or any labelled churn table a user brings.

use crate::dataset::Values;
use crate::error::{DataError, Result};
use crate::features::{FeatureConfig, FeatureInfo, FeatureKind, FeatureTable};
use crate::read::TableFile;
use crate::time::{self, Day};
use std::path::Path;

/// A table read from a file, with its labels when a label column was named.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub table: FeatureTable,
    pub labels: Option<Vec<u8>>,
}

/// Parses a churn label: 1/0, yes/no, true/false, y/n (case-insensitive).
pub fn parse_label(text: &str) -> Option<u8> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "1.0" | "yes" | "y" | "true" | "t" | "churn" | "churned" => Some(1),
        "0" | "0.0" | "no" | "n" | "false" | "f" | "stay" | "retained" => Some(0),
        _ => None,
    }
}

/// Reads `path` (CSV, CSV.gz or Parquet). `id` names the customer id column (row
/// numbers when absent); `label`, when given, the 0/1 label column. An `as_of` column, if
/// present, is read as the rows' date. Every other column is a feature: numeric when all
/// its values are numbers (or true/false), otherwise categorical.
pub fn read_table(path: &Path, id: Option<&str>, label: Option<&str>) -> Result<LoadedTable> {
    read_table_from(
        &TableFile::at(path, &crate::contract::CUSTOMERS)?,
        id,
        label,
    )
}

/// [`read_table`] of a table file or a table held in memory ([`TableFile::in_memory`]).
pub fn read_table_from(
    file: &TableFile,
    id: Option<&str>,
    label: Option<&str>,
) -> Result<LoadedTable> {
    let path = file.path.as_path();
    let names = file.column_names()?;
    for (what, col) in [("id", id), ("label", label)] {
        if let Some(c) = col {
            if !names.iter().any(|n| n == c) {
                return Err(DataError::MissingColumn {
                    file: path.to_path_buf(),
                    column: c.to_string(),
                    found: format!("{} (asked for as the {what} column)", names.join(", ")),
                });
            }
        }
    }
    let features: Vec<String> = names
        .iter()
        .filter(|n| Some(n.as_str()) != id && Some(n.as_str()) != label && n.as_str() != "as_of")
        .cloned()
        .collect();
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut ids = Vec::new();
    let mut as_of: Vec<Option<Day>> = Vec::new();
    let mut labels = Vec::new();
    let mut text: Vec<Vec<Option<String>>> = vec![Vec::new(); features.len()];
    let mut rows: Vec<crate::error::Location> = Vec::new();
    let mut numbers: Vec<Option<Vec<Option<f64>>>> = vec![None; features.len()];
    file.for_each_batch(&wanted, |b| {
        let id_col = match id {
            Some(c) => Some(b.required(c)?),
            None => None,
        };
        let label_col = match label {
            Some(c) => Some(b.required(c)?),
            None => None,
        };
        let as_of_col = b.column("as_of")?;
        let cols: Vec<_> = features
            .iter()
            .map(|f| b.required(f))
            .collect::<Result<_>>()?;
        for i in 0..b.len() {
            let row = ids.len();
            rows.push(b.location(i));
            ids.push(match &id_col {
                Some(c) => c.text(i).ok_or_else(|| c.bad(i, "a customer id", ""))?,
                None => (row + 1).to_string(),
            });
            as_of.push(match &as_of_col {
                Some(c) => c.date(i)?,
                None => None,
            });
            if let Some(c) = &label_col {
                let t = c.text(i).unwrap_or_default();
                labels.push(
                    parse_label(&t)
                        .ok_or_else(|| c.bad(i, "a churn label (1/0, yes/no, true/false)", &t))?,
                );
            }
            for (k, c) in cols.iter().enumerate() {
                if c.is_text() {
                    text[k].push(c.text(i));
                } else {
                    numbers[k].get_or_insert_with(Vec::new).push(c.number(i)?);
                }
            }
        }
        Ok(())
    })?;
    let n = ids.len();
    let mut info = Vec::new();
    let mut columns = Vec::new();
    for (k, name) in features.into_iter().enumerate() {
        let values = match numbers[k].take() {
            Some(v) => Values::Numeric(v),
            None => {
                let raw = std::mem::take(&mut text[k]);
                // A numeric column with NaN or infinity spelled out is a bad value (as the
                // same number in Parquet is), not a reason to call the column a category.
                if let Some(row) = non_finite_in_numbers(&raw) {
                    return Err(DataError::BadValue {
                        file: path.to_path_buf(),
                        location: rows[row],
                        column: name,
                        expected: "a finite number (the column's other values are numbers)".into(),
                        found: raw[row].clone().unwrap_or_default(),
                    });
                }
                infer(raw)
            }
        };
        let kind = match values {
            Values::Numeric(_) => FeatureKind::Numeric,
            Values::Categorical(_) => FeatureKind::Categorical,
        };
        info.push(FeatureInfo {
            description: format!("column `{name}` of {}", file_name(path)),
            name,
            kind,
        });
        columns.push(values);
    }
    Ok(LoadedTable {
        table: FeatureTable {
            customer_ids: ids,
            customers: (0..n as u32).collect(),
            as_of,
            info,
            columns,
            config: FeatureConfig::default(),
        },
        labels: label.map(|_| labels),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The row of the first NaN or infinity in a column whose other values are all numbers.
fn non_finite_in_numbers(raw: &[Option<String>]) -> Option<usize> {
    let mut first = None;
    for (row, v) in raw.iter().enumerate() {
        let Some(v) = v else { continue };
        let t = v.trim().to_ascii_lowercase();
        match t.parse::<f64>() {
            Ok(x) if x.is_finite() => {}
            Ok(_) => {
                first.get_or_insert(row);
            }
            Err(_) if t == "true" || t == "false" => {}
            Err(_) => return None,
        }
    }
    first
}

fn infer(raw: Vec<Option<String>>) -> Values {
    let number = |s: &str| -> Option<f64> {
        match s.to_ascii_lowercase().as_str() {
            "true" => Some(1.0),
            "false" => Some(0.0),
            other => other.parse::<f64>().ok().filter(|v| v.is_finite()),
        }
    };
    if raw.iter().flatten().all(|s| number(s).is_some()) && raw.iter().any(Option::is_some) {
        Values::Numeric(raw.iter().map(|v| v.as_deref().and_then(number)).collect())
    } else {
        Values::Categorical(raw)
    }
}

/// The date range of a table's `as_of` column, formatted, for messages.
pub fn describe_dates(t: &FeatureTable) -> String {
    let dates = t.as_of.iter().flatten();
    match (dates.clone().min(), dates.max()) {
        (Some(a), Some(b)) if a == b => time::format_date(*a),
        (Some(a), Some(b)) => format!("{} to {}", time::format_date(*a), time::format_date(*b)),
        _ if t.is_empty() => "no rows".into(),
        _ => "no dates".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_labelled_table_with_blank_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "id,tenure,contract,total,Churn\na,1,month,29.85,No\nb,34,year,,Yes\nc,2,month,108.15,yes\n").unwrap();
        let t = read_table(&p, Some("id"), Some("Churn")).unwrap();
        assert_eq!(t.labels, Some(vec![0, 1, 1]));
        assert_eq!(t.table.customer_ids, ["a", "b", "c"]);
        assert_eq!(t.table.number("total", 1), None);
        assert_eq!(t.table.number("tenure", 1), Some(34.0));
        assert_eq!(t.table.category("contract", 2), Some("month"));
        let e = read_table(&p, Some("id"), Some("Churned"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing required column `Churned`") && e.contains("label column"),
            "{e}"
        );
        // NaN spelled out in a numeric column: refused, not turned into a category.
        std::fs::write(&p, "id,x,y,Churn\na,1,u,0\nb,inf,v,1\nc,3,NaN,1\n").unwrap();
        let e = read_table(&p, Some("id"), Some("Churn"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("column `x`") && e.contains("found `inf`"),
            "{e}"
        );
        std::fs::write(&p, "id,x,x,Churn\na,1,2,0\n").unwrap();
        let e = read_table(&p, Some("id"), Some("Churn"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("column `x` appears twice"), "{e}");
        let wide: String = (0..3000).map(|k| format!("c{k},")).collect();
        std::fs::write(&p, format!("{wide}Churn\n")).unwrap();
        let e = read_table(&p, None, Some("Churn")).unwrap_err().to_string();
        assert!(e.contains("3001 columns; at most 2048"), "{e}");
        std::fs::write(&p, "id,x,Churn\na,1,maybe\n").unwrap();
        let e = read_table(&p, Some("id"), Some("Churn"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("`Churn`") && e.contains("found `maybe`"),
            "{e}"
        );
    }
}
