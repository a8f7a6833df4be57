//! The survival model's out-of-time backtest, and the final fit it chooses.
//!
//! For a few test dates `T` (each with at least three earlier observation dates and
//! three months of data after it), a model is fitted on the examples observed before
//! `T` with their futures **censored at `T`** (a churn counts only once the grace
//! period after it has passed by `T`), and judged on the examples observed at `T`
//! against what the rest of the data says of them. Pooled over the test dates, per L2
//! strength: Harrell's concordance of `1 - S(12)`, the integrated Brier score over
//! months 1-12 with censoring weights, and for the chosen strength (lowest integrated
//! Brier score): calibration of `S(3)`, `S(6)`, `S(12)` against Kaplan-Meier per risk
//! decile, survival by risk band and plan, and the revenue of the first twelve months
//! predicted against what the customers seen through them paid.

use crate::preprocess::{table_cell, Cell};
use crate::risk::{RiskBand, RiskCutoffs};
use crate::survival::{cell_number, DEFAULT_MONTHS, INTERVAL_DAYS};
use crate::survival::{ClvSettings, PersonPeriods, SurvivalModel, Target, LAMBDAS};
use crate::survival_eval::{self, Calibration};
use crate::train::TrainError;
use churn_features::features::FeatureTable;
use churn_features::time::{self, Day};
use serde::Serialize;

/// Months the backtest judges the curves over.
pub const TAU_MONTHS: u32 = 12;
/// Test dates at most.
const MAX_TEST_DATES: usize = 4;
/// Horizons whose calibration is shown.
pub const CALIBRATION_MONTHS: [u32; 3] = [3, 6, 12];

/// One L2 strength's pooled backtest figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HazardCandidate {
    pub lambda: f64,
    /// Whether the features' effect may change with the months ahead.
    pub decaying: bool,
    /// Harrell's C of `1 - S(12)` with outcomes up to month 12.
    pub concordance: Option<f64>,
    /// Mean Brier score of `S(1)` to `S(12)`, censoring-weighted.
    pub integrated_brier: f64,
}

/// Mean predicted and Kaplan-Meier survival of a group of test rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCurve {
    pub group: String,
    pub rows: usize,
    /// Mean predicted `S(1..=12)`.
    pub predicted: Vec<f64>,
    /// Kaplan-Meier `S(1..=12)` of the same rows.
    pub realised: Vec<f64>,
}

/// Revenue of the first `months` months after the date, predicted against paid, over
/// test rows seen through all of them (or churned before) with a known MRR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealisedValue {
    pub months: u32,
    pub rows: usize,
    /// `sum MRR * (S(0) + ... + S(months - 1))`: billed at the start of each month.
    pub predicted: f64,
    /// `sum MRR * months still a customer at the start of a month (at most months)`.
    pub realised: f64,
    /// The same per quintile of predicted value, lowest first.
    pub quintiles: Vec<(f64, f64)>,
}

/// The classifier's 30-day probability against the survival model's `1 - S(1)` on the
/// latest date's rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    pub rows: usize,
    pub classifier_mean: f64,
    pub survival_mean: f64,
    /// Pearson correlation of the two.
    pub correlation: f64,
    /// Share of rows both put in the same risk band.
    pub same_band: f64,
}

