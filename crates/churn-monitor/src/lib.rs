//! Model monitoring: is a trained model still right, and is it time to retrain?
//!
//! [`monitor`] compares the population a model scores at a date with the reference
//! profile the model keeps of its training data ([`churn_model::profile::Profile`]):
//!
//! - **input drift**: PSI, Jensen-Shannon distance and (numbers) Kolmogorov-Smirnov per
//!   model input, the missing share then and now, categories never seen in training;
//! - **prediction drift**: the predicted probabilities against the shipped model's on
//!   the latest training date (its calibration rows), and the share per risk band;
//! - **realised performance**: every monthly scoring date after the training labels
//!   whose horizon has closed by the date, recomputed point-in-time from the data (the
//!   same figures as `churn-train evaluate --as-of`), pooled and per date, with
//!   calibration per decile and per risk band;
//! - **a verdict**: `ok`, `watch` or `retrain`, with reasons, from [`Thresholds`].
//!
//! Features of every date come from one pass over the events.

mod config;
pub mod html;

pub use config::{ConfigError, Thresholds};

use churn_features::dataset::{Dataset, Values};
use churn_features::features::{self, FeatureKind};
use churn_features::labels;
use churn_features::time::{self, Day};
use churn_model::artifact::Artifact;
use churn_model::profile::{self, BacktestFigures, Bins, Drift};
use churn_model::risk::{RiskBand, RiskCutoffs};
use churn_model::train::{CohortRow, Evaluation};
use serde::Serialize;

/// Why a model could not be monitored.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("model {name} {version} has no reference profile (it was saved before model format 4): retrain it with this version to monitor it")]
    NoProfile { name: String, version: String },
    #[error("model {name} {version} was trained on a plain table without dates: monitoring needs a model trained on a data directory or database")]
    PlainTable { name: String, version: String },
    #[error("no customer is active on {as_of}: nothing to compare with the model's training data")]
    NoRows { as_of: String },
    #[error(transparent)]
    Data(#[from] churn_features::DataError),
    #[error("scoring: {0}")]
    Prep(#[from] churn_model::preprocess::PrepError),
}

/// The verdict's levels, in order of severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Watch,
    Retrain,
}

impl Level {
    /// The process exit code that says it to a scheduler: 0, 10, 20.
    pub fn exit_code(self) -> i32 {
        match self {
            Level::Ok => 0,
            Level::Watch => 10,
            Level::Retrain => 20,
        }
    }

    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Watch => "watch",
            Level::Retrain => "retrain",
        }
    }
}

/// One reason of the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Stable code: `input_drift`, `missing_change`, `unseen_categories`,
    /// `score_drift`, `realised_auc`, `calibration`, `too_few_churners`,
    /// `nothing_matured`.
    pub code: &'static str,
    /// The input it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    pub message: String,
}

/// The verdict: the most severe finding's level, and every finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub level: Level,
    pub exit_code: i32,
    pub findings: Vec<Finding>,
}

/// One model input, then and now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputDrift {
    pub name: String,
    pub kind: FeatureKind,
    /// Share of the model's importance.
    pub importance: f64,
    pub important: bool,
    #[serde(flatten)]
    pub drift: Drift,
    /// Reached the PSI watch threshold.
    pub flagged: bool,
    pub missing_then: f64,
    pub missing_now: f64,
    /// Categories the training data never had, with their rows now (most first, ten
    /// at most).
    pub unseen: Vec<(String, u64)>,
    /// Share of rows with a category the training data never had.
    pub unseen_share: f64,
    /// The bins' labels and each bin's share then and now.
    pub bins: Vec<String>,
    pub shares_then: Vec<f64>,
    pub shares_now: Vec<f64>,
}

/// The predicted probabilities now against the shipped model's on the latest training
/// date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreDrift {
    #[serde(flatten)]
    pub drift: Drift,
    /// The mean prediction on the latest training date.
    pub mean_then: f64,
    /// The mean prediction now.
    pub mean_now: f64,
    pub bins: Vec<String>,
    pub shares_then: Vec<f64>,
    pub shares_now: Vec<f64>,
}

/// One risk band: its share then and now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandShare {
    pub band: &'static str,
    pub share_then: f64,
    pub share_now: f64,
    /// Realised churn in the band on the latest training date.
    pub realised_then: f64,
}

/// Predicted against realised churn in a group of matured rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationRow {
    /// `decile 1` (lowest predictions) to `decile 10`, or a risk band.
    pub group: String,
    pub rows: usize,
    pub predicted: f64,
    pub realised: f64,
}

