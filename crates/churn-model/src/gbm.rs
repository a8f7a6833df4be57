//! Gradient-boosted trees with `forust-ml`.
//!
//! forust's own serde form does not round-trip through bincode, so the artifact stores
//! the booster as forust's JSON dump (a string, which does) and parses it once on load.
//! forust takes column-major matrices and predicts log-odds.

use forust_ml::gradientbooster::GradientBooster;
use forust_ml::objective::ObjectiveType;
use forust_ml::Matrix;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering::Greater;
use std::sync::Arc;

/// Boosting settings of [`TreeModel::fit`] (no search).
pub const TREES: usize = 150;
pub const LEARNING_RATE: f32 = 0.08;
pub const MAX_DEPTH: usize = 4;
/// Rounds without a better validation log loss after which boosting stops.
const EARLY_STOPPING_ROUNDS: usize = 40;

/// The settings of one boosting fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Settings {
    pub max_depth: usize,
    /// Minimum hessian sum per leaf (for log loss about rows x p(1-p): with 3 % churners,
    /// 1 is some 35 rows).
    pub min_leaf_weight: f32,
    pub learning_rate: f32,
    /// Most trees (early stopping may use fewer).
    pub trees: usize,
    /// Share of rows each tree is fitted on.
    pub row_share: f32,
    /// Share of inputs each tree may split on.
    pub column_share: f64,
}

impl Settings {
    /// The settings of a fit without search ([`TreeModel::fit`]).
    pub const DEFAULT: Settings = Settings {
        max_depth: MAX_DEPTH,
        min_leaf_weight: 5.0,
        learning_rate: LEARNING_RATE,
        trees: TREES,
        row_share: 1.0,
        column_share: 1.0,
    };