/// What the survival backtest found, saved as `survival.json` and shown in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurvivalReport {
    pub test_dates: Vec<String>,
    /// Test rows pooled over the dates, and their churns within twelve months.
    pub rows: usize,
    pub churns: usize,
    pub candidates: Vec<HazardCandidate>,
    /// The chosen candidate (the lowest integrated Brier score).
    pub lambda: f64,
    pub decaying: bool,
    pub concordance: Option<f64>,
    pub integrated_brier: f64,
    /// The integrated Brier score of the training rows' Kaplan-Meier curve given to
    /// everyone (no covariates): the score to beat.
    pub reference_integrated_brier: f64,
    pub calibration: Vec<Calibration>,
    /// By the risk band `1 - S(1)` falls in (the classifier's cut-offs).
    pub by_band: Vec<GroupCurve>,
    pub by_plan: Vec<GroupCurve>,
    pub value_12m: Option<RealisedValue>,
    /// The same over 24 months, when test dates leave two years of data: the curve's
    /// later months, which the folds' fits saw little or nothing of, against what the
    /// customers paid.
    pub value_24m: Option<RealisedValue>,
    /// Filled in by the trainer, which has the classifier.
    pub agreement: Option<Agreement>,
    /// The final model's person-period rows and churns.
    pub person_periods: usize,
    pub events: usize,
    /// The last month the final model's data observed: past it every customer counts
    /// as an average survivor (see `SurvivalModel::follow_up`).
    pub follow_up_months: u32,
}

/// The examples' futures: `ends[r]` is the end of row `r`'s active period (none while
/// open); the data ends on `data_end` (exclusive); a churn is known `grace_days` after
/// its period ends.
pub struct Futures<'a> {
    pub ends: &'a [Option<Day>],
    pub data_end: Day,
    pub grace_days: i32,
}

impl Futures<'_> {
    /// Row `r`'s target as known on `known_on`.
    fn target(&self, table: &FeatureTable, r: usize, known_on: Day) -> Target {
        let as_of = table.as_of[r].expect("examples of a data set have dates");
        Target::of(as_of, self.ends[r], known_on - self.grace_days)
    }
}

/// The dates the backtest tests on: up to four, evenly spread over the dates with three
/// earlier dates and three months of data after them.
fn test_dates(dates: &[Day], futures: &Futures) -> Vec<Day> {
    let last = futures.data_end - futures.grace_days - 3 * INTERVAL_DAYS;
    let eligible: Vec<Day> = dates
        .iter()
        .copied()
        .skip(3)
        .filter(|&d| d <= last)
        .collect();
    if eligible.len() <= MAX_TEST_DATES {
        return eligible;
    }
    let n = eligible.len() - 1;
    (0..MAX_TEST_DATES)
        .map(|j| eligible[(j * n + (MAX_TEST_DATES - 1) / 2) / (MAX_TEST_DATES - 1)])
        .collect()
}

/// The hazard models the backtest chooses from: each L2 strength, with the features'
/// effect constant and changing with the months ahead.
fn variants() -> impl Iterator<Item = (f64, bool)> {
    [false, true]
        .into_iter()
        .flat_map(|decaying| LAMBDAS.iter().map(move |&l| (l, decaying)))
}

/// One test date's rows, their targets and each candidate's curves (`S(1..=12)`).
struct Fold {
    rows: Vec<usize>,
    targets: Vec<Target>,
    curves: Vec<Vec<Vec<f64>>>,
    reference: Vec<f64>,
}

fn curves(
    model: &SurvivalModel,
    table: &FeatureTable,
    rows: &[usize],
) -> Result<Vec<Vec<f64>>, TrainError> {
    rows.iter()
        .map(|&r| Ok(model.curve_of_row(table, r)?.survival))
        .collect()
}

fn group_curve(
    group: String,
    rows: &[usize],
    fold_curves: &[&[f64]],
    targets: &[Target],
) -> GroupCurve {
    let tau = TAU_MONTHS as usize;
    let mut predicted = vec![0.0; tau];
    for &i in rows {
        for (p, s) in predicted.iter_mut().zip(fold_curves[i]) {
            *p += s / rows.len() as f64;
        }
    }
    let group_targets: Vec<&Target> = rows.iter().map(|&i| &targets[i]).collect();
    GroupCurve {
        group,
        rows: rows.len(),
        predicted,
        realised: survival_eval::kaplan_meier(&group_targets, TAU_MONTHS),
    }
}

fn text(cell: Cell<'_>) -> String {
    match cell {
        Cell::Text(t) => t.to_string(),
        Cell::Number(v) => v.to_string(),
        Cell::Missing => "(missing)".into(),
    }
}

