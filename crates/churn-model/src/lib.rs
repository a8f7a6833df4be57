//! Churn models: preprocessing, classifiers, calibration, metrics and the rules
//! baseline.
//!
//! - [`preprocess::Preprocessor`] turns feature rows into model inputs (fitted on
//!   training rows only);
//! - [`logistic::LinearModel`] is the L2 logistic regression, [`gbm::TreeModel`] the
//!   gradient-boosted trees, [`forest::ForestModel`] the random forest;
//! - [`calibrate::Calibrator`] maps raw scores to calibrated probabilities;
//! - [`metrics`] and [`baseline`] measure scores against labels.

pub mod artifact;
pub mod baseline;
pub mod calibrate;
pub mod forest;
pub mod gbm;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod report;
pub mod train;
