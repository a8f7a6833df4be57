//! Fixtures shared by the tests and benchmarks of the serving crates: a simulated data
//! set, its feature rows and a small model trained on them through the product's own
//! code (no hand-made weights), saved as a real artifact.

pub mod http;
pub mod postgres;

use churn_features::features::{FeatureConfig, FeatureTable};
use churn_features::labels::{self, Examples};
use churn_features::rules::RulesConfig;
use churn_features::time::Day;
use churn_features::Dataset;
use churn_model::artifact::{self, Artifact};
use churn_model::model::ModelKind;
use churn_model::train::fit_candidate;
use std::path::{Path, PathBuf};

/// A simulated data directory with its labelled examples.
pub struct Fixture {
    pub data: PathBuf,
    pub examples: Examples,
}

/// Simulates `customers` customers over 8 months into `dir` and builds 30-day examples.
pub fn simulate(dir: &Path, customers: u64, seed: u64) -> Fixture {
    let cfg = churn_sim::SimConfig {
        customers,
        months: 8,
        seed,
        ..Default::default()
    };
    churn_sim::generate(&cfg, dir, |_, _| {}).expect("simulate");
    let ds = Dataset::open(dir).expect("open simulated data");
    let dates = labels::observation_dates(&ds, 30);
    let examples =
        labels::examples(&ds, &dates, 30, &FeatureConfig::default(), &|_| {}).expect("examples");
    Fixture {
        data: dir.to_path_buf(),
        examples,
    }
}

/// Fits a model of `kind` on the fixture's examples (even rows fit, odd rows calibrate)
/// and returns it as an artifact named `name`, version `version`.
pub fn train(fx: &Fixture, kind: ModelKind, name: &str, version: &str) -> Artifact {
    let n = fx.examples.features.len();
    let fit: Vec<usize> = (0..n).step_by(2).collect();
    let calib: Vec<usize> = (1..n).step_by(2).collect();
    let model = fit_candidate(
        kind,
        &fx.examples.features,
        &fx.examples.labels,
        &fit,
        &calib,
        7,
    )
    .expect("fit")
    .model;
    let mut a = Artifact {
        name: name.into(),
        version: version.into(),
        model: model.clone(),
        features: fx.examples.features.info.clone(),
        rules: RulesConfig::default(),
        horizon_days: 30,
        rules_apply: true,
        probes: Vec::new(),
        feature_config: fx.examples.features.config.clone(),
        profile: None,
        survival: survival(fx, &model).map(|(m, _)| m),
    };
    a.record_probes(&fx.examples.features).expect("probe rows");
    a
}

/// The survival model of the fixture's examples and its backtest, fitted as the trainer
/// fits them beside `classifier`.
pub fn survival(
    fx: &Fixture,
    classifier: &churn_model::model::ChurnModel,
) -> Option<(
    churn_model::survival::SurvivalModel,
    Option<churn_model::survival_backtest::SurvivalReport>,
)> {
    let ds = Dataset::open(&fx.data).expect("open simulated data");
    let grace = fx.examples.features.config.grace_days;
    churn_model::train::fit_survival(
        &ds,
        &fx.examples.features,
        grace,
        classifier,
        churn_model::survival::ClvSettings::default(),
    )
    .expect("fit survival")
}

