//! The scoring core that `churn-serve` and `churn-score` share, so a customer gets the
//! same answer from both: one feature row (cells addressed by their position in the
//! model's feature schema) becomes a calibrated churn probability, a risk band, revenue
//! at risk, the features pushing the probability up, the playbook's rule results and
//! warnings about what was imputed.
//!
//! Callers map their own row format (a JSON object, an Arrow record batch, a
//! [`FeatureTable`] row) onto schema positions once; [`Scorer::score`] then does no name
//! look-ups.

use churn_features::dataset::Values;
use churn_features::features::{FeatureInfo, FeatureKind, FeatureTable};
use churn_features::rules::{self, RuleInputs, RuleResult, INPUTS};
use churn_model::artifact::Artifact;
use churn_model::model::{PredictBuffers, Prediction};
use churn_model::preprocess::{Note, PrepError, Transform};
use churn_model::survival::{Curve, CurveTerms, SHOWN_MONTHS};
use std::collections::HashMap;

pub use churn_model::preprocess::Cell;

/// The largest MRR taken as money for revenue at risk: a negative or larger value is not
/// a real monthly revenue, and would make totals overflow; revenue at risk is then
/// empty.
pub const MAX_MRR: f64 = 1e12;

/// Rows handed to the model at once by batch scoring ([`Scorer::score_batch`],
/// `churn-score`): a tree model takes the tile's rows side by side, and the
/// preprocessing reads it input by input, each a run of one column.
pub const TILE_ROWS: usize = 256;

/// Columns of a feature file that are not features: accepted in any row and ignored.
pub const ROW_KEYS: [&str; 3] = ["customer_id", "as_of", "label"];

/// Why the rules give no answer for a model trained on a plain table.
pub const RULES_UNAVAILABLE: &str =
    "the model was trained on a plain table whose features are not the playbook's, so the rules cannot be applied";

pub use churn_model::preprocess::table_cell;
pub use churn_model::risk::{RiskBand, RiskCutoffs};

/// Per-request scoring options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Compute reasons (per-feature contributions); off when only the probability is needed.
    pub explain: bool,
    /// How many reasons to return at most.
    pub top: usize,
    /// Report imputed values and unseen categories (off for batch outputs that do not
    /// show them: it saves an allocation per row with a missing value).
    pub warnings: bool,
    /// Compute the survival curve, expected lifetime and CLV (when the model has a
    /// survival model); off when they are not wanted (about a microsecond a row).
    pub survival: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            explain: true,
            top: 5,
            warnings: true,
            survival: true,
        }
    }
}

/// A feature pushing the probability up.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// Position of the feature in the schema.
    pub feature: usize,
    /// Push on the log-odds of churn.
    pub contribution: f64,
}

/// What preprocessing did to a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// Position of the feature in the schema.
    pub feature: usize,
    pub note: Note,
}

/// What the model says about one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelScore {
    pub probability: f64,
    pub risk_band: RiskBand,
    /// Probability x MRR, when the row has a known `mrr`.
    pub revenue_at_risk: Option<f64>,
    pub reasons: Vec<Reason>,
    pub warnings: Vec<Warning>,
    /// Time to churn and lifetime value, when the model has a survival model.
    pub survival: Option<SurvivalScore>,
}

impl ModelScore {
    /// The survival model's expected remaining lifetime, if it has one.
    pub fn expected_lifetime_months(&self) -> Option<f64> {
        self.survival.as_ref().map(|v| v.expected_lifetime_months)
    }

    /// Lifetime value, with a survival model and a known `mrr`.
    pub fn clv(&self) -> Option<f64> {
        self.survival.as_ref().and_then(|v| v.clv)
    }

    /// Probability x lifetime value.
    pub fn clv_at_risk(&self) -> Option<f64> {
        self.survival.as_ref().and_then(|v| v.clv_at_risk)
    }
}