fn realised_value(
    table: &FeatureTable,
    rows: &[usize],
    fold_curves: &[&[f64]],
    targets: &[Target],
    months: u32,
) -> Option<RealisedValue> {
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    for (i, &r) in rows.iter().enumerate() {
        let t = &targets[i];
        // Only rows whose date leaves `months` months of data: keeping the churners of
        // younger dates but not their survivors would bias what was paid down.
        if t.observed_intervals < months || fold_curves[i].len() + 1 < months as usize {
            continue;
        }
        let paid_months = t.event_interval.map_or(months, |k| k.min(months));
        let Some(mrr) = cell_number(table_cell(table.column("mrr"), r)) else {
            continue;
        };
        let expected: f64 = 1.0 + fold_curves[i][..months as usize - 1].iter().sum::<f64>();
        pairs.push((mrr * expected, mrr * f64::from(paid_months)));
    }
    if pairs.is_empty() {
        return None;
    }
    let predicted = pairs.iter().map(|p| p.0).sum();
    let realised = pairs.iter().map(|p| p.1).sum();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pairs.len();
    let quintiles = (0..5.min(n))
        .map(|q| {
            let part = &pairs[q * n / 5.min(n)..(q + 1) * n / 5.min(n)];
            (
                part.iter().map(|p| p.0).sum(),
                part.iter().map(|p| p.1).sum(),
            )
        })
        .collect();
    Some(RealisedValue {
        months,
        rows: n,
        predicted,
        realised,
        quintiles,
    })
}

