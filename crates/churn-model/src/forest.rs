//! Random forest with `smartcore`: a `RandomForestRegressor` on 0/1 targets, whose mean
//! leaf value is a churn probability (smartcore's classifier gives no probabilities, and
//! the regressor fits faster). Stored in the artifact as JSON, parsed once on load.
//!
//! smartcore has no per-feature contributions, so explanations are occlusion effects:
//! each input's change in log-odds when it is set to its training mean (0 after
//! standardisation).

use crate::logistic::logit;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use std::sync::Arc;

type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// Forest settings.
pub const TREES: usize = 100;
pub const MAX_DEPTH: u16 = 10;
pub const MIN_SAMPLES_LEAF: usize = 20;

/// A fitted forest.
#[derive(Clone)]
pub struct ForestModel {
    json: String,
    forest: Arc<Forest>,
    /// The same trees read for one row at a time (`None` if smartcore's serialised form
    /// is not the one read here: smartcore then scores).
    flat: Option<Arc<FlatForest>>,
}

/// A node of [`FlatForest`]. A leaf is its own child (both), so trees can be walked side
/// by side a step at a time.
#[derive(Debug, Clone, Copy)]
struct ForestNode {
    /// smartcore's split value, NaN where it has none (no value is at most NaN).
    split_value: f64,
    output: f64,
    feature: u32,
    /// The child a row goes to when its input is not at most the split value (or NaN),
    /// and when it is.
    children: [u32; 2],
}

/// Occluded trees walked side by side (independent chains of loads overlap).
const LANES: usize = 8;

/// smartcore's trees in one array, walked as its `leaf_output_for_row` walks them:
/// scoring one row builds no matrix, and an input's occlusion effect re-walks only the
/// trees whose path splits on it (81 whole-forest predictions a row before: 200 us).
#[derive(Debug)]
struct FlatForest {
    nodes: Vec<ForestNode>,
    roots: Vec<u32>,
}

impl FlatForest {
    /// The trees of smartcore's serialised forest (already checked by
    /// `check_tree_links`).
    fn of(value: &serde_json::Value) -> Option<FlatForest> {
        let trees = value.get("forest_regressor")?.get("trees")?.as_array()?;
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(trees.len());
        for tree in trees {
            let base = nodes.len() as u32;
            roots.push(base);
            for node in tree.get("nodes")?.as_array()? {
                let own = nodes.len() as u32;
                let child = |key: &str| {
                    node.get(key)
                        .and_then(serde_json::Value::as_u64)
                        .map_or(own, |c| base + c as u32)
                };
                nodes.push(ForestNode {
                    split_value: node
                        .get("split_value")
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(f64::NAN),
                    output: node.get("output")?.as_f64()?,
                    feature: node
                        .get("split_feature")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0) as u32,
                    children: [child("false_child"), child("true_child")],
                });
            }
        }
        (!roots.is_empty()).then_some(FlatForest { nodes, roots })
    }

    /// The child of node `at` a row goes to (a leaf's is itself).
    #[inline(always)]
    fn child(&self, at: u32, x: &[f64]) -> u32 {
        let node = &self.nodes[at as usize];
        node.children[usize::from(x[node.feature as usize] <= node.split_value)]
    }

    /// Walks a row from each of `at` (at most [`LANES`] nodes) side by side until every
    /// walk is at a leaf, leaving the leaves in `at`; `split(lane, node)` hears each
    /// split passed, in step order.
    #[inline(always)]
    fn walk(&self, at: &mut [u32], x: &[f64], mut split: impl FnMut(usize, u32)) {
        loop {
            let mut moved = false;
            for (lane, a) in at.iter_mut().enumerate() {
                let next = self.child(*a, x);
                if next != *a {
                    split(lane, *a);
                    moved = true;
                }
                *a = next;
            }
            if !moved {
                break;
            }
        }
    }

    /// The leaf outputs a row reaches from each of `from` (at most [`LANES`] nodes).
    fn leaves(&self, from: &[u32], x: &[f64]) -> [f64; LANES] {
        let mut at = [0u32; LANES];
        let at = &mut at[..from.len()];
        at.copy_from_slice(from);
        self.walk(at, x, |_, _| {});
        std::array::from_fn(|j| at.get(j).map_or(0.0, |&a| self.nodes[a as usize].output))
    }

    /// The probability from a sum of tree outputs, as `ForestModel::probabilities`
    /// gives it (smartcore's mean, clamped).
    fn probability_of_sum(&self, sum: f64) -> f64 {
        clamped(sum / self.roots.len() as f64)
    }
}

/// A forest's mean leaf value as a probability a log-odds can be taken of.
fn clamped(q: f64) -> f64 {
    q.clamp(1e-6, 1.0 - 1e-6)
}

