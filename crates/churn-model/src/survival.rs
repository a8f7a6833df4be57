//! Time to churn and customer lifetime value: a discrete-time survival model.
//!
//! Time after an observation date is cut into 30-day intervals ("months"; the first is
//! the classifier's 30-day horizon). Each training example contributes one row per
//! interval it was observed through (a person-period table): label 1 in the interval
//! its active period ended, 0 before; an example still active when the data ends is
//! censored after its last complete interval, not counted as retained for ever. A
//! logistic regression on those rows gives the hazard of interval `k` for a customer:
//!
//! `h(k | x) = sigmoid(b + w.x + baseline(group of k) + t * ln(1 + tenure months at k))`
//!
//! with `x` the features at the observation date (the logistic candidate's
//! preprocessing, numbers as `ln(1 + x)` where heavy-tailed), a baseline per group of
//! intervals (1, 2, 3, 4-6, 7-12, 13-24: flexible where data is dense) and the customer's
//! tenure at the interval. Intervals beyond what the data observed take the last
//! observed group's baseline, and there every customer's score `w.x` counts as that of
//! an average survivor of the observed intervals (the data never saw how much today's
//! features tell past them).
//!
//! From the hazards: the survival curve `S(k) = prod (1 - h(j))`, the median time to
//! churn (the first `k` with `S(k) <= 0.5`, or "beyond the horizon"), the expected
//! remaining lifetime `sum_{k>=0} S(k) - 1/2` months (the last interval's hazard held
//! constant beyond `K`: a geometric tail), and CLV = `sum_{k>=0} S(k) * MRR * margin *
//! d^k` with `d` the monthly discount factor (revenue billed at the start of each month
//! the customer is there; with margin 1 and no discount a constant hazard `h` gives
//! `MRR / h`, the KPI page's ARPA / churn).

use crate::logistic::{sigmoid, LinearModel};
use crate::preprocess::{model_features, table_cell, Cell, PrepError, Preprocessor};
use crate::train::TrainError;
use churn_features::features::FeatureTable;
use churn_features::time::Day;
use serde::{Deserialize, Serialize};

/// Days in one interval of the survival curve.
pub const INTERVAL_DAYS: i32 = 30;
/// Intervals of the curve (the K).
pub const DEFAULT_MONTHS: u32 = 24;
/// The points of the curve outputs show (those within the curve's length).
pub const SHOWN_MONTHS: [u32; 5] = [1, 3, 6, 12, 24];
/// The first interval of each baseline group.
const GROUP_STARTS: [u32; 6] = [1, 2, 3, 4, 7, 13];
/// Person-period rows fitted at most (examples are taken evenly when there would be
/// more).
const MAX_PERSON_PERIODS: usize = 3_000_000;
/// L2 strengths of the hazard regression the backtest chooses from, weakest first.
pub const LAMBDAS: [f64; 3] = [1e-3, 1e-2, 3e-2];

/// What the data says of one example's future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The interval its active period ended in, when the data saw it end.
    pub event_interval: Option<u32>,
    /// Complete intervals observed after the observation date (without an event).
    pub observed_intervals: u32,
}

impl Target {
    /// The target of an example observed `as_of`, whose active period ends `end` (none
    /// while open), in data that ends `data_end` (exclusive).
    pub fn of(as_of: Day, end: Option<Day>, data_end: Day) -> Target {
        let observed_intervals = ((data_end - as_of).max(0) / INTERVAL_DAYS) as u32;
        // A period that ended inside a lapse before `as_of` is a churn in the first
        // interval, as the classifier's label counts it. A churn in the partly observed
        // interval after the last complete one is not counted: that interval's
        // survivors are not seen either, and counting only its churns would inflate
        // the hazard of the last months.
        let event = end
            .map(|e| ((e - as_of).max(1) as u32).div_ceil(INTERVAL_DAYS as u32))
            .filter(|&k| k <= observed_intervals);
        Target {
            event_interval: event,
            observed_intervals,
        }
    }

    /// The intervals this example contributes rows for, and whether the last is its
    /// churn.
    fn intervals(&self, months: u32) -> (u32, bool) {
        match self.event_interval {
            Some(k) if k <= months => (k, true),
            Some(_) => (months, false),
            None => (self.observed_intervals.min(months), false),
        }
    }
}

