//! The reference profile a model keeps of its training data, and the drift measures
//! that compare a later population with it.
//!
//! Per model input: decile bins of a number (edges from the training rows, equal values
//! merged, so a count that is zero on 60 % of rows gets a bin of its own) or the
//! frequencies of a category (the 50 most frequent, then "other"), with missing values
//! counted as a bin of their own, over the rows of the latest three observation dates.
//! Then the shipped model's predictions on the latest date's rows (its calibration
//! rows, not its fitting rows), their base rate and shares per risk band, the signup
//! cohorts of the backtest, and the backtest's figures.
//!
//! Measures, on the same bins: the population stability index (PSI, shares floored at
//! 1e-4 so an empty bin counts as rare rather than infinite), the Jensen-Shannon
//! distance (base 2, from 0 to 1) and, for numbers, the Kolmogorov-Smirnov statistic
//! over the bin edges with its asymptotic p-value. Binning makes KS a lower bound of the
//! exact statistic; with tens of thousands of rows any shift is "significant", which is
//! why the verdict rests on PSI and KS is reported beside it.

use crate::model::ChurnModel;
use crate::preprocess::PrepError;
use crate::risk::{RiskBand, RiskCutoffs};
use crate::train::TrainOutcome;
use churn_features::dataset::Values;
use churn_features::features::FeatureTable;
use serde::{Deserialize, Serialize};

/// Bins of a number: deciles.
pub const NUMERIC_BINS: usize = 10;
/// Categories kept by name; the rest are pooled as "other".
pub const MAX_CATEGORIES: usize = 50;
/// Rows a quantile is estimated from at most (evenly spaced over the training rows);
/// every row is counted into the bins.
const QUANTILE_SAMPLE: usize = 200_000;
/// The smallest share a bin is given in PSI and KL terms.
pub const SHARE_FLOOR: f64 = 1e-4;

/// How a value is binned, with the reference's count per bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Bins {
    /// Bin `i` holds values up to `edges[i]` (and above `edges[i - 1]`); the last bin
    /// holds values above the last edge; then one bin for missing values.
    Numeric { edges: Vec<f64> },
    /// One bin per category, then "other" (any category not listed), then missing.
    Categorical { categories: Vec<String> },
}

impl Bins {
    /// Number of bins, the missing bin included.
    pub fn len(&self) -> usize {
        match self {
            Bins::Numeric { edges } => edges.len() + 2,
            Bins::Categorical { categories } => categories.len() + 2,
        }
    }

    /// Always false: there is at least a bin for values and one for missing ones.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The missing bin's index.
    pub fn missing(&self) -> usize {
        self.len() - 1
    }

    /// The bin of a number (a missing or non-finite value goes to the missing bin).
    pub fn of_number(&self, x: Option<f64>) -> usize {
        match (self, x) {
            (Bins::Numeric { edges }, Some(x)) if x.is_finite() => {
                edges.partition_point(|e| *e < x)
            }
            _ => self.missing(),
        }
    }

    /// The bin of a category ("other" for one the reference did not list).
    pub fn of_text(&self, x: Option<&str>) -> usize {
        match (self, x) {
            (Bins::Categorical { categories }, Some(x)) => categories
                .iter()
                .position(|c| c == x)
                .unwrap_or(categories.len()),
            _ => self.missing(),
        }
    }

    /// The bin of a cell as scoring receives it: a number given as text (a CSV cell, a
    /// JSON string) is binned as the number the preprocessing reads.
    pub fn of_cell(&self, cell: crate::preprocess::Cell<'_>) -> usize {
        use crate::preprocess::Cell;
        match (self, cell) {
            (_, Cell::Missing) => self.missing(),
            (Bins::Numeric { .. }, Cell::Number(x)) => self.of_number(Some(x)),
            (Bins::Numeric { .. }, Cell::Text(t)) => self.of_number(t.trim().parse().ok()),
            (Bins::Categorical { .. }, Cell::Text(t)) => self.of_text(Some(t)),
            (Bins::Categorical { .. }, Cell::Number(x)) => {
                self.of_text(Some(&crate::preprocess::format_number(x)))
            }
        }
    }

    /// Counts a column into these bins.
    pub fn count(&self, values: &Values, rows: impl Iterator<Item = usize>) -> Vec<u64> {
        let mut counts = vec![0u64; self.len()];
        match values {
            Values::Numeric(v) => rows.for_each(|r| counts[self.of_number(v[r])] += 1),
            Values::Categorical(v) => rows.for_each(|r| counts[self.of_text(v[r].as_deref())] += 1),
        }
        counts
    }