impl std::fmt::Debug for ForestModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ForestModel({} bytes of smartcore JSON)",
            self.json.len()
        )
    }
}

impl PartialEq for ForestModel {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Serialize for ForestModel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ForestModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = String::deserialize(d)?;
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(serde::de::Error::custom)?;
        check_tree_links(&value, usize::MAX).map_err(serde::de::Error::custom)?;
        let flat = FlatForest::of(&value).map(Arc::new);
        let forest: Forest = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
        Ok(ForestModel {
            json,
            forest: Arc::new(forest),
            flat,
        })
    }
}

/// Checks, in smartcore's serialised form, every tree node: a split node has both
/// children, after it and inside its tree, and splits on one of `inputs` inputs.
/// smartcore walks a tree until it reaches a leaf and unwraps what it finds, so a
/// corrupted model would otherwise loop forever or panic.
fn check_tree_links(value: &serde_json::Value, inputs: usize) -> Result<(), String> {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(nodes)) = map.get("nodes") {
                for (i, node) in nodes.iter().enumerate() {
                    let child = |key: &str| node.get(key).filter(|v| !v.is_null());
                    let broken = || Err(format!("a forest tree has a broken node {i}"));
                    match (child("true_child"), child("false_child")) {
                        (None, None) => continue,
                        (Some(t), Some(f)) => {
                            let forward = |c: &Value| {
                                c.as_u64()
                                    .is_some_and(|c| c as usize > i && (c as usize) < nodes.len())
                            };
                            let feature = node.get("split_feature").and_then(Value::as_u64);
                            if !(forward(t)
                                && forward(f)
                                && feature.is_some_and(|k| (k as usize) < inputs))
                            {
                                return broken();
                            }
                        }
                        _ => return broken(),
                    }
                }
            }
            map.values().try_for_each(|v| check_tree_links(v, inputs))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_tree_links(v, inputs)),
        _ => Ok(()),
    }
}

/// The settings of a forest fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForestSettings {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// Inputs tried per split; `None`: the square root of the inputs, rounded up.
    pub features_per_split: Option<usize>,
}

impl ForestSettings {
    /// The trainer's settings (the constants above).
    pub const DEFAULT: ForestSettings = ForestSettings {
        trees: TREES,
        max_depth: MAX_DEPTH,
        min_samples_leaf: MIN_SAMPLES_LEAF,
        features_per_split: None,
    };

    /// Checks the settings against `p` inputs before any fitting.
    pub fn check(&self, p: usize) -> Result<(), ForestError> {
        let bad = |what: String| Err(ForestError(format!("invalid forest settings: {what}")));
        if !(1..=10_000).contains(&self.trees) {
            return bad(format!("trees {} (expected 1 to 10000)", self.trees));
        }
        if !(1..=64).contains(&self.max_depth) {
            return bad(format!("max_depth {} (expected 1 to 64)", self.max_depth));
        }
        if self.min_samples_leaf == 0 {
            return bad("min_samples_leaf 0 (expected at least 1)".into());
        }
        if let Some(m) = self.features_per_split.filter(|&m| m == 0 || m > p) {
            return bad(format!(
                "features_per_split {m} (expected 1 to the {p} inputs)"
            ));
        }
        Ok(())
    }
}

/// Hyper-parameters of a forest fit.
#[derive(Debug, Clone)]
pub struct ForestParams {
    pub settings: ForestSettings,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            settings: ForestSettings::DEFAULT,
            seed: 0,
        }
    }
}

/// A failure of the forest.
#[derive(Debug, thiserror::Error)]
#[error("random forest did not fit: {0}")]
pub struct ForestError(pub String);

impl ForestModel {
    /// Fits on a row-major matrix and 0/1 labels.
    pub fn fit(x: &[f64], p: usize, y: &[u8], seed: u64) -> Result<ForestModel, ForestError> {
        ForestModel::fit_with(&ForestSettings::DEFAULT, x, p, y, seed)
    }

    /// Fits with `settings` (checked first).
    pub fn fit_with(
        settings: &ForestSettings,
        x: &[f64],
        p: usize,
        y: &[u8],
        seed: u64,
    ) -> Result<ForestModel, ForestError> {
        settings.check(p)?;
        let n = y.len();
        let m =
            DenseMatrix::new(n, p, x.to_vec(), false).map_err(|e| ForestError(e.to_string()))?;
        let targets: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let per_split = settings
            .features_per_split
            .unwrap_or(((p as f64).sqrt().ceil() as usize).max(1));
        let params = RandomForestRegressorParameters::default()
            .with_n_trees(settings.trees)
            .with_max_depth(settings.max_depth)
            .with_min_samples_leaf(settings.min_samples_leaf)
            .with_m(per_split)
            .with_seed(seed);
        let forest = Forest::fit(&m, &targets, params).map_err(|e| ForestError(e.to_string()))?;
        let value = serde_json::to_value(&forest).map_err(|e| ForestError(e.to_string()))?;
        let json = value.to_string();
        Ok(ForestModel {
            json,
            forest: Arc::new(forest),
            flat: FlatForest::of(&value).map(Arc::new),
        })
    }