/// How CLV is valued.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvSettings {
    /// Share of revenue kept (1: CLV in revenue, as the domain brief counts it).
    pub gross_margin: f64,
    /// Annual discount rate (0: undiscounted).
    pub annual_discount: f64,
}

impl ClvSettings {
    /// Checked settings: a margin in (0, 1] and an annual discount rate in [0, 1).
    pub fn new(gross_margin: f64, annual_discount: f64) -> Result<ClvSettings, String> {
        if !(gross_margin > 0.0 && gross_margin <= 1.0) {
            return Err(format!(
                "gross margin {gross_margin}: expected a share of revenue in (0, 1], such as 0.8"
            ));
        }
        if !(0.0..1.0).contains(&annual_discount) {
            return Err(format!(
                "annual discount rate {annual_discount}: expected a rate in [0, 1), such as 0.1 for 10 %"
            ));
        }
        Ok(ClvSettings {
            gross_margin,
            annual_discount,
        })
    }
}

impl Default for ClvSettings {
    fn default() -> Self {
        ClvSettings {
            gross_margin: 1.0,
            annual_discount: 0.0,
        }
    }
}

/// The fitted hazard model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurvivalModel {
    pub preprocessor: Preprocessor,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Log-odds of each baseline group against the first (the first is 0).
    pub baseline: Vec<f64>,
    /// Groups the training data observed (later intervals take the last one's).
    pub observed_groups: usize,
    /// Weight of `ln(1 + tenure in months)` at the interval.
    pub tenure_weight: f64,
    /// The training rows' median tenure in months, for a row without one.
    pub median_tenure_months: f64,
    /// Intervals of the curve.
    pub months: u32,
    pub clv: ClvSettings,
    /// Person-period rows and churns it was fitted on.
    pub person_periods: usize,
    pub events: usize,
    /// The score `w.x` counts `score_scale + score_decay * ln k` in interval `k`.
    pub score_scale: f64,
    pub score_decay: f64,
    /// The last interval the fitted data observed (0: not recorded, in files before
    /// format 7). Beyond it every customer's score counts as `beyond_score`.
    pub follow_up: u32,
    /// The mean score `w.x` of the fitted customers, each weighted by its modelled
    /// chance of still being there after `follow_up` intervals: the score of an average
    /// survivor.
    pub beyond_score: f64,
}

/// A model's per-interval terms ([`SurvivalModel::terms`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CurveTerms {
    intervals: Vec<IntervalTerms>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct IntervalTerms {
    /// `score_scale + score_decay * ln k`.
    effect: f64,
    /// The interval's baseline log-odds.
    baseline: f64,
    /// Past the fitted follow-up, where the score is the average survivor's.
    beyond: bool,
}

/// One customer's survival.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curve {
    /// `S(1)` to `S(K)`: the chance of still being a customer after each interval.
    pub survival: Vec<f64>,
    /// The hazard of the last interval (the tail's).
    pub last_hazard: f64,
}

impl Curve {
    /// The first interval after which survival is at most one half; `None`: beyond K.
    pub fn median_months(&self) -> Option<u32> {
        self.survival
            .iter()
            .position(|&s| s <= 0.5)
            .map(|k| k as u32 + 1)
    }

    /// Expected remaining lifetime in months (see the module's formula).
    pub fn expected_lifetime_months(&self) -> f64 {
        self.discounted_months(1.0) - 0.5
    }

    /// `sum_{k>=0} S(k) d^k`, the tail geometric.
    fn discounted_months(&self, d: f64) -> f64 {
        let k = self.survival.len() as i32;
        let mut total = 1.0;
        let mut factor = 1.0;
        for &s in &self.survival[..self.survival.len().saturating_sub(1)] {
            factor *= d;
            total += s * factor;
        }
        let last = self.survival.last().copied().unwrap_or(1.0);
        let h = self.last_hazard.clamp(1e-6, 1.0);
        total + last * d.powi(k) / (1.0 - (1.0 - h) * d)
    }

    /// Lifetime value of a customer paying `mrr` a month.
    pub fn clv(&self, mrr: f64, settings: &ClvSettings) -> f64 {
        let d = (1.0 + settings.annual_discount).powf(-1.0 / 12.0);
        mrr * settings.gross_margin * self.discounted_months(d)
    }
}

