//! A fitted churn model: preprocessing, estimator and calibration, predicting and
//! explaining one row at a time or a whole table.

use crate::calibrate::Calibrator;
use crate::forest::ForestModel;
use crate::gbm::TreeModel;
use crate::logistic::{sigmoid, LinearModel};
use crate::preprocess::{Cell, InputRange, Note, PrepError, Preprocessor, Transform};
use churn_features::features::FeatureTable;
use serde::{Deserialize, Serialize};

/// The kinds of estimator the trainer can fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Logistic,
    Forest,
    Gbm,
    /// The mean log-odds of logistic regression and gradient-boosted trees, fitted on
    /// the same rows and calibrated together.
    Blend,
}

impl ModelKind {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Forest => "forest",
            ModelKind::Gbm => "gbm",
            ModelKind::Blend => "blend",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<ModelKind> {
        match s.trim() {
            "logistic" => Some(ModelKind::Logistic),
            "gbm" => Some(ModelKind::Gbm),
            "forest" => Some(ModelKind::Forest),
            "blend" => Some(ModelKind::Blend),
            _ => None,
        }
    }
}

/// What every candidate model does. Hyper-parameters and fitted models are different
/// types (as in linfa): `fit` consumes parameters and returns a model, so an unfitted
/// model cannot predict. Models serialise with serde into the artifact.
pub trait Classifier: Sized + Clone + Serialize + for<'de> Deserialize<'de> {
    /// Hyper-parameters of a fit.
    type Params;
    /// Why a fit can fail.
    type Error: std::error::Error;

    /// Fits on a row-major matrix `x` of `y.len()` rows and `p` inputs, 0/1 labels.
    fn fit(params: &Self::Params, x: &[f64], p: usize, y: &[u8]) -> Result<Self, Self::Error>;

    /// Churn probabilities (uncalibrated) of rows of a row-major matrix.
    fn predict_proba(&self, x: &[f64], p: usize) -> Vec<f64>;

    /// Each input's contribution to the log-odds of one row.
    fn explain(&self, row: &[f64], out: &mut [f64]);
}

impl Classifier for LinearModel {
    type Params = crate::logistic::LogisticParams;
    type Error = crate::logistic::FitError;

    fn fit(params: &Self::Params, x: &[f64], p: usize, y: &[u8]) -> Result<Self, Self::Error> {
        LinearModel::fit(x, p, y, params.lambda, params.warm_start.as_ref())
    }

    fn predict_proba(&self, x: &[f64], p: usize) -> Vec<f64> {
        x.chunks(p.max(1)).map(|r| sigmoid(self.logit(r))).collect()
    }

    fn explain(&self, row: &[f64], out: &mut [f64]) {
        self.contributions(row, out)
    }
}

impl Classifier for TreeModel {
    type Params = crate::gbm::GbmParams;
    type Error = crate::gbm::GbmError;

    fn fit(params: &Self::Params, x: &[f64], p: usize, y: &[u8]) -> Result<Self, Self::Error> {
        TreeModel::fit_with(&params.settings, x, p, y, None, params.seed)
    }

    fn predict_proba(&self, x: &[f64], p: usize) -> Vec<f64> {
        self.logits(x, p).into_iter().map(sigmoid).collect()
    }

    fn explain(&self, row: &[f64], out: &mut [f64]) {
        self.contributions(row, out)
    }
}

impl Classifier for ForestModel {
    type Params = crate::forest::ForestParams;
    type Error = crate::forest::ForestError;

    fn fit(params: &Self::Params, x: &[f64], p: usize, y: &[u8]) -> Result<Self, Self::Error> {
        ForestModel::fit_with(&params.settings, x, p, y, params.seed)
    }

    fn predict_proba(&self, x: &[f64], p: usize) -> Vec<f64> {
        self.probabilities(x, p)
    }

    fn explain(&self, row: &[f64], out: &mut [f64]) {
        self.contributions(row, out)
    }
}

/// A fitted estimator of any kind: the closed set of [`Classifier`]s an artifact can hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Estimator {
    Logistic(LinearModel),
    Forest(ForestModel),
    Gbm(TreeModel),
    /// Mean log-odds of the two, so contributions stay exact: each input's is the mean
    /// of its two contributions.
    Blend(LinearModel, TreeModel),
}

