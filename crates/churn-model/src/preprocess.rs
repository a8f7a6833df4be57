//! Preprocessing, fitted on training rows only and stored with the model: median
//! imputation with missing indicators and standardisation for numbers, one-hot encoding
//! for categories (frequent levels only; rare and unseen ones share an "other" slot).
//! A served model therefore accepts any row the training data could have produced.

use churn_features::dataset::Values;
use churn_features::features::{FeatureInfo, FeatureKind, FeatureTable};
use serde::{Deserialize, Serialize};

/// Categories kept per column at most; the rest go to "other".
const MAX_LEVELS: usize = 30;
/// A category needs this many training rows to get its own slot.
const MIN_LEVEL_ROWS: usize = 5;

/// How one input feature becomes model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Transform {
    /// `(value or median - mean) / std`, plus a 0/1 missing indicator when training
    /// rows had missing values.
    Numeric {
        name: String,
        median: f64,
        mean: f64,
        std: f64,
        indicator: bool,
    },
    /// One slot per kept level, then "other"; a missing value sets no slot.
    Categorical { name: String, levels: Vec<String> },
}

impl Transform {
    /// Writes the model inputs of a value read (a number after `ln(1 + x)`, or a
    /// category's slot; `None` when missing) at the start of `out`; returns how many.
    fn place(&self, value: Option<f64>, out: &mut [f64]) -> usize {
        match self {
            Transform::Numeric {
                median,
                mean,
                std,
                indicator,
                ..
            } => {
                out[0] = scaled(value, *median, *mean, *std);
                if *indicator {
                    out[1] = if value.is_none() { 1.0 } else { 0.0 };
                    2
                } else {
                    1
                }
            }
            Transform::Categorical { levels, .. } => {
                let slots = &mut out[..levels.len() + 1];
                slots.fill(0.0);
                if let Some(slot) = value {
                    slots[slot as usize] = 1.0;
                }
                slots.len()
            }
        }
    }

    /// The input feature's name.
    pub fn name(&self) -> &str {
        match self {
            Transform::Numeric { name, .. } | Transform::Categorical { name, .. } => name,
        }
    }

    /// Number of model inputs this feature produces.
    pub fn width(&self) -> usize {
        match self {
            Transform::Numeric { indicator, .. } => 1 + usize::from(*indicator),
            Transform::Categorical { levels, .. } => levels.len() + 1,
        }
    }
}

/// A numeric input's model value: `(value, or the median when missing, - mean) / std`.
/// The formula is part of the model format: tree splits sit on values it gave in
/// training, so a result an ulp off (multiplying by `1 / std`, say) moves rows across
/// them and fails stored models' probe checks.
#[inline(always)]
fn scaled(value: Option<f64>, median: f64, mean: f64, std: f64) -> f64 {
    (value.unwrap_or(median) - mean) / std
}

/// The level slots of the texts a block's rows gave for one category, by the text's
/// address: rows of a dictionary-encoded column (see `TableFile::for_each_batch_keeping`
/// in churn-features) share their value's string, so each value is looked up once a
/// block. Two live strings at one address and of one length are the same bytes, and
/// only borrowed texts (alive for the whole block) are kept. Texts at addresses of
/// their own (a CSV's) fill the few places at once; after the first text finds no
/// place, the places are no longer searched.
#[derive(Default)]
struct SeenTexts {
    places: [(usize, usize, usize); SeenTexts::PLACES],
    used: usize,
}

impl SeenTexts {
    const PLACES: usize = 16;

    #[inline]
    fn get_or(&mut self, text: &str, look_up: impl Fn(&str) -> usize) -> usize {
        let key = (text.as_ptr().addr(), text.len());
        if self.used <= Self::PLACES {
            if let Some(&(_, _, slot)) = self.places[..self.used]
                .iter()
                .find(|&&(addr, len, _)| (addr, len) == key)
            {
                return slot;
            }
        }
        let slot = look_up(text);
        if self.used < Self::PLACES {
            self.places[self.used] = (key.0, key.1, slot);
        }
        self.used = self.used.saturating_add(1);
        slot
    }
}

/// One input value as a caller provides it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Missing,
    Number(f64),
    Text(&'a str),
}

/// A value of the wrong type for its feature, or a row the model cannot score.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrepError {
    #[error("feature `{feature}`: expected a number, found text `{found}`")]
    ExpectedNumber { feature: String, found: String },
    #[error("feature `{feature}`: {value} is not a finite number")]
    NotFinite { feature: String, value: f64 },
    /// The model's arithmetic left the finite numbers: never answered as a prediction.
    #[error("the model gave a non-finite {what} for this row; it is not scored")]
    NonFiniteOutput { what: &'static str },
}

