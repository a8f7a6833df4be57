//! The data side of churn: the input data contract and its readers, point-in-time
//! features, labels and the rule-based scores of the retention playbook.
//!
//! - [`contract`] describes the tables a data directory holds;
//! - [`read`] streams CSV / Parquet files as Arrow batches with typed, checked cells;
//! - [`mod@write`] writes tables atomically (temp file, then rename);
//! - [`dataset::Dataset`] loads a data directory (events are streamed, never held);
//! - [`periods`] merges subscriptions into active periods (churn = end of one);
//! - [`features`] computes point-in-time feature rows for any number of as-of dates;
//! - [`labels`] picks observation dates and labels churn within a horizon;
//! - [`rules`] is the retention playbook (health score, signals, interventions);
//! - [`table`] reads plain feature tables (CSV or Parquet, one row per customer).
//!
//! ```
//! use churn_features::{features, labels, rules, time, Dataset};
//!
//! let dir = std::env::temp_dir().join(format!("churn-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(
//!     dir.join("subscriptions.csv"),
//!     "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,99,pro\nB,2024-01-01,2024-03-20,49,basic\n",
//! )
//! .unwrap();
//! std::fs::write(
//!     dir.join("events.csv"),
//!     "customer_id,timestamp,event_type\nA,2024-02-28T09:00:00Z,login\nA,2024-03-02T09:00:00Z,login\n",
//! )
//! .unwrap();
//! let ds = Dataset::open(&dir).unwrap();
//!
//! // Features as of March 1 use only what happened before it: one login, not two.
//! let as_of = time::parse_date("2024-03-01").unwrap();
//! let table = features::features(&ds, as_of, &features::FeatureConfig::default()).unwrap();
//! let a = table.customer_ids.iter().position(|c| c == "A").unwrap();
//! assert_eq!(table.number("events_login_28d", a), Some(1.0));
//!
//! // B's subscription ends on March 20, within 30 days: label 1.
//! let b = &ds.customers[ds.customer("B").unwrap() as usize];
//! assert_eq!(labels::label(b, as_of, 30, 7), Some(1));
//!
//! // The playbook on A's row: 0.25 logins a week fires the low-login signal.
//! let result = rules::score(&rules::RuleInputs::from_table(&table, a), &rules::RulesConfig::default());
//! assert!(result.fired().any(|s| s.kind == rules::SignalKind::LowLoginFrequency));
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

pub mod contract;
pub mod dataset;
pub mod error;
pub mod features;
pub mod labels;
pub mod periods;
pub mod read;
pub mod rules;
pub mod table;
pub mod time;
pub mod write;

pub use dataset::Dataset;
pub use error::{DataError, Result};
