//! Fitting, calibrating and validating candidates.
//!
//! Every candidate is fitted on one set of rows, has its regularisation chosen and its
//! calibration fitted on a later, disjoint set (the latest observation date whose label
//! window closed in time, or a held-out stratified share of a plain table), and is
//! scored on rows it never saw.
//!
//! Class imbalance (about 5 % churners) is handled deliberately, not by resampling,
//! which would distort the probabilities the product reports: models are fitted on the
//! natural class balance, calibrated on held-out rows, compared by log loss and PR AUC
//! (which reward getting the rare class right), and the flagging threshold is chosen to
//! maximise F1 on the calibration rows rather than left at 0.5.

use crate::baseline::rules_baseline;
use crate::calibrate::Calibrator;
use crate::forest::{ForestModel, ForestParams, ForestSettings};
use crate::gbm::TreeModel;
use crate::logistic::{LinearModel, LogisticParams};
use crate::metrics::{self, RankingMetrics};
use crate::model::{ChurnModel, Classifier, Estimator, ModelKind};
use crate::preprocess::{model_features, PrepError, Preprocessor};
use churn_features::dataset::Values;
use churn_features::features::{FeatureKind, FeatureTable};
use churn_features::labels::Examples;
use churn_features::rules::{RulesConfig, CORE_INPUTS};
use churn_features::time::{self, Day};
use serde::Serialize;

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    #[error("{rows} rows have no `as_of` date: a table over several dates needs one on every row to be backtested out of time")]
    MissingDates { rows: usize },
    #[error(transparent)]
    Prep(#[from] PrepError),
    #[error(transparent)]
    Fit(#[from] crate::logistic::FitError),
    #[error(transparent)]
    Gbm(#[from] crate::gbm::GbmError),
    #[error(transparent)]
    Forest(#[from] crate::forest::ForestError),
    #[error("invalid setting `{name}`: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("{data}: {dates} observation date(s) with a full {horizon_days}-day horizon; the backtest needs at least 3 (more months of data)")]
    TooFewDates {
        data: String,
        dates: usize,
        horizon_days: i32,
    },
    #[error(transparent)]
    Data(#[from] churn_features::DataError),
}

/// How much the settings of each candidate are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// Fixed settings: boosting with 150 trees of depth 4, no log transform tried.
    None,
    /// Four boosting settings with early stopping; the linear model with and without
    /// log1p of counts (the default: under two minutes for the sample on 2 cores).
    #[default]
    Quick,
    /// Twelve boosting settings (depth 2 to 6, three leaf weights, two learning rates).
    Full,
}

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// How much each candidate's settings are searched.
    pub search: Search,
    pub kinds: Vec<ModelKind>,
    /// Backtest folds: the last K usable observation dates, or every usable one (an
    /// expanding window) when `None`. Cross-validation folds on a plain table (3 when
    /// `None`).
    pub folds: Option<usize>,
    pub seed: u64,
    /// How the survival model values a customer's lifetime (saved with it).
    pub clv: crate::survival::ClvSettings,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            search: Search::Quick,
            kinds: vec![ModelKind::Logistic],
            folds: None,
            seed: 42,
            clv: crate::survival::ClvSettings::default(),
        }
    }
}

impl TrainConfig {
    fn fitting(&self) -> Fitting {
        Fitting {
            seed: self.seed,
            search: self.search,
        }
    }
}

/// Metrics of calibrated probabilities against labels.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    pub positives: usize,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub brier: f64,
    pub log_loss: f64,
    pub ece: f64,
    pub lift_top10: Option<f64>,
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub predicted_churn_pct: f64,
    pub actual_churn_pct: f64,
}

impl Evaluation {
    /// Evaluates probabilities `p` against labels `y` at `threshold`.
    pub fn of(p: &[f64], y: &[u8], threshold: f64) -> Evaluation {
        let (precision, recall) = metrics::precision_recall_at(p, y, threshold);
        let n = y.len().max(1) as f64;
        Evaluation {
            rows: y.len(),
            positives: y.iter().filter(|&&v| v == 1).count(),
            roc_auc: metrics::roc_auc(p, y),
            pr_auc: metrics::pr_auc(p, y),
            brier: metrics::brier(p, y),
            log_loss: metrics::log_loss(p, y),
            ece: metrics::ece(p, y),
            lift_top10: metrics::lift(p, y, 0.1),
            threshold,
            precision,
            recall,
            predicted_churn_pct: 100.0 * p.iter().sum::<f64>() / n,
            actual_churn_pct: 100.0 * y.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
        }
    }
}

/// One candidate fitted on a fold.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateFit {
    pub kind: ModelKind,
    /// The L2 strength chosen for a linear model (none for trees).
    pub lambda: Option<f64>,
    /// What the settings search chose, in words.
    pub settings: String,
    pub calibration: &'static str,
    /// Cross-fitted log loss of Platt and isotonic calibration on the calibration rows.
    pub calibration_losses: [f64; 2],
    pub evaluation: Evaluation,
}

/// A candidate's figures over every fold's test rows pooled (what the choice rests on).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CandidateScore {
    pub model: ModelKind,
    pub pooled_log_loss: f64,
    pub pooled_pr_auc: f64,
}

/// The headline of a training run's `report.json`: what was chosen, how it was
/// validated and its pooled figures (what the server shows next to a model).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReportHeadline {
    pub chosen: ModelKind,
    pub validation: String,
    pub overall: Evaluation,
}