/// A matured scoring date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealisedDate {
    pub as_of: String,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// Realised performance on every matured date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Realised {
    /// The first scoring date whose outcomes the model did not train on.
    pub first_unseen_date: String,
    pub dates: Vec<RealisedDate>,
    /// Every matured date's rows pooled (`None` without any).
    pub pooled: Option<Evaluation>,
    /// Pooled predicted / realised churn.
    pub calibration_ratio: Option<f64>,
    pub by_decile: Vec<CalibrationRow>,
    pub by_band: Vec<CalibrationRow>,
    /// Per signup cohort (months pooled until 200 rows and 10 churners), as the
    /// training report shows the backtest's.
    pub by_cohort: Vec<CohortRow>,
}

/// Where the model and the data came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    pub model: String,
    pub version: String,
    pub data: String,
    pub as_of: String,
    /// Customers scored at the date.
    pub rows: usize,
    /// Training rows profiled, and their dates.
    pub reference_rows: usize,
    pub reference_from: Option<String>,
    pub reference_to: Option<String>,
    pub horizon_days: i32,
}

/// Everything [`monitor`] found: what `monitor --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Monitor {
    #[serde(flatten)]
    pub subject: Subject,
    pub verdict: Verdict,
    /// Every model input, most drifted (PSI) first.
    pub inputs: Vec<InputDrift>,
    pub scores: ScoreDrift,
    pub bands: Vec<BandShare>,
    pub realised: Realised,
    pub backtest: BacktestFigures,
    pub thresholds: Thresholds,
}