impl Estimator {
    /// The estimator's kind.
    pub fn kind(&self) -> ModelKind {
        match self {
            Estimator::Logistic(_) => ModelKind::Logistic,
            Estimator::Forest(_) => ModelKind::Forest,
            Estimator::Gbm(_) => ModelKind::Gbm,
            Estimator::Blend(..) => ModelKind::Blend,
        }
    }

    /// Uncalibrated churn probability of one transformed row.
    pub fn raw(&self, x: &[f64]) -> f64 {
        // Single-row paths: the batch ones allocate and, for trees, go parallel.
        match self {
            Estimator::Logistic(m) => sigmoid(m.logit(x)),
            Estimator::Gbm(m) => sigmoid(m.logit(x)),
            Estimator::Blend(l, g) => sigmoid(0.5 * (l.logit(x) + g.logit(x))),
            Estimator::Forest(m) => m.probability(x),
        }
    }

    /// Uncalibrated churn probabilities of many transformed rows (row-major, `p` wide).
    pub fn raw_batch(&self, x: &[f64], p: usize) -> Vec<f64> {
        match self {
            Estimator::Logistic(m) => m.predict_proba(x, p),
            Estimator::Forest(m) => m.predict_proba(x, p),
            Estimator::Gbm(m) => m.predict_proba(x, p),
            Estimator::Blend(l, g) => {
                let trees = g.logits(x, p);
                x.chunks(p.max(1))
                    .zip(trees)
                    .map(|(row, t)| sigmoid(0.5 * (l.logit(row) + t)))
                    .collect()
            }
        }
    }

    /// [`Estimator::raw`] of a block of rows (row-major, `p` wide, as many as `raw` is
    /// long) on this thread and, with `contributions` (`p` a row), each row's
    /// [`Estimator::contributions`]: the same bits as the two row by row. Tree models
    /// walk their trees once for both, a group of trees for every row of the block
    /// before the next (see [`TreeModel::logits_of_block`]).
    pub fn raw_rows(
        &self,
        x: &[f64],
        p: usize,
        raw: &mut [f64],
        contributions: Option<&mut [f64]>,
    ) {
        let row = |r: usize| &x[r * p..(r + 1) * p];
        match (self, contributions) {
            (Estimator::Gbm(m), contributions) => {
                m.logits_of_block(x, p, raw, contributions);
                raw.iter_mut().for_each(|r| *r = sigmoid(*r));
            }
            (Estimator::Blend(l, g), mut contributions) => {
                // The trees' logits and contributions first, then the linear model's
                // row by row.
                g.logits_of_block(x, p, raw, contributions.as_deref_mut());
                let mut linear = vec![0.0; p];
                for (r, raw) in raw.iter_mut().enumerate() {
                    let linear_logit = match contributions.as_deref_mut() {
                        Some(c) => {
                            let logit = l.logit_and_contributions(row(r), &mut linear);
                            Self::blend_contributions(&linear, &mut c[r * p..(r + 1) * p]);
                            logit
                        }
                        None => l.logit(row(r)),
                    };
                    *raw = sigmoid(0.5 * (linear_logit + *raw));
                }
            }
            (Estimator::Forest(m), Some(c)) => {
                // One walk for the probability and the occlusion effects.
                for (r, raw) in raw.iter_mut().enumerate() {
                    *raw = m.probability_and_contributions(row(r), &mut c[r * p..(r + 1) * p]);
                }
            }
            (Estimator::Logistic(m), Some(c)) => {
                for (r, raw) in raw.iter_mut().enumerate() {
                    let out = &mut c[r * p..(r + 1) * p];
                    *raw = sigmoid(m.logit_and_contributions(row(r), out));
                }
            }
            (_, None) => {
                for (r, raw) in raw.iter_mut().enumerate() {
                    *raw = self.raw(row(r));
                }
            }
        }
    }

    /// A blend's contributions: the mean of the linear model's (`linear`) and the
    /// trees' (given in `trees`, replaced by the mean).
    fn blend_contributions(linear: &[f64], trees: &mut [f64]) {
        for (t, o) in trees.iter_mut().zip(linear) {
            *t = 0.5 * (*o + *t);
        }
    }

    /// Each model input's contribution to the log-odds.
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) {
        match self {
            Estimator::Logistic(m) => m.explain(x, out),
            Estimator::Forest(m) => m.explain(x, out),
            Estimator::Gbm(m) => m.explain(x, out),
            Estimator::Blend(l, g) => {
                let mut linear = vec![0.0; out.len()];
                g.explain(x, out);
                l.explain(x, &mut linear);
                Self::blend_contributions(&linear, out);
            }
        }
    }
}