/// The values a numeric input took on the training rows. Values far outside it are
/// clipped at scoring time (see [`InputRange::bounds`]), so an extreme input such as
/// `1e308` cannot push the model's arithmetic to infinity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InputRange {
    pub min: f64,
    pub max: f64,
}

impl InputRange {
    /// The accepted interval: the training range widened by its own width on each side
    /// (by `max(|value|, 1)` for a constant), so moderate extrapolation (a tenure a
    /// little longer than any seen) is scored as given and only absurd values are
    /// clipped.
    pub fn bounds(&self) -> (f64, f64) {
        let width = self.max - self.min;
        if width > 0.0 {
            (self.min - width, self.max + width)
        } else {
            (
                self.min - self.min.abs().max(1.0),
                self.max + self.max.abs().max(1.0),
            )
        }
    }
}

/// The fitted preprocessing of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub transforms: Vec<Transform>,
    /// Names of the model inputs, e.g. `mrr`, `mrr__missing`, `plan=pro`, `plan=__other`.
    pub output_names: Vec<String>,
    /// For each model input, the index of the transform (input feature) it comes from.
    pub output_source: Vec<usize>,
    /// By transform: whether the number is taken as `ln(1 + x)` (negative values as 0)
    /// before imputation and scaling. Empty: none is.
    pub log1p: Vec<bool>,
}

/// Whether a numeric input is worth a log transform for a linear model: never negative
/// on the training rows and spanning at least a few units (counts, durations, money),
/// unlike shares and 0/1 flags.
fn log_worthy(present: &[f64]) -> bool {
    !present.is_empty()
        && present.iter().all(|&x| x >= 0.0)
        && present.iter().copied().fold(0.0, f64::max) >= 5.0
}

/// `ln(1 + x)` of a non-negative reading of `x`.
///
/// Counts, days and scores are whole numbers in real feature tables: those below
/// [`WHOLE_LOG1P`] come from a table of the same `ln_1p` (the same bits, a fraction of
/// the time; the log of a count was a tenth of batch scoring's work).
#[inline]
fn log1p_of(x: f64) -> f64 {
    let x = x.max(0.0);
    // `ln_1p(±0) = ±0`: returning the zero keeps its sign, as `ln_1p` would.
    if x == 0.0 {
        return x;
    }
    match whole_below(x, WHOLE_LOG1P) {
        Some(whole) => whole_log1p()[whole],
        None => x.ln_1p(),
    }
}

/// `x` as an index when it is a whole number in `0..limit` (the key of a table of a
/// function of whole numbers).
#[inline]
pub(crate) fn whole_below(x: f64, limit: usize) -> Option<usize> {
    let whole = x as usize;
    ((0.0..limit as f64).contains(&x) && whole as f64 == x).then_some(whole)
}

/// The number a numeric input's cell holds (`None` when missing): a finite number, or
/// text that parses as one; anything else is the error naming `feature`.
fn number_in(feature: &str, cell: Cell<'_>) -> Result<Option<f64>, PrepError> {
    match cell {
        Cell::Number(x) if x.is_finite() => Ok(Some(x)),
        Cell::Number(x) => Err(PrepError::NotFinite {
            feature: feature.to_string(),
            value: x,
        }),
        Cell::Missing => Ok(None),
        Cell::Text(s) => match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(PrepError::ExpectedNumber {
                feature: feature.to_string(),
                found: s.to_string(),
            }),
        },
    }
}

/// Whole numbers below this have their `ln(1 + n)` tabulated (32 KB).
const WHOLE_LOG1P: usize = 4096;

fn whole_log1p() -> &'static [f64; WHOLE_LOG1P] {
    static TABLE: std::sync::OnceLock<[f64; WHOLE_LOG1P]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|n| (n as f64).ln_1p()))
}

/// What happened to one value while transforming (reported back to callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// A missing number replaced by the training median.
    Imputed,
    /// A category not seen (often enough) in training, put in "other".
    UnseenCategory,
    /// A number far outside the training range, clipped to [`InputRange::bounds`].
    Clipped,
}

impl Preprocessor {
    /// Fits on `rows` of `table`, using the features in `use_features` (in that order).
    pub fn fit(table: &FeatureTable, rows: &[usize], use_features: &[usize]) -> Preprocessor {
        Preprocessor::fit_with(table, rows, use_features, false)
    }

