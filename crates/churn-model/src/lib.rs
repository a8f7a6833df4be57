//! Churn models: preprocessing, classifiers, calibration, metrics and the rules
//! baseline.
//!
//! - [`preprocess::Preprocessor`] turns feature rows into model inputs (fitted on
//!   training rows only);
//! - [`logistic::LinearModel`] is the L2 logistic regression, [`gbm::TreeModel`] the
//!   gradient-boosted trees, [`forest::ForestModel`] the random forest;
//! - [`calibrate::Calibrator`] maps raw scores to calibrated probabilities;
//! - [`metrics`] and [`baseline`] measure scores against labels;
//! - [`train`] fits, calibrates and backtests candidates; [`artifact`] saves and loads
//!   the versioned model; [`report`] renders the HTML report.
//!
//! ```
//! use churn_features::{features::FeatureConfig, labels, rules::RulesConfig, Dataset};
//! use churn_model::model::ModelKind;
//! use churn_model::train::{train_over_time, TrainConfig};
//!
//! let dir = std::env::temp_dir().join(format!("churn-model-doc-{}", std::process::id()));
//! let sim = churn_sim::SimConfig { customers: 200, months: 7, ..Default::default() };
//! churn_sim::generate(&sim, &dir, |_, _| {}).unwrap();
//! let ds = Dataset::open(&dir).unwrap();
//! let dates = labels::observation_dates(&ds, 30);
//! let ex = labels::examples(&ds, &dates, 30, &FeatureConfig::default(), &|_| {}).unwrap();
//!
//! let cfg = TrainConfig { kinds: vec![ModelKind::Logistic], folds: Some(2), seed: 1, ..Default::default() };
//! let outcome = train_over_time(&ex, &cfg, &RulesConfig::default(), &|_, _| {}).unwrap();
//! assert_eq!(outcome.folds.len(), 2);
//! let p = outcome.model.predict_table(&ex.features, &[0, 1, 2]).unwrap();
//! assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

pub mod artifact;
pub mod baseline;
pub mod calibrate;
pub mod card;
pub mod compare;
pub mod forest;
pub mod gbm;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod profile;
pub mod publish;
pub mod report;
pub mod risk;
pub mod survival;
pub mod survival_backtest;
pub mod survival_eval;
pub mod train;