/// Checks a linear model against `p` model inputs.
fn check_linear(m: &LinearModel, p: usize) -> Result<(), String> {
    if m.weights.len() != p {
        return Err(format!(
            "the logistic model has {} weights for {p} model inputs",
            m.weights.len()
        ));
    }
    if !m.intercept.is_finite() || m.weights.iter().any(|w| !w.is_finite()) {
        return Err("the logistic model has a non-finite weight".into());
    }
    Ok(())
}

/// Preprocessing, estimator and calibration together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    pub preprocessor: Preprocessor,
    pub estimator: Estimator,
    pub calibrator: Calibrator,
    /// Probability at or above which a customer is flagged (chosen on calibration rows).
    pub threshold: f64,
    /// The training range of each numeric input, by transform (empty for artifacts of
    /// format 1): values far outside are clipped before scoring.
    pub input_ranges: Vec<Option<InputRange>>,
}

/// One feature's push on a prediction (log-odds, summed over its model inputs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// Index into the preprocessor's transforms.
    pub feature: usize,
    pub contribution: f64,
}

/// A prediction with what the preprocessing did on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub probability: f64,
    /// Features pushing the probability up, largest first (when asked for).
    pub reasons: Vec<Contribution>,
    /// (feature index, note) for imputed values and unseen categories.
    pub notes: Vec<(usize, Note)>,
}

/// Buffers [`ChurnModel::predict_rows`] reuses from call to call, so predicting
/// allocates little.
#[derive(Debug, Default)]
pub struct PredictBuffers {
    /// The rows' model inputs, row after row.
    x: Vec<f64>,
    contributions: Vec<f64>,
    raw: Vec<f64>,
    per_feature: Vec<f64>,
    /// Whether each row's feature was not given, row after row.
    missing: Vec<bool>,
    /// Each row's preprocessing: its first error.
    results: Vec<Result<(), PrepError>>,
}

impl ChurnModel {
    /// The settings the search chose, in words (for reports): the L2 strength and
    /// whether counts were logged, the trees' depth, leaf weight and number.
    pub fn settings(&self) -> String {
        let logged = if self.preprocessor.log1p.is_empty() {
            ""
        } else {
            ", log1p counts"
        };
        let linear = |m: &LinearModel| format!("L2 {:.0e}{logged}", m.lambda);
        match &self.estimator {
            Estimator::Logistic(m) => linear(m),
            Estimator::Gbm(t) => t.describe(),
            Estimator::Blend(m, t) => format!("{}; {}", linear(m), t.describe()),
            Estimator::Forest(_) => format!(
                "{} trees, depth {}",
                crate::forest::TREES,
                crate::forest::MAX_DEPTH
            ),
        }
    }