    /// A label per bin, for reports: `≤ 3.5`, `> 12`, a category, `other`, `missing`.
    pub fn labels(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.len());
        match self {
            Bins::Numeric { edges } => {
                out.extend(edges.iter().map(|e| format!("≤ {}", short(*e))));
                out.push(
                    edges
                        .last()
                        .map_or("any".into(), |e| format!("> {}", short(*e))),
                );
            }
            Bins::Categorical { categories } => {
                out.extend(categories.iter().cloned());
                out.push("other".into());
            }
        }
        out.push("missing".into());
        out
    }

    /// Numeric bins from decile edges of values (a sample of up to 200,000 of them).
    pub fn deciles(values: impl Iterator<Item = f64>, len: usize) -> Bins {
        let step = len.div_ceil(QUANTILE_SAMPLE).max(1);
        let mut sample: Vec<f64> = values.step_by(step).filter(|x| x.is_finite()).collect();
        sample.sort_unstable_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::with_capacity(NUMERIC_BINS - 1);
        if !sample.is_empty() {
            for k in 1..NUMERIC_BINS {
                let e = sample[(k * sample.len() / NUMERIC_BINS).min(sample.len() - 1)];
                if edges.last() != Some(&e) {
                    edges.push(e);
                }
            }
        }
        Bins::Numeric { edges }
    }

    /// Categorical bins: the most frequent categories of a column's rows.
    pub fn categories<'a>(values: impl Iterator<Item = &'a str>) -> Bins {
        let mut counts: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for v in values {
            *counts.entry(v).or_default() += 1;
        }
        let mut by_count: Vec<(&str, u64)> = counts.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Bins::Categorical {
            categories: by_count
                .into_iter()
                .take(MAX_CATEGORIES)
                .map(|(c, _)| c.to_string())
                .collect(),
        }
    }
}

/// A number short enough for a bin label.
fn short(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A distribution over [`Bins`]: the bins and a count per bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub bins: Bins,
    pub counts: Vec<u64>,
}

impl Distribution {
    /// Rows counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Each bin's share of the rows (zeros when there are none).
    pub fn shares(&self) -> Vec<f64> {
        shares(&self.counts)
    }

    /// The share of missing values.
    pub fn missing_share(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            0.0
        } else {
            self.counts[self.bins.missing()] as f64 / total as f64
        }
    }

    /// How `current` (counted over the same bins) differs from this reference.
    pub fn drift(&self, current: &[u64]) -> Drift {
        let ks = match self.bins {
            Bins::Numeric { .. } => ks(&self.counts, current),
            Bins::Categorical { .. } => None,
        };
        Drift {
            psi: psi(&self.counts, current),
            js: js_distance(&self.counts, current),
            ks: ks.map(|k| k.0),
            ks_p: ks.map(|k| k.1),
        }
    }
}

/// Shares of counts.
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// A current distribution against its reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Population stability index.
    pub psi: f64,
    /// Jensen-Shannon distance, base 2 (0 = the same, 1 = disjoint).
    pub js: f64,
    /// Kolmogorov-Smirnov statistic over the bin edges (numbers only, missing excluded).
    pub ks: Option<f64>,
    /// Its asymptotic p-value.
    pub ks_p: Option<f64>,
}

