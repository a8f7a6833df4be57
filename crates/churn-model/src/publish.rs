//! Saving a training run as a model version: `model.bin` (with probe rows), the model
//! card (`model.json`), `report.json` and `report.html`, in a new version directory
//! named after the time, with `LATEST` moved to it.

use crate::artifact::{self, Artifact, ArtifactError};
use crate::card::{self, ModelCard, TrainingData};
use crate::compare::Comparison;
use crate::preprocess::PrepError;
use crate::profile::Profile;
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
    /// The new version against the one serving (`--compare-to`), saved with it.
    pub comparison: Option<&'a Comparison>,
    /// Move `LATEST` to the new version.
    pub promote: bool,
    /// The survival model trained beside the classifier, saved with it.
    pub survival: Option<&'a crate::survival::SurvivalModel>,
    /// Its backtest, saved as `survival.json` and shown in the report.
    pub survival_report: Option<&'a crate::survival_backtest::SurvivalReport>,
}

impl<'a> Run<'a> {
    /// A run trained by [`train::train_examples`] or [`train::train_table`].
    pub fn of(
        trained: &'a train::Trained,
        rules: &'a RulesConfig,
        seed: u64,
        source: &'a str,
        sha256: String,
    ) -> Run<'a> {
        Run {
            outcome: &trained.outcome,
            table: &trained.table,
            labels: &trained.labels,
            rules,
            horizon_days: trained.horizon_days,
            seed,
            source,
            sha256,
            comparison: None,
            promote: true,
            survival: trained.survival.as_ref(),
            survival_report: trained.survival_report.as_ref(),
        }
    }
}

/// A saved version.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The version directory.
    pub dir: PathBuf,
    pub version: String,
    pub rows: usize,
    pub positives: usize,
    /// `LATEST` names it now.
    pub promoted: bool,
}

/// Why a run could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("scoring the probe rows kept with the model: {0}")]
    Probes(#[from] PrepError),
    #[error("scoring the latest training rows for the model's reference profile: {0}")]
    Profile(PrepError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("writing the model card or report: {0}")]
    Json(#[from] serde_json::Error),
}

/// What a training run wrote and how it did in the backtest: `churn-train train --json`.
#[derive(Debug, serde::Serialize)]
pub struct RunSummary<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The model version directory.
    pub path: String,
    pub report: String,
    pub chosen: &'a str,
    pub validation: &'a str,
    pub search: train::Search,
    pub horizon_days: i32,
    pub examples: usize,
    pub churners: usize,
    /// The chosen model over every fold's test rows pooled.
    pub backtest: &'a train::Evaluation,
    /// The health score as a ranker on the same rows (none for a plain table).
    pub rules_health: Option<&'a crate::metrics::RankingMetrics>,
    pub rules_rank_as_well: bool,
    pub candidates: &'a [train::CandidateScore],
    /// Single features that rank churners suspiciously well (possible leakage).
    pub suspicious: &'a [train::Suspicion],
    /// The new version against the previous one (`--compare-to`).
    pub comparison: Option<&'a Comparison>,
    /// Whether `LATEST` moved to the new version.
    pub promoted: bool,
    /// The survival model's backtest (trained on a data directory).
    pub survival: Option<&'a crate::survival_backtest::SurvivalReport>,
    pub seconds: f64,
}

impl<'a> RunSummary<'a> {
    /// The summary of run `trained` of model `name`, saved as `saved`.
    pub fn new(
        name: &'a str,
        trained: &'a train::Trained,
        saved: &'a Saved,
        comparison: Option<&'a Comparison>,
        seconds: f64,
    ) -> Self {
        let outcome = &trained.outcome;
        RunSummary {
            name,
            version: &saved.version,
            path: saved.dir.display().to_string(),
            report: saved.dir.join("report.html").display().to_string(),
            chosen: outcome.chosen.as_str(),
            validation: outcome.validation,
            search: outcome.search,
            horizon_days: trained.horizon_days,
            examples: saved.rows,
            churners: saved.positives,
            backtest: &outcome.overall,
            rules_health: outcome.rules_health.as_ref(),
            rules_rank_as_well: outcome.rules_rank_as_well().is_some(),
            candidates: &outcome.candidates,
            suspicious: &outcome.suspicious,
            comparison,
            promoted: saved.promoted,
            survival: trained.survival_report.as_ref(),
            seconds,
        }
    }
}

/// SHA-256 over the names and bytes of files, in name order: what a model card records
/// of the data a model was trained on.
pub fn fingerprint(paths: &[PathBuf]) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut paths = paths.to_vec();
    paths.sort();
    let mut h = Sha256::new();
    for p in paths {
        h.update(
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .as_bytes(),
        );
        let mut f = std::fs::File::open(&p)
            .map_err(|e| std::io::Error::new(e.kind(), format!("reading {}: {e}", p.display())))?;
        std::io::copy(&mut f, &mut h)
            .map_err(|e| std::io::Error::new(e.kind(), format!("reading {}: {e}", p.display())))?;
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The SHA-256 of a text (a database snapshot's description), as [`fingerprint`]
/// gives it for files.
pub fn fingerprint_text(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The table files of a data directory (what [`fingerprint`] covers for it).
pub fn data_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("listing {}: {e}", dir.display())))?
    {
        let p = e?.path();
        if p.is_file() && churn_features::read::Format::from_path(&p).is_some() {
            out.push(p);
        }
    }
    Ok(out)
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
        profile: Some(
            Profile::of(&run.outcome.model, table, run.labels, run.outcome)
                .map_err(PublishError::Profile)?,
        ),
        survival: run.survival.cloned(),
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
    let html = report::html(run.outcome, run.survival_report, &ctx);
    let mut files = vec![
        (card::FILE, serde_json::to_vec_pretty(&card)?),
        ("report.json", serde_json::to_vec_pretty(run.outcome)?),
        ("report.html", html.into_bytes()),
    ];
    if let Some(c) = run.comparison {
        files.push(("comparison.json", serde_json::to_vec_pretty(c)?));
    }
    if let Some(r) = run.survival_report {
        files.push(("survival.json", serde_json::to_vec_pretty(r)?));
    }
    let dir = artifact::save_with(models_dir, &artifact, &files, run.promote)?;
    Ok(Saved {
        dir,
        version,
        rows: run.labels.len(),
        positives,
        promoted: run.promote,
    })
}