/// `ln k`, looked up for the months a curve usually spans: a curve is scored for every
/// customer of a batch, and these logarithms were a tenth of its cost.
fn ln_month(k: u32) -> f64 {
    const TABLE: usize = 121;
    static LN: std::sync::OnceLock<[f64; TABLE]> = std::sync::OnceLock::new();
    let table = LN.get_or_init(|| std::array::from_fn(|k| (k as f64).ln()));
    table
        .get(k as usize)
        .copied()
        .unwrap_or_else(|| f64::from(k).ln())
}

fn group_of(k: u32) -> usize {
    GROUP_STARTS.iter().rposition(|&s| k >= s).unwrap_or(0)
}

/// A numeric cell's value: a number, or its text as a CSV file gives it (the
/// preprocessing reads text the same way); `None` when missing or not finite.
pub(crate) fn cell_number(cell: Cell<'_>) -> Option<f64> {
    match cell {
        Cell::Number(v) => Some(v),
        Cell::Text(t) => t.trim().parse::<f64>().ok(),
        Cell::Missing => None,
    }
    .filter(|v| v.is_finite())
}

/// Months of tenure from the `tenure_days` cell; `None` when missing.
fn tenure_months(cell: Cell<'_>) -> Option<f64> {
    cell_number(cell).map(months_of_days)
}

fn months_of_days(days: f64) -> f64 {
    (days / f64::from(INTERVAL_DAYS)).max(0.0)
}

/// Months of the curve whose tenure term is tabulated.
const TABULATED_MONTHS: usize = 24;
/// Whole tenures (in days) below this have their tenure terms tabulated (0.8 MB).
const TABULATED_DAYS: usize = 4096;

/// `ln(1 + t0 + k)` for months `k = 1..=24` of a tenure of `days` (in months `t0`), from a
/// table when `days` is a whole number below [`TABULATED_DAYS`] (as real tenures are):
/// the same bits as computing them, which was a tenth of batch scoring's work.
fn tabulated_tenure_logs(days: f64) -> Option<&'static [f64; TABULATED_MONTHS]> {
    static TABLE: std::sync::OnceLock<Vec<[f64; TABULATED_MONTHS]>> = std::sync::OnceLock::new();
    let whole = crate::preprocess::whole_below(days, TABULATED_DAYS)?;
    let table = TABLE.get_or_init(|| {
        (0..TABULATED_DAYS)
            .map(|d| {
                let t0 = months_of_days(d as f64);
                std::array::from_fn(|m| (t0 + (m + 1) as f64).ln_1p())
            })
            .collect()
    });
    Some(&table[whole])
}

/// The person-period table of some examples, ready to fit at any L2 strength.
pub struct PersonPeriods {
    preprocessor: Preprocessor,
    xs: Vec<f64>,
    ys: Vec<u8>,
    /// The interval of each person-period row.
    intervals: Vec<u32>,
    width: usize,
    observed_groups: usize,
    median_tenure_months: f64,
    months: u32,
    clv: ClvSettings,
}

impl PersonPeriods {
    /// The rows `rows` of `table` with their `targets` (one per row), over `months`
    /// intervals.
    pub fn new(
        table: &FeatureTable,
        rows: &[usize],
        targets: &[Target],
        months: u32,
        clv: ClvSettings,
    ) -> Result<PersonPeriods, TrainError> {
        let use_features = model_features(&table.info);
        let preprocessor = Preprocessor::fit_with(table, rows, &use_features, true);
        let p = preprocessor.width();
        let groups = GROUP_STARTS.len();
        let width = p + (groups - 1) + 1;
        let total: usize = targets.iter().map(|t| t.intervals(months).0 as usize).sum();
        let step = total.div_ceil(MAX_PERSON_PERIODS).max(1);
        let picked: Vec<usize> = (0..rows.len()).step_by(step).collect();
        let picked_rows: Vec<usize> = picked.iter().map(|&i| rows[i]).collect();
        let x = preprocessor.transform_table(table, &picked_rows, &[])?;
        let tenure_cell = |r: usize| tenure_months(table_cell(table.column("tenure_days"), r));
        let mut tenures: Vec<f64> = rows.iter().filter_map(|&r| tenure_cell(r)).collect();
        tenures.sort_by(f64::total_cmp);
        let median_tenure_months = tenures.get(tenures.len() / 2).copied().unwrap_or(0.0);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut intervals = Vec::new();
        let mut observed_groups = 1;
        for (i, &k) in picked.iter().enumerate() {
            let (last, churned) = targets[k].intervals(months);
            let t0 = tenure_cell(rows[k]).unwrap_or(median_tenure_months);
            for interval in 1..=last {
                xs.extend_from_slice(&x[i * p..(i + 1) * p]);
                let g = group_of(interval);
                observed_groups = observed_groups.max(g + 1);
                xs.extend((1..groups).map(|j| f64::from(u8::from(j == g))));
                xs.push((t0 + f64::from(interval)).ln_1p());
                ys.push(u8::from(churned && interval == last));
                intervals.push(interval);
            }
        }
        let events = ys.iter().filter(|&&y| y == 1).count();
        if events == 0 || events == ys.len() {
            return Err(TrainError::NotEnoughData(format!(
                "the survival model needs churned and surviving months; the data has {} person-months, {events} of them churns",
                ys.len()
            )));
        }
        Ok(PersonPeriods {
            preprocessor,
            xs,
            ys,
            intervals,
            width,
            observed_groups,
            median_tenure_months,
            months,
            clv,
        })
    }