/// Monitors model `art` on data `ds` (named `source`) at `as_of`, calling
/// `progress(events_so_far)` while the events are read.
pub fn monitor(
    art: &Artifact,
    ds: &Dataset,
    source: &str,
    as_of: Day,
    thresholds: &Thresholds,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Monitor, MonitorError> {
    let profile = art
        .profile
        .as_ref()
        .ok_or_else(|| MonitorError::NoProfile {
            name: art.name.clone(),
            version: art.version.clone(),
        })?;
    let horizon = art.horizon_days;
    if horizon <= 0 {
        return Err(MonitorError::PlainTable {
            name: art.name.clone(),
            version: art.version.clone(),
        });
    }
    // The first monthly scoring date whose label window does not overlap the training
    // labels.
    let first_unseen = profile
        .last_as_of
        .as_deref()
        .and_then(time::parse_date)
        .map_or(Day::MIN, |d| {
            let labels_until = d + horizon;
            let month = time::month_start(labels_until);
            if month == labels_until {
                month
            } else {
                time::add_months(month, 1)
            }
        });
    let matured: Vec<Day> = labels::observation_dates_in(ds.date_range(), horizon)
        .into_iter()
        .filter(|&d| d >= first_unseen && d + horizon <= as_of)
        .collect();
    let mut dates = matured.clone();
    dates.push(as_of);
    let table = features::build_with_progress(ds, &dates, &art.feature_config, progress)?;
    let rows_at = |d: Day| -> Vec<usize> {
        (0..table.len())
            .filter(|&r| table.as_of[r] == Some(d))
            .collect()
    };
    let now = rows_at(as_of);
    if now.is_empty() {
        return Err(MonitorError::NoRows {
            as_of: time::format_date(as_of),
        });
    }
    let model = &art.model;
    let p_now = model.predict_table(&table, &now)?;
    let inputs = input_drift(profile, &table, &now, thresholds);
    let scores = {
        let reference = &profile.scores;
        let values = Values::Numeric(p_now.iter().map(|&p| Some(p)).collect());
        let counts = reference.bins.count(&values, 0..p_now.len());
        ScoreDrift {
            drift: reference.drift(&counts),
            mean_then: profile.mean_score,
            mean_now: p_now.iter().sum::<f64>() / p_now.len() as f64,
            bins: reference.bins.labels(),
            shares_then: reference.shares(),
            shares_now: profile::shares(&counts),
        }
    };
    let cutoffs = RiskCutoffs::from_threshold(model.threshold);
    let bands = RiskBand::ALL
        .iter()
        .map(|&band| {
            let then = profile.bands.iter().find(|b| b.band == band.as_str());
            BandShare {
                band: band.as_str(),
                share_then: then.map_or(0.0, |b| b.share),
                share_now: p_now.iter().filter(|&&p| cutoffs.band(p) == band).count() as f64
                    / p_now.len() as f64,
                realised_then: then.map_or(0.0, |b| b.realised),
            }
        })
        .collect();
    let realised = realised(art, ds, &table, &matured, first_unseen, &rows_at)?;
    let mut out = Monitor {
        subject: Subject {
            model: art.name.clone(),
            version: art.version.clone(),
            data: source.to_string(),
            as_of: time::format_date(as_of),
            rows: now.len(),
            reference_rows: profile.rows,
            reference_from: profile.first_as_of.clone(),
            reference_to: profile.last_as_of.clone(),
            horizon_days: horizon,
        },
        verdict: Verdict {
            level: Level::Ok,
            exit_code: 0,
            findings: Vec::new(),
        },
        inputs,
        scores,
        bands,
        realised,
        backtest: profile.backtest.clone(),
        thresholds: thresholds.clone(),
    };
    out.verdict = verdict(&out, thresholds, &matured, as_of, horizon, first_unseen);
    Ok(out)
}

/// Every profiled input's drift at the rows scored now, most drifted first.
fn input_drift(
    profile: &profile::Profile,
    table: &features::FeatureTable,
    now: &[usize],
    t: &Thresholds,
) -> Vec<InputDrift> {
    let mut out: Vec<InputDrift> = profile
        .inputs
        .iter()
        .map(|input| {
            let reference = &input.reference;
            let column = table.column(&input.name);
            let counts = match column {
                Some(values) => reference.bins.count(values, now.iter().copied()),
                // A column the data no longer has: every row is missing.
                None => {
                    let mut c = vec![0u64; reference.bins.len()];
                    c[reference.bins.missing()] = now.len() as u64;
                    c
                }
            };
            let (kind, unseen) = match (&reference.bins, column) {
                (Bins::Categorical { categories }, Some(Values::Categorical(v)))
                    if reference.counts[categories.len()] == 0 =>
                {
                    let mut unseen: std::collections::HashMap<&str, u64> =
                        std::collections::HashMap::new();
                    for &r in now {
                        if let Some(c) = v[r].as_deref() {
                            if !categories.iter().any(|k| k == c) {
                                *unseen.entry(c).or_default() += 1;
                            }
                        }
                    }
                    let mut unseen: Vec<(String, u64)> = unseen
                        .into_iter()
                        .map(|(k, n)| (k.to_string(), n))
                        .collect();
                    unseen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    (FeatureKind::Categorical, unseen)
                }
                (Bins::Categorical { .. }, _) => (FeatureKind::Categorical, Vec::new()),
                (Bins::Numeric { .. }, _) => (FeatureKind::Numeric, Vec::new()),
            };
            let unseen_rows: u64 = unseen.iter().map(|u| u.1).sum();
            let drift = reference.drift(&counts);
            let shares_now = profile::shares(&counts);
            InputDrift {
                name: input.name.clone(),
                kind,
                importance: input.importance,
                important: input.importance >= t.inputs.important_share,
                flagged: drift.psi >= t.inputs.psi_watch,
                drift,
                missing_then: reference.missing_share(),
                missing_now: shares_now[reference.bins.missing()],
                unseen_share: unseen_rows as f64 / now.len().max(1) as f64,
                unseen: unseen.into_iter().take(10).collect(),
                bins: reference.bins.labels(),
                shares_then: reference.shares(),
                shares_now,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.drift
            .psi
            .total_cmp(&a.drift.psi)
            .then(a.name.cmp(&b.name))
    });
    out
}

/// Realised performance on the matured dates: what `evaluate --as-of` measures for
/// each, then pooled.
fn realised(
    art: &Artifact,
    ds: &Dataset,
    table: &features::FeatureTable,
    matured: &[Day],
    first_unseen: Day,
    rows_at: &dyn Fn(Day) -> Vec<usize>,
) -> Result<Realised, MonitorError> {
    let model = &art.model;
    let grace = art.feature_config.grace_days;
    let (mut all_p, mut all_y, mut all_rows) = (Vec::new(), Vec::new(), Vec::new());
    let mut dates = Vec::new();
    for &d in matured {
        let rows = rows_at(d);
        if rows.is_empty() {
            continue;
        }
        let y: Vec<u8> = rows
            .iter()
            .map(|&r| {
                let c = &ds.customers[table.customers[r] as usize];
                labels::label(c, d, art.horizon_days, grace)
                    .expect("feature rows are active customers")
            })
            .collect();
        let p = model.predict_table(table, &rows)?;
        dates.push(RealisedDate {
            as_of: time::format_date(d),
            evaluation: Evaluation::of(&p, &y, model.threshold),
        });
        all_p.extend(p);
        all_y.extend(y);
        all_rows.extend(rows);
    }
    let pooled = (!all_y.is_empty()).then(|| Evaluation::of(&all_p, &all_y, model.threshold));
    let calibration_ratio = pooled
        .as_ref()
        .filter(|e| e.actual_churn_pct > 0.0)
        .map(|e| e.predicted_churn_pct / e.actual_churn_pct);
    let group = |name: String, rows: &[usize]| CalibrationRow {
        group: name,
        rows: rows.len(),
        predicted: rows.iter().map(|&i| all_p[i]).sum::<f64>() / rows.len().max(1) as f64,
        realised: rows.iter().map(|&i| f64::from(all_y[i])).sum::<f64>() / rows.len().max(1) as f64,
    };
    let mut order: Vec<usize> = (0..all_p.len()).collect();
    order.sort_by(|&a, &b| all_p[a].total_cmp(&all_p[b]));
    let by_decile = if order.len() >= 10 {
        (0..10)
            .map(|k| {
                let part = &order[k * order.len() / 10..(k + 1) * order.len() / 10];
                group(format!("decile {}", k + 1), part)
            })
            .collect()
    } else {
        Vec::new()
    };
    let cutoffs = RiskCutoffs::from_threshold(model.threshold);
    let by_band = RiskBand::ALL
        .iter()
        .map(|&band| {
            let rows: Vec<usize> = (0..all_p.len())
                .filter(|&i| cutoffs.band(all_p[i]) == band)
                .collect();
            group(band.as_str().to_string(), &rows)
        })
        .collect();
    let by_cohort = churn_model::train::cohorts(table, &all_rows, &all_p, &all_y, model.threshold);
    Ok(Realised {
        first_unseen_date: if first_unseen == Day::MIN {
            String::new()
        } else {
            time::format_date(first_unseen)
        },
        dates,
        pooled,
        calibration_ratio,
        by_decile,
        by_band,
        by_cohort,
    })
}

/// The standard error of a ROC AUC over `positives` and `negatives` (Hanley and
/// McNeil, 1982).
pub fn auc_standard_error(auc: f64, positives: usize, negatives: usize) -> f64 {
    let (n1, n2) = (positives.max(1) as f64, negatives.max(1) as f64);
    let q1 = auc / (2.0 - auc);
    let q2 = 2.0 * auc * auc / (1.0 + auc);
    let variance =
        (auc * (1.0 - auc) + (n1 - 1.0) * (q1 - auc * auc) + (n2 - 1.0) * (q2 - auc * auc))
            / (n1 * n2);
    variance.max(1e-12).sqrt()
}

/// The findings and their most severe level.
fn verdict(
    m: &Monitor,
    t: &Thresholds,
    matured: &[Day],
    as_of: Day,
    horizon: i32,
    first_unseen: Day,
) -> Verdict {
    let mut findings = Vec::new();
    let mut add = |level: Level, code: &'static str, input: Option<&str>, message: String| {
        findings.push(Finding {
            level,
            code,
            input: input.map(str::to_string),
            message,
        })
    };
    for i in &m.inputs {
        if i.flagged {
            let retrain = i.important && i.drift.psi >= t.inputs.psi_retrain;
            add(
                if retrain { Level::Retrain } else { Level::Watch },
                "input_drift",
                Some(&i.name),
                format!(
                    "`{}` moved: PSI {:.3} (watch from {}, retrain from {} for an input with at least {:.0} % of the importance; it has {:.1} %)",
                    i.name,
                    i.drift.psi,
                    t.inputs.psi_watch,
                    t.inputs.psi_retrain,
                    100.0 * t.inputs.important_share,
                    100.0 * i.importance
                ),
            );
        }
        let change = i.missing_now - i.missing_then;
        if change.abs() >= t.inputs.missing_change {
            add(
                Level::Watch,
                "missing_change",
                Some(&i.name),
                format!(
                    "`{}` is missing on {:.1} % of rows, {:.1} % in training",
                    i.name,
                    100.0 * i.missing_now,
                    100.0 * i.missing_then
                ),
            );
        }
        if i.unseen_share >= t.inputs.unseen_share {
            let names: Vec<&str> = i.unseen.iter().map(|u| u.0.as_str()).collect();
            add(
                Level::Watch,
                "unseen_categories",
                Some(&i.name),
                format!(
                    "`{}` has categories training never saw on {:.1} % of rows ({})",
                    i.name,
                    100.0 * i.unseen_share,
                    names.join(", ")
                ),
            );
        }
    }
    if m.scores.drift.psi >= t.scores.psi_watch {
        add(
            Level::Watch,
            "score_drift",
            None,
            format!(
                "predicted probabilities moved: PSI {:.3} against the latest training date's (mean {:.3} now, {:.3} then)",
                m.scores.drift.psi, m.scores.mean_now, m.scores.mean_then
            ),
        );
    }
    let r = &m.realised;
    match &r.pooled {
        None => {
            let first = if first_unseen == Day::MIN {
                String::from("a date after the training data")
            } else {
                time::format_date(first_unseen)
            };
            add(
                Level::Ok,
                "nothing_matured",
                None,
                format!(
                    "no scoring date after the training labels has a closed {horizon}-day horizon by {}: the first, {first}, matures on {}; input and prediction drift are all there is to judge by",
                    time::format_date(as_of),
                    if first_unseen == Day::MIN { String::from("-") } else { time::format_date(first_unseen + horizon) }
                ),
            );
        }
        Some(pooled) if pooled.positives < t.performance.min_churners => add(
            Level::Ok,
            "too_few_churners",
            None,
            format!(
                "{} matured date(s) hold {} churners, fewer than the {} needed to judge ranking and calibration",
                matured.len(),
                pooled.positives,
                t.performance.min_churners
            ),
        ),
        Some(pooled) => {
            if let (Some(low), Some(backtest)) = (m.backtest.roc_auc_low, m.backtest.roc_auc) {
                let bound = low - t.performance.auc_margin;
                let backtest_se = auc_standard_error(
                    backtest,
                    m.backtest.positives,
                    m.backtest.rows - m.backtest.positives,
                );
                // Below the backtest's lowest month, and lower than the backtest by more
                // than chance (a one-sided z-test at 2.5 %, Hanley-McNeil errors): a
                // month of 40 churners moves its ROC AUC by a few hundredths alone.
                let below = |e: &Evaluation| {
                    e.roc_auc.is_some_and(|auc| {
                        let se = auc_standard_error(auc, e.positives, e.rows - e.positives);
                        auc < bound && (auc - backtest) / se.hypot(backtest_se) < -1.96
                    })
                };
                if below(pooled) {
                    add(
                        Level::Retrain,
                        "realised_auc",
                        None,
                        format!(
                            "realised ROC AUC {:.3} over {} matured date(s) ({} churners) is below the backtest's lowest month, {low:.3}, and below its {backtest:.3} by more than chance",
                            pooled.roc_auc.unwrap_or(f64::NAN),
                            r.dates.len(),
                            pooled.positives
                        ),
                    );
                } else {
                    let low_dates: Vec<&str> = r
                        .dates
                        .iter()
                        .filter(|d| d.evaluation.positives >= t.performance.min_churners)
                        .filter(|d| below(&d.evaluation))
                        .map(|d| d.as_of.as_str())
                        .collect();
                    if !low_dates.is_empty() {
                        add(
                            Level::Watch,
                            "realised_auc",
                            None,
                            format!(
                                "realised ROC AUC fell below the backtest's lowest month ({low:.3}), by more than chance, on {}",
                                low_dates.join(", ")
                            ),
                        );
                    }
                }
            }
            if let Some(ratio) = r.calibration_ratio {
                let off = ratio.max(1.0 / ratio);
                let level = if off >= t.calibration.ratio_retrain {
                    Some(Level::Retrain)
                } else if off >= t.calibration.ratio_watch {
                    Some(Level::Watch)
                } else {
                    None
                };
                if let Some(level) = level {
                    add(
                        level,
                        "calibration",
                        None,
                        format!(
                            "the model predicted {:.2} % churn and {:.2} % happened on the matured dates: {} by {:.2}x (watch from {}x, retrain from {}x)",
                            pooled.predicted_churn_pct,
                            pooled.actual_churn_pct,
                            if ratio > 1.0 { "over-predicted" } else { "under-predicted" },
                            off,
                            t.calibration.ratio_watch,
                            t.calibration.ratio_retrain
                        ),
                    );
                }
            }
        }
    }
    let level = findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok);
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    Verdict {
        level,
        exit_code: level.exit_code(),
        findings,
    }
}
