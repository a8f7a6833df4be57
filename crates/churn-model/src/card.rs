//! `model.json`, the model card: what a saved model version is, for people and tools
//! (`model.bin` is what scores). Written by the trainer; its training data section is
//! read back by `evaluate` to refuse dates the model learned from.

use crate::artifact::{Artifact, FORMAT_VERSION};
use crate::calibrate::Calibrator;
use crate::model::{Estimator, ModelKind};
use crate::preprocess::Transform;
use crate::survival::SurvivalModel;
use crate::train::{CandidateScore, Evaluation, TrainOutcome};
use churn_features::features::{FeatureConfig, FeatureInfo};
use churn_features::rules::RulesConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file name of the card in a version directory.
pub const FILE: &str = "model.json";

/// The model card.
#[derive(Debug, Serialize)]
pub struct ModelCard<'a> {
    pub format_version: u32,
    pub name: &'a str,
    pub version: &'a str,
    pub model_kind: ModelKind,
    /// RFC 3339, to the second.
    pub created: &'a str,
    /// The version of the crates that trained it.
    pub crate_version: &'a str,
    pub seed: u64,
    pub horizon_days: i32,
    pub validation: &'a str,
    pub features: &'a [FeatureInfo],
    /// The windows the features were computed with (their names follow them).
    pub feature_settings: &'a FeatureConfig,
    pub model_inputs: &'a [String],
    pub preprocessing: &'a [Transform],
    pub calibration: &'a Calibrator,
    pub threshold: f64,
    pub estimator: &'a Estimator,
    pub rules_apply: bool,
    pub rules: &'a RulesConfig,
    /// The chosen candidate's pooled backtest (or cross-validation) figures.
    pub metrics: &'a Evaluation,
    pub candidates: &'a [CandidateScore],
    /// The survival model, when trained (docs/survival.md): its preprocessing, hazard
    /// weights, baseline per group of months, tenure effect, how the score's effect
    /// changes with the months ahead, the last month its data observed (`follow_up`)
    /// and the average survivor's score used past it (`beyond_score`), and the CLV
    /// settings. Its backtest is in `survival.json`.
    pub survival: Option<&'a SurvivalModel>,
    pub training_data: TrainingData,
}

/// What the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// The last observation date trained on (none for a plain table).
    pub last_as_of: Option<String>,
    /// The end of that date's label window: evaluating before it would score outcomes
    /// the model learned from.
    pub labels_until: Option<String>,
    /// The data directory or table.
    pub source: String,
    /// SHA-256 over the input files.
    pub sha256: String,
    pub rows: usize,
    pub positives: usize,
    pub final_fit_rows: usize,
    pub final_calibration_rows: usize,
}

impl<'a> ModelCard<'a> {
    /// The card of `artifact`, trained as `outcome` says.
    pub fn new(
        artifact: &'a Artifact,
        outcome: &'a TrainOutcome,
        created: &'a str,
        seed: u64,
        training_data: TrainingData,
    ) -> ModelCard<'a> {
        let m = &artifact.model;
        ModelCard {
            format_version: FORMAT_VERSION,
            name: &artifact.name,
            version: &artifact.version,
            model_kind: outcome.chosen,
            created,
            crate_version: env!("CARGO_PKG_VERSION"),
            seed,
            horizon_days: artifact.horizon_days,
            validation: outcome.validation,
            features: &artifact.features,
            feature_settings: &artifact.feature_config,
            model_inputs: &m.preprocessor.output_names,
            preprocessing: &m.preprocessor.transforms,
            calibration: &m.calibrator,
            threshold: m.threshold,
            estimator: &m.estimator,
            rules_apply: artifact.rules_apply,
            rules: &artifact.rules,
            metrics: &outcome.overall,
            candidates: &outcome.candidates,
            survival: artifact.survival.as_ref(),
            training_data,
        }
    }
}

/// The training data section of the card in a version directory; `None` when the
/// card is missing or unreadable (a model copied without it).
pub fn training_data(version_dir: &Path) -> Option<TrainingData> {
    #[derive(Deserialize)]
    struct Card {
        training_data: TrainingData,
    }
    let bytes = std::fs::read(version_dir.join(FILE)).ok()?;
    serde_json::from_slice::<Card>(&bytes)
        .ok()
        .map(|c| c.training_data)
}