    /// The hazard model fitted with L2 strength `lambda`. With `decaying`, a second
    /// stage refits, with the features' score `w.x` as one input, the baseline, the
    /// tenure effect and how the score's effect changes with the months ahead (`score *
    /// ln k`): what a customer looks like today may say less about month 12 than about
    /// month 1. Without, the score counts the same in every month.
    pub fn fit(&self, lambda: f64, decaying: bool) -> Result<SurvivalModel, TrainError> {
        let p = self.preprocessor.width();
        let groups = GROUP_STARTS.len();
        let m = LinearModel::fit(&self.xs, self.width, &self.ys, lambda, None)?;
        let weights = m.weights[..p].to_vec();
        let mut model = SurvivalModel {
            preprocessor: self.preprocessor.clone(),
            weights,
            intercept: m.intercept,
            baseline: std::iter::once(0.0)
                .chain(m.weights[p..p + groups - 1].iter().copied())
                .collect(),
            observed_groups: self.observed_groups,
            tenure_weight: m.weights[p + groups - 1],
            median_tenure_months: self.median_tenure_months,
            months: self.months,
            clv: self.clv,
            person_periods: self.ys.len(),
            events: self.ys.iter().filter(|&&y| y == 1).count(),
            score_scale: 1.0,
            score_decay: 0.0,
            follow_up: 0,
            beyond_score: 0.0,
        };
        if !decaying {
            self.set_extrapolation(&mut model);
            return Ok(model);
        }
        let weights = &model.weights;
        // Stage two: groups' one-hots, tenure, score, score * ln k.
        let width2 = groups - 1 + 3;
        let mut xs2 = Vec::with_capacity(self.ys.len() * width2);
        for (row, &k) in self.xs.chunks_exact(self.width).zip(&self.intervals) {
            let score: f64 = weights.iter().zip(row).map(|(w, x)| w * x).sum();
            xs2.extend_from_slice(&row[p..]);
            xs2.push(score);
            xs2.push(score * f64::from(k).ln());
        }
        let m2 = LinearModel::fit(&xs2, width2, &self.ys, 1e-6, None)?;
        model.intercept = m2.intercept;
        model.baseline[1..].copy_from_slice(&m2.weights[..groups - 1]);
        model.tenure_weight = m2.weights[groups - 1];
        model.score_scale = m2.weights[groups];
        model.score_decay = m2.weights[groups + 1];
        self.set_extrapolation(&mut model);
        Ok(model)
    }

    /// Sets what `model` predicts past the last interval these rows observed: there
    /// the data never saw how much today's features still tell, so every customer's
    /// score counts as an average survivor's (the spread of the curves stops growing
    /// where the data stopped; the baseline and each customer's tenure still move the
    /// hazard).
    fn set_extrapolation(&self, model: &mut SurvivalModel) {
        let follow_up = self.intervals.iter().copied().max().unwrap_or(0);
        let p = self.preprocessor.width();
        let (mut weight, mut weighted_score) = (0.0, 0.0);
        // Each example's first interval holds its features and its tenure term
        // `ln(1 + t0 + 1)`.
        for (row, _) in self
            .xs
            .chunks_exact(self.width)
            .zip(&self.intervals)
            .filter(|(_, &k)| k == 1)
        {
            let x = &row[..p];
            let t0 = row[self.width - 1].exp_m1() - 1.0;
            let score: f64 = model.weights.iter().zip(x).map(|(w, x)| w * x).sum();
            let survival: f64 = (1..=follow_up)
                .map(|k| 1.0 - model.hazard(score, k, (t0 + f64::from(k)).ln_1p()))
                .product();
            weight += survival;
            weighted_score += survival * score;
        }
        model.follow_up = follow_up;
        model.beyond_score = if weight > 0.0 {
            weighted_score / weight
        } else {
            0.0
        };
    }
}