/// Backtests the survival model on the examples in `table` (every row an example with
/// its date) and fits the final one on all of them with the chosen L2 strength. `None`
/// when the data holds no churn or no survival to learn from.
pub fn fit_and_backtest(
    table: &FeatureTable,
    futures: &Futures,
    cutoffs: RiskCutoffs,
    clv: ClvSettings,
) -> Result<Option<(SurvivalModel, Option<SurvivalReport>)>, TrainError> {
    let all_rows: Vec<usize> = (0..table.len()).collect();
    let targets: Vec<Target> = all_rows
        .iter()
        .map(|&r| futures.target(table, r, futures.data_end))
        .collect();
    let mut dates: Vec<Day> = table.as_of.iter().flatten().copied().collect();
    dates.sort_unstable();
    dates.dedup();
    let mut folds = Vec::new();
    let mut tested = Vec::new();
    for t in test_dates(&dates, futures) {
        let fit_rows: Vec<usize> = all_rows
            .iter()
            .copied()
            .filter(|&r| table.as_of[r].is_some_and(|d| d < t))
            .collect();
        let fit_targets: Vec<Target> = fit_rows
            .iter()
            .map(|&r| futures.target(table, r, t))
            .collect();
        let design = match PersonPeriods::new(table, &fit_rows, &fit_targets, DEFAULT_MONTHS, clv) {
            Ok(d) => d,
            Err(TrainError::NotEnoughData(_)) => continue,
            Err(e) => return Err(e),
        };
        let test_rows: Vec<usize> = all_rows
            .iter()
            .copied()
            .filter(|&r| table.as_of[r] == Some(t))
            .collect();
        let mut fold_curves = Vec::new();
        for (lambda, decaying) in variants() {
            fold_curves.push(curves(&design.fit(lambda, decaying)?, table, &test_rows)?);
        }
        let fit_refs: Vec<&Target> = fit_targets.iter().collect();
        folds.push(Fold {
            targets: test_rows.iter().map(|&r| targets[r]).collect(),
            rows: test_rows,
            curves: fold_curves,
            reference: survival_eval::kaplan_meier(&fit_refs, TAU_MONTHS),
        });
        tested.push(time::format_date(t));
    }
    let pooled_targets: Vec<Target> = folds
        .iter()
        .flat_map(|f| f.targets.iter().copied())
        .collect();
    let pooled_rows: Vec<usize> = folds.iter().flat_map(|f| f.rows.iter().copied()).collect();
    let pooled_curves = |c: usize| -> Vec<&[f64]> {
        folds
            .iter()
            .flat_map(|f| f.curves[c].iter().map(|v| v.as_slice()))
            .collect()
    };
    let candidates: Vec<HazardCandidate> = variants()
        .enumerate()
        .map(|(c, (lambda, decaying))| {
            let curves = pooled_curves(c);
            let risk: Vec<f64> = curves
                .iter()
                .map(|s| 1.0 - s[TAU_MONTHS as usize - 1])
                .collect();
            HazardCandidate {
                lambda,
                decaying,
                concordance: survival_eval::concordance(&risk, &pooled_targets, TAU_MONTHS),
                integrated_brier: survival_eval::integrated_brier(
                    &curves,
                    &pooled_targets,
                    TAU_MONTHS,
                ),
            }
        })
        .collect();
    let chosen = if pooled_targets.is_empty() {
        0
    } else {
        (0..candidates.len())
            .min_by(|&a, &b| {
                candidates[a]
                    .integrated_brier
                    .total_cmp(&candidates[b].integrated_brier)
            })
            .expect("candidates exist")
    };
    let HazardCandidate {
        lambda, decaying, ..
    } = candidates[chosen];
    let model = match SurvivalModel::fit(
        table,
        &all_rows,
        &targets,
        DEFAULT_MONTHS,
        clv,
        lambda,
        decaying,
    ) {
        Ok(m) => m,
        Err(TrainError::NotEnoughData(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if pooled_targets.is_empty() {
        return Ok(Some((model, None)));
    }
    let curves = pooled_curves(chosen);
    let reference: Vec<&[f64]> = folds
        .iter()
        .flat_map(|f| f.rows.iter().map(|_| f.reference.as_slice()))
        .collect();
    let calibration = CALIBRATION_MONTHS
        .iter()
        .filter_map(|&t| survival_eval::calibration(&curves, &pooled_targets, t))
        .collect();
    let positions: Vec<usize> = (0..pooled_rows.len()).collect();
    let by_band = RiskBand::ALL
        .iter()
        .filter_map(|&band| {
            let rows: Vec<usize> = positions
                .iter()
                .copied()
                .filter(|&i| cutoffs.band(1.0 - curves[i][0]) == band)
                .collect();
            (!rows.is_empty())
                .then(|| group_curve(band.as_str().into(), &rows, &curves, &pooled_targets))
        })
        .collect();
    let plans: Vec<String> = pooled_rows
        .iter()
        .map(|&r| text(table_cell(table.column("plan"), r)))
        .collect();
    let mut names = plans.clone();
    names.sort();
    names.dedup();
    let by_plan = if table.column("plan").is_some() {
        names
            .iter()
            .map(|name| {
                let rows: Vec<usize> = positions
                    .iter()
                    .copied()
                    .filter(|&i| &plans[i] == name)
                    .collect();
                group_curve(name.clone(), &rows, &curves, &pooled_targets)
            })
            .collect()
    } else {
        Vec::new()
    };
    let report = SurvivalReport {
        test_dates: tested,
        rows: pooled_rows.len(),
        churns: pooled_targets
            .iter()
            .filter(|t| t.event_interval.is_some_and(|k| k <= TAU_MONTHS))
            .count(),
        lambda,
        decaying,
        concordance: candidates[chosen].concordance,
        integrated_brier: candidates[chosen].integrated_brier,
        reference_integrated_brier: survival_eval::integrated_brier(
            &reference,
            &pooled_targets,
            TAU_MONTHS,
        ),
        candidates,
        calibration,
        by_band,
        by_plan,
        value_12m: realised_value(table, &pooled_rows, &curves, &pooled_targets, 12),
        value_24m: realised_value(table, &pooled_rows, &curves, &pooled_targets, 24),
        agreement: None,
        person_periods: model.person_periods,
        events: model.events,
        follow_up_months: model.follow_up,
    };
    Ok(Some((model, Some(report))))
}

/// The classifier's probabilities `classifier` against `1 - S(1)` of `survival` for the
/// same rows.
pub fn agreement(classifier: &[f64], survival: &[f64], cutoffs: RiskCutoffs) -> Option<Agreement> {
    let n = classifier.len();
    if n < 2 || survival.len() != n {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(classifier), mean(survival));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (a, b) in classifier.iter().zip(survival) {
        sab += (a - ma) * (b - mb);
        saa += (a - ma) * (a - ma);
        sbb += (b - mb) * (b - mb);
    }
    let same = classifier
        .iter()
        .zip(survival)
        .filter(|(a, b)| cutoffs.band(**a) == cutoffs.band(**b))
        .count();
    Some(Agreement {
        rows: n,
        classifier_mean: ma,
        survival_mean: mb,
        correlation: sab / (saa * sbb).sqrt().max(1e-300),
        same_band: same as f64 / n as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fold_does_not_see_a_churn_before_its_grace_period_has_passed() {
        let table = FeatureTable {
            customer_ids: vec!["a".into()],
            customers: vec![0],
            as_of: vec![Some(1000)],
            info: Vec::new(),
            columns: Vec::new(),
            config: Default::default(),
        };
        let ends = [Some(1100)];
        let futures = Futures {
            ends: &ends,
            data_end: 2000,
            grace_days: 14,
        };
        // Known on 1113: the period ended on 1100 but the customer could still return.
        let early = futures.target(&table, 0, 1113);
        assert_eq!(early.event_interval, None);
        assert_eq!(early.observed_intervals, 3);
        // Known on 1134: the churn in interval 4 is seen, and interval 4 complete.
        let late = futures.target(&table, 0, 1134);
        assert_eq!(late.event_interval, Some(4));
        // The data's own end.
        assert_eq!(futures.target(&table, 0, 2000).event_interval, Some(4));
    }

    #[test]
    fn realised_value_counts_the_months_billed_of_customers_seen_long_enough() {
        use churn_features::dataset::Values;
        use churn_features::features::{FeatureInfo, FeatureKind};
        let table = FeatureTable {
            customer_ids: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            customers: vec![0, 1, 2, 3],
            as_of: vec![Some(0); 4],
            info: vec![FeatureInfo {
                name: "mrr".into(),
                description: String::new(),
                kind: FeatureKind::Numeric,
            }],
            columns: vec![Values::Numeric(vec![
                Some(10.0),
                Some(20.0),
                Some(30.0),
                None,
            ])],
            config: Default::default(),
        };
        let target = |event: Option<u32>, observed: u32| Target {
            event_interval: event,
            observed_intervals: observed,
        };
        // a: churned in month 5, seen 30 months; b: still there after 26 months;
        // c: seen 13 months only (in the 12-month check, not the 24-month one);
        // d: no MRR, left out.
        let targets = [
            target(Some(5), 30),
            target(None, 26),
            target(None, 13),
            target(None, 30),
        ];
        let flat: Vec<f64> = vec![0.5; 24];
        let curves: Vec<&[f64]> = vec![&flat; 4];
        let rows = [0, 1, 2, 3];
        let v12 = realised_value(&table, &rows, &curves, &targets, 12).unwrap();
        assert_eq!((v12.months, v12.rows), (12, 3));
        // Paid: a 5 months, b and c 12. Predicted: 1 + 11 x 0.5 = 6.5 months each.
        assert_eq!(v12.realised, 10.0 * 5.0 + 20.0 * 12.0 + 30.0 * 12.0);
        assert!((v12.predicted - 6.5 * 60.0).abs() < 1e-9);
        let v24 = realised_value(&table, &rows, &curves, &targets, 24).unwrap();
        assert_eq!((v24.months, v24.rows), (24, 2));
        assert_eq!(v24.realised, 10.0 * 5.0 + 20.0 * 24.0);
        assert!((v24.predicted - 12.5 * 30.0).abs() < 1e-9);
        // Nobody seen through 36 months: no figure rather than a figure of nobody.
        assert!(realised_value(&table, &rows, &curves, &targets, 36).is_none());
    }
}