impl ReportHeadline {
    /// The headline of the `report.json` in a version directory; `None` when it is
    /// missing or unreadable.
    pub fn read(version_dir: &std::path::Path) -> Option<ReportHeadline> {
        let bytes = std::fs::read(version_dir.join("report.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One backtest fold or cross-validation fold.
#[derive(Debug, Clone, Serialize)]
pub struct Fold {
    /// The observation date scored, or `fold k` for a plain table.
    pub name: String,
    pub fit_rows: usize,
    pub calibration_rows: usize,
    pub test_rows: usize,
    pub candidates: Vec<CandidateFit>,
    /// Rules on the same test rows (`None` when the features cannot feed the rules).
    pub rules_health: Option<RankingMetrics>,
    pub rules_signals: Option<RankingMetrics>,
}

/// A model's metrics in one signup cohort (over all backtest test rows in the training
/// report, over matured rows in the monitor); small neighbouring cohorts are pooled (see
/// [`MIN_COHORT_ROWS`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// `YYYY-MM`, or `YYYY-MM to YYYY-MM` for pooled months.
    pub cohort: String,
    /// Signup months in the row.
    pub months: usize,
    pub rows: usize,
    pub predicted_churn_pct: f64,
    pub actual_churn_pct: f64,
    /// Every metric of the overall evaluation, on this cohort's rows.
    pub metrics: Evaluation,
}

/// A finding of the leakage guard.
#[derive(Debug, Clone, Serialize)]
pub struct Suspicion {
    pub what: String,
    pub roc_auc: f64,
    pub message: String,
}

/// Everything the trainer learned, for the artifact and the report.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    #[serde(skip)]
    pub model: ChurnModel,
    pub chosen: ModelKind,
    /// How much each candidate's settings were searched.
    pub search: Search,
    /// Each candidate over every fold's test rows pooled.
    pub candidates: Vec<CandidateScore>,
    pub folds: Vec<Fold>,
    /// Chosen model's metrics over all folds' test rows pooled.
    pub overall: Evaluation,
    /// Pooled test-row probabilities and labels of the chosen kind (for curves).
    #[serde(skip)]
    pub pooled: (Vec<f64>, Vec<u8>),
    /// The training table's row of each pooled prediction.
    #[serde(skip)]
    pub pooled_rows: Vec<usize>,
    pub by_cohort: Vec<CohortRow>,
    pub rules_health: Option<RankingMetrics>,
    pub rules_signals: Option<RankingMetrics>,
    pub suspicious: Vec<Suspicion>,
    /// Global importance of the final model's features (mean |log-odds contribution|
    /// over up to 2,000 of its training rows).
    pub importance: Vec<(String, f64)>,
    pub final_fit_rows: usize,
    pub final_calibration_rows: usize,
    pub validation: &'static str,
}

impl TrainOutcome {
    /// The health score's and the model's backtest ROC AUC when the rules rank churners
    /// at least as well as the model on the same rows (a reason to prefer the rules, or
    /// to get more data).
    pub fn rules_rank_as_well(&self) -> Option<(f64, f64)> {
        let rules = self.rules_health.as_ref()?.roc_auc?;
        let model = self.overall.roc_auc?;
        (rules >= model).then_some((rules, model))
    }
}

/// L2 strengths tried, strongest first (penalty `lambda / 2 * |w|^2` on the mean loss).
const LAMBDAS: [f64; 5] = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5];

/// Logistic regression: the regularisation path from strong to weak, each fit
/// warm-started from the last; the lambda with the lowest log loss on the calibration
/// rows wins.
fn fit_logistic(
    x_fit: &[f64],
    y_fit: &[u8],
    x_cal: &[f64],
    y_cal: &[u8],
    p: usize,
) -> Result<LinearModel, TrainError> {
    let mut best: Option<(f64, LinearModel)> = None;
    let mut start: Option<LinearModel> = None;
    for lambda in LAMBDAS {
        let params = LogisticParams {
            lambda,
            warm_start: start.take(),
        };
        let m = <LinearModel as Classifier>::fit(&params, x_fit, p, y_fit)?;
        let loss = metrics::log_loss(&m.predict_proba(x_cal, p), y_cal);
        if best.as_ref().is_none_or(|(l, _)| loss < *l) {
            best = Some((loss, m.clone()));
        }
        start = Some(m);
    }
    Ok(best.expect("a non-empty grid").1)
}

/// Gradient boosting: the settings of [`crate::gbm::SEARCH`] and the number of trees
/// chosen on the calibration rows (later in time than the fitting rows in a backtest),
/// never on test rows.
fn fit_gbm(
    x_fit: &[f64],
    y_fit: &[u8],
    x_cal: &[f64],
    y_cal: &[u8],
    p: usize,
    how: Fitting,
) -> Result<TreeModel, TrainError> {
    if how.search == Search::None {
        return Ok(TreeModel::fit(x_fit, p, y_fit, how.seed)?);
    }
    let settings: &[crate::gbm::Settings] = match how.search {
        Search::Full => &crate::gbm::FULL_SEARCH,
        _ => &crate::gbm::SEARCH,
    };
    let mut best: Option<(f64, TreeModel)> = None;
    for settings in settings {
        let m = TreeModel::fit_with(settings, x_fit, p, y_fit, Some((x_cal, y_cal)), how.seed)?;
        let loss = metrics::log_loss(&m.predict_proba(x_cal, p), y_cal);
        if best.as_ref().is_none_or(|(l, _)| loss < *l) {
            best = Some((loss, m));
        }
    }
    Ok(best.expect("a non-empty search").1)
}

/// Fits one candidate on `fit` rows; chooses the L2 strength and fits calibration on
/// `calib` rows. Returns the model, the strength chosen and both calibrations' losses.
pub fn fit_candidate(
    kind: ModelKind,
    table: &FeatureTable,
    labels: &[u8],
    fit: &[usize],
    calib: &[usize],
    seed: u64,
) -> Result<Fitted, TrainError> {
    let how = Fitting {
        seed,
        search: Search::Quick,
    };
    fit_searched(kind, table, labels, fit, calib, how)
}

/// The seed and the search level of a fit.
#[derive(Debug, Clone, Copy)]
struct Fitting {
    seed: u64,
    search: Search,
}

/// [`fit_candidate`] at a search level.
fn fit_searched(
    kind: ModelKind,
    table: &FeatureTable,
    labels: &[u8],
    fit: &[usize],
    calib: &[usize],
    how: Fitting,
) -> Result<Fitted, TrainError> {
    let linear = matches!(kind, ModelKind::Logistic | ModelKind::Blend);
    let logs: &[bool] = if linear && how.search != Search::None {
        &[false, true]
    } else {
        &[false]
    };
    fit_with_logs(kind, table, labels, fit, calib, how, logs)
}

/// [`fit_candidate`] with the log-transform choices to try (the first that the
/// calibration rows prefer, for a linear model; the first, for trees).
#[allow(clippy::too_many_arguments)]
fn fit_with_logs(
    kind: ModelKind,
    table: &FeatureTable,
    labels: &[u8],
    fit: &[usize],
    calib: &[usize],
    how: Fitting,
    logs: &[bool],
) -> Result<Fitted, TrainError> {
    if fit.is_empty() || calib.is_empty() {
        return Err(TrainError::NotEnoughData(
            "a fold has no rows to fit or calibrate on".into(),
        ));
    }
    let y_fit: Vec<u8> = fit.iter().map(|&r| labels[r]).collect();
    let y_cal: Vec<u8> = calib.iter().map(|&r| labels[r]).collect();
    if !y_fit.contains(&1) || !y_fit.contains(&0) {
        return Err(TrainError::NotEnoughData(
            "the training rows of a fold hold only one class".into(),
        ));
    }
    let features = model_features(&table.info);
    // A linear model is fitted on the inputs as they are and with log1p of the counts
    // and durations; the calibration rows choose. Trees are indifferent to it.
    let linear = matches!(kind, ModelKind::Logistic | ModelKind::Blend);
    let mut best: Option<(f64, Prepared)> = None;
    for log in logs {
        let prep = Preprocessor::fit_with(table, fit, &features, *log);
        if *log && prep.log1p.is_empty() {
            continue; // no input qualifies: the same as without
        }
        let p = prep.width();
        if p == 0 {
            return Err(TrainError::NotEnoughData(
                "the table has no feature columns besides the id and the label".into(),
            ));
        }
        let x_fit = prep.transform_table(table, fit, &[])?;
        let x_cal = prep.transform_table(table, calib, &[])?;
        if !linear {
            best = Some((0.0, (prep, x_fit, x_cal, None)));
            break;
        }
        let m = fit_logistic(&x_fit, &y_fit, &x_cal, &y_cal, p)?;
        let loss = metrics::log_loss(&m.predict_proba(&x_cal, p), &y_cal);
        if best.as_ref().is_none_or(|b| loss < b.0) {
            best = Some((loss, (prep, x_fit, x_cal, Some(m))));
        }
    }
    let (_, (prep, x_fit, x_cal, logistic)) = best.expect("one preprocessing at least");
    let p = prep.width();
    let estimator = match kind {
        ModelKind::Logistic => Estimator::Logistic(logistic.expect("fitted above")),
        ModelKind::Gbm => Estimator::Gbm(fit_gbm(&x_fit, &y_fit, &x_cal, &y_cal, p, how)?),
        ModelKind::Blend => Estimator::Blend(
            logistic.expect("fitted above"),
            fit_gbm(&x_fit, &y_fit, &x_cal, &y_cal, p, how)?,
        ),
        ModelKind::Forest => Estimator::Forest(<ForestModel as Classifier>::fit(
            &ForestParams {
                settings: ForestSettings::DEFAULT,
                seed: how.seed,
            },
            &x_fit,
            p,
            &y_fit,
        )?),
    };
    calibrate(prep, estimator, table, fit, &x_cal, &y_cal)
}

/// A preprocessing tried, its fitting and calibration matrices, and (for a linear
/// model) the logistic regression fitted on them.
type Prepared = (Preprocessor, Vec<f64>, Vec<f64>, Option<LinearModel>);

/// A fitted candidate.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model: ChurnModel,
    /// The L2 strength chosen for a linear model (logistic or the blend's linear part).
    pub lambda: Option<f64>,
    /// Cross-fitted log loss of Platt and isotonic calibration on the calibration rows.
    pub calibration_losses: [f64; 2],
}