/// Population stability index of `current` against `reference` (counts over the same
/// bins): `sum (c - r) ln(c / r)` over shares floored at [`SHARE_FLOOR`].
pub fn psi(reference: &[u64], current: &[u64]) -> f64 {
    if reference.iter().sum::<u64>() == 0 || current.iter().sum::<u64>() == 0 {
        return 0.0;
    }
    shares(reference)
        .iter()
        .zip(shares(current))
        .map(|(&r, c)| {
            let (r, c) = (r.max(SHARE_FLOOR), c.max(SHARE_FLOOR));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// Jensen-Shannon distance (the square root of the divergence, base 2).
pub fn js_distance(reference: &[u64], current: &[u64]) -> f64 {
    if reference.iter().sum::<u64>() == 0 || current.iter().sum::<u64>() == 0 {
        return 0.0;
    }
    let kl = |p: f64, m: f64| if p > 0.0 { p * (p / m).log2() } else { 0.0 };
    let divergence: f64 = shares(reference)
        .iter()
        .zip(shares(current))
        .map(|(&r, c)| {
            let m = (r + c) / 2.0;
            0.5 * kl(r, m) + 0.5 * kl(c, m)
        })
        .sum();
    divergence.clamp(0.0, 1.0).sqrt()
}

/// Kolmogorov-Smirnov statistic and asymptotic p-value over the value bins (the last
/// bin, missing values, left out); `None` when either side has no values.
pub fn ks(reference: &[u64], current: &[u64]) -> Option<(f64, f64)> {
    let values = reference.len().saturating_sub(1);
    let (r, c) = (&reference[..values], &current[..values]);
    let (n, m) = (r.iter().sum::<u64>(), c.iter().sum::<u64>());
    if n == 0 || m == 0 {
        return None;
    }
    let (mut fr, mut fc, mut d) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in r.iter().zip(c) {
        fr += *a as f64 / n as f64;
        fc += *b as f64 / m as f64;
        d = d.max((fr - fc).abs());
    }
    let ne = (n as f64 * m as f64) / (n + m) as f64;
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    Some((d, kolmogorov_tail(lambda)))
}

/// `P(K > lambda)` of the Kolmogorov distribution.
fn kolmogorov_tail(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as u32 % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// One model input's reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputProfile {
    pub name: String,
    /// Its share of the model's global importance (all inputs sum to 1).
    pub importance: f64,
    pub reference: Distribution,
}

/// One risk band of the rows the predictions were profiled on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandProfile {
    pub band: String,
    /// Share of the rows in the band.
    pub share: f64,
    /// Mean predicted probability of those rows.
    pub predicted: f64,
    /// Their realised churn rate.
    pub realised: f64,
}

/// One signup cohort in the backtest (from the training report's cohort table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortProfile {
    /// `YYYY-MM`, or `YYYY-MM to YYYY-MM` for pooled months.
    pub cohort: String,
    pub rows: usize,
    pub predicted_churn_pct: f64,
    pub actual_churn_pct: f64,
}

/// The backtest's figures the monitor compares realised performance with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestFigures {
    /// The backtest's pooled test rows and churners among them.
    pub rows: usize,
    pub positives: usize,
    pub roc_auc: Option<f64>,
    /// The lowest ROC AUC of a backtest fold with at least 10 churners: how low the
    /// model went on a month it had not seen.
    pub roc_auc_low: Option<f64>,
    pub pr_auc: Option<f64>,
    pub lift_top10: Option<f64>,
    pub predicted_churn_pct: f64,
    pub actual_churn_pct: f64,
}

/// What a model keeps of its training data to be compared with later data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Training rows profiled: those of the latest three observation dates.
    pub rows: usize,
    /// Their observation dates, first and last (`YYYY-MM-DD`).
    pub first_as_of: Option<String>,
    pub last_as_of: Option<String>,
    /// One per model input, in the preprocessor's order.
    pub inputs: Vec<InputProfile>,
    /// The shipped model's predicted probabilities on the latest training date's rows
    /// (its calibration rows; the backtest's pooled predictions for a table without
    /// dates).
    pub scores: Distribution,
    /// Their mean.
    pub mean_score: f64,
    /// Realised churn share of those rows.
    pub base_rate: f64,
    /// Those rows per risk band (every band, lowest first).
    pub bands: Vec<BandProfile>,
    pub cohorts: Vec<CohortProfile>,
    pub backtest: BacktestFigures,
}

/// Observation dates the inputs' reference is taken from: the latest ones.
pub const REFERENCE_DATES: usize = 3;

/// The rows of the latest [`REFERENCE_DATES`] observation dates (every row of a table
/// without dates). Early dates of a data window see a short history (no survey yet,
/// time to value reached before the data began): as a reference they would make every
/// history-dependent input look drifted later, and the latest population is the one
/// the model scores next.
fn reference_rows(table: &FeatureTable) -> Vec<usize> {
    let mut dates: Vec<_> = table.as_of.iter().flatten().copied().collect();
    dates.sort_unstable();
    dates.dedup();
    match dates.len().checked_sub(REFERENCE_DATES) {
        Some(k) if !dates.is_empty() => {
            let from = dates[k];
            (0..table.len())
                .filter(|&r| table.as_of[r].is_some_and(|d| d >= from))
                .collect()
        }
        _ => (0..table.len()).collect(),
    }
}

/// Folds need this many churners for their ROC AUC to count in the lower bound.
const MIN_FOLD_POSITIVES: usize = 10;