impl SurvivalModel {
    /// Fits on `rows` of `table` with their `targets` (one per row).
    pub fn fit(
        table: &FeatureTable,
        rows: &[usize],
        targets: &[Target],
        months: u32,
        clv: ClvSettings,
        lambda: f64,
        decaying: bool,
    ) -> Result<SurvivalModel, TrainError> {
        PersonPeriods::new(table, rows, targets, months, clv)?.fit(lambda, decaying)
    }

    /// Checks that the parts fit together (a decoded model that would index out of its
    /// vectors is refused, not run).
    pub fn check(&self) -> Result<(), String> {
        let fits = self.weights.len() == self.preprocessor.width()
            && self.baseline.len() == GROUP_STARTS.len()
            && (1..=GROUP_STARTS.len()).contains(&self.observed_groups)
            && (1..=1200).contains(&self.months)
            && self
                .weights
                .iter()
                .chain(&self.baseline)
                .all(|w| w.is_finite())
            && self.intercept.is_finite()
            && self.score_scale.is_finite()
            && self.score_decay.is_finite()
            && self.beyond_score.is_finite()
            && self.tenure_weight.is_finite()
            && self.median_tenure_months.is_finite();
        if fits {
            Ok(())
        } else {
            Err("the survival model's parts do not fit together".into())
        }
    }

