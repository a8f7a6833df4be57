//! The verdict's thresholds, with documented defaults, readable from a TOML file
//! (`monitor.toml`; every key optional).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a thresholds file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: `{key}` {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// Every threshold of the verdict.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub inputs: InputThresholds,
    pub scores: ScoreThresholds,
    pub performance: PerformanceThresholds,
    pub calibration: CalibrationThresholds,
}

/// Input drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputThresholds {
    /// An input whose PSI reaches this is flagged: `watch`.
    pub psi_watch: f64,
    /// An important input whose PSI reaches this: `retrain`.
    pub psi_retrain: f64,
    /// An input is important when its share of the model's importance reaches this.
    pub important_share: f64,
    /// A change of the missing share by this much (absolute): `watch`.
    pub missing_change: f64,
    /// Categories the training data never had, on this share of rows: `watch`.
    pub unseen_share: f64,
}

/// Prediction drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreThresholds {
    /// PSI of the predicted probabilities against the backtest's: `watch` (a riskier
    /// population is not by itself a wrong model).
    pub psi_watch: f64,
}

/// Realised ranking quality on matured dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceThresholds {
    /// Fewer churners than this on the matured dates pooled: too few to judge.
    pub min_churners: usize,
    /// The pooled realised ROC AUC below the backtest's lowest fold minus this (and
    /// below the backtest's pooled figure by more than chance): `retrain`; one matured
    /// date so: `watch`.
    pub auc_margin: f64,
}

/// Predicted against realised churn on matured dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationThresholds {
    /// Predicted / realised churn (or its inverse) reaching this: `watch`.
    pub ratio_watch: f64,
    /// ... reaching this: `retrain`.
    pub ratio_retrain: f64,
}

impl Default for InputThresholds {
    fn default() -> Self {
        InputThresholds {
            psi_watch: 0.1,
            psi_retrain: 0.25,
            important_share: 0.05,
            missing_change: 0.2,
            unseen_share: 0.05,
        }
    }
}

impl Default for ScoreThresholds {
    fn default() -> Self {
        ScoreThresholds { psi_watch: 0.1 }
    }
}

impl Default for PerformanceThresholds {
    fn default() -> Self {
        PerformanceThresholds {
            min_churners: 30,
            auc_margin: 0.0,
        }
    }
}

impl Default for CalibrationThresholds {
    fn default() -> Self {
        CalibrationThresholds {
            ratio_watch: 1.25,
            ratio_retrain: 1.5,
        }
    }
}

impl Thresholds {
    /// Reads a thresholds file; keys left out keep their defaults.
    pub fn load(path: &Path) -> Result<Thresholds, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let t: Thresholds = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        t.validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                key: key.into(),
                message,
            })?;
        Ok(t)
    }

    /// Checks what types cannot: positive thresholds, watch below retrain.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("inputs.psi_watch", self.inputs.psi_watch),
            ("inputs.psi_retrain", self.inputs.psi_retrain),
            ("inputs.missing_change", self.inputs.missing_change),
            ("inputs.unseen_share", self.inputs.unseen_share),
            ("scores.psi_watch", self.scores.psi_watch),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err((key, format!("must be a number above 0, got {v}")));
            }
        }
        let share = self.inputs.important_share;
        if !(0.0..=1.0).contains(&share) {
            return Err((
                "inputs.important_share",
                format!("must be from 0 to 1, got {share}"),
            ));
        }
        if self.inputs.psi_watch > self.inputs.psi_retrain {
            return Err((
                "inputs.psi_watch",
                format!(
                    "must not exceed inputs.psi_retrain ({}), got {}",
                    self.inputs.psi_retrain, self.inputs.psi_watch
                ),
            ));
        }
        let c = &self.calibration;
        if !(c.ratio_watch.is_finite() && c.ratio_watch > 1.0) {
            return Err((
                "calibration.ratio_watch",
                format!("must be above 1, got {}", c.ratio_watch),
            ));
        }
        if !(c.ratio_retrain.is_finite() && c.ratio_retrain >= c.ratio_watch) {
            return Err((
                "calibration.ratio_retrain",
                format!(
                    "must be at least calibration.ratio_watch ({}), got {}",
                    c.ratio_watch, c.ratio_retrain
                ),
            ));
        }
        let m = self.performance.auc_margin;
        if !(m.is_finite() && (0.0..0.5).contains(&m)) {
            return Err((
                "performance.auc_margin",
                format!("must be from 0 to below 0.5, got {m}"),
            ));
        }
        Ok(())
    }
}