    /// Checks that the parts of a decoded model fit together, so that scoring can never
    /// index out of bounds or loop: the preprocessing's outputs, the estimator's inputs
    /// (weights, tree split features and child links), the calibration map and the
    /// threshold. A checksum proves a file is what was written, not that what was
    /// written is consistent; this does.
    pub fn check(&self) -> Result<(), String> {
        let prep = &self.preprocessor;
        let p = prep.width();
        if prep.output_source.len() != p {
            return Err(format!(
                "the preprocessing names {p} model inputs but maps {} to features",
                prep.output_source.len()
            ));
        }
        let mut k = 0;
        for (i, t) in prep.transforms.iter().enumerate() {
            let w = t.width();
            if k + w > p || prep.output_source[k..k + w].iter().any(|&s| s != i) {
                return Err(format!(
                    "the model inputs of feature `{}` do not line up with the preprocessing",
                    t.name()
                ));
            }
            k += w;
            match t {
                Transform::Numeric {
                    median, mean, std, ..
                } => {
                    if !(median.is_finite() && mean.is_finite() && std.is_finite() && *std > 0.0) {
                        return Err(format!(
                            "feature `{}` has non-finite scaling ({median}, {mean}, {std})",
                            t.name()
                        ));
                    }
                }
                Transform::Categorical { levels, .. } => {
                    if levels.windows(2).any(|l| l[0] >= l[1]) {
                        return Err(format!(
                            "the categories of feature `{}` are not sorted and distinct",
                            t.name()
                        ));
                    }
                }
            }
        }
        if k != p {
            return Err(format!(
                "the features' widths sum to {k}, not to the {p} model inputs"
            ));
        }
        if !prep.log1p.is_empty() && prep.log1p.len() != prep.transforms.len() {
            return Err(format!(
                "{} log flags for {} features",
                prep.log1p.len(),
                prep.transforms.len()
            ));
        }
        if !self.input_ranges.is_empty() && self.input_ranges.len() != prep.transforms.len() {
            return Err(format!(
                "{} input ranges for {} features",
                self.input_ranges.len(),
                prep.transforms.len()
            ));
        }
        if self
            .input_ranges
            .iter()
            .flatten()
            .any(|r| !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max))
        {
            return Err("an input range is not a finite interval".into());
        }
        match &self.estimator {
            Estimator::Logistic(m) => check_linear(m, p)?,
            Estimator::Gbm(m) => m.check(p)?,
            Estimator::Forest(m) => m.check(p)?,
            Estimator::Blend(l, g) => {
                check_linear(l, p)?;
                g.check(p)?;
            }
        }
        match &self.calibrator {
            Calibrator::Platt { a, b } => {
                if !(a.is_finite() && b.is_finite()) {
                    return Err("the Platt calibration is not finite".into());
                }
            }
            Calibrator::Isotonic { thresholds, values } => {
                if thresholds.is_empty() || thresholds.len() != values.len() {
                    return Err(format!(
                        "the isotonic calibration has {} thresholds and {} values",
                        thresholds.len(),
                        values.len()
                    ));
                }
                if thresholds.iter().any(|t| t.is_nan())
                    || thresholds.windows(2).any(|t| t[0] > t[1])
                    || values.iter().any(|v| !(0.0..=1.0).contains(v))
                {
                    return Err(
                        "the isotonic calibration is not a non-decreasing map to probabilities"
                            .into(),
                    );
                }
            }
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(format!(
                "the flag threshold {} is not a probability strictly between 0 and 1",
                self.threshold
            ));
        }
        Ok(())
    }

    /// Calibrated churn probability of one transformed row.
    pub fn probability(&self, x: &[f64]) -> f64 {
        self.calibrator.apply(self.estimator.raw(x))
    }

    /// Predicts one row given by a lookup from feature index and name to a value;
    /// `buffers` are reused between calls. With `explain`, the top `top` features
    /// pushing the probability up are returned, largest first; with `notes`, what was
    /// imputed. One row of [`ChurnModel::predict_rows`].
    pub fn predict<'a>(
        &self,
        mut get: impl FnMut(usize, &str) -> Cell<'a>,
        buffers: &mut PredictBuffers,
        explain: bool,
        top: usize,
        notes: bool,
    ) -> Result<Prediction, PrepError> {
        let mut out = Vec::with_capacity(1);
        self.predict_rows(
            1,
            |_, i, name| get(i, name),
            buffers,
            explain,
            top,
            notes,
            &mut [],
            &mut out,
        );
        out.pop().expect("one row predicted")
    }

    /// Predicts rows `0..n`, `get(row, feature index, name)` giving a cell, into `out`
    /// (cleared first; in row order) as [`ChurnModel::predict`] does each, also keeping
    /// what each input read in `kept` (`n` x the number of features, row after row; see
    /// [`Preprocessor::transform_one_keeping`]; empty keeps nothing). The estimator sees
    /// the rows as one block ([`Estimator::raw_rows`]); a row that cannot be
    /// preprocessed gets its error and the others their predictions.
    #[allow(clippy::too_many_arguments)]
    pub fn predict_rows<'a>(
        &self,
        n: usize,
        mut get: impl FnMut(usize, usize, &str) -> Cell<'a>,
        buffers: &mut PredictBuffers,
        explain: bool,
        top: usize,
        notes: bool,
        kept: &mut [f64],
        out: &mut Vec<Result<Prediction, PrepError>>,
    ) {
        let p = self.preprocessor.width();
        let features = self.preprocessor.transforms.len();
        let explain = explain && top > 0;
        let PredictBuffers {
            x,
            contributions,
            raw,
            per_feature,
            missing,
            results,
        } = buffers;
        x.resize(n * p, 0.0);
        raw.resize(n, 0.0);
        contributions.resize(if explain { n * p } else { 0 }, 0.0);
        per_feature.resize(features, 0.0);
        missing.clear();
        missing.resize(n * features, false);
        out.clear();
        out.extend((0..n).map(|_| {
            Ok(Prediction {
                probability: f64::NAN,
                reasons: Vec::new(),
                notes: Vec::new(),
            })
        }));
        results.clear();
        results.resize_with(n, || Ok(()));
        self.preprocessor.transform_rows_keeping(
            n,
            |r, i, name| {
                let cell = get(r, i, name);
                // Inputs not given (a number imputed with the training median, a
                // category absent), marked as they are read.
                if matches!(cell, Cell::Missing) {
                    missing[r * features + i] = true;
                }
                cell
            },
            &self.input_ranges,
            x,
            |r, i, note| {
                if let (true, Ok(prediction)) = (notes, &mut out[r]) {
                    prediction.notes.push((i, note));
                }
            },
            kept,
            results,
        );
        for (r, result) in results.drain(..).enumerate() {
            if let Err(e) = result {
                // The estimator still sees the row (the block is scored whole): zeros,
                // not what was half written.
                x[r * p..(r + 1) * p].fill(0.0);
                out[r] = Err(e);
            }
        }
        self.estimator
            .raw_rows(x, p, raw, explain.then_some(&mut contributions[..]));
        for (r, result) in out.iter_mut().enumerate() {
            let Ok(prediction) = result else { continue };
            let probability = self.calibrator.apply(raw[r]);
            if !probability.is_finite() {
                *result = Err(PrepError::NonFiniteOutput {
                    what: "probability",
                });
                continue;
            }
            prediction.probability = probability;
            if !explain {
                continue;
            }
            let contrib = &contributions[r * p..(r + 1) * p];
            // A fold without an early exit: the compiler checks a vector at a time.
            if !contrib.iter().fold(true, |ok, c| ok & c.is_finite()) {
                *result = Err(PrepError::NonFiniteOutput {
                    what: "contribution",
                });
                continue;
            }
            // A feature's inputs are side by side (checked on load): each feature's sum
            // is a run, added in the order the inputs come.
            let mut start = 0;
            for (sum, t) in per_feature.iter_mut().zip(&self.preprocessor.transforms) {
                let end = start + t.width();
                *sum = match &contrib[start..end] {
                    // `0.0 + c` is `c` but for a -0.0, which no reason is: the sum
                    // without its loop (most features are one input).
                    [c] => *c,
                    run => run.iter().fold(0.0, |a, c| a + c),
                };
                start = end;
            }
            // An input not given (a number imputed with the training median, a category
            // absent) is never a reason: the reasons explain with what was given.
            let row_missing = &missing[r * features..(r + 1) * features];
            top_reasons(
                per_feature,
                |feature| !row_missing[feature],
                top,
                &mut prediction.reasons,
            );
        }
    }

    /// Calibrated probabilities for `rows` of a table.
    pub fn predict_table(
        &self,
        table: &FeatureTable,
        rows: &[usize],
    ) -> Result<Vec<f64>, PrepError> {
        self.scores(table, rows, true)
    }

    /// Raw (uncalibrated) or calibrated probabilities for `rows`, in batches.
    pub fn scores(
        &self,
        table: &FeatureTable,
        rows: &[usize],
        calibrated: bool,
    ) -> Result<Vec<f64>, PrepError> {
        let p = self.preprocessor.width();
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(8192) {
            let x = self
                .preprocessor
                .transform_table(table, chunk, &self.input_ranges)?;
            let raw = self.estimator.raw_batch(&x, p);
            out.extend(raw.into_iter().map(|r| {
                if calibrated {
                    self.calibrator.apply(r)
                } else {
                    r
                }
            }));
        }
        Ok(out)
    }

    /// Mean absolute contribution of each input feature over `rows` (global importance).
    pub fn importance(
        &self,
        table: &FeatureTable,
        rows: &[usize],
    ) -> Result<Vec<(String, f64)>, PrepError> {
        let p = self.preprocessor.width();
        let x = self
            .preprocessor
            .transform_table(table, rows, &self.input_ranges)?;
        let mut total = vec![0.0; self.preprocessor.transforms.len()];
        let mut c = vec![0.0; p];
        for r in 0..rows.len() {
            self.estimator.contributions(&x[r * p..(r + 1) * p], &mut c);
            let mut per = vec![0.0; total.len()];
            for (k, v) in c.iter().enumerate() {
                per[self.preprocessor.output_source[k]] += v;
            }
            for (t, v) in total.iter_mut().zip(per) {
                *t += v.abs();
            }
        }
        let n = rows.len().max(1) as f64;
        let mut out: Vec<(String, f64)> = self
            .preprocessor
            .transforms
            .iter()
            .zip(total)
            .map(|(t, v)| (t.name().to_string(), v / n))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }
}