    /// Churn probability for rows of a row-major matrix.
    pub fn probabilities(&self, x: &[f64], p: usize) -> Vec<f64> {
        let n = x.len() / p.max(1);
        match DenseMatrix::new(n, p, x.to_vec(), false).and_then(|m| self.forest.predict(&m)) {
            Ok(v) => v.into_iter().map(clamped).collect(),
            Err(_) => vec![f64::NAN; n],
        }
    }

    /// Checks every tree against `inputs` model inputs (see `check_tree_links`).
    pub fn check(&self, inputs: usize) -> Result<(), String> {
        let value: serde_json::Value =
            serde_json::from_str(&self.json).map_err(|e| e.to_string())?;
        check_tree_links(&value, inputs)
    }

    /// Churn probability of one row (smartcore's, to the bit: the trees' outputs added
    /// in tree order and divided by their number).
    pub fn probability(&self, x: &[f64]) -> f64 {
        match &self.flat {
            Some(f) => f.probability_of_sum(f.roots.chunks(LANES).fold(0.0, |sum, roots| {
                f.leaves(roots, x)[..roots.len()]
                    .iter()
                    .fold(sum, |a, v| a + v)
            })),
            None => self.probabilities(x, x.len())[0],
        }
    }

    /// [`ForestModel::probability`] and [`ForestModel::contributions`] from one walk
    /// through the trees (what explaining a row needs; the same bits as the two apart).
    pub fn probability_and_contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        match &self.flat {
            Some(f) => occlusion(f, x, out),
            None => {
                self.contributions(x, out);
                self.probability(x)
            }
        }
    }

    /// Occlusion effects on the log-odds (see the module docs).
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) {
        if let Some(f) = &self.flat {
            occlusion(f, x, out);
            return;
        }
        let p = x.len();
        let mut rows = Vec::with_capacity(p * (p + 1));
        rows.extend_from_slice(x);
        for k in 0..p {
            let start = rows.len();
            rows.extend_from_slice(x);
            rows[start + k] = 0.0;
        }
        let probs = self.probabilities(&rows, p);
        let base = logit(probs[0]);
        for k in 0..p {
            out[k] = base - logit(probs[k + 1]);
        }
    }
}

