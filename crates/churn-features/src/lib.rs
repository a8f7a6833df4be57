//! The data side of churn: the input data contract and its readers, point-in-time
//! features, labels and the rule-based scores of the retention playbook.
//!
//! - [`contract`] describes the tables a data directory holds;
//! - [`read`] streams CSV / Parquet files as Arrow batches with typed, checked cells;
//! - [`write`] writes tables atomically (temp file, then rename);
//! - [`dataset::Dataset`] loads a data directory (events are streamed, never held).

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