/// A candidate's model from its preprocessing and fitted estimator: calibration and
/// flag threshold fitted on the calibration rows (`x_cal`, transformed by `prep`, and
/// their labels), input ranges from `fit` rows.
fn calibrate(
    prep: Preprocessor,
    estimator: Estimator,
    table: &FeatureTable,
    fit: &[usize],
    x_cal: &[f64],
    y_cal: &[u8],
) -> Result<Fitted, TrainError> {
    let raw = estimator.raw_batch(x_cal, prep.width());
    let (calibrator, losses) = Calibrator::choose(&raw, y_cal);
    let calibrated: Vec<f64> = raw.iter().map(|&r| calibrator.apply(r)).collect();
    let threshold = best_f1_threshold(&calibrated, y_cal);
    let lambda = match &estimator {
        Estimator::Logistic(m) | Estimator::Blend(m, _) => Some(m.lambda),
        Estimator::Gbm(_) | Estimator::Forest(_) => None,
    };
    Ok(Fitted {
        model: ChurnModel {
            input_ranges: prep.ranges(table, fit),
            preprocessor: prep,
            estimator,
            calibrator,
            threshold,
        },
        lambda,
        calibration_losses: losses,
    })
}

/// The blend of a logistic and a boosted-trees model fitted on the same rows (so with
/// the same preprocessing), calibrated on `calib`.
fn blend_of(
    logistic: &ChurnModel,
    trees: &ChurnModel,
    table: &FeatureTable,
    labels: &[u8],
    fit: &[usize],
    calib: &[usize],
) -> Option<Result<Fitted, TrainError>> {
    let (Estimator::Logistic(l), Estimator::Gbm(g)) = (&logistic.estimator, &trees.estimator)
    else {
        return None;
    };
    (logistic.preprocessor == trees.preprocessor).then(|| {
        let prep = logistic.preprocessor.clone();
        let x_cal = prep.transform_table(table, calib, &[])?;
        let y_cal: Vec<u8> = calib.iter().map(|&r| labels[r]).collect();
        let blend = Estimator::Blend(l.clone(), g.clone());
        calibrate(prep, blend, table, fit, &x_cal, &y_cal)
    })
}