/// [`ForestModel::contributions`] on the flat trees: an input's effect re-walks only
/// the trees where the occluded row leaves the row's path (at a split on the input
/// sending 0 the other way), from there, and its occluded probability is the row's sum
/// with those trees' outputs replaced (the same effects as scoring the occluded row,
/// up to the order of additions). Returns the row's probability
/// ([`ForestModel::probability`], to the bit).
fn occlusion(f: &FlatForest, x: &[f64], out: &mut [f64]) -> f64 {
    let inputs = x.len();
    let mut leaves = Vec::with_capacity(f.roots.len());
    // Where the occluded row first leaves each tree's path for each input, (input,
    // tree, the child it turns to), in tree order: at the first split on the input that
    // sends 0 the other way from the row's value. `last_tree[k]` is the last tree found
    // so for input k (`u32::MAX`: none).
    let mut turns: Vec<(u32, u32, u32)> = Vec::new();
    let mut last_tree = vec![u32::MAX; inputs];
    let mut per_input = vec![0usize; inputs + 1];
    let mut sum = 0.0;
    // The trees walked side by side, each one's split nodes noted on the way.
    let mut lanes: [Vec<u32>; LANES] = Default::default();
    for (group, roots) in f.roots.chunks(LANES).enumerate() {
        let mut at = [0u32; LANES];
        let at = &mut at[..roots.len()];
        at.copy_from_slice(roots);
        lanes.iter_mut().for_each(Vec::clear);
        f.walk(at, x, |lane, node| lanes[lane].push(node));
        for (lane, (&leaf, nodes)) in at.iter().zip(&lanes).enumerate() {
            let t = (group * LANES + lane) as u32;
            for &node in nodes {
                let n = &f.nodes[node as usize];
                let k = n.feature as usize;
                let way = |v: f64| n.children[usize::from(v <= n.split_value)];
                if last_tree[k] != t && way(0.0) != way(x[k]) {
                    last_tree[k] = t;
                    turns.push((k as u32, t, way(0.0)));
                    per_input[k + 1] += 1;
                }
            }
            let v = f.nodes[leaf as usize].output;
            leaves.push(v);
            sum += v;
        }
    }
    // Grouped by input, trees in order within an input (a counting sort: a comparison
    // sort of every split on a row's paths was most of the cost).
    for k in 0..inputs {
        per_input[k + 1] += per_input[k];
    }
    let mut next = per_input.clone();
    let mut grouped = vec![(0u32, 0u32); turns.len()];
    for &(k, t, turn) in &turns {
        grouped[next[k as usize]] = (t, turn);
        next[k as usize] += 1;
    }
    let probability = f.probability_of_sum(sum);
    let base = logit(probability);
    // An input whose occluded row never leaves a path changes no leaf: its effect is 0.
    out.fill(0.0);
    let mut occluded = x.to_vec();
    let (mut changes, mut from) = (Vec::new(), Vec::with_capacity(LANES));
    for (k, o) in out.iter_mut().enumerate().take(inputs) {
        let group = &grouped[per_input[k]..per_input[k + 1]];
        if group.is_empty() {
            continue;
        }
        occluded[k] = 0.0;
        changes.clear();
        for walks in group.chunks(LANES) {
            from.clear();
            from.extend(walks.iter().map(|&(_, turn)| turn));
            let reached = f.leaves(&from, &occluded);
            changes.extend(
                walks
                    .iter()
                    .zip(reached)
                    .map(|(&(t, _), v)| v - leaves[t as usize]),
            );
        }
        let change: f64 = changes.iter().sum();
        occluded[k] = x[k];
        *o = base - logit(f.probability_of_sum(sum + change));
    }
    probability
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_fitting() {
        let x = [0.0, 1.0, 0.0, 1.0];
        let y = [0, 1, 0, 1];
        let d = ForestSettings::DEFAULT;
        for (settings, field) in [
            (ForestSettings { trees: 0, ..d }, "trees 0"),
            (ForestSettings { max_depth: 0, ..d }, "max_depth 0"),
            (
                ForestSettings {
                    min_samples_leaf: 0,
                    ..d
                },
                "min_samples_leaf 0",
            ),
            (
                ForestSettings {
                    features_per_split: Some(3),
                    ..d
                },
                "features_per_split 3",
            ),
        ] {
            let e = ForestModel::fit_with(&settings, &x, 2, &y, 1)
                .err()
                .unwrap();
            assert!(e.to_string().contains(field), "{e}");
        }
        d.check(1).unwrap();
    }

    /// Reproducible draws in [-1, 1) (a linear congruential generator: the tests need
    /// the same numbers every run, not quality).
    fn draws(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    #[test]
    fn learns_and_round_trips() {
        let n = 1500;
        let mut r = draws(5);
        let x: Vec<f64> = (0..n * 2).map(|_| r()).collect();
        let y: Vec<u8> = (0..n).map(|i| u8::from(x[2 * i] > 0.3)).collect();
        let m = ForestModel::fit(&x, 2, &y, 1).unwrap();
        assert!(m.probability(&[0.9, 0.0]) > 0.8 && m.probability(&[-0.9, 0.0]) < 0.2);
        let bytes = bincode::serde::encode_to_vec(&m, bincode::config::standard()).unwrap();
        let (back, _): (ForestModel, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(
            back.probability(&[0.5, 0.5]).to_bits(),
            m.probability(&[0.5, 0.5]).to_bits()
        );
        let mut c = [0.0; 2];
        m.contributions(&[0.9, 0.0], &mut c);
        assert!(c[0] > c[1].abs(), "{c:?}");
    }

    #[test]
    fn flat_trees_score_as_smartcore_does() {
        // Four inputs, two of them informative, so paths split on several.
        let (n, p) = (2000, 4);
        let mut r = draws(11);
        let x: Vec<f64> = (0..n * p).map(|_| r()).collect();
        let y: Vec<u8> = (0..n)
            .map(|i| u8::from(x[p * i] + 0.5 * x[p * i + 1] > 0.2))
            .collect();
        let m = ForestModel::fit(&x, p, &y, 3).unwrap();
        assert!(m.flat.is_some(), "smartcore's serialised form was read");
        let smartcore = ForestModel {
            flat: None,
            ..m.clone()
        };
        let rows: Vec<f64> = (0..200 * p).map(|_| r()).collect();
        let whole = smartcore.probabilities(&rows, p);
        let (mut ours, mut theirs) = ([0.0; 4], [0.0; 4]);
        for (row, expected) in rows.chunks(p).zip(whole) {
            // The probability to the bit; occlusion effects up to the order of additions.
            assert_eq!(m.probability(row).to_bits(), expected.to_bits());
            assert_eq!(smartcore.probability(row).to_bits(), expected.to_bits());
            m.contributions(row, &mut ours);
            smartcore.contributions(row, &mut theirs);
            for (a, b) in ours.iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-9, "{ours:?} vs {theirs:?}");
            }
        }
    }
}
