//! In-process scoring through the shared core (criterion): one customer's feature row to
//! probability, risk band, reasons and rule results; a request of 100 customers answered
//! as the server answers it; a batch of 1,000; and live drift's binning of one customer.

use churn_model::model::ModelKind;
use churn_scoring::{table_cell, Cell, Options, Scorer, Scratch};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

mod common;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 2000, 3);
    let (_, table) = churn_testkit::latest_rows(&fx);
    for kind in [ModelKind::Logistic, ModelKind::Gbm] {
        let scorer = Scorer::new(churn_testkit::train(&fx, kind, "m", "v1"));
        let columns = scorer.table_columns(&table);
        // Rows as the server holds them after validation: one cell per schema position.
        let rows: Vec<Vec<Cell>> = (0..table.len())
            .map(|r| {
                (0..columns.len())
                    .map(|p| table_cell(columns[p], r))
                    .collect()
            })
            .collect();
        let mut scratch = Scratch::default();
        let name = kind.as_str();
        let mut i = 0;
        c.bench_function(&format!("score one customer ({name}, explain)"), |b| {
            b.iter(|| {
                i = (i + 1) % rows.len();
                let row = &rows[i];
                black_box(
                    scorer
                        .score(|p| row[p], Options::default(), &mut scratch)
                        .unwrap(),
                )
            })
        });
        c.bench_function(&format!("score one customer ({name}, no explain)"), |b| {
            let opts = Options {
                explain: false,
                top: 0,
                warnings: true,
                survival: true,
            };
            b.iter(|| {
                i = (i + 1) % rows.len();
                let row = &rows[i];
                black_box(scorer.score(|p| row[p], opts, &mut scratch).unwrap())
            })
        });
        c.bench_function(&format!("score 1000 customers ({name}, explain)"), |b| {
            b.iter(|| {
                for k in 0..1000 {
                    let row = &rows[k % rows.len()];
                    black_box(
                        scorer
                            .score(|p| row[p], Options::default(), &mut scratch)
                            .unwrap(),
                    );
                }
            })
        });
        // A request of 100 customers as the server answers it (parsing, checks, scoring,
        // rules, JSON), in process.
        let body = common::request_body(&table, 100);
        c.bench_function(
            &format!("answer a request of 100 customers ({name})"),
            |b| b.iter(|| black_box(churn_serve::predict_in_process(&scorer, &body).unwrap())),
        );
        let batch: Vec<&Vec<Cell>> = (0..1000).map(|k| &rows[k % rows.len()]).collect();
        c.bench_function(
            &format!("score 1000 customers ({name}, explain, score_batch on all cores)"),
            |b| {
                b.iter(|| {
                    black_box(scorer.score_batch(
                        batch.len(),
                        |r, p| batch[r][p],
                        Options::default(),
                    ))
                })
            },
        );
    }

    // Live drift's share of a prediction: binning one customer's inputs and score, for
    // a model saved with its reference profile.
    let models = tempfile::tempdir().unwrap();
    let published = churn_testkit::train_and_publish(&fx, models.path(), "m");
    let scorer = Scorer::new(churn_model::artifact::load(&published).unwrap().0);
    let drift =
        churn_serve::drift::LiveDrift::new(&scorer, std::time::Duration::from_secs(3600)).unwrap();
    let columns = scorer.table_columns(&table);
    let rows: Vec<Vec<Cell>> = (0..table.len())
        .map(|r| {
            (0..columns.len())
                .map(|p| table_cell(columns[p], r))
                .collect()
        })
        .collect();
    let mut i = 0;
    c.bench_function(
        "live drift: observe one customer (logistic's inputs)",
        |b| {
            b.iter(|| {
                i = (i + 1) % rows.len();
                let row = &rows[i];
                drift.observe(|p| row[p], black_box(0.1));
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