/// The probability threshold that maximises F1 on `(p, y)`.
pub fn best_f1_threshold(p: &[f64], y: &[u8]) -> f64 {
    let mut candidates: Vec<f64> = p.to_vec();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let step = (candidates.len() / 200).max(1);
    let mut best = (0.0, 0.5);
    for &t in candidates.iter().step_by(step) {
        let (prec, rec) = metrics::precision_recall_at(p, y, t);
        let f1 = if prec + rec > 0.0 {
            2.0 * prec * rec / (prec + rec)
        } else {
            0.0
        };
        if f1 > best.0 {
            best = (f1, t);
        }
    }
    best.1
}

/// Whether a table's features can feed the playbook's rules (its core inputs exist).
pub fn rules_apply(table: &FeatureTable) -> bool {
    CORE_INPUTS.iter().any(|stem| {
        churn_features::features::fixed_name(stem, &table.config)
            .is_some_and(|name| table.column(&name).is_some())
    })
}

fn rules_on(
    table: &FeatureTable,
    labels: &[u8],
    rows: &[usize],
    rules: &RulesConfig,
) -> (Option<RankingMetrics>, Option<RankingMetrics>) {
    if !rules_apply(table) {
        return (None, None);
    }
    let sub = subset(table, labels, rows);
    let b = rules_baseline(&sub, rules);
    (Some(b.health), Some(b.signal_count))
}

/// A table of just `rows`, as examples (for the rules baseline).
fn subset(table: &FeatureTable, labels: &[u8], rows: &[usize]) -> Examples {
    let columns = table
        .columns
        .iter()
        .map(|c| match c {
            Values::Numeric(v) => Values::Numeric(rows.iter().map(|&r| v[r]).collect()),
            Values::Categorical(v) => {
                Values::Categorical(rows.iter().map(|&r| v[r].clone()).collect())
            }
        })
        .collect();
    Examples {
        features: FeatureTable {
            customer_ids: rows
                .iter()
                .map(|&r| table.customer_ids[r].clone())
                .collect(),
            customers: rows.iter().map(|&r| table.customers[r]).collect(),
            as_of: rows.iter().map(|&r| table.as_of[r]).collect(),
            info: table.info.clone(),
            columns,
            config: table.config.clone(),
        },
        labels: rows.iter().map(|&r| labels[r]).collect(),
        horizon_days: 0,
        dates: Vec::new(),
    }
}

/// Reports training progress as (steps done, steps in all): one step per candidate and
/// fold, plus the final fit.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Out-of-time training on examples from monthly observation dates.
pub fn train_over_time(
    ex: &Examples,
    cfg: &TrainConfig,
    rules: &RulesConfig,
    progress: Progress,
) -> Result<TrainOutcome, TrainError> {
    let table = &ex.features;
    validate(cfg, table)?;
    let h = ex.horizon_days;
    let rows_at = |d: Day| -> Vec<usize> {
        (0..table.len())
            .filter(|&r| table.as_of[r] == Some(d))
            .collect()
    };
    let closed_before =
        |t: Day| -> Vec<Day> { ex.dates.iter().copied().filter(|&d| d + h <= t).collect() };
    // A fold needs a test date with at least two earlier dates whose windows closed in
    // time: the latest is for calibration, the rest for fitting.
    let usable: Vec<Day> = ex
        .dates
        .iter()
        .copied()
        .filter(|&t| {
            let before = closed_before(t);
            before.len() >= 2 && !closed_before(*before.last().expect("non-empty")).is_empty()
        })
        .collect();
    if usable.is_empty() {
        return Err(TrainError::NotEnoughData(format!(
            "{} observation dates leave no backtest fold (each needs two earlier dates whose {h}-day label window closed before it)",
            ex.dates.len()
        )));
    }
    let tests: Vec<Day> = usable
        .iter()
        .rev()
        .take(cfg.folds.unwrap_or(usize::MAX))
        .rev()
        .copied()
        .collect();
    let steps = tests.len() * cfg.kinds.len() + 1;
    let mut done = 0;
    progress(done, steps);
    let mut folds = Vec::new();
    let mut pooled: Vec<Vec<(usize, f64)>> = vec![Vec::new(); cfg.kinds.len()];
    for &t in &tests {
        let before = closed_before(t);
        let calib_date = *before.last().expect("checked");
        let fit: Vec<usize> = closed_before(calib_date)
            .into_iter()
            .flat_map(rows_at)
            .collect();
        let calib = rows_at(calib_date);
        let test = rows_at(t);
        folds.push(run_fold(
            time::format_date(t),
            table,
            &ex.labels,
            (&fit, &calib, &test),
            cfg,
            rules,
            &mut pooled,
            &mut || {
                done += 1;
                progress(done, steps);
            },
        )?);
    }
    // The final model: fitted on every date whose window closed before the latest date,
    // calibrated on the latest date.
    let last = *ex.dates.last().expect("dates exist");
    let fit: Vec<usize> = closed_before(last).into_iter().flat_map(rows_at).collect();
    let calib = rows_at(last);
    finish(
        table,
        &ex.labels,
        cfg,
        rules,
        folds,
        pooled,
        &fit,
        &calib,
        "out-of-time backtest",
    )
}

