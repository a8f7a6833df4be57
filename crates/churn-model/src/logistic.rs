//! L2-regularised logistic regression on standardised inputs, kept as plain
//! coefficients: prediction is one dot product.
//!
//! The solver is Newton's method (iteratively reweighted least squares) with a Cholesky
//! step and a backtracking line search, minimising the mean log loss plus
//! `lambda / 2 * |w|^2` (the intercept is not penalised). It replaced
//! `linfa-logistic`'s L-BFGS in the product after measuring it on churn features, which
//! are strongly correlated (a login count and logins per week, MRR and plan): L-BFGS ran
//! hundreds of iterations, 3-6 s per fit on 22-28 thousand rows x 80 inputs, where
//! Newton converges in about ten. `linfa-logistic` remains the reference a test checks
//! this solver against.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A fitted linear model on the log-odds scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// The L2 strength it was fitted with.
    pub lambda: f64,
    /// Newton iterations it took.
    pub iterations: u32,
}

/// Hyper-parameters of a logistic fit.
#[derive(Debug, Clone, Default)]
pub struct LogisticParams {
    /// L2 strength on the mean log loss.
    pub lambda: f64,
    /// A model to start from (the previous point of a regularisation path).
    pub warm_start: Option<LinearModel>,
}

/// A failure of the solver.
#[derive(Debug, thiserror::Error)]
#[error("logistic regression did not fit: {0}")]
pub struct FitError(pub String);

const MAX_ITERATIONS: u32 = 100;
/// Rows per parallel chunk when accumulating the gradient and Hessian.
const CHUNK: usize = 4096;

impl LinearModel {
    /// Fits on a row-major matrix `x` (`y.len()` rows of `p`) and 0/1 labels, starting
    /// from `start` when given (a warm start along a regularisation path).
    pub fn fit(
        x: &[f64],
        p: usize,
        y: &[u8],
        lambda: f64,
        start: Option<&LinearModel>,
    ) -> Result<LinearModel, FitError> {
        let n = y.len();
        if n == 0 || p == 0 || x.len() != n * p {
            return Err(FitError(format!(
                "{} values for {n} rows of {p} inputs",
                x.len()
            )));
        }
        if !(lambda >= 0.0 && lambda.is_finite()) {
            return Err(FitError(format!(
                "lambda must be a non-negative number, got {lambda}"
            )));
        }
        let d = p + 1; // intercept first
        let mut theta = vec![0.0; d];
        match start.filter(|s| s.weights.len() == p) {
            Some(s) => {
                theta[0] = s.intercept;
                theta[1..].copy_from_slice(&s.weights);
            }
            None => {
                let rate = (y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64)
                    .clamp(1e-6, 1.0 - 1e-6);
                theta[0] = (rate / (1.0 - rate)).ln();
            }
        }
        let mut f = objective(x, p, y, lambda, &theta);
        let mut iterations = 0;
        for _ in 0..MAX_ITERATIONS {
            iterations += 1;
            let (g, mut h) = gradient_hessian(x, p, y, lambda, &theta);
            for i in 0..d {
                h[i * d + i] += 1e-10;
            }
            let step = cholesky_solve(&mut h, &g, d)
                .ok_or_else(|| FitError("the Hessian is not positive definite".into()))?;
            let mut t = 1.0;
            let mut next = theta.clone();
            let mut f_next = f;
            for _ in 0..30 {
                for i in 0..d {
                    next[i] = theta[i] - t * step[i];
                }
                f_next = objective(x, p, y, lambda, &next);
                if f_next <= f {
                    break;
                }
                t *= 0.5;
            }
            let moved = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
            let improved = f - f_next;
            if f_next <= f {
                theta.copy_from_slice(&next);
                f = f_next;
            }
            if moved < 1e-9 || improved.abs() < 1e-13 {
                break;
            }
        }
        if theta.iter().any(|v| !v.is_finite()) {
            return Err(FitError("the coefficients diverged".into()));
        }
        Ok(LinearModel {
            intercept: theta[0],
            weights: theta[1..].to_vec(),
            lambda,
            iterations,
        })
    }