    /// [`Preprocessor::fit`]; with `log`, every non-negative numeric input spanning a
    /// few units (counts, durations) is taken as `ln(1 + x)`, which suits a linear model
    /// of heavy-tailed counts (trees do not care).
    pub fn fit_with(
        table: &FeatureTable,
        rows: &[usize],
        use_features: &[usize],
        log: bool,
    ) -> Preprocessor {
        let mut transforms = Vec::new();
        let mut log1p = Vec::new();
        for &f in use_features {
            let name = table.info[f].name.clone();
            transforms.push(match &table.columns[f] {
                Values::Numeric(v) => {
                    let mut present: Vec<f64> = rows.iter().filter_map(|&r| v[r]).collect();
                    let logged = log && log_worthy(&present);
                    log1p.push(logged);
                    let scale = |x: f64| if logged { log1p_of(x) } else { x };
                    present.iter_mut().for_each(|x| *x = scale(*x));
                    let indicator = present.len() < rows.len();
                    present.sort_by(f64::total_cmp);
                    let median = if present.is_empty() {
                        0.0
                    } else if present.len() % 2 == 1 {
                        present[present.len() / 2]
                    } else {
                        (present[present.len() / 2 - 1] + present[present.len() / 2]) / 2.0
                    };
                    let n = rows.len().max(1) as f64;
                    let imputed = || rows.iter().map(|&r| v[r].map_or(median, scale));
                    let mean = imputed().sum::<f64>() / n;
                    let var = imputed().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                    let std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
                    Transform::Numeric {
                        name,
                        median,
                        mean,
                        std,
                        indicator,
                    }
                }
                Values::Categorical(v) => {
                    log1p.push(false);
                    let mut counts: std::collections::HashMap<&str, usize> =
                        std::collections::HashMap::new();
                    for &r in rows {
                        if let Some(c) = v[r].as_deref() {
                            *counts.entry(c).or_default() += 1;
                        }
                    }
                    let mut levels: Vec<(&str, usize)> = counts
                        .into_iter()
                        .filter(|(_, n)| *n >= MIN_LEVEL_ROWS)
                        .collect();
                    levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    levels.truncate(MAX_LEVELS);
                    let mut levels: Vec<String> =
                        levels.into_iter().map(|(l, _)| l.to_string()).collect();
                    levels.sort();
                    Transform::Categorical { name, levels }
                }
            });
        }
        let mut output_names = Vec::new();
        let mut output_source = Vec::new();
        for (i, t) in transforms.iter().enumerate() {
            match t {
                Transform::Numeric {
                    name, indicator, ..
                } => {
                    output_names.push(name.clone());
                    if *indicator {
                        output_names.push(format!("{name}__missing"));
                    }
                }
                Transform::Categorical { name, levels } => {
                    output_names.extend(levels.iter().map(|l| format!("{name}={l}")));
                    output_names.push(format!("{name}=__other"));
                }
            }
            output_source.extend(std::iter::repeat_n(i, t.width()));
        }
        if !log1p.contains(&true) {
            log1p.clear();
        }
        Preprocessor {
            transforms,
            output_names,
            output_source,
            log1p,
        }
    }

    /// Number of model inputs.
    pub fn width(&self) -> usize {
        self.output_names.len()
    }

