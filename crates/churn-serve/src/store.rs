//! The online feature store: a feature table (as `churn-train features` writes it) held in
//! memory and keyed by customer id.

use churn_features::error::DataError;
use churn_features::features::FeatureTable;
use churn_features::table::read_table;
use churn_features::time::format_date;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A feature table with an index by customer id (the latest `as_of` row per customer).
#[derive(Debug)]
pub struct FeatureStore {
    pub path: PathBuf,
    pub table: FeatureTable,
    index: HashMap<String, usize>,
}

impl FeatureStore {
    /// Reads the table; a customer with rows for several dates keeps its latest.
    pub fn open(path: &Path) -> Result<FeatureStore, DataError> {
        let loaded = read_table(path, Some("customer_id"), None)?;
        let table = loaded.table;
        let mut index: HashMap<String, usize> = HashMap::with_capacity(table.len());
        for (row, id) in table.customer_ids.iter().enumerate() {
            match index.get(id) {
                Some(&old) if table.as_of[old] > table.as_of[row] => {}
                _ => {
                    index.insert(id.clone(), row);
                }
            }
        }
        Ok(FeatureStore {
            path: path.to_path_buf(),
            table,
            index,
        })
    }

    /// Number of customers.
    pub fn customers(&self) -> usize {
        self.index.len()
    }

    /// The row of a customer.
    pub fn row(&self, customer_id: &str) -> Option<usize> {
        self.index.get(customer_id).copied()
    }

    /// The as-of date of a row, formatted (`None` for a table without dates).
    pub fn as_of(&self, row: usize) -> Option<String> {
        self.table.as_of[row].map(format_date)
    }
}