/// A finished training run and the rows it learned from, ready to publish.
pub struct Trained {
    pub outcome: TrainOutcome,
    pub table: FeatureTable,
    pub labels: Vec<u8>,
    /// The prediction horizon (0 for a table without time).
    pub horizon_days: i32,
    /// Time to churn and CLV (trained on a data directory only: a table has no
    /// futures to censor).
    pub survival: Option<crate::survival::SurvivalModel>,
    /// The survival model's backtest (when the data had dates to test on).
    pub survival_report: Option<crate::survival_backtest::SurvivalReport>,
}

/// Trains on a dataset as `churn-train train --data` does: labelled examples of every
/// monthly observation date with a full horizon (at least 3 are needed), then
/// [`train_examples`]. `events` is told how many events were read, `fits` how many
/// fitting steps are done.
pub fn train_dataset(
    ds: &churn_features::Dataset,
    horizon_days: i32,
    windows: &churn_features::features::FeatureConfig,
    cfg: &TrainConfig,
    rules: &RulesConfig,
    events: &(dyn Fn(u64) + Sync),
    fits: Progress,
) -> Result<Trained, TrainError> {
    let dates = churn_features::labels::observation_dates(ds, horizon_days);
    if dates.len() < 3 {
        return Err(TrainError::TooFewDates {
            data: ds.dir.display().to_string(),
            dates: dates.len(),
            horizon_days,
        });
    }
    let ex = churn_features::labels::examples(ds, &dates, horizon_days, windows, events)?;
    let mut trained = train_examples(ex, cfg, rules, fits)?;
    if let Some((model, report)) = fit_survival(
        ds,
        &trained.table,
        windows.grace_days,
        &trained.outcome.model,
        cfg.clv,
    )? {
        trained.survival = Some(model);
        trained.survival_report = report;
    }
    Ok(trained)
}

/// The survival model of a data set's examples, with its backtest: each row's future
/// from its active period, censored where the data ends. `None` when the data holds no
/// churn or no survival to learn from. `classifier` (trained on the same rows) gives
/// the risk bands' cut-offs and is compared with `1 - S(1)` on the latest date's rows.
pub fn fit_survival(
    ds: &churn_features::Dataset,
    table: &FeatureTable,
    grace_days: i32,
    classifier: &ChurnModel,
    clv: crate::survival::ClvSettings,
) -> Result<
    Option<(
        crate::survival::SurvivalModel,
        Option<crate::survival_backtest::SurvivalReport>,
    )>,
    TrainError,
> {
    use crate::survival_backtest::{agreement, fit_and_backtest, Futures};
    let ends: Vec<Option<Day>> = (0..table.len())
        .map(|r| {
            let as_of = table.as_of[r].expect("examples of a data set have dates");
            let customer = &ds.customers[table.customers[r] as usize];
            churn_features::labels::period_end(customer, as_of, grace_days)
                .expect("examples are active customers")
        })
        .collect();
    let futures = Futures {
        ends: &ends,
        data_end: ds.date_range().1,
        grace_days,
    };
    let cutoffs = crate::risk::RiskCutoffs::from_threshold(classifier.threshold);
    let Some((model, mut report)) = fit_and_backtest(table, &futures, cutoffs, clv)? else {
        return Ok(None);
    };
    if let (Some(report), Some(&last)) = (report.as_mut(), table.as_of.iter().flatten().max()) {
        let rows: Vec<usize> = (0..table.len())
            .filter(|&r| table.as_of[r] == Some(last))
            .collect();
        let p = classifier.predict_table(table, &rows)?;
        let s1 = rows
            .iter()
            .map(|&r| Ok(1.0 - model.curve_of_row(table, r)?.survival[0]))
            .collect::<Result<Vec<f64>, PrepError>>()?;
        report.agreement = agreement(&p, &s1, cutoffs);
    }
    Ok(Some((model, report)))
}

/// Trains on labelled examples of observation dates: the out-of-time backtest.
pub fn train_examples(
    ex: Examples,
    cfg: &TrainConfig,
    rules: &RulesConfig,
    progress: Progress,
) -> Result<Trained, TrainError> {
    let outcome = train_over_time(&ex, cfg, rules, progress)?;
    Ok(Trained {
        outcome,
        table: ex.features,
        labels: ex.labels,
        horizon_days: ex.horizon_days,
        survival: None,
        survival_report: None,
    })
}

/// Trains on a table read from a file. A table whose `as_of` column holds at least
/// three dates (the output of `churn-train examples`) has time: random folds would mix
/// a customer's past and future rows, so it gets the out-of-time backtest with
/// `horizon_days`; any other table is cross-validated (horizon 0).
pub fn train_table(
    table: FeatureTable,
    labels: Vec<u8>,
    horizon_days: i32,
    cfg: &TrainConfig,
    rules: &RulesConfig,
    progress: Progress,
) -> Result<Trained, TrainError> {
    let mut dates: Vec<Day> = table.as_of.iter().flatten().copied().collect();
    dates.sort_unstable();
    dates.dedup();
    if dates.len() >= 3 {
        let undated = table.as_of.iter().filter(|d| d.is_none()).count();
        if undated > 0 {
            return Err(TrainError::MissingDates { rows: undated });
        }
        let ex = Examples {
            features: table,
            labels,
            horizon_days,
            dates,
        };
        return train_examples(ex, cfg, rules, progress);
    }
    let outcome = train_cross_validated(&table, &labels, cfg, rules, progress)?;
    Ok(Trained {
        outcome,
        table,
        labels,
        horizon_days: 0,
        survival: None,
        survival_report: None,
    })
}