impl Profile {
    /// The profile of `model` trained on `table` (the inputs from the rows of its
    /// latest three observation dates, the predictions from its latest date's), with
    /// the backtest of `outcome`.
    pub fn of(
        model: &ChurnModel,
        table: &FeatureTable,
        labels: &[u8],
        outcome: &TrainOutcome,
    ) -> Result<Profile, PrepError> {
        let total_importance: f64 = outcome.importance.iter().map(|(_, v)| v.abs()).sum();
        let importance = |name: &str| {
            outcome
                .importance
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, v)| {
                    if total_importance > 0.0 {
                        v.abs() / total_importance
                    } else {
                        0.0
                    }
                })
        };
        let rows = reference_rows(table);
        let inputs = model
            .preprocessor
            .transforms
            .iter()
            .filter_map(|t| {
                let column = table.column(t.name())?;
                let bins = match column {
                    Values::Numeric(v) => {
                        Bins::deciles(rows.iter().filter_map(|&r| v[r]), rows.len())
                    }
                    Values::Categorical(v) => {
                        Bins::categories(rows.iter().filter_map(|&r| v[r].as_deref()))
                    }
                };
                let counts = bins.count(column, rows.iter().copied());
                Some(InputProfile {
                    name: t.name().to_string(),
                    importance: importance(t.name()),
                    reference: Distribution { bins, counts },
                })
            })
            .collect();
        // The shipped model's predictions on the latest date's rows: its calibration
        // rows, never its fitting rows (see train.rs). The backtest's pooled
        // predictions come from fold models fitted on fewer dates, less sure of
        // themselves: against them the shipped model's scores looked drifted on an
        // unchanged base (PSI 0.20 on 0.9 M customers). A table without dates has only
        // the backtest's.
        let latest = table.as_of.iter().flatten().max().copied();
        let (p, y): (Vec<f64>, Vec<u8>) = match latest {
            Some(d) => {
                let rows: Vec<usize> = (0..table.len())
                    .filter(|&r| table.as_of[r] == Some(d))
                    .collect();
                let p = model.predict_table(table, &rows)?;
                (p, rows.iter().map(|&r| labels[r]).collect())
            }
            None => outcome.pooled.clone(),
        };
        let score_bins = Bins::deciles(p.iter().copied(), p.len());
        let scores = Distribution {
            counts: score_bins.count(
                &Values::Numeric(p.iter().map(|&v| Some(v)).collect()),
                0..p.len(),
            ),
            bins: score_bins,
        };
        let cutoffs = RiskCutoffs::from_threshold(model.threshold);
        let bands = RiskBand::ALL
            .iter()
            .map(|&band| {
                let rows: Vec<usize> = (0..p.len())
                    .filter(|&i| cutoffs.band(p[i]) == band)
                    .collect();
                let mean = |f: &dyn Fn(usize) -> f64| {
                    if rows.is_empty() {
                        0.0
                    } else {
                        rows.iter().map(|&i| f(i)).sum::<f64>() / rows.len() as f64
                    }
                };
                BandProfile {
                    band: band.as_str().to_string(),
                    share: rows.len() as f64 / p.len().max(1) as f64,
                    predicted: mean(&|i| p[i]),
                    realised: mean(&|i| f64::from(y[i])),
                }
            })
            .collect();
        let chosen = outcome.chosen;
        let roc_auc_low = outcome
            .folds
            .iter()
            .flat_map(|f| f.candidates.iter().filter(|c| c.kind == chosen))
            .filter(|c| c.evaluation.positives >= MIN_FOLD_POSITIVES)
            .filter_map(|c| c.evaluation.roc_auc)
            .min_by(f64::total_cmp);
        let dates = rows.iter().filter_map(|&r| table.as_of[r]);
        let o = &outcome.overall;
        Ok(Profile {
            rows: rows.len(),
            first_as_of: dates.clone().min().map(churn_features::time::format_date),
            last_as_of: dates.max().map(churn_features::time::format_date),
            inputs,
            scores,
            mean_score: p.iter().sum::<f64>() / p.len().max(1) as f64,
            base_rate: y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len().max(1) as f64,
            bands,
            cohorts: outcome
                .by_cohort
                .iter()
                .map(|c| CohortProfile {
                    cohort: c.cohort.clone(),
                    rows: c.rows,
                    predicted_churn_pct: c.predicted_churn_pct,
                    actual_churn_pct: c.actual_churn_pct,
                })
                .collect(),
            backtest: BacktestFigures {
                rows: o.rows,
                positives: o.positives,
                roc_auc: o.roc_auc,
                roc_auc_low,
                pr_auc: o.pr_auc,
                lift_top10: o.lift_top10,
                predicted_churn_pct: o.predicted_churn_pct,
                actual_churn_pct: o.actual_churn_pct,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_of_a_distribution_with_itself_is_zero_and_grows_with_the_shift() {
        let r = [100, 100, 100, 100, 0];
        assert_eq!(psi(&r, &r), 0.0);
        assert_eq!(js_distance(&r, &r), 0.0);
        let small = psi(&r, &[110, 100, 100, 90, 0]);
        let large = psi(&r, &[250, 100, 40, 10, 0]);
        assert!(small > 0.0 && small < 0.01, "{small}");
        assert!(large > 0.25, "{large}");
        // The textbook value: (0.4-0.25)ln(0.4/0.25) + (0.1-0.25)ln(0.1/0.25) twice over.
        let two_way = psi(&[25, 25, 25, 25, 0], &[40, 10, 40, 10, 0]);
        let expected = 2.0 * (0.15 * (1.6f64).ln() + (-0.15) * (0.4f64).ln());
        assert!((two_way - expected).abs() < 1e-12);
    }

    #[test]
    fn deciles_merge_tied_edges_and_bin_values_up_to_each_edge() {
        // 60 % zeros: the first six decile edges are all 0.
        let values: Vec<f64> = (0..100)
            .map(|i| if i < 60 { 0.0 } else { f64::from(i) })
            .collect();
        let bins = Bins::deciles(values.iter().copied(), values.len());
        let Bins::Numeric { edges } = &bins else {
            unreachable!()
        };
        assert_eq!(edges, &[0.0, 60.0, 70.0, 80.0, 90.0]);
        assert_eq!(bins.of_number(Some(0.0)), 0);
        assert_eq!(bins.of_number(Some(60.0)), 1);
        assert_eq!(bins.of_number(Some(60.5)), 2);
        assert_eq!(bins.of_number(Some(1e9)), 5);
        assert_eq!(bins.of_number(None), 6);
        assert_eq!(bins.of_number(Some(f64::NAN)), 6);
        // Cells as scoring receives them: a number sent as text is binned as a number.
        use crate::preprocess::Cell;
        assert_eq!(bins.of_cell(Cell::Text(" 60.5 ")), 2);
        assert_eq!(bins.of_cell(Cell::Text("n/a")), 6);
        assert_eq!(bins.of_cell(Cell::Missing), 6);
        let seats = Bins::Categorical {
            categories: vec!["3".into()],
        };
        assert_eq!(seats.of_cell(Cell::Number(3.0)), 0);
        let counts = bins.count(
            &Values::Numeric(values.iter().map(|&v| Some(v)).collect()),
            0..values.len(),
        );
        assert_eq!(counts, vec![60, 1, 10, 10, 10, 9, 0]);
    }

    #[test]
    fn ks_is_the_largest_gap_between_the_binned_distribution_functions() {
        let (d, p) = ks(&[50, 50, 0, 7], &[20, 80, 0, 0]).unwrap();
        assert!((d - 0.3).abs() < 1e-12);
        assert!(p < 1e-3, "{p}");
        let (d, p) = ks(&[50, 50, 0, 0], &[50, 50, 0, 3]).unwrap();
        assert_eq!(d, 0.0);
        assert_eq!(p, 1.0);
        assert!(ks(&[0, 0, 5], &[1, 1, 0]).is_none());
    }

    #[test]
    fn categories_keep_the_most_frequent_and_pool_the_rest() {
        let values: Vec<String> = (0..200).map(|i| format!("c{}", i % 60)).collect();
        let bins = Bins::categories(values.iter().map(|s| s.as_str()));
        assert_eq!(bins.len(), MAX_CATEGORIES + 2);
        assert_eq!(bins.of_text(Some("never seen")), MAX_CATEGORIES);
        assert_eq!(bins.of_text(None), MAX_CATEGORIES + 1);
        // c0..c19 occur four times, the others three: those twenty are kept.
        assert!((0..20).all(|i| bins.of_text(Some(&format!("c{i}"))) < MAX_CATEGORIES));
        assert_eq!(js_distance(&[10, 0, 0], &[0, 10, 0]), 1.0);
    }
}