    /// Log-odds of churn for one transformed row.
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.intercept + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }

    /// Each input's additive share of the log-odds.
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) {
        for ((o, w), v) in out.iter_mut().zip(&self.weights).zip(x) {
            *o = w * v;
        }
    }

    /// [`LinearModel::logit`] and [`LinearModel::contributions`] at once: the log-odds
    /// add up the contributions, the products `logit` adds in its order, so the same
    /// bits with one multiply per input.
    pub fn logit_and_contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        self.contributions(x, out);
        self.intercept + out.iter().sum::<f64>()
    }
}

fn row_logit(row: &[f64], theta: &[f64]) -> f64 {
    theta[0] + row.iter().zip(&theta[1..]).map(|(a, b)| a * b).sum::<f64>()
}

// The sums below add fixed chunks' partials in chunk order, never by rayon's `sum` or
// `reduce`: their grouping follows work stealing, so the last bits of a fit (and the
// backtest figures built on it) would change from one run to the next.

/// Mean log loss plus the L2 penalty.
fn objective(x: &[f64], p: usize, y: &[u8], lambda: f64, theta: &[f64]) -> f64 {
    let n = y.len();
    let loss: f64 = x
        .par_chunks(p * CHUNK)
        .zip(y.par_chunks(CHUNK))
        .map(|(xs, ys)| {
            ys.iter()
                .enumerate()
                .map(|(i, &yi)| {
                    let z = row_logit(&xs[i * p..(i + 1) * p], theta);
                    // log(1 + e^z) - y z, computed stably.
                    let softplus = if z > 0.0 {
                        z + (-z).exp().ln_1p()
                    } else {
                        z.exp().ln_1p()
                    };
                    softplus - f64::from(yi) * z
                })
                .sum::<f64>()
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    loss / n as f64 + 0.5 * lambda * theta[1..].iter().map(|w| w * w).sum::<f64>()
}

/// Gradient and Hessian (row-major, `(p+1)^2`) of the objective.
fn gradient_hessian(
    x: &[f64],
    p: usize,
    y: &[u8],
    lambda: f64,
    theta: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let d = p + 1;
    let n = y.len() as f64;
    let (mut g, mut h) = x
        .par_chunks(p * CHUNK)
        .zip(y.par_chunks(CHUNK))
        .map(|(xs, ys)| {
            let mut g = vec![0.0; d];
            let mut h = vec![0.0; d * d];
            let mut row = vec![1.0; d];
            for (i, &yi) in ys.iter().enumerate() {
                row[1..].copy_from_slice(&xs[i * p..(i + 1) * p]);
                let mu = sigmoid(row_logit(&row[1..], theta));
                let r = mu - f64::from(yi);
                let w = (mu * (1.0 - mu)).max(1e-12);
                for a in 0..d {
                    g[a] += r * row[a];
                    let wa = w * row[a];
                    // Upper triangle only; mirrored below.
                    for b in a..d {
                        h[a * d + b] += wa * row[b];
                    }
                }
            }
            (g, h)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(
            (vec![0.0; d], vec![0.0; d * d]),
            |(mut g1, mut h1), (g2, h2)| {
                g1.iter_mut().zip(&g2).for_each(|(a, b)| *a += b);
                h1.iter_mut().zip(&h2).for_each(|(a, b)| *a += b);
                (g1, h1)
            },
        );
    for a in 0..d {
        g[a] /= n;
        for b in a..d {
            h[a * d + b] /= n;
            h[b * d + a] = h[a * d + b];
        }
    }
    for a in 1..d {
        g[a] += lambda * theta[a];
        h[a * d + a] += lambda;
    }
    (g, h)
}

/// Solves `H s = g` for symmetric positive definite `H` (overwritten).
fn cholesky_solve(h: &mut [f64], g: &[f64], d: usize) -> Option<Vec<f64>> {
    for j in 0..d {
        let mut s = h[j * d + j];
        for k in 0..j {
            s -= h[j * d + k] * h[j * d + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let l = s.sqrt();
        h[j * d + j] = l;
        for i in j + 1..d {
            let mut s = h[i * d + j];
            for k in 0..j {
                s -= h[i * d + k] * h[j * d + k];
            }
            h[i * d + j] = s / l;
        }
    }
    let mut z = vec![0.0; d];
    for i in 0..d {
        let mut s = g[i];
        for k in 0..i {
            s -= h[i * d + k] * z[k];
        }
        z[i] = s / h[i * d + i];
    }
    let mut out = vec![0.0; d];
    for i in (0..d).rev() {
        let mut s = z[i];
        for k in i + 1..d {
            s -= h[k * d + i] * out[k];
        }
        out[i] = s / h[i * d + i];
    }
    Some(out)
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The inverse of [`sigmoid`], clamped away from 0 and 1.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::prelude::*;
    use ndarray::{Array1, Array2};

    fn data(n: usize, p: usize) -> (Vec<f64>, Vec<u8>) {
        let mut s = 7u64;
        let mut r = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let x: Vec<f64> = (0..n * p).map(|_| r()).collect();
        let y = (0..n)
            .map(|i| u8::from(1.5 * x[i * p] - x[i * p + 1] + r() > 0.6))
            .collect();
        (x, y)
    }

    #[test]
    fn agrees_with_linfa_logistic_on_the_same_objective() {
        // linfa minimises the summed log loss + alpha/2 |w|^2; ours the mean loss +
        // lambda/2 |w|^2: the same optimum when alpha = lambda * n.
        let (n, p, lambda) = (2000, 4, 0.01);
        let (x, y) = data(n, p);
        let ours = LinearModel::fit(&x, p, &y, lambda, None).unwrap();
        let dataset = Dataset::new(
            Array2::from_shape_vec((n, p), x.clone()).unwrap(),
            y.iter().map(|&v| usize::from(v)).collect::<Array1<usize>>(),
        );
        let reference = linfa_logistic::LogisticRegression::default()
            .alpha(lambda * n as f64)
            .max_iterations(1000)
            .gradient_tolerance(1e-8)
            .fit(&dataset)
            .unwrap();
        let sign = if reference.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        for (a, b) in ours.weights.iter().zip(reference.params().iter()) {
            assert!(
                (a - sign * b).abs() < 1e-3,
                "ours {:?} linfa {:?}",
                ours.weights,
                reference.params()
            );
        }
        assert!((ours.intercept - sign * reference.intercept()).abs() < 1e-3);
        assert!(
            ours.iterations < 20,
            "{} Newton iterations",
            ours.iterations
        );
    }

    #[test]
    fn converges_on_collinear_inputs_and_warm_starts() {
        // The second input is the first times four: L-BFGS crawls here, Newton does not.
        let (mut x, y) = data(3000, 3);
        for i in 0..3000 {
            x[i * 3 + 2] = 4.0 * x[i * 3];
        }
        let m = LinearModel::fit(&x, 3, &y, 1e-4, None).unwrap();
        assert!(m.iterations < 30, "{}", m.iterations);
        assert!(sigmoid(m.logit(&[1.0, -1.0, 4.0])) > sigmoid(m.logit(&[-1.0, 1.0, -4.0])));
        let warm = LinearModel::fit(&x, 3, &y, 1e-4, Some(&m)).unwrap();
        assert!(warm.iterations <= 2, "{}", warm.iterations);
        assert!(LinearModel::fit(&x, 3, &y, f64::NAN, None).is_err());
        assert!(LinearModel::fit(&x[..5], 3, &y, 0.1, None).is_err());
    }

    #[test]
    fn a_fit_is_the_same_bits_on_any_number_of_threads() {
        // Many chunks, so the parallel sums have many ways to be grouped.
        let (n, p) = (40 * CHUNK + 123, 5);
        let (x, y) = data(n, p);
        let fit_on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| LinearModel::fit(&x, p, &y, 1e-3, None).unwrap())
        };
        let reference = fit_on(1);
        for threads in [2, 3, 4, 7] {
            for _ in 0..3 {
                assert_eq!(fit_on(threads), reference, "{threads} threads");
            }
        }
    }

    #[test]
    fn sigmoid_and_logit_are_inverse() {
        for p in [1e-6, 0.05, 0.5, 0.93] {
            assert!((sigmoid(logit(p)) - p).abs() < 1e-12);
        }
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
    }
}