/// Stratified K-fold cross-validation on a plain table (no time).
pub fn train_cross_validated(
    table: &FeatureTable,
    labels: &[u8],
    cfg: &TrainConfig,
    rules: &RulesConfig,
    progress: Progress,
) -> Result<TrainOutcome, TrainError> {
    validate(cfg, table)?;
    let k = cfg.folds.unwrap_or(3).max(2);
    let positives: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] == 1).collect();
    let negatives: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] == 0).collect();
    if positives.len() < k || negatives.len() < k {
        return Err(TrainError::NotEnoughData(format!(
            "{} positive and {} negative rows cannot make {k} stratified folds",
            positives.len(),
            negatives.len()
        )));
    }
    let shuffled = |mut v: Vec<usize>, salt: u64| {
        shuffle(&mut v, cfg.seed ^ salt);
        v
    };
    let (pos, neg) = (shuffled(positives, 1), shuffled(negatives, 2));
    let mut assignment = vec![0usize; labels.len()];
    for class in [&pos, &neg] {
        for (i, &r) in class.iter().enumerate() {
            assignment[r] = i % k;
        }
    }
    let mut folds = Vec::new();
    let mut pooled: Vec<Vec<(usize, f64)>> = vec![Vec::new(); cfg.kinds.len()];
    let steps = k * cfg.kinds.len() + 1;
    let mut done = 0;
    progress(done, steps);
    for f in 0..k {
        let test: Vec<usize> = (0..labels.len()).filter(|&r| assignment[r] == f).collect();
        let rest: Vec<usize> = (0..labels.len()).filter(|&r| assignment[r] != f).collect();
        let (fit, calib) = stratified_split(&rest, labels, 0.2, cfg.seed.wrapping_add(f as u64));
        folds.push(run_fold(
            format!("fold {}", f + 1),
            table,
            labels,
            (&fit, &calib, &test),
            cfg,
            rules,
            &mut pooled,
            &mut || {
                done += 1;
                progress(done, steps);
            },
        )?);
    }
    let all: Vec<usize> = (0..labels.len()).collect();
    let (fit, calib) = stratified_split(&all, labels, 0.2, cfg.seed);
    finish(
        table,
        labels,
        cfg,
        rules,
        folds,
        pooled,
        &fit,
        &calib,
        "stratified cross-validation",
    )
}

/// [`fit_candidate`], except that a blend is made of the fold's logistic and boosted
/// models when they were fitted already (same rows, same preprocessing).
fn fit_reusing(
    kind: ModelKind,
    fitted: &[(ModelKind, ChurnModel)],
    table: &FeatureTable,
    labels: &[u8],
    fit: &[usize],
    calib: &[usize],
    how: Fitting,
) -> Result<Fitted, TrainError> {
    let of = |k: ModelKind| fitted.iter().find(|(f, _)| *f == k).map(|(_, m)| m);
    // Trees are indifferent to the log transform: boosted trees share the fold's
    // logistic preprocessing, so the blend can be made of the two.
    if let (ModelKind::Gbm, Some(l)) = (kind, of(ModelKind::Logistic)) {
        let log = !l.preprocessor.log1p.is_empty();
        return fit_with_logs(kind, table, labels, fit, calib, how, &[log]);
    }
    if kind == ModelKind::Blend {
        if let (Some(l), Some(g)) = (of(ModelKind::Logistic), of(ModelKind::Gbm)) {
            if let Some(blend) = blend_of(l, g, table, labels, fit, calib) {
                return blend;
            }
        }
    }
    fit_searched(kind, table, labels, fit, calib, how)
}

/// Fits every candidate on one fold's `fit` rows (calibrated on `calib`), scores its
/// `test` rows, adds them to each candidate's pooled predictions, and measures the rules
/// on the same rows. `step` is called after each candidate.
#[allow(clippy::too_many_arguments)]
fn run_fold(
    name: String,
    table: &FeatureTable,
    labels: &[u8],
    (fit, calib, test): (&[usize], &[usize], &[usize]),
    cfg: &TrainConfig,
    rules: &RulesConfig,
    pooled: &mut [Vec<(usize, f64)>],
    step: &mut dyn FnMut(),
) -> Result<Fold, TrainError> {
    let y_test: Vec<u8> = test.iter().map(|&r| labels[r]).collect();
    let mut candidates = Vec::new();
    let mut fitted: Vec<(ModelKind, ChurnModel)> = Vec::new();
    for (k, &kind) in cfg.kinds.iter().enumerate() {
        let Fitted {
            model,
            lambda,
            calibration_losses,
        } = fit_reusing(kind, &fitted, table, labels, fit, calib, cfg.fitting())?;
        fitted.push((kind, model.clone()));
        let p = model.predict_table(table, test)?;
        pooled[k].extend(test.iter().copied().zip(p.iter().copied()));
        step();
        candidates.push(CandidateFit {
            kind,
            lambda,
            settings: model.settings(),
            calibration: model.calibrator.method(),
            calibration_losses,
            evaluation: Evaluation::of(&p, &y_test, model.threshold),
        });
    }
    let (rules_health, rules_signals) = rules_on(table, labels, test, rules);
    Ok(Fold {
        name,
        fit_rows: fit.len(),
        calibration_rows: calib.len(),
        test_rows: test.len(),
        candidates,
        rules_health,
        rules_signals,
    })
}