/// What the survival model says about one customer (see [`churn_model::survival`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SurvivalScore {
    /// `S(k)` for k in [`SHOWN_MONTHS`] (none past the curve's end): the chance of
    /// still being a customer after k 30-day months. A fixed array: scoring a row
    /// allocates nothing for it.
    pub shown: [Option<f64>; SHOWN_MONTHS.len()],
    /// The first month after which survival is at most one half; `None`: beyond the
    /// curve.
    pub median_months: Option<u32>,
    pub expected_lifetime_months: f64,
    /// Lifetime value at the row's `mrr` (none when it is unknown).
    pub clv: Option<f64>,
    /// The churn probability x CLV: the value this month's churn risk puts in play.
    pub clv_at_risk: Option<f64>,
}

impl SurvivalScore {
    /// `(k, S(k))` for the months of [`SHOWN_MONTHS`] the curve reaches.
    pub fn points(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        SHOWN_MONTHS
            .iter()
            .zip(&self.shown)
            .filter_map(|(&k, s)| s.map(|s| (k, s)))
    }
}

/// The model's and the rules' answers for one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub model: ModelScore,
    /// `None` when the model's features cannot feed the rules ([`RULES_UNAVAILABLE`]).
    pub rules: Option<RuleResult>,
}

/// A row that cannot be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(transparent)]
pub struct ScoreError(#[from] pub PrepError);

/// A loaded model ready to score rows, with its schema look-ups precomputed.
#[derive(Debug, Clone)]
pub struct Scorer {
    artifact: Artifact,
    positions: HashMap<String, usize>,
    /// Schema position of each preprocessor transform.
    transform_pos: Vec<usize>,
    /// Schema position of each rule input (in [`INPUTS`] order).
    rule_pos: [Option<usize>; INPUTS.len()],
    mrr_pos: Option<usize>,
    cutoffs: RiskCutoffs,
    /// Schema position of each survival transform, and of `tenure_days`.
    survival_pos: Vec<usize>,
    tenure_pos: Option<usize>,
    /// When the survival model's preprocessor can work from what the classifier's kept
    /// of a row (the same inputs, perhaps some logged on top: see
    /// [`logs_after`](churn_model::preprocess::Preprocessor::logs_after)), the inputs it
    /// logs on top: then the curve comes from what the classifier read, each cell read
    /// once.
    survival_from_kept: Option<Vec<bool>>,
    /// The survival model's per-interval terms, worked out once.
    survival_terms: Option<CurveTerms>,
}

/// Buffers one thread reuses from row to row, so scoring a row allocates little.
#[derive(Debug, Default)]
pub struct Scratch {
    model: PredictBuffers,
    predictions: Vec<Result<Prediction, PrepError>>,
    /// The tile's inputs to the survival model, when they are not the classifier's.
    survival: Vec<f64>,
    survival_results: Vec<Result<(), PrepError>>,
    kept: Vec<f64>,
    curve: Curve,
}

/// What a row's survival curve is computed from.
enum SurvivalInputs<'k> {
    /// What the classifier's preprocessor kept of the row (the survival model reads the
    /// inputs alike, or logs some of them on top).
    Kept(&'k [f64]),
    /// The row's inputs from the survival model's own preprocessor.
    Own(Result<&'k [f64], PrepError>),
}

impl Scorer {
    /// Prepares a model for scoring.
    pub fn new(artifact: Artifact) -> Scorer {
        let mut positions: HashMap<String, usize> = artifact
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        // A model input missing from the recorded schema (cannot happen for artifacts
        // written by churn-train) still gets a position, so scoring never indexes out.
        let mut extra = Vec::new();
        for t in artifact.input_transforms() {
            if !positions.contains_key(t.name()) {
                positions.insert(t.name().to_string(), artifact.features.len() + extra.len());
                extra.push(FeatureInfo {
                    name: t.name().to_string(),
                    description: String::new(),
                    kind: match t {
                        Transform::Numeric { .. } => FeatureKind::Numeric,
                        Transform::Categorical { .. } => FeatureKind::Categorical,
                    },
                });
            }
        }
        let mut artifact = artifact;
        artifact.features.extend(extra);
        let transform_pos = artifact
            .model
            .preprocessor
            .transforms
            .iter()
            .map(|t| positions[t.name()])
            .collect();
        let numeric = |name: &str| {
            positions
                .get(name)
                .copied()
                .filter(|&p| artifact.features[p].kind == FeatureKind::Numeric)
        };
        let rule_pos =
            std::array::from_fn(|i| numeric(&INPUTS[i].feature(&artifact.feature_config)));
        let mrr_pos = numeric("mrr");
        let tenure_pos = numeric("tenure_days");
        let cutoffs = RiskCutoffs::from_threshold(artifact.model.threshold);
        let survival_pos = artifact
            .survival
            .iter()
            .flat_map(|s| s.preprocessor.transforms.iter())
            .map(|t| positions[t.name()])
            .collect();
        let survival_from_kept = artifact
            .survival
            .as_ref()
            .and_then(|s| s.preprocessor.logs_after(&artifact.model.preprocessor));
        let survival_terms = artifact.survival.as_ref().map(|s| s.terms());
        Scorer {
            survival_terms,
            artifact,
            positions,
            transform_pos,
            rule_pos,
            mrr_pos,
            cutoffs,
            survival_pos,
            tenure_pos,
            survival_from_kept,
        }
    }

    /// The model artifact.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// The feature schema: what a row may hold, in position order.
    pub fn schema(&self) -> &[FeatureInfo] {
        &self.artifact.features
    }

    /// Position of a feature in the schema.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.positions.get(name).copied()
    }

    /// How many features the model reads.
    pub fn model_inputs(&self) -> usize {
        self.transform_pos.len()
    }

    /// Whether the model reads this schema position (some recorded features, such as
    /// `signup_cohort`, are kept for reports only).
    pub fn is_model_input(&self, position: usize) -> bool {
        self.transform_pos.contains(&position)
    }

    /// The risk band cut-offs.
    pub fn cutoffs(&self) -> RiskCutoffs {
        self.cutoffs
    }

    /// Whether rule results are computed.
    pub fn rules_apply(&self) -> bool {
        self.artifact.rules_apply
    }

    /// Scores one row; `row(position)` gives the cell at a schema position. One row of
    /// [`Scorer::score_rows`].
    pub fn score<'a>(
        &self,
        row: impl Fn(usize) -> Cell<'a>,
        options: Options,
        scratch: &mut Scratch,
    ) -> Result<Scored, ScoreError> {
        let mut scored = None;
        self.score_rows(1, |_, p| row(p), options, scratch, |_, s| scored = Some(s));
        scored.expect("one row scored")
    }

    /// Scores rows `0..n` on this thread, `row(r, position)` giving a cell of row `r`;
    /// `each(r, result)` hears them in row order. The model sees the rows as one block
    /// (a tree model walks a group of trees for every row before the next): a tile of a
    /// few hundred rows is what batch scoring hands it.
    pub fn score_rows<'a>(
        &self,
        n: usize,
        row: impl Fn(usize, usize) -> Cell<'a>,
        options: Options,
        scratch: &mut Scratch,
        mut each: impl FnMut(usize, Result<Scored, ScoreError>),
    ) {
        self.score_models(n, &row, options, scratch, |r, model| {
            each(
                r,
                model.map(|model| Scored {
                    model,
                    rules: self.score_rules(|p| row(r, p)),
                }),
            )
        });
    }

    /// Scores rows `0..n` in parallel (rayon), `row(r, position)` giving a cell of row
    /// `r`; results in row order. Each task scores a tile of [`TILE_ROWS`] rows through
    /// [`Scorer::score_rows`].
    pub fn score_batch<'a, F>(
        &self,
        n: usize,
        row: F,
        options: Options,
    ) -> Vec<Result<Scored, ScoreError>>
    where
        F: Fn(usize, usize) -> Cell<'a> + Sync,
    {
        use rayon::prelude::*;
        let tiles: Vec<Vec<Result<Scored, ScoreError>>> = (0..n.div_ceil(TILE_ROWS))
            .into_par_iter()
            .map_init(Scratch::default, |scratch, tile| {
                let first = tile * TILE_ROWS;
                let rows = (n - first).min(TILE_ROWS);
                let mut scored = Vec::with_capacity(rows);
                self.score_rows(
                    rows,
                    |j, p| row(first + j, p),
                    options,
                    scratch,
                    |_, s| scored.push(s),
                );
                scored
            })
            .collect();
        tiles.into_iter().flatten().collect()
    }

    /// The model part of [`Scorer::score`].
    pub fn score_model<'a>(
        &self,
        row: impl Fn(usize) -> Cell<'a>,
        options: Options,
        scratch: &mut Scratch,
    ) -> Result<ModelScore, ScoreError> {
        let mut scored = None;
        self.score_models(1, |_, p| row(p), options, scratch, |_, s| scored = Some(s));
        scored.expect("one row scored")
    }

    /// The model part of [`Scorer::score_rows`].
    pub fn score_models<'a>(
        &self,
        n: usize,
        row: impl Fn(usize, usize) -> Cell<'a>,
        options: Options,
        scratch: &mut Scratch,
        mut each: impl FnMut(usize, Result<ModelScore, ScoreError>),
    ) {
        let wanted = options
            .survival
            .then_some(self.artifact.survival.as_ref())
            .flatten();
        let share = wanted.is_some() && self.survival_from_kept.is_some();
        let features = self.transform_pos.len();
        let Scratch {
            model,
            predictions,
            survival,
            survival_results,
            kept,
            curve,
        } = scratch;
        kept.resize(if share { n * features } else { 0 }, 0.0);
        // A survival model that cannot work from what the classifier kept preprocesses
        // the whole tile input by input, as the classifier's preprocessor does.
        let own_width = match wanted {
            Some(model) if !share => {
                let width = model.preprocessor.width();
                survival.resize(n * width, 0.0);
                survival_results.clear();
                survival_results.resize(n, Ok(()));
                model.preprocessor.transform_rows_keeping(
                    n,
                    |r, i, _| row(r, self.survival_pos[i]),
                    &[],
                    survival,
                    |_, _, _| {},
                    &mut [],
                    survival_results,
                );
                Some(width)
            }
            _ => None,
        };
        self.artifact.model.predict_rows(
            n,
            |r, i, _| row(r, self.transform_pos[i]),
            model,
            options.explain,
            options.top,
            options.warnings,
            kept,
            predictions,
        );
        for (r, prediction) in predictions.drain(..).enumerate() {
            let inputs = if share {
                Some(SurvivalInputs::Kept(
                    &kept[r * features..(r + 1) * features],
                ))
            } else if let Some(own_width) = own_width {
                let result = std::mem::replace(&mut survival_results[r], Ok(()));
                Some(SurvivalInputs::Own(
                    result.map(|()| &survival[r * own_width..(r + 1) * own_width]),
                ))
            } else {
                None
            };
            // The classifier's error comes first, as when the row is scored alone.
            let score = prediction
                .map_err(ScoreError::from)
                .and_then(|prediction| self.model_score(|p| row(r, p), prediction, inputs, curve));
            each(r, score);
        }
    }

    /// A row's model score from its prediction: revenue at risk, and the survival
    /// curve from its `inputs` (`None`: no curve).
    fn model_score<'a>(
        &self,
        row: impl Fn(usize) -> Cell<'a>,
        prediction: Prediction,
        inputs: Option<SurvivalInputs<'_>>,
        curve: &mut Curve,
    ) -> Result<ModelScore, ScoreError> {
        let p = prediction.probability;
        let mrr = self
            .mrr_pos
            .and_then(|m| number(row(m)))
            .filter(|mrr| (0.0..=MAX_MRR).contains(mrr));
        let revenue_at_risk = mrr.map(|mrr| p * mrr);
        let survival = match (&self.artifact.survival, &self.survival_terms, inputs) {
            (Some(model), Some(terms), Some(inputs)) => {
                let tenure = self.tenure_pos.map_or(Cell::Missing, &row);
                match inputs {
                    SurvivalInputs::Kept(kept) => {
                        let logs = self.survival_from_kept.as_deref().unwrap_or_default();
                        model.curve_kept(terms, kept, logs, tenure, curve)
                    }
                    SurvivalInputs::Own(x) => model.curve_of_inputs(terms, x?, tenure, curve),
                }
                let clv = mrr.map(|m| curve.clv(m, &model.clv));
                Some(SurvivalScore {
                    shown: SHOWN_MONTHS.map(|k| curve.survival.get(k as usize - 1).copied()),
                    median_months: curve.median_months(),
                    expected_lifetime_months: curve.expected_lifetime_months(),
                    clv,
                    clv_at_risk: clv.map(|v| p * v),
                })
            }
            _ => None,
        };
        Ok(ModelScore {
            survival,
            probability: p,
            risk_band: self.cutoffs.band(p),
            revenue_at_risk,
            reasons: prediction
                .reasons
                .into_iter()
                .map(|c| Reason {
                    feature: self.transform_pos[c.feature],
                    contribution: c.contribution,
                })
                .collect(),
            warnings: prediction
                .notes
                .into_iter()
                .map(|(i, note)| Warning {
                    feature: self.transform_pos[i],
                    note,
                })
                .collect(),
        })
    }

    /// The rules part of [`Scorer::score`]; `None` when the rules do not apply.
    pub fn score_rules<'a>(&self, row: impl Fn(usize) -> Cell<'a>) -> Option<RuleResult> {
        if !self.artifact.rules_apply {
            return None;
        }
        let inputs = RuleInputs::build(|k, _| self.rule_pos[k].and_then(|p| number(row(p))));
        Some(rules::score(&inputs, &self.artifact.rules))
    }

    /// A human sentence for a warning.
    pub fn describe_warning(&self, w: &Warning) -> String {
        let name = &self.artifact.features[w.feature].name;
        match w.note {
            Note::Imputed => {
                let prep = &self.artifact.model.preprocessor;
                let median = prep.transforms.iter().enumerate().find_map(|(i, t)| match t {
                    Transform::Numeric {
                        name: n, median, ..
                    } if n == name => Some(if prep.log1p.get(i) == Some(&true) {
                        // Stored on the log scale of the input.
                        median.exp_m1()
                    } else {
                        *median
                    }),
                    _ => None,
                });
                match median {
                    Some(m) => format!(
                        "feature `{name}` is missing: imputed with the training median {m}"
                    ),
                    None => format!("feature `{name}` is missing: imputed"),
                }
            }
            Note::UnseenCategory => format!(
                "feature `{name}`: a category not seen (often enough) in training; scored as \"other\""
            ),
            Note::Clipped => {
                let model = &self.artifact.model;
                let range = model
                    .preprocessor
                    .transforms
                    .iter()
                    .position(|t| t.name() == name)
                    .and_then(|i| model.input_ranges.get(i).copied().flatten());
                match range {
                    Some(r) => {
                        let (lo, hi) = r.bounds();
                        format!(
                            "feature `{name}` is far outside the training range {} to {}: scored as the nearest of {lo} and {hi}",
                            r.min, r.max
                        )
                    }
                    None => format!("feature `{name}` is far outside the training range: clipped"),
                }
            }
        }
    }

    /// Maps the columns of a [`FeatureTable`] onto schema positions, for scoring its rows.
    pub fn table_columns<'t>(&self, table: &'t FeatureTable) -> Vec<Option<&'t Values>> {
        self.schema()
            .iter()
            .map(|f| table.column(&f.name))
            .collect()
    }
}

fn number(cell: Cell) -> Option<f64> {
    match cell {
        Cell::Number(x) if x.is_finite() => Some(x),
        Cell::Text(s) => s.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
    }
}

/// A warning's short code in outputs.
pub fn warning_code(note: Note) -> &'static str {
    match note {
        Note::Imputed => "imputed",
        Note::UnseenCategory => "unseen_category",
        Note::Clipped => "clipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_bands_follow_the_threshold() {
        let c = RiskCutoffs::from_threshold(0.2);
        assert_eq!(c.band(0.0), RiskBand::Low);
        assert_eq!(c.band(0.0999), RiskBand::Low);
        assert_eq!(c.band(0.1), RiskBand::Medium);
        assert_eq!(c.band(0.1999), RiskBand::Medium);
        assert_eq!(c.band(0.2), RiskBand::High);
        assert_eq!(c.band(0.3999), RiskBand::High);
        assert_eq!(c.band(0.4), RiskBand::Critical);
        // A high threshold keeps "critical" reachable below 1.
        let c = RiskCutoffs::from_threshold(0.6);
        assert!((c.critical - 0.8).abs() < 1e-12);
        assert_eq!(c.band(0.85), RiskBand::Critical);
    }
}
