//! Probability calibration on rows the model was not fitted on: Platt scaling (a
//! logistic curve on the model's log-odds) or isotonic regression (pool adjacent
//! violators), whichever has the lower log loss under two-fold cross-fitting.

use crate::logistic::{logit, sigmoid};
use crate::metrics::log_loss;
use serde::{Deserialize, Serialize};

/// A fitted calibration map from raw probability to calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Calibrator {
    /// `sigmoid(a * logit(p) + b)`.
    Platt { a: f64, b: f64 },
    /// A non-decreasing step function: `values[i]` for raw scores from `thresholds[i]`.
    Isotonic {
        thresholds: Vec<f64>,
        values: Vec<f64>,
    },
}

impl Calibrator {
    /// Calibrates one raw probability.
    pub fn apply(&self, p: f64) -> f64 {
        match self {
            Calibrator::Platt { a, b } => sigmoid(a * logit(p) + b),
            Calibrator::Isotonic { thresholds, values } => {
                let i = thresholds.partition_point(|&t| t <= p);
                let v = if i == 0 { values[0] } else { values[i - 1] };
                v.clamp(1e-6, 1.0 - 1e-6)
            }
        }
    }

    /// The method's name.
    pub fn method(&self) -> &'static str {
        match self {
            Calibrator::Platt { .. } => "platt",
            Calibrator::Isotonic { .. } => "isotonic",
        }
    }

    /// Fits Platt scaling by Newton's method on the log loss (with a tiny ridge).
    pub fn fit_platt(raw: &[f64], y: &[u8]) -> Calibrator {
        let z: Vec<f64> = raw.iter().map(|&p| logit(p)).collect();
        let (mut a, mut b) = (1.0, 0.0);
        for _ in 0..50 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
                (1e-6 * (a - 1.0), 1e-6 * b, 1e-6, 0.0, 1e-6);
            for (zi, &yi) in z.iter().zip(y) {
                let p = sigmoid(a * zi + b);
                let d = p - f64::from(yi);
                let w = (p * (1.0 - p)).max(1e-12);
                ga += d * zi;
                gb += d;
                haa += w * zi * zi;
                hab += w * zi;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() < 1e-10 && db.abs() < 1e-10 {
                break;
            }
        }
        Calibrator::Platt { a, b }
    }

    /// Fits isotonic regression (pool adjacent violators).
    pub fn fit_isotonic(raw: &[f64], y: &[u8]) -> Calibrator {
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by(|&i, &j| raw[i].total_cmp(&raw[j]));
        // Blocks of (first raw score, sum of labels, count).
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for &i in &order {
            blocks.push((raw[i], f64::from(y[i]), 1.0));
            while blocks.len() > 1 {
                let n = blocks.len();
                let (_, s1, c1) = blocks[n - 2];
                let (_, s2, c2) = blocks[n - 1];
                if s1 / c1 <= s2 / c2 {
                    break;
                }
                let merged = (blocks[n - 2].0, s1 + s2, c1 + c2);
                blocks.truncate(n - 2);
                blocks.push(merged);
            }
        }
        if blocks.is_empty() {
            return Calibrator::Platt { a: 1.0, b: 0.0 };
        }
        Calibrator::Isotonic {
            thresholds: blocks.iter().map(|b| b.0).collect(),
            values: blocks.iter().map(|b| b.1 / b.2).collect(),
        }
    }

    /// Picks Platt or isotonic by two-fold cross-fitted log loss on `(raw, y)`, then fits
    /// the winner on all of them. Returns the calibrator and both methods' losses.
    pub fn choose(raw: &[f64], y: &[u8]) -> (Calibrator, [f64; 2]) {
        let halves: [Vec<usize>; 2] = [
            (0..raw.len()).filter(|i| i % 2 == 0).collect(),
            (0..raw.len()).filter(|i| i % 2 == 1).collect(),
        ];
        let mut losses = [0.0; 2];
        for (k, fit) in [
            Calibrator::fit_platt as fn(&[f64], &[u8]) -> Calibrator,
            Calibrator::fit_isotonic,
        ]
        .into_iter()
        .enumerate()
        {
            for h in 0..2 {
                let (train, test) = (&halves[h], &halves[1 - h]);
                let c = fit(&pick(raw, train), &pick(y, train));
                let p: Vec<f64> = test.iter().map(|&i| c.apply(raw[i])).collect();
                losses[k] += log_loss(&p, &pick(y, test)) / 2.0;
            }
        }
        let chosen = if losses[1] < losses[0] {
            Calibrator::fit_isotonic(raw, y)
        } else {
            Calibrator::fit_platt(raw, y)
        };
        (chosen, losses)
    }
}

fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_distortion() {
        // True probability q; the model reports sigmoid(2 * logit(q) - 1).
        let mut raw = Vec::new();
        let mut y = Vec::new();
        for i in 0..4000 {
            let q = 0.02 + 0.9 * (i % 100) as f64 / 100.0;
            raw.push(sigmoid(2.0 * logit(q) - 1.0));
            // Deterministic labels with rate q in each score bucket.
            y.push(u8::from(((i / 100) as f64) < q * 40.0));
        }
        let c = Calibrator::fit_platt(&raw, &y);
        let Calibrator::Platt { a, b } = c else {
            panic!()
        };
        assert!(
            (a - 0.5).abs() < 0.05 && (b - 0.5).abs() < 0.1,
            "a {a} b {b}"
        );
    }

    #[test]
    fn isotonic_is_monotone_and_pools_violators() {
        let raw = [0.1, 0.2, 0.3, 0.4];
        let y = [0, 1, 0, 1];
        let c = Calibrator::fit_isotonic(&raw, &y);
        assert_eq!(
            c,
            Calibrator::Isotonic {
                thresholds: vec![0.1, 0.2, 0.4],
                values: vec![0.0, 0.5, 1.0]
            }
        );
        assert!(c.apply(0.25) <= c.apply(0.45));
        assert_eq!(c.apply(0.05), 1e-6);
    }
}