#[allow(clippy::too_many_arguments)]
fn finish(
    table: &FeatureTable,
    labels: &[u8],
    cfg: &TrainConfig,
    rules: &RulesConfig,
    folds: Vec<Fold>,
    pooled: Vec<Vec<(usize, f64)>>,
    fit: &[usize],
    calib: &[usize],
    validation: &'static str,
) -> Result<TrainOutcome, TrainError> {
    // Choose by the log loss of every fold's test rows pooled (so a month with few
    // churners weighs what its rows weigh, not a third of the decision), ties by PR AUC.
    let mut candidates: Vec<CandidateScore> = cfg
        .kinds
        .iter()
        .enumerate()
        .map(|(k, &kind)| {
            let p: Vec<f64> = pooled[k].iter().map(|(_, p)| *p).collect();
            let y: Vec<u8> = pooled[k].iter().map(|(r, _)| labels[*r]).collect();
            CandidateScore {
                model: kind,
                pooled_log_loss: metrics::log_loss(&p, &y),
                pooled_pr_auc: metrics::pr_auc(&p, &y).unwrap_or(0.0),
            }
        })
        .collect();
    let best = candidates
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            a.pooled_log_loss
                .total_cmp(&b.pooled_log_loss)
                .then(b.pooled_pr_auc.total_cmp(&a.pooled_pr_auc))
        })
        .map(|(i, _)| i)
        .expect("at least one candidate");
    let chosen = candidates[best].model;
    let model = fit_searched(chosen, table, labels, fit, calib, cfg.fitting())?.model;
    let rows: Vec<usize> = pooled[best].iter().map(|(r, _)| *r).collect();
    let p: Vec<f64> = pooled[best].iter().map(|(_, p)| *p).collect();
    let y: Vec<u8> = rows.iter().map(|&r| labels[r]).collect();
    let overall = Evaluation::of(&p, &y, model.threshold);
    let (rules_health, rules_signals) = rules_on(table, labels, &rows, rules);
    let by_cohort = cohorts(table, &rows, &p, &y, model.threshold);
    let mut suspicious = leakage_guard(table, labels);
    if let Some(auc) = overall.roc_auc.filter(|a| *a > 0.95) {
        suspicious.push(Suspicion {
            what: format!("model {}", chosen.as_str()),
            roc_auc: auc,
            message: "a churn model this good is more often leaking the label than right".into(),
        });
    }
    let importance = model.importance(table, fit)?;
    candidates.sort_by(|a, b| a.pooled_log_loss.total_cmp(&b.pooled_log_loss));
    Ok(TrainOutcome {
        model,
        chosen,
        search: cfg.search,
        candidates,
        folds,
        overall,
        pooled: (p, y),
        pooled_rows: rows,
        by_cohort,
        rules_health,
        rules_signals,
        suspicious,
        importance,
        final_fit_rows: fit.len(),
        final_calibration_rows: calib.len(),
        validation,
    })
}

/// Rows and churners a signup cohort needs for figures of its own; smaller neighbouring
/// months are pooled until they have them (a month of 15 rows and one churner gives a
/// ROC AUC of 1.000 that means nothing).
pub const MIN_COHORT_ROWS: usize = 200;
/// See [`MIN_COHORT_ROWS`].
pub const MIN_COHORT_CHURNERS: usize = 10;

/// The metrics of probabilities `p` against labels `y` of table `rows` per signup
/// cohort (the `signup_cohort` feature; empty without it), small neighbouring months
/// pooled.
pub fn cohorts(
    table: &FeatureTable,
    rows: &[usize],
    p: &[f64],
    y: &[u8],
    threshold: f64,
) -> Vec<CohortRow> {
    let Some(Values::Categorical(c)) = table.column("signup_cohort") else {
        return Vec::new();
    };
    let mut months: std::collections::BTreeMap<&str, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, &r) in rows.iter().enumerate() {
        months
            .entry(c[r].as_deref().unwrap_or("unknown"))
            .or_default()
            .push(i);
    }
    // Consecutive months pooled until big enough; a small remainder joins the last group.
    let big_enough = |idx: &[usize]| {
        idx.len() >= MIN_COHORT_ROWS
            && idx.iter().filter(|&&i| y[i] == 1).count() >= MIN_COHORT_CHURNERS
    };
    let mut groups: Vec<(Vec<&str>, Vec<usize>)> = Vec::new();
    let mut open: (Vec<&str>, Vec<usize>) = (Vec::new(), Vec::new());
    for (month, idx) in months {
        open.0.push(month);
        open.1.extend(idx);
        if big_enough(&open.1) {
            groups.push(std::mem::take(&mut open));
        }
    }
    if !open.0.is_empty() {
        match groups.last_mut() {
            Some(last) => {
                last.0.extend(open.0);
                last.1.extend(open.1);
            }
            None => groups.push(open),
        }
    }
    groups
        .into_iter()
        .map(|(names, idx)| {
            let pp: Vec<f64> = idx.iter().map(|&i| p[i]).collect();
            let yy: Vec<u8> = idx.iter().map(|&i| y[i]).collect();
            let metrics = Evaluation::of(&pp, &yy, threshold);
            let cohort = match (names.first(), names.last()) {
                (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
                (Some(a), _) => a.to_string(),
                _ => String::new(),
            };
            CohortRow {
                cohort,
                months: names.len(),
                rows: idx.len(),
                predicted_churn_pct: metrics.predicted_churn_pct,
                actual_churn_pct: metrics.actual_churn_pct,
                metrics,
            }
        })
        .collect()
}