/// The `top` features of largest positive contribution among the `given` ones, largest
/// first, the earlier feature first among equals, into `reasons` (empty; it allocates
/// only when a feature qualifies). Insertion into a short sorted list: no sort of every
/// feature, and swaps where an insertion's shift was a `memmove` call.
fn top_reasons(
    per_feature: &[f64],
    given: impl Fn(usize) -> bool,
    top: usize,
    reasons: &mut Vec<Contribution>,
) {
    if top == 0 {
        return;
    }
    for (feature, &contribution) in per_feature.iter().enumerate() {
        if contribution <= 0.0
            || (reasons.len() == top && contribution <= reasons[top - 1].contribution)
            || !given(feature)
        {
            continue;
        }
        let reason = Contribution {
            feature,
            contribution,
        };
        if reasons.len() < top {
            if reasons.capacity() == 0 {
                reasons.reserve_exact(top);
            }
            reasons.push(reason);
        } else {
            // In place of the smallest, which it beats.
            reasons[top - 1] = reason;
        }
        // Up past the smaller ones, stopping after the equal ones.
        let mut at = reasons.len() - 1;
        while at > 0 && reasons[at - 1].contribution < contribution {
            reasons.swap(at - 1, at);
            at -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_largest_given_contributions_in_order() {
        use proptest::prelude::*;
        // Few distinct values, so ties are common; a full stable sort is the reference.
        let cases = (
            prop::collection::vec((-3i8..=3, any::<bool>()), 0..40),
            0usize..8,
        );
        proptest!(|((features, top) in cases)| {
            let per_feature: Vec<f64> = features.iter().map(|&(v, _)| f64::from(v) * 0.5).collect();
            let mut reasons = Vec::new();
            top_reasons(&per_feature, |f| features[f].1, top, &mut reasons);
            let mut expected: Vec<(usize, f64)> = per_feature
                .iter()
                .copied()
                .enumerate()
                .filter(|&(f, c)| c > 0.0 && features[f].1)
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1));
            expected.truncate(top);
            let got: Vec<(usize, f64)> = reasons.iter().map(|r| (r.feature, r.contribution)).collect();
            prop_assert_eq!(got, expected);
        });
    }

    #[test]
    fn a_block_of_rows_scores_as_each_row_alone_does() {
        // `raw_rows` scores and explains a block of rows at once (tree models walk their
        // trees once for the probability and the contributions, a group of trees for
        // every row before the next): the same bits as `raw` and `contributions` row by
        // row, for every kind of estimator.
        let (n, p) = (600, 3);
        let mut s = 11u64;
        let mut r = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let x: Vec<f64> = (0..n * p).map(|_| r()).collect();
        let y: Vec<u8> = x
            .chunks(p)
            .map(|row| u8::from(row[0] + 0.5 * row[1] * row[2] > 0.7))
            .collect();
        let linear = LinearModel::fit(&x, p, &y, 1e-3, None).unwrap();
        let trees = TreeModel::fit(&x, p, &y, 1).unwrap();
        let estimators = [
            Estimator::Logistic(linear.clone()),
            Estimator::Gbm(trees.clone()),
            Estimator::Forest(ForestModel::fit(&x, p, &y, 1).unwrap()),
            Estimator::Blend(linear, trees),
        ];
        let block = &x[..100 * p];
        for e in &estimators {
            let (mut raw, mut plain) = (vec![0.0; 100], vec![0.0; 100]);
            let mut together = vec![0.0; 100 * p];
            e.raw_rows(block, p, &mut raw, Some(&mut together));
            e.raw_rows(block, p, &mut plain, None);
            for (r, row) in block.chunks(p).enumerate() {
                let mut apart = vec![0.0; p];
                e.contributions(row, &mut apart);
                let alone = e.raw(row).to_bits();
                assert_eq!(raw[r].to_bits(), alone, "{:?} row {r}", e.kind());
                assert_eq!(plain[r].to_bits(), alone, "{:?} row {r}", e.kind());
                assert_eq!(
                    apart,
                    together[r * p..(r + 1) * p],
                    "{:?} row {r}",
                    e.kind()
                );
            }
            assert!(together.iter().any(|&c| c != 0.0), "{:?}", e.kind());
        }
    }
}
