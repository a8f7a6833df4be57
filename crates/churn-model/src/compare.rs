//! A new model against the one it would replace, on the same rows: the evidence
//! `churn-train train --compare-to` prints and `--promote-if-better` acts on.
//!
//! The rows are the new run's backtest test rows, each predicted out of time by the new
//! candidate; the previous model scores the same feature rows. Only rows whose label
//! window opens after the previous model's training labels closed are fair to it and to
//! the new one alike; when too few of those hold churners, every backtest row is used
//! and the comparison says that it favours the previous model (it saw their outcomes).

use crate::artifact::Artifact;
use crate::preprocess::PrepError;
use crate::train::{Evaluation, TrainOutcome};
use churn_features::features::FeatureTable;
use churn_features::time::{self, Day};
use serde::Serialize;

/// Churners the rows unseen by the previous model need for a comparison of their own.
pub const MIN_UNSEEN_CHURNERS: usize = 30;

/// Why two models cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("the previous model predicts {previous} days ahead and the new one {new}: compare models of one horizon")]
    Horizon { previous: i32, new: i32 },
    #[error("the previous model was trained with other feature windows ({previous}) than the new one ({new}): compare models built with the same windows")]
    Windows { previous: String, new: String },
    #[error("scoring the comparison rows with the previous model: {0}")]
    Prep(#[from] PrepError),
}

/// The comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The previous model's name and version.
    pub previous: String,
    pub rows: usize,
    pub positives: usize,
    /// The rows' first and last observation dates.
    pub from: Option<String>,
    pub to: Option<String>,
    /// True when every row's outcome was unknown to the previous model; false when the
    /// rows overlap its training (the figures then favour it).
    pub unseen_by_previous: bool,
    /// The new model's out-of-time backtest predictions on the rows.
    pub new: Evaluation,
    /// The previous model's predictions on the same rows.
    pub previous_model: Evaluation,
    /// The new model's log loss is lower (the trainer's own criterion).
    pub better: bool,
}

/// Compares the new run (`outcome` on `table` with `labels`, horizon `horizon_days`)
/// with `previous`.
pub fn compare(
    previous: &Artifact,
    outcome: &TrainOutcome,
    table: &FeatureTable,
    labels: &[u8],
    horizon_days: i32,
) -> Result<Comparison, CompareError> {
    if previous.horizon_days != horizon_days {
        return Err(CompareError::Horizon {
            previous: previous.horizon_days,
            new: horizon_days,
        });
    }
    if previous.feature_config != table.config {
        return Err(CompareError::Windows {
            previous: format!("{:?}", previous.feature_config),
            new: format!("{:?}", table.config),
        });
    }
    let labels_until: Option<Day> = previous
        .profile
        .as_ref()
        .and_then(|p| p.last_as_of.as_deref())
        .and_then(time::parse_date)
        .map(|d| d + horizon_days);
    let all: Vec<usize> = (0..outcome.pooled_rows.len()).collect();
    let unseen: Vec<usize> = match labels_until {
        Some(until) => all
            .iter()
            .copied()
            .filter(|&k| table.as_of[outcome.pooled_rows[k]].is_some_and(|d| d >= until))
            .collect(),
        None => Vec::new(),
    };
    let unseen_churners = unseen
        .iter()
        .filter(|&&k| labels[outcome.pooled_rows[k]] == 1)
        .count();
    let (picked, unseen_by_previous) = if unseen_churners >= MIN_UNSEEN_CHURNERS {
        (unseen, true)
    } else {
        (all, false)
    };
    let rows: Vec<usize> = picked.iter().map(|&k| outcome.pooled_rows[k]).collect();
    let y: Vec<u8> = rows.iter().map(|&r| labels[r]).collect();
    let p_new: Vec<f64> = picked.iter().map(|&k| outcome.pooled.0[k]).collect();
    let p_previous = previous.model.predict_table(table, &rows)?;
    let new = Evaluation::of(&p_new, &y, outcome.model.threshold);
    let previous_model = Evaluation::of(&p_previous, &y, previous.model.threshold);
    let dates = rows.iter().filter_map(|&r| table.as_of[r]);
    Ok(Comparison {
        previous: format!("{} {}", previous.name, previous.version),
        rows: y.len(),
        positives: new.positives,
        from: dates.clone().min().map(time::format_date),
        to: dates.max().map(time::format_date),
        unseen_by_previous,
        better: new.log_loss < previous_model.log_loss,
        new,
        previous_model,
    })
}
