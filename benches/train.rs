//! Training time of each candidate (a bench binary) on `CHURN_BENCH_ROWS` (default
//! 1,000,000) synthetic rows x 30 standardised features with about 5 % positives, the
//! same data the peer script `benches/peer_train.py` fits with scikit-learn and
//! LightGBM (it is written to `target/bench-data/train-ROWS.parquet`). Fits on the first
//! 80 % of rows, reports ROC AUC on the rest, and the peak memory of the process.
//! The random forest, single-threaded, runs on `CHURN_BENCH_FOREST_ROWS` (default
//! 100,000) rows.

mod common;

use common::{env, peak_rss_mb};

use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt8Array};
use arrow_schema::{DataType, Field, Schema};
use churn_features::write::TableWriter;
use churn_model::forest::ForestModel;
use churn_model::gbm::TreeModel;
use churn_model::logistic::LinearModel;
use churn_model::metrics::roc_auc;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const P: usize = 30;

/// Correlated normal features; churn log-odds linear in ten of them plus two
/// interactions and a threshold effect, so trees have something linear models miss.
fn synthetic(n: usize) -> (Vec<f64>, Vec<u8>) {
    let mut s = 42u64;
    let mut uniform = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut x = vec![0.0; n * P];
    let mut y = vec![0u8; n];
    for i in 0..n {
        let row = &mut x[i * P..(i + 1) * P];
        let shared = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
        for v in row.iter_mut() {
            let z = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
            *v = 0.8 * z + 0.6 * shared;
        }
        let mut logit = -3.6;
        for (k, v) in row.iter().take(10).enumerate() {
            logit += if k % 2 == 0 { 0.45 } else { -0.35 } * v;
        }
        logit += 0.6 * row[10] * row[11] + if row[12] > 1.0 { 1.2 } else { 0.0 }
            - 0.3 * row[13] * row[13];
        y[i] = u8::from(uniform() < 1.0 / (1.0 + (-logit).exp()));
    }
    (x, y)
}

fn write_parquet(path: &std::path::Path, x: &[f64], y: &[u8]) {
    let n = y.len();
    let mut fields: Vec<Field> = (0..P)
        .map(|k| Field::new(format!("x{k}"), DataType::Float64, false))
        .collect();
    fields.push(Field::new("label", DataType::UInt8, false));
    let schema = Arc::new(Schema::new(fields));
    let mut w = TableWriter::create(path, schema.clone()).expect("create parquet");
    let step = 131_072;
    for from in (0..n).step_by(step) {
        let to = (from + step).min(n);
        let mut cols: Vec<ArrayRef> = (0..P)
            .map(|k| {
                Arc::new(Float64Array::from(
                    (from..to).map(|i| x[i * P + k]).collect::<Vec<_>>(),
                )) as ArrayRef
            })
            .collect();
        cols.push(Arc::new(UInt8Array::from(y[from..to].to_vec())));
        w.write(&RecordBatch::try_new(schema.clone(), cols).expect("batch"))
            .expect("write");
    }
    w.finish().expect("finish");
}

fn main() {
    let n = env("CHURN_BENCH_ROWS", 1_000_000) as usize;
    let (x, y) = synthetic(n);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/bench-data/train-{n}.parquet"));
    if !path.is_file() {
        write_parquet(&path, &x, &y);
    }
    let cut = n * 4 / 5;
    let (x_fit, y_fit) = (&x[..cut * P], &y[..cut]);
    let (x_test, y_test) = (&x[cut * P..], &y[cut..]);
    let matrix_mb = (cut * P * 8) as f64 / 1e6;
    println!(
        "{n} rows x {P} features ({:.1} % positives); fitting on {cut} rows ({matrix_mb:.0} MB as f64); data written to {}",
        100.0 * y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64,
        path.display()
    );
    let base_rss = peak_rss_mb();

    let t = Instant::now();
    let lr = LinearModel::fit(x_fit, P, y_fit, 1e-4, None).expect("logistic");
    let secs = t.elapsed().as_secs_f64();
    let p: Vec<f64> = x_test.chunks(P).map(|r| lr.logit(r)).collect();
    println!("logistic (Newton, lambda 1e-4): {secs:.2}s, {} iterations, test ROC AUC {:.4}, peak RSS {:.0} MB", lr.iterations, roc_auc(&p, y_test).unwrap_or(f64::NAN), peak_rss_mb());

    let t = Instant::now();
    let gbm = TreeModel::fit(x_fit, P, y_fit, 1).expect("gbm");
    let secs = t.elapsed().as_secs_f64();
    let p = gbm.logits(x_test, P);
    println!(
        "gbm (forust, {} trees, depth {}, lr {}): {secs:.2}s, test ROC AUC {:.4}, peak RSS {:.0} MB",
        churn_model::gbm::TREES,
        churn_model::gbm::MAX_DEPTH,
        churn_model::gbm::LEARNING_RATE,
        roc_auc(&p, y_test).unwrap_or(f64::NAN),
        peak_rss_mb()
    );

    let m = (env("CHURN_BENCH_FOREST_ROWS", 100_000) as usize).min(cut);
    let t = Instant::now();
    let forest = ForestModel::fit(&x_fit[..m * P], P, &y_fit[..m], 1).expect("forest");
    let secs = t.elapsed().as_secs_f64();
    let p = forest.probabilities(x_test, P);
    println!(
        "forest (smartcore, {} trees, depth {}) on {m} rows: {secs:.2}s, test ROC AUC {:.4}, peak RSS {:.0} MB",
        churn_model::forest::TREES,
        churn_model::forest::MAX_DEPTH,
        roc_auc(&p, y_test).unwrap_or(f64::NAN),
        peak_rss_mb()
    );
    println!("peak RSS before fitting (data in memory): {base_rss:.0} MB");
}