    /// Checks the settings before any fitting (forust accepts some nonsense silently: a
    /// learning rate of 0 fits trees that do nothing).
    pub fn check(&self) -> Result<(), GbmError> {
        let bad = |what: String| Err(GbmError(format!("invalid boosting settings: {what}")));
        if !(1..=16).contains(&self.max_depth) {
            return bad(format!("max_depth {} (expected 1 to 16)", self.max_depth));
        }
        if !(self.min_leaf_weight.is_finite() && self.min_leaf_weight >= 0.0) {
            return bad(format!(
                "min_leaf_weight {} (expected a finite number >= 0)",
                self.min_leaf_weight
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(format!(
                "learning_rate {} (expected more than 0, at most 1)",
                self.learning_rate
            ));
        }
        if !(1..=100_000).contains(&self.trees) {
            return bad(format!("trees {} (expected 1 to 100000)", self.trees));
        }
        if !(self.row_share > 0.0 && self.row_share <= 1.0) {
            return bad(format!("row_share {} (expected (0, 1])", self.row_share));
        }
        if !(self.column_share > 0.0 && self.column_share <= 1.0) {
            return bad(format!(
                "column_share {} (expected (0, 1])",
                self.column_share
            ));
        }
        Ok(())
    }
}

/// Settings with the searches' shared parts: row and input subsampling of 80 %.
const fn searched(
    max_depth: usize,
    min_leaf_weight: f32,
    learning_rate: f32,
    trees: usize,
) -> Settings {
    Settings {
        max_depth,
        min_leaf_weight,
        learning_rate,
        trees,
        row_share: 0.8,
        column_share: 0.8,
    }
}

/// The settings of `--search full`: depth 2 to 6, three leaf weights, two learning
/// rates.
pub const FULL_SEARCH: [Settings; 12] = [
    searched(2, 1.0, 0.05, 1000),
    searched(3, 1.0, 0.05, 1000),
    searched(3, 3.0, 0.05, 1000),
    searched(4, 3.0, 0.05, 1000),
    searched(4, 10.0, 0.05, 1000),
    searched(6, 10.0, 0.05, 1000),
    searched(2, 1.0, 0.02, 1000),
    searched(3, 3.0, 0.02, 1000),
    searched(4, 3.0, 0.02, 1000),
    searched(4, 10.0, 0.02, 1000),
    searched(6, 3.0, 0.1, 1000),
    searched(6, 10.0, 0.1, 1000),
];

/// The settings searched by default: shallow to moderate trees, slow learning, row
/// subsampling, the number of trees by early stopping. Small, imbalanced data (a few
/// hundred churners) wants shallow trees and large leaves; larger data deeper ones.
pub const SEARCH: [Settings; 4] = [
    searched(2, 1.0, 0.05, 600),
    searched(3, 3.0, 0.05, 600),
    searched(4, 3.0, 0.05, 600),
    searched(6, 10.0, 0.05, 600),
];

/// A fitted booster.
#[derive(Clone)]
pub struct TreeModel {
    json: String,
    booster: Arc<GradientBooster>,
    /// The trees that predict, flattened for one row at a time.
    flat: Arc<FlatTrees>,
}

impl TreeModel {
    fn new(json: String, booster: GradientBooster) -> TreeModel {
        let flat = FlatTrees::new(&booster);
        TreeModel {
            json,
            booster: Arc::new(booster),
            flat: Arc::new(flat),
        }
    }
}

/// A tree node as scoring reads it, every tree's in one array. A leaf points to itself
/// (all its children), so a walk can take a fixed number of steps without asking where
/// it is, and a step is a look-up, not a branch (which way a row goes is a coin toss to
/// the branch predictor).
#[derive(Debug, Clone, Copy)]
struct FlatNode {
    /// A split's value (a row goes left below it); a leaf's weight, as forust adds it.
    value: f64,
    /// The child a row goes to: right (at or above the value, or NaN), left (below it),
    /// missing, missing (indexed by `is_missing * 2 + (x < value)`).
    children: [u32; 4],
    /// The input a split reads (0 for a leaf, which reads input 0 and goes nowhere).
    feature: u32,
    /// A leaf's path from its root: `FlatTrees::steps[path_start..]`, as many steps as
    /// its group of trees is walked.
    path_start: u32,
}

/// One step of a root-to-leaf path as forust's average-path contributions count it: the
/// input the node splits on, and the average leaf weight under the child less the
/// node's. A path shorter than its group's walk is padded with steps adding -0.0 to
/// input 0 (which leaves every sum as it was, to the bit).
#[derive(Debug, Clone, Copy)]
struct Step {
    feature: u32,
    delta: f64,
}

/// Trees walked side by side: one row's walk through a tree is a chain of dependent
/// loads; eight independent chains keep the core busy (a 540-tree booster: 4.5 -> 1.9 us
/// a row).
const LANES: usize = 8;

/// Every predicting tree's nodes (each tree's root the first of its nodes), padded to a
/// whole number of groups of [`LANES`] trees with single leaves of weight -0.0, how many
/// steps from root to the deepest leaf each group takes, and each leaf's path.
#[derive(Debug)]
struct FlatTrees {
    nodes: Vec<FlatNode>,
    roots: Vec<u32>,
    group_steps: Vec<usize>,
    /// Every leaf's path, leaf after leaf: a row's contributions are the steps of the
    /// leaves it reaches, so explaining a row walks the trees as scoring it does and
    /// then reads these (no path recorded on the way, no averages looked up per step).
    steps: Vec<Step>,
    base_score: f64,
    /// forust's missing value (NaN: a NaN input is missing).
    missing: f64,
    /// Whether the missing value is NaN and every split sends it right (forust's
    /// default when no missing branch is grown): then a NaN goes where `!(x < value)`
    /// sends it, and a step needs no missing test.
    nan_goes_right: bool,
    /// The same trees as comparisons of small integers, for blocks of rows (see
    /// [`BinnedTrees`]); `None` where they do not fit that form.
    binned: Option<BinnedTrees>,
}

/// The trees as comparisons of bins, scored [`BIN_ROWS`] rows at a time.
///
/// Every split value of an input is one of few (forust splits at its histogram's cut
/// points), so a row's value can be replaced by its bin, the number of the input's
/// split values it is not below; a row then goes right at a split exactly when its bin
/// is above the split value's place among them (a NaN, not below any value, has the
/// highest bin and goes right, as every split without a missing branch sends it). Each
/// tree is padded to one depth (a shallower leaf fills the places under it, the splits
/// above them always going left), so its splits sit at fixed places, level by level,
/// and a block of rows takes each split side by side: a vector comparison of bytes
/// instead of a chain of dependent loads per row and tree. The leaves reached are the
/// walk's, so the sums are the same, in the same order, to the bit.
#[derive(Debug)]
struct BinnedTrees {
    /// Every tree's depth after padding.
    depth: usize,
    /// Each input some split reads: its model input and its split values, ascending.
    inputs: Vec<(usize, Vec<f64>)>,
    /// Each tree's `2^depth - 1` splits, breadth first: the input (into `inputs`) and
    /// the place of the split value among that input's ([`ALWAYS_LEFT`] for padding).
    splits: Vec<(u16, u8)>,
    /// Each tree's `2^depth` leaves, left to right: the leaf's weight and its path's
    /// start in [`FlatTrees::steps`].
    leaves: Vec<(f64, u32)>,
}

/// Rows scored side by side by [`BinnedTrees`]: sixteen bytes, one vector register.
const BIN_ROWS: usize = 16;

/// Fewest rows scored through the [`BinnedTrees`]: a block costs about the same for one
/// row as for sixteen, and one row walks the trees faster (criterion, 500 trees with
/// contributions: 4.8 us a row walked, 8.1 us binned).
const MIN_BINNED_ROWS: usize = 4;

/// A padding split's place: no bin is above it (an input has at most 255 split values).
const ALWAYS_LEFT: u8 = u8::MAX;

/// Deepest trees [`BinnedTrees`] takes: a tree costs `2^depth - 1` comparisons a block.
const MAX_BINNED_DEPTH: usize = 6;

impl BinnedTrees {
    /// The binned form of `trees` (each tree's nodes in `nodes` from `roots[k]` on, the
    /// deepest leaf `depth` splits from its root), or `None` when that is deeper than
    /// [`MAX_BINNED_DEPTH`], an input has more than 255 split values, or nothing splits.
    fn new(
        trees: &[forust_ml::tree::Tree],
        roots: &[u32],
        nodes: &[FlatNode],
        depth: usize,
    ) -> Option<BinnedTrees> {
        if depth == 0 || depth > MAX_BINNED_DEPTH {
            return None;
        }
        let mut values: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
        for n in trees.iter().flat_map(|t| &t.nodes).filter(|n| !n.is_leaf) {
            values
                .entry(n.split_feature)
                .or_default()
                .push(n.split_value);
        }
        let mut inputs = Vec::new();
        for (input, mut v) in values {
            v.sort_by(f64::total_cmp);
            v.dedup();
            // A bin counts split values: a byte holds up to 255 of them.
            if v.len() > usize::from(u8::MAX) {
                return None;
            }
            inputs.push((input, v));
        }
        // `inputs` is in input order: a split's column is found by bisection.
        let column = |input: usize| {
            inputs
                .binary_search_by_key(&input, |(i, _)| *i)
                .expect("every split's input is listed")
        };
        let width = (1 << depth) - 1;
        let mut splits = Vec::with_capacity(trees.len() * width);
        let mut leaves = Vec::with_capacity(trees.len() * (width + 1));
        for (t, &root) in trees.iter().zip(roots) {
            // Each place's node, level by level; a leaf above the last level fills
            // both places under it.
            let mut level = vec![0usize];
            for _ in 0..depth {
                let mut next = Vec::with_capacity(level.len() * 2);
                for &i in &level {
                    let n = &t.nodes[i];
                    if n.is_leaf {
                        splits.push((0, ALWAYS_LEFT));
                        next.extend([i, i]);
                    } else {
                        let c = column(n.split_feature);
                        let place = inputs[c].1.partition_point(|v| *v < n.split_value);
                        splits.push((c as u16, place as u8));
                        next.extend([n.left_child, n.right_child]);
                    }
                }
                level = next;
            }
            leaves.extend(level.iter().map(|&i| {
                let leaf = &nodes[root as usize + i];
                (leaf.value, leaf.path_start)
            }));
        }
        Some(BinnedTrees {
            depth,
            inputs,
            splits,
            leaves,
        })
    }

    /// Each row's bin of every input some split reads, input by input (`bins[c][r]`),
    /// for the `rows` rows of `x` (row-major, `p` wide) from `first` on.
    fn bin(&self, x: &[f64], p: usize, first: usize, rows: usize, bins: &mut [[u8; BIN_ROWS]]) {
        for ((input, values), column) in self.inputs.iter().zip(bins.iter_mut()) {
            for (r, bin) in column.iter_mut().enumerate().take(rows) {
                let v = x[(first + r) * p + input];
                // The split values `v` is not below (all of them for a NaN).
                let not_below = values.partition_point(|s| s.partial_cmp(&v) != Some(Greater));
                *bin = not_below as u8;
            }
        }
    }

    /// The leaf (`0..2^depth`, left to right) each row of a block reaches in the tree
    /// whose splits are `splits`.
    #[inline(always)]
    fn leaves_reached(&self, splits: &[(u16, u8)], bins: &[[u8; BIN_ROWS]]) -> [u8; BIN_ROWS] {
        let mut at = [0u8; BIN_ROWS];
        let mut first = 0;
        for level in 0..self.depth {
            let width = 1usize << level;
            let mut right = [0u8; BIN_ROWS];
            for (j, &(c, place)) in splits[first..first + width].iter().enumerate() {
                let column = &bins[usize::from(c)];
                for r in 0..BIN_ROWS {
                    right[r] |= u8::from(at[r] == j as u8) & u8::from(column[r] > place);
                }
            }
            for r in 0..BIN_ROWS {
                at[r] = 2 * at[r] + right[r];
            }
            first += width;
        }
        at
    }
}

impl FlatTrees {
    fn new(b: &GradientBooster) -> FlatTrees {
        let trees = trees(b);
        let depth = |t: &forust_ml::tree::Tree| t.nodes.iter().map(|n| n.depth).max();
        let group_steps: Vec<usize> = trees
            .chunks(LANES)
            .map(|g| g.iter().filter_map(depth).max().unwrap_or(0))
            .collect();
        let padding = Step {
            feature: 0,
            delta: -0.0,
        };
        let mut nodes = Vec::new();
        let mut roots = Vec::new();
        let mut steps = Vec::new();
        for (k, t) in trees.iter().enumerate() {
            let walked = group_steps[k / LANES];
            let base = nodes.len() as u32;
            roots.push(base);
            let averages = t.distribute_leaf_weights();
            // Children come after their parent (`check_trees`), so a parent's path is
            // known before its children's.
            let mut paths: Vec<Option<Vec<Step>>> = vec![None; t.nodes.len()];
            if let Some(root) = paths.first_mut() {
                *root = Some(Vec::new());
            }
            for (i, n) in t.nodes.iter().enumerate() {
                let mut path = paths[i].take().unwrap_or_default();
                let own = base + i as u32;
                let node = if n.is_leaf {
                    let path_start = steps.len() as u32;
                    path.resize(walked, padding);
                    steps.extend_from_slice(&path);
                    FlatNode {
                        value: f64::from(n.weight_value),
                        children: [own; 4],
                        feature: 0,
                        path_start,
                    }
                } else {
                    for c in [n.left_child, n.right_child, n.missing_node] {
                        if let Some(slot @ None) = paths.get_mut(c) {
                            let mut to_child = path.clone();
                            to_child.push(Step {
                                feature: n.split_feature as u32,
                                delta: averages[c] - averages[i],
                            });
                            *slot = Some(to_child);
                        }
                    }
                    let missing = base + n.missing_node as u32;
                    FlatNode {
                        value: n.split_value,
                        children: [
                            base + n.right_child as u32,
                            base + n.left_child as u32,
                            missing,
                            missing,
                        ],
                        feature: n.split_feature as u32,
                        path_start: 0,
                    }
                };
                nodes.push(node);
            }
        }
        while !roots.len().is_multiple_of(LANES) {
            let own = nodes.len() as u32;
            roots.push(own);
            nodes.push(FlatNode {
                value: -0.0,
                children: [own; 4],
                feature: 0,
                path_start: steps.len() as u32,
            });
            steps.extend(std::iter::repeat_n(
                padding,
                group_steps[group_steps.len() - 1],
            ));
        }
        let nan_goes_right = b.missing.is_nan()
            && trees
                .iter()
                .flat_map(|t| &t.nodes)
                .all(|n| n.is_leaf || n.missing_node == n.right_child);
        FlatTrees {
            binned: nan_goes_right
                .then(|| {
                    let depth = group_steps.iter().copied().max().unwrap_or(0);
                    BinnedTrees::new(trees, &roots, &nodes, depth)
                })
                .flatten(),
            nodes,
            roots,
            group_steps,
            steps,
            base_score: b.base_score,
            missing: b.missing,
            nan_goes_right,
        }
    }

    /// The child of node `at` that `x` goes to, as forust's `Node::get_child_idx` (a
    /// leaf's is itself).
    /// With `NAN_GOES_RIGHT` (see [`FlatTrees::nan_goes_right`]) a step reads no missing
    /// branch: a NaN is not below any value, so it goes right as its branch would.
    #[inline(always)]
    fn child<const NAN_GOES_RIGHT: bool>(&self, at: u32, x: &[f64]) -> u32 {
        let node = &self.nodes[at as usize];
        let v = x[node.feature as usize];
        if NAN_GOES_RIGHT {
            return node.children[usize::from(v < node.value)];
        }
        let is_missing = if self.missing.is_nan() {
            v.is_nan()
        } else {
            v == self.missing
        };
        node.children[usize::from(is_missing) * 2 + usize::from(v < node.value)]
    }

    /// The leaves a row reaches in one group of trees, walked side by side as many
    /// steps as the group's deepest tree needs.
    #[inline(always)]
    fn walk<const NAN_GOES_RIGHT: bool>(
        &self,
        roots: &[u32],
        steps: usize,
        x: &[f64],
    ) -> [u32; LANES] {
        let mut at: [u32; LANES] = std::array::from_fn(|j| roots[j]);
        for _ in 0..steps {
            for a in &mut at {
                *a = self.child::<NAN_GOES_RIGHT>(*a, x);
            }
        }
        at
    }

    /// The log-odds of `n` rows (row-major, `p` wide) into `logits`: the base score plus
    /// every tree's leaf, added in tree order (forust's sum, to the bit: the padding's
    /// -0.0 changes no sum). With `contributions` (`n * p` long), also forust's
    /// average-path contributions (`predict_contributions_row_average`: the same sums in
    /// the same order, each leaf's path added tree by tree), without its bias slot.
    ///
    /// A group of trees is walked for every row of the block before the next group, so
    /// its nodes stay in the first-level cache (a 500-tree booster's are some 270 KB):
    /// 1 M rows with reasons 8.8 -> 7.5 s. (Walking two or four rows side by side, their
    /// contributions' adds interleaved, measured 5-10 % slower again.) A block of
    /// [`MIN_BINNED_ROWS`] rows or more goes through the [`BinnedTrees`] instead, where
    /// the model has them: the same bits.
    fn logits(&self, x: &[f64], p: usize, logits: &mut [f64], contributions: Option<&mut [f64]>) {
        let binned = self.binned.as_ref();
        if let Some(binned) = binned.filter(|_| logits.len() >= MIN_BINNED_ROWS) {
            self.logits_binned(binned, x, p, logits, contributions)
        } else if self.nan_goes_right {
            self.logits_walking::<true>(x, p, logits, contributions)
        } else {
            self.logits_walking::<false>(x, p, logits, contributions)
        }
    }

    /// [`FlatTrees::logits`] through the [`BinnedTrees`], [`BIN_ROWS`] rows at a time:
    /// the same leaves, added in the same order.
    fn logits_binned(
        &self,
        binned: &BinnedTrees,
        x: &[f64],
        p: usize,
        logits: &mut [f64],
        mut contributions: Option<&mut [f64]>,
    ) {
        debug_assert_eq!(x.len(), logits.len() * p);
        if let Some(c) = contributions.as_deref_mut() {
            debug_assert_eq!(c.len(), x.len());
            c.fill(0.0);
        }
        let width = (1 << binned.depth) - 1;
        let mut bins = vec![[0u8; BIN_ROWS]; binned.inputs.len()];
        // A block's rows through every tree before the next block: its bins and
        // contributions stay in the first-level cache.
        for (block, acc) in logits.chunks_mut(BIN_ROWS).enumerate() {
            let first = block * BIN_ROWS;
            binned.bin(x, p, first, acc.len(), &mut bins);
            acc.fill(self.base_score);
            let trees = binned
                .splits
                .chunks_exact(width)
                .zip(binned.leaves.chunks_exact(width + 1));
            for (k, (splits, leaves)) in trees.enumerate() {
                let reached = binned.leaves_reached(splits, &bins);
                let mut paths = [0usize; BIN_ROWS];
                for ((acc, reached), path) in acc.iter_mut().zip(reached).zip(&mut paths) {
                    let (value, path_start) = leaves[usize::from(reached)];
                    *acc += value;
                    *path = path_start as usize;
                }
                // Step by step across the block's rows: adds next to each other go to
                // different rows, so none waits on the one before it (a path often
                // splits on one input twice). Row after row, path after path, these
                // adds were half the trees' time.
                if let Some(c) = contributions.as_deref_mut() {
                    for s in 0..self.group_steps[k / LANES] {
                        for (r, path) in paths[..acc.len()].iter().enumerate() {
                            let step = self.steps[path + s];
                            c[(first + r) * p + step.feature as usize] += step.delta;
                        }
                    }
                }
            }
        }
    }

    /// [`FlatTrees::logits`], each step as [`FlatTrees::child`] takes it.
    #[inline(always)]
    fn logits_walking<const NAN_GOES_RIGHT: bool>(
        &self,
        x: &[f64],
        p: usize,
        logits: &mut [f64],
        mut contributions: Option<&mut [f64]>,
    ) {
        debug_assert_eq!(x.len(), logits.len() * p);
        logits.fill(self.base_score);
        if let Some(c) = contributions.as_deref_mut() {
            debug_assert_eq!(c.len(), x.len());
            c.fill(0.0);
        }
        for (roots, &steps) in self.roots.chunks_exact(LANES).zip(&self.group_steps) {
            for (r, acc) in logits.iter_mut().enumerate() {
                let at = self.walk::<NAN_GOES_RIGHT>(roots, steps, &x[r * p..(r + 1) * p]);
                match contributions.as_deref_mut() {
                    None => {
                        for a in at {
                            *acc += self.nodes[a as usize].value;
                        }
                    }
                    Some(c) => {
                        let out = &mut c[r * p..(r + 1) * p];
                        for a in at {
                            let leaf = &self.nodes[a as usize];
                            *acc += leaf.value;
                            let start = leaf.path_start as usize;
                            for step in &self.steps[start..start + steps] {
                                out[step.feature as usize] += step.delta;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// See [`TreeModel::check`].
fn check_trees(b: &GradientBooster, inputs: usize) -> Result<(), String> {
    if !b.base_score.is_finite() {
        return Err("the booster's base score is not finite".into());
    }
    for (k, t) in b.trees.iter().enumerate() {
        let n = t.nodes.len();
        if n == 0 {
            return Err(format!("tree {k} has no nodes"));
        }
        if t.nodes[0].depth != 0 {
            return Err(format!("tree {k}'s root is at depth {}", t.nodes[0].depth));
        }
        // A tree, not a graph: a node has one path from the root (contributions are
        // read off each leaf's path).
        let mut parent = vec![None; n];
        for (i, node) in t.nodes.iter().enumerate() {
            if node.is_leaf {
                if !node.weight_value.is_finite() {
                    return Err(format!("tree {k} has a non-finite leaf"));
                }
                continue;
            }
            if node.split_feature >= inputs {
                return Err(format!(
                    "tree {k} splits on input {} of {inputs}",
                    node.split_feature
                ));
            }
            let forward = |c: usize| c > i && c < n;
            if !(forward(node.left_child)
                && forward(node.right_child)
                && forward(node.missing_node))
                || node.split_value.is_nan()
            {
                return Err(format!("tree {k} has a broken node {i}"));
            }
            for c in [node.left_child, node.right_child, node.missing_node] {
                if *parent[c].get_or_insert(i) != i {
                    return Err(format!("tree {k}'s node {c} has two parents"));
                }
            }
        }
        // Scoring walks each tree as many steps as its deepest node's depth: a depth
        // that is not its parent's plus one would stop a walk short of a leaf.
        for (c, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                let (child, above) = (t.nodes[c].depth, t.nodes[p].depth);
                if above.checked_add(1) != Some(child) {
                    return Err(format!(
                        "tree {k}'s node {c} is at depth {child}, under node {p} at depth {above}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The trees a booster predicts with.
fn trees(b: &GradientBooster) -> &[forust_ml::tree::Tree] {
    let n = b
        .prediction_iteration
        .unwrap_or(b.trees.len())
        .min(b.trees.len());
    &b.trees[..n]
}

impl std::fmt::Debug for TreeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TreeModel({} bytes of forust JSON)", self.json.len())
    }
}

impl PartialEq for TreeModel {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Serialize for TreeModel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TreeModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = String::deserialize(d)?;
        let booster = GradientBooster::from_json(&json).map_err(serde::de::Error::custom)?;
        // Before the node weights are computed from them: a broken link would panic there.
        check_trees(&booster, usize::MAX).map_err(serde::de::Error::custom)?;
        Ok(TreeModel::new(json, booster))
    }
}

/// Hyper-parameters of a boosting fit.
#[derive(Debug, Clone)]
pub struct GbmParams {
    pub settings: Settings,
    pub seed: u64,
}

impl Default for GbmParams {
    fn default() -> Self {
        GbmParams {
            settings: Settings::DEFAULT,
            seed: 0,
        }
    }
}

/// A failure of the booster.
#[derive(Debug, thiserror::Error)]
#[error("gradient boosting did not fit: {0}")]
pub struct GbmError(pub String);

/// Row-major `(n x p)` to column-major.
fn column_major(x: &[f64], n: usize, p: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * p];
    for r in 0..n {
        for c in 0..p {
            out[c * n + r] = x[r * p + c];
        }
    }
    out
}

impl TreeModel {
    /// Fits on a row-major matrix and 0/1 labels.
    pub fn fit(x: &[f64], p: usize, y: &[u8], seed: u64) -> Result<TreeModel, GbmError> {
        TreeModel::fit_with(&Settings::DEFAULT, x, p, y, None, seed)
    }

    /// Fits with `settings`; with `validation` (a row-major matrix and its labels, rows
    /// later in time than the fitting rows), the number of trees is chosen by early
    /// stopping on its log loss (at most `settings.trees`).
    pub fn fit_with(
        settings: &Settings,
        x: &[f64],
        p: usize,
        y: &[u8],
        validation: Option<(&[f64], &[u8])>,
        seed: u64,
    ) -> Result<TreeModel, GbmError> {
        settings.check()?;
        let n = y.len();
        let data = column_major(x, n, p);
        let m = Matrix::new(&data, n, p);
        let labels: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let mut booster = GradientBooster::default()
            .set_objective_type(ObjectiveType::LogLoss)
            .set_iterations(settings.trees)
            .set_learning_rate(settings.learning_rate)
            .set_max_depth(settings.max_depth)
            .set_min_leaf_weight(settings.min_leaf_weight)
            .set_seed(seed)
            .set_parallel(true);
        if settings.column_share < 1.0 {
            booster = booster.set_colsample_bytree(settings.column_share);
        }
        if settings.row_share < 1.0 {
            booster = booster
                .set_sample_method(forust_ml::sampler::SampleMethod::Random)
                .set_subsample(settings.row_share);
        }
        let fitted = match validation {
            Some((vx, vy)) => {
                let vn = vy.len();
                let vdata = column_major(vx, vn, p);
                let vlabels: Vec<f64> = vy.iter().map(|&v| f64::from(v)).collect();
                let weights = vec![1.0; n];
                let vweights = vec![1.0; vn];
                booster = booster.set_early_stopping_rounds(Some(EARLY_STOPPING_ROUNDS));
                booster.fit(
                    &m,
                    &labels,
                    &weights,
                    Some(vec![(Matrix::new(&vdata, vn, p), &vlabels, &vweights)]),
                )
            }
            None => booster.fit_unweighted(&m, &labels, None),
        };
        fitted.map_err(|e| GbmError(e.to_string()))?;
        let json = booster.json_dump().map_err(|e| GbmError(e.to_string()))?;
        Ok(TreeModel::new(json, booster))
    }

    /// The number of trees the model predicts with.
    pub fn trees(&self) -> usize {
        trees(&self.booster).len()
    }

    /// Its settings in words, e.g. `212 trees, depth 3, leaf weight 3, learning rate 0.05`.
    pub fn describe(&self) -> String {
        let b = &*self.booster;
        format!(
            "{} trees, depth {}, leaf weight {}, learning rate {}",
            self.trees(),
            b.max_depth,
            b.min_leaf_weight,
            b.learning_rate
        )
    }

    /// Checks every tree against `inputs` model inputs: split features in range, child
    /// links pointing forward, each child one level below its parent (so a walk of the
    /// deepest node's depth in steps always ends at a leaf) and finite weights.
    pub fn check(&self, inputs: usize) -> Result<(), String> {
        check_trees(&self.booster, inputs)
    }

    /// Log-odds of churn for one transformed row.
    pub fn logit(&self, x: &[f64]) -> f64 {
        // Tree by tree on the row slice: forust's `predict` allocates per tree (~24 us a
        // row); this is the same sum in the same order as its
        // `predict_row_from_row_slice`, on the flat nodes.
        let mut logit = [0.0];
        self.flat.logits(x, x.len(), &mut logit, None);
        logit[0]
    }

    /// Log-odds for many rows (row-major), in parallel.
    pub fn logits(&self, x: &[f64], p: usize) -> Vec<f64> {
        let n = x.len() / p.max(1);
        let data = column_major(x, n, p);
        self.booster.predict(&Matrix::new(&data, n, p), true)
    }

    /// Each input's contribution to the log-odds (forust's average-path method).
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) {
        self.logit_and_contributions(x, out);
    }

    /// [`TreeModel::logit`] and [`TreeModel::contributions`] from one walk through the
    /// trees (what explaining a row needs; the same bits as the two apart).
    pub fn logit_and_contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        let mut logit = [0.0];
        self.flat.logits(x, x.len(), &mut logit, Some(out));
        logit[0]
    }

    /// The log-odds of a block of rows (row-major, `p` wide, as many as `logits` is
    /// long) on this thread, and with `contributions` (`p` a row) each input's
    /// contribution: the same bits as [`TreeModel::logit_and_contributions`] row by
    /// row, faster (forust's average-path method, without its bias slot).
    pub fn logits_of_block(
        &self,
        x: &[f64],
        p: usize,
        logits: &mut [f64],
        contributions: Option<&mut [f64]>,
    ) {
        self.flat.logits(x, p, logits, contributions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forust_ml::gradientbooster::ContributionsMethod;

    #[test]
    fn settings_are_checked_before_fitting() {
        let x = [0.0, 1.0, 0.0, 1.0];
        let y = [0, 1, 0, 1];
        for (settings, field) in [
            (
                Settings {
                    max_depth: 0,
                    ..Settings::DEFAULT
                },
                "max_depth 0",
            ),
            (
                Settings {
                    learning_rate: 0.0,
                    ..Settings::DEFAULT
                },
                "learning_rate 0",
            ),
            (
                Settings {
                    min_leaf_weight: f32::NAN,
                    ..Settings::DEFAULT
                },
                "min_leaf_weight NaN",
            ),
            (
                Settings {
                    trees: 0,
                    ..Settings::DEFAULT
                },
                "trees 0",
            ),
            (
                Settings {
                    row_share: 1.5,
                    ..Settings::DEFAULT
                },
                "row_share 1.5",
            ),
            (
                Settings {
                    column_share: 0.0,
                    ..Settings::DEFAULT
                },
                "column_share 0",
            ),
        ] {
            let e = TreeModel::fit_with(&settings, &x, 1, &y, None, 1)
                .err()
                .unwrap();
            assert!(e.to_string().contains(field), "{e}");
        }
        for s in SEARCH
            .iter()
            .chain(&FULL_SEARCH)
            .chain([&Settings::DEFAULT])
        {
            s.check().unwrap();
        }
    }

    /// Uniform draws in [0, 1) from a fixed seed.
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `n` rows of two inputs, churning when both are high: a tree model gets it, a
    /// linear one cannot.
    fn interaction(n: usize, r: &mut impl FnMut() -> f64) -> (Vec<f64>, Vec<u8>) {
        let x: Vec<f64> = (0..n * 2).map(|_| r()).collect();
        let y: Vec<u8> = (0..n)
            .map(|i| u8::from(x[2 * i] > 0.6 && x[2 * i + 1] > 0.6))
            .collect();
        (x, y)
    }

    #[test]
    fn learns_an_interaction_and_survives_serialisation() {
        let mut r = uniform(3);
        let (x, y) = interaction(3000, &mut r);
        let m = TreeModel::fit(&x, 2, &y, 1).unwrap();
        assert!(m.logit(&[0.9, 0.9]) > 2.0 && m.logit(&[0.9, 0.1]) < -2.0);
        let bytes = bincode::serde::encode_to_vec(&m, bincode::config::standard()).unwrap();
        let (back, _): (TreeModel, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.logit(&[0.7, 0.8]).to_bits(),
            m.logit(&[0.7, 0.8]).to_bits()
        );
        let batch = m.logits(&[0.7, 0.8, 0.1, 0.2], 2);
        assert_eq!(batch[0].to_bits(), m.logit(&[0.7, 0.8]).to_bits());
        let mut c = [0.0; 2];
        m.contributions(&[0.9, 0.9], &mut c);
        assert!(c[0] > 0.0 && c[1] > 0.0, "{c:?}");
        // The flat trees' contributions and logits are forust's own, bit for bit, on
        // rows all over the square and with missing (NaN) inputs taking missing branches.
        // Enough trees for groups walked side by side and a remainder walked alone.
        assert!(
            m.trees() > 2 * LANES && !m.trees().is_multiple_of(LANES),
            "{} trees",
            m.trees()
        );
        let mut rows: Vec<[f64; 2]> = (0..300).map(|_| [r(), r()]).collect();
        rows.extend([[f64::NAN, 0.9], [0.9, f64::NAN], [f64::NAN, f64::NAN]]);
        for &row in &rows {
            let theirs = m.booster.predict_contributions(
                &Matrix::new(&row, 1, 2),
                ContributionsMethod::Average,
                false,
            );
            m.contributions(&row, &mut c);
            assert_eq!(&theirs[..2], &c[..]);
            let logit = m.booster.predict(&Matrix::new(&row, 1, 2), false)[0];
            assert_eq!(logit.to_bits(), m.logit(&row).to_bits());
            let mut both = [0.0; 2];
            let fused = m.logit_and_contributions(&row, &mut both);
            assert_eq!(fused.to_bits(), logit.to_bits());
            assert_eq!(both, c);
        }
        // A block of rows (here all of them, with the NaN rows among them) gives each
        // row's bits, with and without contributions.
        let block: Vec<f64> = rows.iter().flatten().copied().collect();
        let mut logits = vec![0.0; rows.len()];
        let mut contributions = vec![0.0; block.len()];
        m.logits_of_block(&block, 2, &mut logits, Some(&mut contributions));
        let mut plain = vec![0.0; rows.len()];
        m.logits_of_block(&block, 2, &mut plain, None);
        for (r, row) in rows.iter().enumerate() {
            let mut one = [0.0; 2];
            let logit = m.logit_and_contributions(row, &mut one);
            assert_eq!(logits[r].to_bits(), logit.to_bits(), "row {r}");
            assert_eq!(plain[r].to_bits(), logit.to_bits(), "row {r}");
            assert_eq!(contributions[2 * r..2 * r + 2], one, "row {r}");
        }
        // Its NaNs all go right (no missing branch was grown): the binned trees are the
        // ones scoring, and the general walk gives the same bits.
        let mut general = FlatTrees::new(&m.booster);
        assert!(general.nan_goes_right && general.binned.is_some());
        general.nan_goes_right = false;
        general.binned = None;
        let (mut general_logits, mut general_contributions) =
            (vec![0.0; rows.len()], vec![0.0; block.len()]);
        general.logits(
            &block,
            2,
            &mut general_logits,
            Some(&mut general_contributions),
        );
        assert_eq!(
            general_logits
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            logits.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(general_contributions, contributions);
        // Contributions are read off each leaf's one path: a decoded booster whose node
        // hangs under two parents is refused.
        let mut json: serde_json::Value = serde_json::from_str(&m.json).unwrap();
        let child = |node: &serde_json::Value, side: &str| node[side].as_u64().unwrap() as usize;
        let (k, nodes) = json["trees"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .map(|t| t["nodes"].as_array_mut().unwrap())
            .enumerate()
            .find(|(_, nodes)| {
                !nodes[child(&nodes[0], "right_child")]["is_leaf"]
                    .as_bool()
                    .unwrap()
            })
            .expect("a tree whose root's right child splits");
        // The root's left link taken to its right child's left child.
        let grandchild = child(&nodes[child(&nodes[0], "right_child")], "left_child");
        let left = nodes[0]["left_child"].clone();
        nodes[0]["left_child"] = grandchild.into();
        let refused = |json: &serde_json::Value| {
            serde_json::from_value::<TreeModel>(json.to_string().into())
                .unwrap_err()
                .to_string()
        };
        let error = refused(&json);
        assert!(
            error.contains(&format!("tree {k}'s node {grandchild} has two parents")),
            "{error}"
        );
        // A leaf said to sit a level higher than it does: the walk, as many steps as
        // the deepest depth, would stop on a split. Refused; so is a root not at 0.
        let nodes = json["trees"][k]["nodes"].as_array_mut().unwrap();
        nodes[0]["left_child"] = left;
        let depth = nodes[grandchild]["depth"].as_u64().unwrap();
        nodes[grandchild]["depth"] = (depth - 1).into();
        let error = refused(&json);
        assert!(
            error.contains(&format!(
                "tree {k}'s node {grandchild} is at depth {}, under node",
                depth - 1
            )),
            "{error}"
        );
        let nodes = json["trees"][k]["nodes"].as_array_mut().unwrap();
        nodes[grandchild]["depth"] = depth.into();
        serde_json::from_value::<TreeModel>(json.to_string().into()).expect("repaired");
        json["trees"][k]["nodes"][0]["depth"] = 1.into();
        let error = refused(&json);
        assert!(
            error.contains(&format!("tree {k}'s root is at depth 1")),
            "{error}"
        );
    }

    /// The binned trees' logits and contributions against the walk's, bit for bit, on
    /// `rows` (two inputs) as one block and row by row.
    fn binned_as_walked(flat: &FlatTrees, rows: &[[f64; 2]]) {
        let block: Vec<f64> = rows.iter().flatten().copied().collect();
        let mut walked = FlatTrees {
            binned: None,
            nodes: flat.nodes.clone(),
            roots: flat.roots.clone(),
            group_steps: flat.group_steps.clone(),
            steps: flat.steps.clone(),
            ..*flat
        };
        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let score = |f: &FlatTrees, x: &[f64], n: usize, explain: bool| {
            let mut logits = vec![0.0; n];
            let mut c = vec![0.0; x.len()];
            f.logits(x, 2, &mut logits, explain.then_some(&mut c[..]));
            (bits(&logits), bits(&c))
        };
        for explain in [false, true] {
            assert_eq!(
                score(flat, &block, rows.len(), explain),
                score(&walked, &block, rows.len(), explain)
            );
            // Blocks of a few rows, each one binned (but the last, too short, walked).
            for few in block.chunks(2 * (MIN_BINNED_ROWS + 1)) {
                let n = few.len() / 2;
                assert_eq!(
                    score(flat, few, n, explain),
                    score(&walked, few, n, explain)
                );
            }
        }
        // The walk with a missing test, too.
        walked.nan_goes_right = false;
        assert_eq!(
            score(flat, &block, rows.len(), true),
            score(&walked, &block, rows.len(), true)
        );
    }

    #[test]
    fn binned_trees_reach_the_leaves_the_walk_does() {
        let mut r = uniform(11);
        let (x, mut y) = interaction(2000, &mut r);
        // Noisy labels, so the trees keep splitting (many split values, deep trees).
        for y in &mut y {
            if r() < 0.2 {
                *y = 1 - *y;
            }
        }
        // Rows on every split value and either side of it (a row at the value goes
        // right), signed zeros, NaNs and infinities, more rows than one block.
        let booster_rows = |b: &GradientBooster| {
            let mut values: Vec<f64> = trees(b)
                .iter()
                .flat_map(|t| &t.nodes)
                .filter(|n| !n.is_leaf)
                .flat_map(|n| {
                    [
                        n.split_value,
                        n.split_value.next_down(),
                        n.split_value.next_up(),
                    ]
                })
                .collect();
            values.extend([0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
            let mut r = uniform(5);
            let mut pick = || values[(r() * values.len() as f64) as usize];
            let mut rows: Vec<[f64; 2]> = (0..5 * BIN_ROWS + 3).map(|_| [pick(), pick()]).collect();
            rows.extend(values.iter().map(|&v| [v, 1.0 - v]));
            rows
        };
        let mut deepest = None;
        for max_depth in [2, 4, MAX_BINNED_DEPTH] {
            let settings = Settings {
                max_depth,
                min_leaf_weight: 1.0,
                trees: 60,
                ..Settings::DEFAULT
            };
            let m = TreeModel::fit_with(&settings, &x, 2, &y, None, 1).unwrap();
            let binned = m.flat.binned.as_ref().expect("binned trees");
            // Some leaf sits above the deepest level, so padding is walked too.
            assert!(
                binned.splits.iter().any(|&(_, place)| place == ALWAYS_LEFT),
                "depth {max_depth}: no padding"
            );
            binned_as_walked(&m.flat, &booster_rows(&m.booster));
            deepest = Some(m);
        }
        // An input with more split values than a byte counts: no binned trees, and the
        // walk scores. With one fewer, binned trees, as the walk.
        let m = deepest.unwrap();
        for (distinct, binned) in [(256, false), (255, true)] {
            let mut b = GradientBooster::from_json(&m.json).unwrap();
            let splits = b
                .trees
                .iter_mut()
                .flat_map(|t| &mut t.nodes)
                .filter(|n| !n.is_leaf && n.split_feature == 0);
            let mut count = 0;
            for (k, n) in splits.enumerate() {
                n.split_value = (k % distinct) as f64 / distinct as f64;
                count = k + 1;
            }
            assert!(count >= distinct, "{count} splits on input 0");
            let flat = FlatTrees::new(&b);
            assert_eq!(flat.binned.is_some(), binned, "{distinct} split values");
            binned_as_walked(&flat, &booster_rows(&b));
        }
    }
}