/// Flags any single numeric feature that ranks churners with ROC AUC 0.90 or more (in
/// either direction): such a feature usually encodes the label.
pub fn leakage_guard(table: &FeatureTable, labels: &[u8]) -> Vec<Suspicion> {
    let mut out = Vec::new();
    for (info, col) in table.info.iter().zip(&table.columns) {
        if info.kind != FeatureKind::Numeric {
            continue;
        }
        let Values::Numeric(v) = col else { continue };
        // Missing values rank lowest; both directions count.
        let scores: Vec<f64> = v.iter().map(|x| x.unwrap_or(f64::MIN)).collect();
        if let Some(auc) = metrics::roc_auc(&scores, labels) {
            let strength = auc.max(1.0 - auc);
            if strength >= 0.90 {
                out.push(Suspicion {
                    what: format!("feature {}", info.name),
                    roc_auc: strength,
                    message: "ranks churners almost perfectly on its own: check that it is known before the as-of date".into(),
                });
            }
        }
    }
    out
}

fn validate(cfg: &TrainConfig, table: &FeatureTable) -> Result<(), TrainError> {
    if model_features(&table.info).is_empty() {
        return Err(TrainError::NotEnoughData(
            "the table has no feature columns besides the id and the label".into(),
        ));
    }
    if cfg.kinds.is_empty() {
        return Err(TrainError::Invalid {
            name: "models",
            message: "name at least one model".into(),
        });
    }
    if let Some(k) = cfg.folds.filter(|k| !(1..=50).contains(k)) {
        return Err(TrainError::Invalid {
            name: "folds",
            message: format!("must be from 1 to 50, got {k}"),
        });
    }
    Ok(())
}

/// Splits `rows` into (rest, held out share) keeping the class balance.
pub fn stratified_split(
    rows: &[usize],
    labels: &[u8],
    share: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut fit = Vec::new();
    let mut held = Vec::new();
    for class in [0u8, 1] {
        let mut members: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&r| labels[r] == class)
            .collect();
        shuffle(&mut members, seed ^ u64::from(class));
        let k = ((members.len() as f64) * share).round() as usize;
        held.extend_from_slice(&members[..k]);
        fit.extend_from_slice(&members[k..]);
    }
    fit.sort_unstable();
    held.sort_unstable();
    (fit, held)
}

/// Fisher-Yates with a SplitMix64 stream: deterministic per seed.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use churn_features::features::{FeatureInfo, FeatureKind};

    #[test]
    fn a_table_over_several_dates_needs_a_date_on_every_row() {
        let (mut table, labels) = cohort_table(&[40, 40, 40], 5);
        // Three dates and two undated rows: refused, not backtested with the undated
        // rows as a date of their own (as a 0 for "no date" once made them 1970-01-01).
        for (r, d) in table.as_of.iter_mut().enumerate() {
            *d = (r >= 2).then_some(19_800 + 30 * (r as i32 % 3));
        }
        let cfg = TrainConfig::default();
        let rules = RulesConfig::default();
        let e = train_table(table, labels, 30, &cfg, &rules, &|_, _| {})
            .err()
            .expect("refused");
        assert!(matches!(e, TrainError::MissingDates { rows: 2 }), "{e}");
    }

    /// A table with only `signup_cohort`: `sizes[k]` rows of month k, every `churn_every`-th
    /// row of the whole table a churner.
    fn cohort_table(sizes: &[usize], churn_every: usize) -> (FeatureTable, Vec<u8>) {
        let mut cohorts = Vec::new();
        for (k, &n) in sizes.iter().enumerate() {
            cohorts.extend(std::iter::repeat_n(Some(format!("2024-{:02}", k + 1)), n));
        }
        let n = cohorts.len();
        let y = (0..n).map(|i| u8::from(i % churn_every == 0)).collect();
        let table = FeatureTable {
            customer_ids: (0..n).map(|i| i.to_string()).collect(),
            customers: (0..n as u32).collect(),
            as_of: vec![None; n],
            info: vec![FeatureInfo {
                name: "signup_cohort".into(),
                description: String::new(),
                kind: FeatureKind::Categorical,
            }],
            columns: vec![Values::Categorical(cohorts)],
            config: Default::default(),
        };
        (table, y)
    }

    #[test]
    fn small_cohorts_are_pooled_with_their_neighbours() {
        // Months of 30, 50, 400, 150, 60, 10 rows; one churner in 10.
        let (table, y) = cohort_table(&[30, 50, 400, 150, 60, 10], 10);
        let rows: Vec<usize> = (0..table.len()).collect();
        let p = vec![0.1; rows.len()];
        let out = cohorts(&table, &rows, &p, &y, 0.5);
        let got: Vec<(&str, usize, usize)> = out
            .iter()
            .map(|c| (c.cohort.as_str(), c.months, c.rows))
            .collect();
        // 30 + 50 + 400 reaches 200 rows and 10 churners at March; April and May (210
        // rows, 21 churners) reach it next, and June's 10 rows join them.
        assert_eq!(
            got,
            [
                ("2024-01 to 2024-03", 3, 480),
                ("2024-04 to 2024-06", 3, 220)
            ]
        );
        assert_eq!(out.iter().map(|c| c.rows).sum::<usize>(), rows.len());
        for c in &out {
            assert!(c.rows >= MIN_COHORT_ROWS && c.metrics.positives >= MIN_COHORT_CHURNERS);
        }
        // A remainder too small on its own joins the last group.
        let (table, y) = cohort_table(&[300, 20], 10);
        let rows: Vec<usize> = (0..table.len()).collect();
        let out = cohorts(&table, &rows, &vec![0.1; rows.len()], &y, 0.5);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].cohort.as_str(), out[0].rows),
            ("2024-01 to 2024-02", 320)
        );
    }
}