    /// The range of each numeric input over `rows` (`None` for categories and for
    /// inputs never present), in transform order.
    pub fn ranges(&self, table: &FeatureTable, rows: &[usize]) -> Vec<Option<InputRange>> {
        self.transforms
            .iter()
            .map(|t| match (t, table.column(t.name())) {
                (Transform::Numeric { .. }, Some(Values::Numeric(v))) => {
                    rows.iter().filter_map(|&r| v[r]).fold(None, |acc, x| {
                        Some(match acc {
                            None => InputRange { min: x, max: x },
                            Some(InputRange { min, max }) => InputRange {
                                min: min.min(x),
                                max: max.max(x),
                            },
                        })
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Transforms one row given by a lookup; `note(feature index, note)` hears about
    /// imputations, unseen categories and clipped values. `ranges` (by transform, or
    /// empty) bound the numeric inputs.
    pub fn transform_one<'a>(
        &self,
        get: impl FnMut(usize, &str) -> Cell<'a>,
        ranges: &[Option<InputRange>],
        out: &mut [f64],
        note: impl FnMut(usize, Note),
    ) -> Result<(), PrepError> {
        self.transform_one_keeping(get, ranges, out, note, &mut [])
    }

    /// [`Preprocessor::transform_one`], also keeping in `kept` (one slot per transform,
    /// or empty) what each transform read, before scaling and with no range: a number
    /// (after `ln(1 + x)` where this preprocessor logs it; NaN when missing), or a
    /// category's slot (NaN when missing). Another preprocessor that can work from
    /// them ([`Preprocessor::logs_after`]) scores the row with
    /// [`Preprocessor::dot_kept`]: a model with two preprocessors reads each input once.
    pub fn transform_one_keeping<'a>(
        &self,
        mut get: impl FnMut(usize, &str) -> Cell<'a>,
        ranges: &[Option<InputRange>],
        out: &mut [f64],
        mut note: impl FnMut(usize, Note),
        kept: &mut [f64],
    ) -> Result<(), PrepError> {
        let mut result = [Ok(())];
        self.transform_rows_keeping(
            1,
            |_, i, name| get(i, name),
            ranges,
            out,
            |_, i, n| note(i, n),
            kept,
            &mut result,
        );
        let [result] = result;
        result
    }

    /// [`Preprocessor::transform_one_keeping`] for rows `0..n` at once, `get(row,
    /// transform, name)` giving a cell: row `r`'s inputs go to `out[r * width..]`, what
    /// it read to `kept[r * transforms..]` (when `kept` is not empty), `note(row,
    /// transform, note)` hears what happened to a value, and `results[r]` (`Ok` on the
    /// way in) gets the row's first error, after which the row is not read further
    /// (its inputs are then unspecified). Input by input across the rows: each input's
    /// constants are read once for the block, not once per cell; the bits are the
    /// row-by-row ones.
    #[allow(clippy::too_many_arguments)]
    pub fn transform_rows_keeping<'a>(
        &self,
        n: usize,
        mut get: impl FnMut(usize, usize, &str) -> Cell<'a>,
        ranges: &[Option<InputRange>],
        out: &mut [f64],
        mut note: impl FnMut(usize, usize, Note),
        kept: &mut [f64],
        results: &mut [Result<(), PrepError>],
    ) {
        let p = self.width();
        let features = self.transforms.len();
        debug_assert_eq!(out.len(), n * p);
        debug_assert!(kept.is_empty() || kept.len() == n * features);
        debug_assert_eq!(results.len(), n);
        let keep = !kept.is_empty();
        let mut k = 0;
        for (i, t) in self.transforms.iter().enumerate() {
            let logged = self.log1p.get(i) == Some(&true);
            let log = |v: Option<f64>| if logged { v.map(log1p_of) } else { v };
            match t {
                Transform::Numeric {
                    name,
                    median,
                    mean,
                    std,
                    indicator,
                } => {
                    let bounds = ranges.get(i).copied().flatten().map(|r| r.bounds());
                    for r in 0..n {
                        if results[r].is_err() {
                            continue;
                        }
                        let v = match get(r, i, name) {
                            // The common cell, decided here without a call.
                            Cell::Number(x) if x.is_finite() => Some(x),
                            Cell::Missing => None,
                            cell => match number_in(name, cell) {
                                Ok(v) => v,
                                Err(e) => {
                                    results[r] = Err(e);
                                    continue;
                                }
                            },
                        };
                        // The value before clipping, when it was clipped.
                        let mut unclipped = None;
                        let v = match (v, bounds) {
                            (Some(x), Some((lo, hi))) => {
                                if x < lo || x > hi {
                                    note(r, i, Note::Clipped);
                                    unclipped = Some(x);
                                }
                                Some(x.clamp(lo, hi))
                            }
                            (v, _) => v,
                        };
                        let v = log(v);
                        if keep {
                            kept[r * features + i] = match unclipped {
                                Some(_) => log(unclipped),
                                None => v,
                            }
                            .unwrap_or(f64::NAN);
                        }
                        if v.is_none() {
                            note(r, i, Note::Imputed);
                        }
                        // `Transform::place`, with the transform's constants read once.
                        let row = &mut out[r * p + k..(r + 1) * p];
                        row[0] = scaled(v, *median, *mean, *std);
                        if *indicator {
                            row[1] = if v.is_none() { 1.0 } else { 0.0 };
                        }
                    }
                }
                Transform::Categorical { name, levels } => {
                    let level = |v: &str| match levels.binary_search_by(|l| l.as_str().cmp(v)) {
                        Ok(pos) => pos,
                        Err(_) => levels.len(),
                    };
                    let mut seen = SeenTexts::default();
                    for r in 0..n {
                        if results[r].is_err() {
                            continue;
                        }
                        let slot = match get(r, i, name) {
                            Cell::Missing => None,
                            Cell::Text(s) => Some(seen.get_or(s, level)),
                            Cell::Number(x) => Some(level(&format_number(x))),
                        };
                        if slot == Some(levels.len()) {
                            note(r, i, Note::UnseenCategory);
                        }
                        let slot = slot.map(|s| s as f64);
                        if keep {
                            kept[r * features + i] = slot.unwrap_or(f64::NAN);
                        }
                        t.place(slot, &mut out[r * p + k..(r + 1) * p]);
                    }
                }
            }
            k += t.width();
        }
    }

    /// When this preprocessor's row can be worked out from what `other` kept of the
    /// cells ([`Preprocessor::transform_one_keeping`]), the inputs it takes `ln(1 + x)`
    /// of on top (see [`Preprocessor::dot_kept`]): the same features in the same order
    /// and kind and the same levels, every input `other` logs logged here too (a logged
    /// value does not give its input back to the bit). Scaling, medians and indicators
    /// may differ. `None` when it cannot be; no `true` when the two read alike (the
    /// same `ln(1 + x)` choices).
    pub fn logs_after(&self, other: &Preprocessor) -> Option<Vec<bool>> {
        let logs = |p: &Preprocessor, i: usize| p.log1p.get(i) == Some(&true);
        if self.transforms.len() != other.transforms.len() {
            return None;
        }
        self.transforms
            .iter()
            .zip(&other.transforms)
            .enumerate()
            .map(|(i, pair)| {
                let same = match pair {
                    (Transform::Numeric { name: a, .. }, Transform::Numeric { name: b, .. }) => {
                        a == b
                    }
                    (
                        Transform::Categorical {
                            name: a,
                            levels: la,
                        },
                        Transform::Categorical {
                            name: b,
                            levels: lb,
                        },
                    ) => a == b && la == lb,
                    _ => false,
                };
                match (same, logs(self, i), logs(other, i)) {
                    (false, _, _) | (true, false, true) => None,
                    (true, mine, theirs) => Some(mine && !theirs),
                }
            })
            .collect()
    }

    /// `weights . x`, where `x` is the row [`Preprocessor::transform_one`] gives (with no
    /// ranges) for the cells that another preprocessor `kept`
    /// ([`Preprocessor::transform_one_keeping`]); `logs` are this one's
    /// [`Preprocessor::logs_after`] that one (all `false`, or empty, when they read
    /// alike). The row is not made: its nonzero products are
    /// added in the order of that dot product, so the bits are its bits (but for the
    /// sign of a zero sum).
    pub fn dot_kept(&self, kept: &[f64], logs: &[bool], weights: &[f64]) -> f64 {
        debug_assert_eq!(weights.len(), self.width());
        debug_assert_eq!(kept.len(), self.transforms.len());
        debug_assert!(logs.is_empty() || logs.len() == kept.len());
        let mut sum = -0.0;
        let mut k = 0;
        for (i, (t, &value)) in self.transforms.iter().zip(kept).enumerate() {
            let value = (!value.is_nan()).then_some(value);
            let value = match logs.get(i) {
                Some(true) => value.map(log1p_of),
                _ => value,
            };
            match t {
                Transform::Numeric {
                    median,
                    mean,
                    std,
                    indicator,
                    ..
                } => {
                    sum += weights[k] * scaled(value, *median, *mean, *std);
                    // The indicator's and the other levels' products are w * 0.0, a zero:
                    // adding it changes no sum but a zero one's sign, which no
                    // probability sees.
                    if *indicator && value.is_none() {
                        sum += weights[k + 1];
                    }
                }
                Transform::Categorical { .. } => {
                    if let Some(slot) = value {
                        sum += weights[k + slot as usize];
                    }
                }
            }
            k += t.width();
        }
        sum
    }

    /// Transforms `rows` of a table into a row-major matrix (numeric inputs bounded by
    /// `ranges`, by transform, or not at all when it is empty).
    pub fn transform_table(
        &self,
        table: &FeatureTable,
        rows: &[usize],
        ranges: &[Option<InputRange>],
    ) -> Result<Vec<f64>, PrepError> {
        let cols: Vec<Option<&Values>> = self
            .transforms
            .iter()
            .map(|t| table.column(t.name()))
            .collect();
        let p = self.width();
        let mut out = vec![0.0; rows.len() * p];
        for (i, &r) in rows.iter().enumerate() {
            self.transform_one(
                |f, _| match cols[f] {
                    None => Cell::Missing,
                    Some(Values::Numeric(v)) => v[r].map_or(Cell::Missing, Cell::Number),
                    Some(Values::Categorical(v)) => {
                        v[r].as_deref().map_or(Cell::Missing, Cell::Text)
                    }
                },
                ranges,
                &mut out[i * p..(i + 1) * p],
                |_, _| {},
            )?;
        }
        Ok(out)
    }
}

/// The cell of row `row` of a table column (missing when the table lacks the column).
pub fn table_cell<'t>(column: Option<&'t Values>, row: usize) -> Cell<'t> {
    match column {
        Some(Values::Numeric(v)) => v[row].map_or(Cell::Missing, Cell::Number),
        Some(Values::Categorical(v)) => v[row].as_deref().map_or(Cell::Missing, Cell::Text),
        None => Cell::Missing,
    }
}

/// A number as a category label (`3` not `3.0`).
pub(crate) fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// The features a model uses: every feature except identifiers and the signup cohort
/// (a calendar month: in an out-of-time backtest every new cohort is unseen, and
/// `tenure_days` carries what it means).
pub fn model_features(info: &[FeatureInfo]) -> Vec<usize> {
    info.iter()
        .enumerate()
        .filter(|(_, i)| i.name != "signup_cohort")
        .filter(|(_, i)| i.kind == FeatureKind::Numeric || i.kind == FeatureKind::Categorical)
        .map(|(k, _)| k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tabulated_log1p_is_ln_1p_to_the_bit() {
        let mut xs = vec![
            -0.0,
            0.0,
            -3.0,
            0.5,
            1e-300,
            4095.0,
            4095.5,
            4096.0,
            1e9,
            f64::INFINITY,
            f64::NAN,
        ];
        xs.extend((0..5000).map(f64::from));
        xs.extend((0..5000).map(|n| f64::from(n) + 0.25));
        xs.extend((0..5000).map(|n| f64::from(n).next_up()));
        for x in xs {
            assert_eq!(
                log1p_of(x).to_bits(),
                x.max(0.0).ln_1p().to_bits(),
                "log1p_of({x:e})"
            );
        }
    }

    #[test]
    fn a_number_is_scaled_as_stored_models_were_trained_to_the_bit() {
        // Tree models split on the values training computed (histogram cut points are
        // data values): a scaling off by one ulp sends a row sitting on a cut point the
        // other way, and every model file's probe check then refuses it. Multiplying by
        // a precomputed 1 / std did exactly that (a gbm probe moved by 8 %): the
        // formula is part of the model format.
        let transforms = vec![
            Transform::Numeric {
                name: "plain".into(),
                median: 0.7,
                mean: 3.3,
                std: 2.9,
                indicator: true,
            },
            Transform::Numeric {
                name: "logged".into(),
                median: 1.1,
                mean: 1.7,
                std: 0.3,
                indicator: false,
            },
        ];
        let p = Preprocessor {
            output_names: vec!["plain".into(), "plain__missing".into(), "logged".into()],
            output_source: vec![0, 0, 1],
            transforms,
            log1p: vec![false, true],
        };
        // A preprocessor logging nothing keeps the values as read: this one logs the
        // second on top of them (and not the other way round).
        let unlogged = Preprocessor {
            log1p: Vec::new(),
            ..p.clone()
        };
        let logs = p
            .logs_after(&unlogged)
            .expect("computable from what it keeps");
        assert_eq!(logs, [false, true]);
        assert_eq!(unlogged.logs_after(&p), None);
        assert_eq!(p.logs_after(&p), Some(vec![false, false]));
        let mut out = [0.0; 3];
        let mut kept = [0.0; 2];
        let mut kept_as_read = [0.0; 2];
        let mut unused = [0.0; 3];
        for k in 0..5000 {
            let x = f64::from(k) * 0.37 + 0.01;
            p.transform_one_keeping(|_, _| Cell::Number(x), &[], &mut out, |_, _| {}, &mut kept)
                .unwrap();
            assert_eq!(out[0].to_bits(), ((x - 3.3) / 2.9).to_bits(), "x = {x}");
            assert_eq!(out[1].to_bits(), 0.0f64.to_bits());
            assert_eq!(
                out[2].to_bits(),
                ((x.ln_1p() - 1.7) / 0.3).to_bits(),
                "x = {x}"
            );
            let weights = [0.3, -1.2, 0.8];
            let dot = weights.iter().zip(&out).fold(-0.0, |s, (w, x)| s + w * x);
            assert_eq!(
                p.dot_kept(&kept, &[], &weights).to_bits(),
                dot.to_bits(),
                "x = {x}"
            );
            unlogged
                .transform_one_keeping(
                    |_, _| Cell::Number(x),
                    &[],
                    &mut unused,
                    |_, _| {},
                    &mut kept_as_read,
                )
                .unwrap();
            assert_eq!(
                p.dot_kept(&kept_as_read, &logs, &weights).to_bits(),
                dot.to_bits(),
                "x = {x}, logged on top"
            );
        }
        p.transform_one(|_, _| Cell::Missing, &[], &mut out, |_, _| {})
            .unwrap();
        assert_eq!(out[0].to_bits(), ((0.7 - 3.3) / 2.9f64).to_bits());
        assert_eq!(out[1], 1.0);
    }

    #[test]
    fn a_block_looks_up_a_shared_text_once_and_answers_as_row_by_row() {
        // Rows of a dictionary-encoded column borrow their value's one string, and a
        // block looks each address up once. Whatever the texts' addresses (shared, each
        // its own, more than the places kept, a prefix at a level's own address), the
        // block's inputs and notes are the row-by-row ones.
        let levels: Vec<String> = ["basic", "enterprise", "pro"].map(String::from).into();
        let p = Preprocessor {
            output_names: vec![
                "plan=basic".into(),
                "plan=enterprise".into(),
                "plan=pro".into(),
                "plan=__other".into(),
            ],
            output_source: vec![0; 4],
            transforms: vec![Transform::Categorical {
                name: "plan".into(),
                levels,
            }],
            log1p: Vec::new(),
        };
        let dictionary: Vec<String> = ["pro", "basic", "gold", "enterprise"]
            .map(String::from)
            .into();
        let own: Vec<String> = (0..60)
            .map(|i| ["pro", "basic", "gold", "enterprise"][i % 4].to_string())
            .collect();
        let n = 240;
        let cell = |r: usize| match r {
            r if r % 11 == 0 => Cell::Missing,
            r if r % 13 == 0 => Cell::Number(3.0),
            // "ent" at "enterprise"'s address: another text.
            r if r % 17 == 0 => Cell::Text(&dictionary[3][..3]),
            r if r % 5 == 1 => Cell::Text(&own[(r / 5) % own.len()]),
            r => Cell::Text(&dictionary[(r * 7) % dictionary.len()]),
        };
        let mut block = vec![0.0; n * 4];
        let mut block_kept = vec![0.0; n];
        let mut block_notes = Vec::new();
        let mut results = vec![Ok(()); n];
        p.transform_rows_keeping(
            n,
            |r, _, _| cell(r),
            &[],
            &mut block,
            |r, _, note| block_notes.push((r, note)),
            &mut block_kept,
            &mut results,
        );
        assert!(results.iter().all(Result::is_ok));
        let mut notes = Vec::new();
        for r in 0..n {
            let (mut out, mut kept) = ([0.0; 4], [0.0]);
            p.transform_one_keeping(
                |_, _| cell(r),
                &[],
                &mut out,
                |_, note| notes.push((r, note)),
                &mut kept,
            )
            .unwrap();
            assert_eq!(out, block[r * 4..(r + 1) * 4], "row {r}");
            assert_eq!(kept[0].to_bits(), block_kept[r].to_bits(), "row {r}");
        }
        assert_eq!(notes, block_notes);
        // The rows took every path: unseen texts, prefixes, numbers and gaps.
        let unseen = notes
            .iter()
            .filter(|(_, n)| *n == Note::UnseenCategory)
            .count();
        assert!(unseen > 60, "{unseen} unseen");
        assert!((0..n).any(|r| block[r * 4 + 1] == 1.0));
    }

    fn table() -> FeatureTable {
        let n = 12;
        FeatureTable {
            customer_ids: (0..n).map(|i| format!("c{i}")).collect(),
            customers: (0..n as u32).collect(),
            as_of: vec![None; n],
            info: vec![
                FeatureInfo {
                    name: "x".into(),
                    description: String::new(),
                    kind: FeatureKind::Numeric,
                },
                FeatureInfo {
                    name: "plan".into(),
                    description: String::new(),
                    kind: FeatureKind::Categorical,
                },
            ],
            columns: vec![
                Values::Numeric(
                    (0..n)
                        .map(|i| if i == 0 { None } else { Some(i as f64) })
                        .collect(),
                ),
                Values::Categorical(
                    (0..n)
                        .map(|i| {
                            Some(
                                if i < 6 {
                                    "a"
                                } else if i < 11 {
                                    "b"
                                } else {
                                    "rare"
                                }
                                .to_string(),
                            )
                        })
                        .collect(),
                ),
            ],
            config: Default::default(),
        }
    }

    #[test]
    fn fits_medians_levels_and_other() {
        let t = table();
        let rows: Vec<usize> = (0..12).collect();
        let p = Preprocessor::fit(&t, &rows, &[0, 1]);
        assert_eq!(
            p.output_names,
            ["x", "x__missing", "plan=a", "plan=b", "plan=__other"]
        );
        let Transform::Numeric { median, .. } = &p.transforms[0] else {
            panic!()
        };
        assert_eq!(*median, 6.0); // 1..=11
        let mut out = vec![0.0; p.width()];
        let mut notes = Vec::new();
        p.transform_one(
            |i, _| {
                if i == 0 {
                    Cell::Missing
                } else {
                    Cell::Text("never-seen")
                }
            },
            &[],
            &mut out,
            |i, n| notes.push((i, n)),
        )
        .unwrap();
        assert_eq!(&out[1..], &[1.0, 0.0, 0.0, 1.0]);
        assert_eq!(notes, [(0, Note::Imputed), (1, Note::UnseenCategory)]);
        let e = p
            .transform_one(
                |i, _| {
                    if i == 0 {
                        Cell::Text("abc")
                    } else {
                        Cell::Missing
                    }
                },
                &[],
                &mut out,
                |_, _| {},
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "feature `x`: expected a number, found text `abc`"
        );
        let e = p
            .transform_one(
                |i, _| {
                    if i == 0 {
                        Cell::Number(f64::NAN)
                    } else {
                        Cell::Missing
                    }
                },
                &[],
                &mut out,
                |_, _| {},
            )
            .unwrap_err();
        assert!(e.to_string().contains("not a finite number"));
    }

    #[test]
    fn fitting_sees_training_rows_only() {
        let t = table();
        let p = Preprocessor::fit(&t, &[1, 2, 3], &[0]);
        let Transform::Numeric {
            median,
            mean,
            indicator,
            ..
        } = &p.transforms[0]
        else {
            panic!()
        };
        assert_eq!((*median, *mean, *indicator), (2.0, 2.0, false));
    }

    #[test]
    fn extreme_numbers_are_clipped_to_the_widened_training_range() {
        let t = table();
        let rows: Vec<usize> = (0..12).collect();
        let p = Preprocessor::fit(&t, &rows, &[0, 1]);
        let ranges = p.ranges(&t, &rows);
        assert_eq!(
            ranges,
            [
                Some(InputRange {
                    min: 1.0,
                    max: 11.0
                }),
                None
            ]
        );
        assert_eq!(ranges[0].unwrap().bounds(), (-9.0, 21.0));
        let run = |x: f64| {
            let mut out = vec![0.0; p.width()];
            let mut notes = Vec::new();
            p.transform_one(
                |i, _| {
                    if i == 0 {
                        Cell::Number(x)
                    } else {
                        Cell::Missing
                    }
                },
                &ranges,
                &mut out,
                |i, n| notes.push((i, n)),
            )
            .unwrap();
            (out[0], notes)
        };
        // Inside the widened range: as given, no note.
        let (inside, notes) = run(20.0);
        assert!(notes.is_empty());
        // Far outside: the same value as the bound, and a note.
        for (x, bound) in [(1e308, 21.0), (-1e308, -9.0), (f64::MAX, 21.0)] {
            let (clipped, notes) = run(x);
            assert_eq!(clipped, run(bound).0);
            assert!(clipped.is_finite());
            assert_eq!(notes, [(0, Note::Clipped)]);
        }
        assert!(inside < run(1e308).0);
        // A constant input still has room around it.
        let constant = InputRange { min: 5.0, max: 5.0 };
        assert_eq!(constant.bounds(), (0.0, 10.0));
    }

    #[test]
    fn a_block_of_rows_transforms_as_each_row_alone_does() {
        let t = table();
        let rows: Vec<usize> = (0..12).collect();
        let p = Preprocessor::fit_with(&t, &rows, &[0, 1], true);
        let ranges = p.ranges(&t, &rows);
        // Numbers, missing cells, text that parses and text that does not, a value to
        // clip, a non-finite one, an unseen category, a number as a category.
        let x_cells = [
            Cell::Number(3.0),
            Cell::Missing,
            Cell::Text(" 7 "),
            Cell::Text("seven"),
            Cell::Number(1e9),
            Cell::Number(f64::INFINITY),
            Cell::Number(0.0),
        ];
        let plan_cells = [
            Cell::Text("a"),
            Cell::Text("b"),
            Cell::Missing,
            Cell::Text("a"),
            Cell::Text("never-seen"),
            Cell::Text("b"),
            Cell::Number(3.0),
        ];
        let n = x_cells.len();
        let cell = |r: usize, i: usize| if i == 0 { x_cells[r] } else { plan_cells[r] };
        let (w, f) = (p.width(), p.transforms.len());
        let mut out = vec![0.0; n * w];
        let mut kept = vec![0.0; n * f];
        let mut notes = Vec::new();
        let mut results: Vec<Result<(), PrepError>> = (0..n).map(|_| Ok(())).collect();
        p.transform_rows_keeping(
            n,
            |r, i, _| cell(r, i),
            &ranges,
            &mut out,
            |r, i, note| notes.push((r, i, note)),
            &mut kept,
            &mut results,
        );
        let failed: Vec<usize> = (0..n).filter(|&r| results[r].is_err()).collect();
        assert_eq!(failed, [3, 5]);
        for r in 0..n {
            let mut row_out = vec![0.0; w];
            let mut row_kept = vec![0.0; f];
            let mut row_notes = Vec::new();
            let alone = p.transform_one_keeping(
                |i, _| cell(r, i),
                &ranges,
                &mut row_out,
                |i, note| row_notes.push((i, note)),
                &mut row_kept,
            );
            match (&results[r], alone) {
                (Err(block), Err(alone)) => assert_eq!(block.to_string(), alone.to_string()),
                (Ok(()), Ok(())) => {
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&out[r * w..(r + 1) * w]), bits(&row_out), "row {r}");
                    assert_eq!(bits(&kept[r * f..(r + 1) * f]), bits(&row_kept), "row {r}");
                    let block_notes: Vec<(usize, Note)> = notes
                        .iter()
                        .filter(|(nr, _, _)| *nr == r)
                        .map(|&(_, i, note)| (i, note))
                        .collect();
                    assert_eq!(block_notes, row_notes, "row {r}");
                }
                (block, alone) => panic!("row {r}: block {block:?}, alone {alone:?}"),
            }
        }
        // What the rows were meant to exercise did happen.
        assert!(notes.contains(&(1, 0, Note::Imputed)));
        assert!(notes.contains(&(4, 0, Note::Clipped)));
        assert!(notes.contains(&(4, 1, Note::UnseenCategory)));
    }
}