    /// The curve of one customer: `get(i, name)` gives the cell of the preprocessor's
    /// transform `i` (feature `name`), `tenure` the `tenure_days` cell.
    pub fn curve<'a>(
        &self,
        get: impl FnMut(usize, &str) -> Cell<'a>,
        tenure: Cell<'_>,
        scratch: &mut Vec<f64>,
    ) -> Result<Curve, PrepError> {
        scratch.clear();
        scratch.resize(self.preprocessor.width(), 0.0);
        self.preprocessor
            .transform_one(get, &[], scratch, |_, _| {})?;
        let mut curve = Curve::default();
        self.curve_of_inputs(&self.terms(), scratch, tenure, &mut curve);
        Ok(curve)
    }

    /// [`SurvivalModel::curve`] from the row's inputs as this model's preprocessor made
    /// them (`x`, its width; [`Preprocessor::transform_rows_keeping`] makes a block of
    /// rows input by input): the same bits as [`SurvivalModel::curve`]. `curve` is
    /// overwritten (its buffer reused from row to row).
    pub fn curve_of_inputs(
        &self,
        terms: &CurveTerms,
        x: &[f64],
        tenure: Cell<'_>,
        curve: &mut Curve,
    ) {
        debug_assert_eq!(x.len(), self.preprocessor.width());
        self.curve_into(terms, self.score(x), tenure, curve);
    }

    /// [`SurvivalModel::curve`] from what another preprocessor kept of the row
    /// ([`Preprocessor::transform_one_keeping`]), `logs` being this model's
    /// [`Preprocessor::logs_after`] that one: the same bits, each input read once.
    /// `terms` are this model's ([`SurvivalModel::terms`]); `curve` is overwritten
    /// (its buffer reused from row to row).
    pub fn curve_kept(
        &self,
        terms: &CurveTerms,
        kept: &[f64],
        logs: &[bool],
        tenure: Cell<'_>,
        curve: &mut Curve,
    ) {
        let score = self.preprocessor.dot_kept(kept, logs, &self.weights);
        self.curve_into(terms, score, tenure, curve);
    }

    /// What every curve of this model computes alike, interval by interval: worked out
    /// once for a batch instead of once a row.
    pub fn terms(&self) -> CurveTerms {
        CurveTerms {
            intervals: (1..=self.months).map(|k| self.interval(k)).collect(),
        }
    }

    /// The terms of interval `k`.
    fn interval(&self, k: u32) -> IntervalTerms {
        let g = group_of(k).min(self.observed_groups - 1);
        IntervalTerms {
            effect: self.score_scale + self.score_decay * ln_month(k),
            baseline: self.baseline[g],
            beyond: self.follow_up > 0 && k > self.follow_up,
        }
    }

    /// The log-odds of the hazard in an interval of terms `t` for a customer of score
    /// `w.x` whose tenure term is `ln_tenure` (`ln(1 + tenure months at k)`).
    #[inline]
    fn log_odds(&self, t: &IntervalTerms, score: f64, ln_tenure: f64) -> f64 {
        self.intercept + score * t.effect + t.baseline + self.tenure_weight * ln_tenure
    }

    /// The hazard of interval `k` for a customer of score `w.x` whose tenure term is
    /// `ln_tenure`.
    fn hazard(&self, score: f64, k: u32, ln_tenure: f64) -> f64 {
        sigmoid(self.log_odds(&self.interval(k), score, ln_tenure))
    }

    /// The score `w.x` of a transformed row.
    fn score(&self, x: &[f64]) -> f64 {
        // `-0.0 +` as `Iterator::sum` and `Preprocessor::dot_kept` start.
        self.weights
            .iter()
            .zip(x)
            .fold(-0.0, |sum, (w, x)| sum + w * x)
    }

    /// The curve of a row of score `w.x` into `curve`: [`SurvivalModel::hazard`] interval
    /// by interval (the same bits), its terms looked up. Every interval's log-odds
    /// first and the products after, so the intervals' `exp` do not wait on each other.
    fn curve_into(&self, terms: &CurveTerms, score: f64, tenure: Cell<'_>, curve: &mut Curve) {
        debug_assert_eq!(terms.intervals.len(), self.months as usize);
        let days = cell_number(tenure);
        let t0 = days.map_or(self.median_tenure_months, months_of_days);
        let logs = days.and_then(tabulated_tenure_logs);
        let survival = &mut curve.survival;
        survival.clear();
        survival.extend(terms.intervals.iter().enumerate().map(|(i, t)| {
            let ln_tenure = match logs {
                Some(logs) if i < TABULATED_MONTHS => logs[i],
                _ => (t0 + (i + 1) as f64).ln_1p(),
            };
            let score = if t.beyond { self.beyond_score } else { score };
            self.log_odds(t, score, ln_tenure)
        }));
        let mut s = 1.0;
        let mut h = 0.0;
        for z in survival.iter_mut() {
            h = sigmoid(*z);
            s *= 1.0 - h;
            *z = s;
        }
        curve.last_hazard = h;
    }

    /// The curve of row `r` of a table.
    pub fn curve_of_row(&self, table: &FeatureTable, r: usize) -> Result<Curve, PrepError> {
        let mut scratch = Vec::new();
        self.curve(
            |_, name| table_cell(table.column(name), r),
            table_cell(table.column("tenure_days"), r),
            &mut scratch,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use churn_features::dataset::Values;
    use churn_features::features::{FeatureInfo, FeatureKind};

    /// A small xorshift generator: the tests need reproducible draws, not quality.
    struct Draws(u64);

    impl Draws {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        /// A customer's future at a constant monthly hazard `h`, followed for 1 to
        /// `max_follow` intervals.
        fn target(&mut self, h: f64, max_follow: u32) -> Target {
            let mut churn = 1;
            while self.uniform() >= h {
                churn += 1;
            }
            let follow = 1 + (self.uniform() * f64::from(max_follow)) as u32;
            Target {
                event_interval: (churn <= follow).then_some(churn),
                observed_intervals: follow,
            }
        }
    }

    /// A table of numeric columns, one customer per row.
    fn numeric_table(columns: Vec<(&str, Vec<Option<f64>>)>) -> FeatureTable {
        let n = columns.first().map_or(0, |(_, v)| v.len());
        FeatureTable {
            customer_ids: (0..n).map(|i| format!("C{i}")).collect(),
            customers: (0..n as u32).collect(),
            as_of: vec![None; n],
            info: columns
                .iter()
                .map(|(name, _)| FeatureInfo {
                    name: (*name).into(),
                    description: String::new(),
                    kind: FeatureKind::Numeric,
                })
                .collect(),
            columns: columns
                .into_iter()
                .map(|(_, v)| Values::Numeric(v))
                .collect(),
            config: Default::default(),
        }
    }

    /// `n` customers with a constant monthly hazard `h` whatever their features,
    /// followed for 1 to `max_follow` intervals.
    fn constant_hazard(
        n: usize,
        h: f64,
        max_follow: u32,
        seed: u64,
    ) -> (FeatureTable, Vec<Target>) {
        let mut draws = Draws(seed);
        let mut noise = Vec::with_capacity(n);
        let mut tenure = Vec::with_capacity(n);
        let mut targets = Vec::with_capacity(n);
        for _ in 0..n {
            noise.push(Some(draws.uniform()));
            tenure.push(Some((draws.uniform() * 900.0).floor()));
            targets.push(draws.target(h, max_follow));
        }
        (
            numeric_table(vec![("noise", noise), ("tenure_days", tenure)]),
            targets,
        )
    }

    #[test]
    fn tabulated_tenure_terms_are_the_computed_ones_to_the_bit() {
        for days in [0.0, -0.0, 1.0, 29.0, 30.0, 365.0, 1000.0, 4095.0] {
            let logs = tabulated_tenure_logs(days).expect("a whole tenure is tabulated");
            for (m, &l) in logs.iter().enumerate() {
                let computed = (months_of_days(days) + (m + 1) as f64).ln_1p();
                assert_eq!(
                    l.to_bits(),
                    computed.to_bits(),
                    "{days} days, month {}",
                    m + 1
                );
            }
        }
        for days in [4096.0, 12.5, -1.0, f64::NAN, f64::INFINITY] {
            assert!(tabulated_tenure_logs(days).is_none(), "{days} days");
        }
    }

    #[test]
    fn a_constant_hazard_gives_the_closed_form_median_lifetime_and_clv() {
        let h = 0.05;
        let (table, targets) = constant_hazard(6000, h, 36, 7);
        let rows: Vec<usize> = (0..table.len()).collect();
        // With the features' effect constant, and changing with the months ahead (the
        // features are noise here, so either must find the constant hazard).
        for decaying in [false, true] {
            let m = SurvivalModel::fit(
                &table,
                &rows,
                &targets,
                24,
                ClvSettings::default(),
                LAMBDAS[0],
                decaying,
            )
            .unwrap();
            closed_form_holds(&m.curve_of_row(&table, 0).unwrap(), h);
        }
    }

    fn closed_form_holds(curve: &Curve, h: f64) {
        for (k, s) in curve.survival.iter().enumerate() {
            let truth = (1.0 - h).powi(k as i32 + 1);
            assert!(
                (s - truth).abs() < 0.03,
                "S({}) = {s}, truth {truth}",
                k + 1
            );
        }
        // (1 - 0.05)^13 = 0.513, ^14 = 0.488: the median is month 14.
        let median = curve.median_months().unwrap();
        assert!((13..=15).contains(&median), "{median}");
        // sum_{k>=0} 0.95^k - 1/2 = 19.5 months; CLV of $100 a month: $100 / 0.05.
        let lifetime = curve.expected_lifetime_months();
        assert!((lifetime - 19.5).abs() < 1.5, "{lifetime}");
        let clv = curve.clv(100.0, &ClvSettings::default());
        assert!((clv / 2000.0 - 1.0).abs() < 0.08, "{clv}");
        // Margin and discount scale and shrink it as the closed form says.
        let settings = ClvSettings {
            gross_margin: 0.8,
            annual_discount: 0.1,
        };
        let d = 1.1f64.powf(-1.0 / 12.0);
        let closed = 100.0 * 0.8 / (1.0 - (1.0 - h) * d);
        let discounted = curve.clv(100.0, &settings);
        assert!(
            (discounted / closed - 1.0).abs() < 0.08,
            "{discounted} vs {closed}"
        );
    }

    #[test]
    fn censoring_leaves_the_hazards_of_the_months_still_covered_unchanged() {
        let (table, full) = constant_hazard(6000, 0.08, 30, 11);
        let rows: Vec<usize> = (0..table.len()).collect();
        // The same customers with the data cut after six months: later churns unseen.
        let cut: Vec<Target> = full
            .iter()
            .map(|t| match t.event_interval {
                Some(k) if k <= 6 => *t,
                _ => Target {
                    event_interval: None,
                    observed_intervals: t
                        .event_interval
                        .map_or(t.observed_intervals, |k| k - 1)
                        .min(6),
                },
            })
            .collect();
        let a = SurvivalModel::fit(
            &table,
            &rows,
            &full,
            24,
            ClvSettings::default(),
            LAMBDAS[0],
            false,
        )
        .unwrap();
        let b = SurvivalModel::fit(
            &table,
            &rows,
            &cut,
            24,
            ClvSettings::default(),
            LAMBDAS[0],
            false,
        )
        .unwrap();
        let (ca, cb) = (
            a.curve_of_row(&table, 3).unwrap(),
            b.curve_of_row(&table, 3).unwrap(),
        );
        for k in 0..6 {
            let (sa, sb) = (ca.survival[k], cb.survival[k]);
            assert!((sa - sb).abs() < 0.03, "S({}): {sa} vs {sb}", k + 1);
        }
        // Treating the censored as retained would have inflated survival instead.
        assert!(b.events < a.events);
    }

    #[test]
    fn targets_count_complete_intervals_and_the_churn_interval() {
        let t = Target::of(100, Some(130), 400);
        assert_eq!(t.event_interval, Some(1));
        let t = Target::of(100, Some(131), 400);
        assert_eq!(t.event_interval, Some(2));
        // Ended inside a lapse before the date: a churn in the first interval.
        assert_eq!(Target::of(100, Some(95), 400).event_interval, Some(1));
        // Still open, or ending after the data: censored after the complete intervals.
        let open = Target::of(100, None, 219);
        assert_eq!((open.event_interval, open.observed_intervals), (None, 3));
        assert_eq!(Target::of(100, Some(500), 400).event_interval, None);
        assert_eq!(open.intervals(24), (3, false));
        assert_eq!(Target::of(100, Some(131), 400).intervals(24), (2, true));
    }

    #[test]
    fn past_the_fitted_follow_up_every_customer_counts_as_an_average_survivor() {
        // Risky customers (monthly hazard 15 %) and safe ones (2 %), all of the same
        // tenure, followed for at most six months.
        let n = 6000;
        let mut draws = Draws(5);
        let mut risk = Vec::with_capacity(n);
        let mut targets = Vec::with_capacity(n);
        for i in 0..n {
            let risky = i % 2 == 0;
            risk.push(Some(f64::from(u8::from(risky))));
            let h = if risky { 0.15 } else { 0.02 };
            targets.push(draws.target(h, 6));
        }
        let table = numeric_table(vec![("risk", risk), ("tenure_days", vec![Some(400.0); n])]);
        let rows: Vec<usize> = (0..n).collect();
        let m = SurvivalModel::fit(
            &table,
            &rows,
            &targets,
            24,
            ClvSettings::default(),
            LAMBDAS[0],
            false,
        )
        .unwrap();
        assert_eq!(m.follow_up, 6);
        let hazards = |r: usize| -> Vec<f64> {
            let s = m.curve_of_row(&table, r).unwrap().survival;
            std::iter::once(1.0)
                .chain(s.iter().copied())
                .zip(&s)
                .map(|(before, after)| 1.0 - after / before)
                .collect()
        };
        let (risky, safe) = (hazards(0), hazards(1));
        // Within the follow-up the features tell the two apart as the data did.
        for k in 0..6 {
            assert!(
                (risky[k] - 0.15).abs() < 0.03,
                "risky month {}: {}",
                k + 1,
                risky[k]
            );
            assert!(
                (safe[k] - 0.02).abs() < 0.01,
                "safe month {}: {}",
                k + 1,
                safe[k]
            );
        }
        // Past it both take the hazard of the survivors' mean score (log-odds) after six
        // months: closer to the safe (0.98^6 = 89 % of them are left, 0.85^6 = 38 % of
        // the risky).
        let logit = |h: f64| (h / (1.0 - h)).ln();
        let survivor = sigmoid((0.89 * logit(0.02) + 0.38 * logit(0.15)) / (0.89 + 0.38));
        for k in 6..24 {
            // (The same hazard; recovered from two different curves' ratios.)
            assert!((risky[k] - safe[k]).abs() < 1e-12, "month {}", k + 1);
            assert!(
                (risky[k] - survivor).abs() < 0.01,
                "month {}: {}",
                k + 1,
                risky[k]
            );
        }
        // A model from before the rule (follow-up not recorded) keeps the features'
        // effect at every month.
        let old = SurvivalModel {
            follow_up: 0,
            ..m.clone()
        };
        let curve = old.curve_of_row(&table, 0).unwrap().survival;
        assert!((1.0 - curve[12] / curve[11] - 0.15).abs() < 0.03);
    }
}