/// Trains model `name` on the fixture's examples with the trainer itself (logistic, no
/// search, two backtest folds) and saves it under `models_dir` as `churn-train train`
/// does: the artifact has its reference profile, the version directory its report.
/// Returns the version directory.
pub fn train_and_publish(fx: &Fixture, models_dir: &Path, name: &str) -> PathBuf {
    let cfg = churn_model::train::TrainConfig {
        kinds: vec![ModelKind::Logistic],
        folds: Some(2),
        search: churn_model::train::Search::None,
        seed: 7,
        ..Default::default()
    };
    let rules = RulesConfig::default();
    let outcome =
        churn_model::train::train_over_time(&fx.examples, &cfg, &rules, &|_, _| {}).expect("train");
    let survival = survival(fx, &outcome.model);
    let run = churn_model::publish::Run {
        outcome: &outcome,
        table: &fx.examples.features,
        labels: &fx.examples.labels,
        rules: &rules,
        horizon_days: fx.examples.horizon_days,
        seed: 7,
        source: "simulated",
        sha256: String::new(),
        comparison: None,
        promote: true,
        survival: survival.as_ref().map(|(m, _)| m),
        survival_report: survival.as_ref().and_then(|(_, r)| r.as_ref()),
    };
    churn_model::publish::save(models_dir, name, &run)
        .expect("save model")
        .dir
}

/// Saves an artifact under `models_dir` (moving `LATEST` to it).
pub fn save(models_dir: &Path, a: &Artifact) -> PathBuf {
    artifact::save(models_dir, a, &[]).expect("save model")
}

/// The feature rows of the latest observation date of the fixture.
pub fn latest_rows(fx: &Fixture) -> (Day, FeatureTable) {
    let ds = Dataset::open(&fx.data).expect("open");
    let as_of = *fx.examples.dates.last().expect("a date");
    let t = churn_features::features::features(&ds, as_of, &FeatureConfig::default())
        .expect("features");
    (as_of, t)
}

/// The Parquet logical type of each column of a Parquet file, as `(column, type)`, where
/// the type is `Timestamp(TimestampType { is_adjusted_to_u_t_c: true, unit: MICROS })`, `Date`, `String` and
/// so on (the `parquet` crate's names), or `none (INT64)` (the physical type) for a
/// column without one, which readers other than arrow-rs show as a bare number.
pub fn parquet_logical_types(path: &Path) -> Vec<(String, String)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).expect("open Parquet file");
    let reader = SerializedFileReader::new(file).expect("read Parquet metadata");
    reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| {
            let ty = match c.logical_type_ref() {
                Some(t) => format!("{t:?}"),
                None => format!("none ({:?})", c.physical_type()),
            };
            (c.name().to_string(), ty)
        })
        .collect()
}

/// Every row of a table file (`churn-score` output, a feature table) as column -> text,
/// null as `None`.
pub fn read_rows(path: &Path) -> Vec<std::collections::HashMap<String, Option<String>>> {
    let file =
        churn_features::read::TableFile::at(path, &churn_features::contract::CUSTOMERS).unwrap();
    let names = file.column_names().unwrap();
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rows = Vec::new();
    file.for_each_batch(&wanted, |b| {
        for i in 0..b.len() {
            let row = names
                .iter()
                .map(|n| Ok((n.clone(), b.required(n)?.text(i))));
            rows.push(row.collect::<churn_features::error::Result<_>>()?);
        }
        Ok(())
    })
    .unwrap();
    rows
}

/// A temporary directory with a simulated base (`data/`, 300 customers, seed 17) and a
/// gbm trained on it, saved as model `churn` version `v1` under `models/`: what the
/// scorer's and the server's end-to-end tests start from.
pub struct SavedModel {
    pub dir: tempfile::TempDir,
    pub fx: Fixture,
    /// The model directory (`models/churn`).
    pub model: PathBuf,
}

impl SavedModel {
    /// Simulates, trains a gradient-boosted model and saves it.
    pub fn new() -> SavedModel {
        SavedModel::of_kind(ModelKind::Gbm)
    }

    /// Simulates, trains a model of `kind` and saves it.
    pub fn of_kind(kind: ModelKind) -> SavedModel {
        let dir = tempfile::tempdir().unwrap();
        let fx = simulate(&dir.path().join("data"), 300, 17);
        let models = dir.path().join("models");
        save(&models, &train(&fx, kind, "churn", "v1"));
        SavedModel {
            model: models.join("churn"),
            dir,
            fx,
        }
    }
}

impl Default for SavedModel {
    fn default() -> Self {
        SavedModel::new()
    }
}
