//! Saving a training run as a model version: `model.bin` (with probe rows), the model
//! card (`model.json`), `report.json` and `report.html`, in a new version directory
//! named after the time, with `LATEST` moved to it.

use crate::artifact::{self, Artifact, ArtifactError};
use crate::card::{self, ModelCard, TrainingData};
use crate::preprocess::PrepError;
use crate::report::{self, ReportContext};
use crate::train::{self, TrainOutcome};
use churn_features::features::FeatureTable;
use churn_features::rules::RulesConfig;
use churn_features::time;
use std::path::{Path, PathBuf};

/// A finished training run and what it was trained on.
pub struct Run<'a> {
    pub outcome: &'a TrainOutcome,
    /// The labelled rows (features as of each row's date).
    pub table: &'a FeatureTable,
    pub labels: &'a [u8],
    pub rules: &'a RulesConfig,
    /// Prediction horizon in days (0 for a plain table without dates).
    pub horizon_days: i32,
    pub seed: u64,
    /// The data directory or table, as the user named it.
    pub source: &'a str,
    /// SHA-256 over the input files.
    pub sha256: String,
}

/// A saved version.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The version directory.
    pub dir: PathBuf,
    pub version: String,
    pub rows: usize,
    pub positives: usize,
}

/// Why a run could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("scoring the probe rows kept with the model: {0}")]
    Probes(#[from] PrepError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("writing the model card or report: {0}")]
    Json(#[from] serde_json::Error),
}

/// Saves `run` as a new version of model `name` under `models_dir`.
pub fn save(models_dir: &Path, name: &str, run: &Run) -> Result<Saved, PublishError> {
    let created = chrono::Utc::now();
    let created_text = created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let stamp = created.format("%Y%m%dT%H%M%SZ").to_string();
    let mut version = stamp.clone();
    let mut k = 2;
    while models_dir.join(name).join(&version).exists() {
        version = format!("{stamp}-{k}");
        k += 1;
    }
    let table = run.table;
    let mut artifact = Artifact {
        name: name.to_string(),
        version: version.clone(),
        model: run.outcome.model.clone(),
        features: table.info.clone(),
        rules: run.rules.clone(),
        horizon_days: run.horizon_days,
        rules_apply: train::rules_apply(table),
        probes: Vec::new(),
        feature_config: table.config.clone(),
    };
    artifact.record_probes(table)?;
    let positives = run.labels.iter().filter(|&&l| l == 1).count();
    let last_as_of = table.as_of.iter().flatten().copied().max();
    let training_data = TrainingData {
        last_as_of: last_as_of.map(time::format_date),
        labels_until: last_as_of.map(|d| time::format_date(d + run.horizon_days)),
        source: run.source.to_string(),
        sha256: run.sha256.clone(),
        rows: run.labels.len(),
        positives,
        final_fit_rows: run.outcome.final_fit_rows,
        final_calibration_rows: run.outcome.final_calibration_rows,
    };
    let card = ModelCard::new(
        &artifact,
        run.outcome,
        &created_text,
        run.seed,
        training_data,
    );
    let ctx = ReportContext {
        name,
        version: &version,
        source: run.source,
        rows: run.labels.len(),
        positives,
        features: table.info.len(),
        horizon_days: run.horizon_days,
        created: &created_text,
    };
    let html = report::html(run.outcome, &ctx);
    let dir = artifact::save(
        models_dir,
        &artifact,
        &[
            (card::FILE, serde_json::to_vec_pretty(&card)?),
            ("report.json", serde_json::to_vec_pretty(run.outcome)?),
            ("report.html", html.into_bytes()),
        ],
    )?;
    Ok(Saved {
        dir,
        version,
        rows: run.labels.len(),
        positives,
    })
}
