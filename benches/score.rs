//! Batch scoring at scale (bench binary): `CHURN_SCORE_ROWS` (default 10,000,000) feature
//! rows in Parquet, scored to Parquet by `churn-score` with a logistic model (or
//! `CHURN_SCORE_MODEL=gbm|forest`) and the
//! rules (and `CHURN_SCORE_REASONS` reasons per row, default 3), against the limit of
//! just reading and writing the same files.
//!
//! The rows are the simulator's feature rows repeated with fresh customer ids and
//! jittered fractional numbers (so Parquet cannot dictionary-encode its way out; whole
//! numbers, counts and days, stay whole as in real feature tables). Writes
//! `target/bench-score/{features.parquet, models, peer_model.json}` for the peers
//! `benches/peer_score.py` and `benches/peer_score_polars.py`.

mod common;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use churn_features::contract::CUSTOMERS;
use churn_features::read::TableFile;
use churn_features::write::TableWriter;
use churn_model::model::ModelKind;
use clap::Parser;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn jittered(batch: &RecordBatch, chunk: usize) -> RecordBatch {
    let n = batch.num_rows();
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let name = batch.schema().field(k).name().clone();
            if name == "customer_id" {
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("C{:09}", chunk * n + i)),
                )) as ArrayRef
            } else if let Some(f) = c.as_any().downcast_ref::<Float64Array>() {
                Arc::new(
                    f.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            v.map(|x| {
                                // Whole numbers (counts, days, scores) stay whole, as in
                                // real feature tables.
                                if x.fract() == 0.0 {
                                    x
                                } else {
                                    x * (1.0 + ((i * 7919 + chunk * 104_729) % 1000) as f64 * 1e-6)
                                }
                            })
                        })
                        .collect::<Float64Array>(),
                )
            } else {
                c.clone()
            }
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

fn main() {
    let rows = common::env("CHURN_SCORE_ROWS", 10_000_000) as usize;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-score");
    std::fs::create_dir_all(&root).unwrap();
    let data = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(data.path(), 4000, 3);
    let models = root.join("models");
    let _ = std::fs::remove_dir_all(&models);
    // `CHURN_SCORE_MODEL=gbm` (or forest) benchmarks a tree model instead.
    let kind = std::env::var("CHURN_SCORE_MODEL").map_or(ModelKind::Logistic, |name| {
        ModelKind::parse(&name)
            .unwrap_or_else(|| panic!("CHURN_SCORE_MODEL={name} is not a model kind"))
    });
    let a = churn_testkit::train(&fx, kind, "churn", "v1");
    churn_testkit::save(&models, &a);
    // The model and the columns the rules read, for the polars + numpy peer
    // (`benches/peer_score_polars.py`).
    let rule_columns: Vec<String> = churn_features::rules::INPUTS
        .iter()
        .map(|input| input.feature(&a.feature_config))
        .collect();
    std::fs::write(
        root.join("peer_model.json"),
        serde_json::to_vec(&serde_json::json!({ "artifact": &a, "rule_columns": rule_columns }))
            .unwrap(),
    )
    .unwrap();
    let (_, table) = churn_testkit::latest_rows(&fx);
    // One 64 K-row block of real feature rows, cycled.
    let block_rows = churn_features::read::BATCH_ROWS;
    let idx: Vec<usize> = (0..block_rows).map(|i| i % table.len()).collect();
    let mut block = table.clone();
    block.customer_ids = idx.iter().map(|&i| table.customer_ids[i].clone()).collect();
    block.customers = (0..block_rows as u32).collect();
    block.as_of = idx.iter().map(|&i| table.as_of[i]).collect();
    block.columns = table
        .columns
        .iter()
        .map(|c| match c {
            churn_features::dataset::Values::Numeric(v) => {
                churn_features::dataset::Values::Numeric(idx.iter().map(|&i| v[i]).collect())
            }
            churn_features::dataset::Values::Categorical(v) => {
                churn_features::dataset::Values::Categorical(
                    idx.iter().map(|&i| v[i].clone()).collect(),
                )
            }
        })
        .collect();
    let block_file = root.join("block.parquet");
    churn_features::features::write_table(&block, None, &block_file).unwrap();
    let mut template = None;
    let all: Vec<String> = TableFile::at(&block_file, &CUSTOMERS)
        .unwrap()
        .column_names()
        .unwrap();
    let all_ref: Vec<&str> = all.iter().map(String::as_str).collect();
    // Read the block back as one record batch (the reader's own batches).
    let reader_file = std::fs::File::open(&block_file).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(reader_file)
            .unwrap()
            .with_batch_size(block_rows)
            .build()
            .unwrap();
    for b in reader {
        template = Some(b.unwrap());
    }
    let template = template.unwrap();
    let input = root.join("features.parquet");
    let t = Instant::now();
    let mut w = TableWriter::create(&input, template.schema()).unwrap();
    let chunks = rows.div_ceil(block_rows);
    for chunk in 0..chunks {
        let b = jittered(&template, chunk);
        let take = (rows - chunk * block_rows).min(block_rows);
        w.write(&b.slice(0, take)).unwrap();
    }
    w.finish().unwrap();
    let size = std::fs::metadata(&input).unwrap().len() as f64 / 1e6;
    println!(
        "input: {rows} rows x {} columns, {size:.0} MB Parquet (written in {:.1} s)",
        all.len(),
        t.elapsed().as_secs_f64()
    );

    let runs = common::env("CHURN_BENCH_RUNS", 3) as usize;
    // Reasons per row (`--reasons`): 3 is churn-score's default, 0 probability + rules.
    let reasons = common::env("CHURN_SCORE_REASONS", 3).to_string();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // The limit: read every column and write the same batches back.
    let mut copy = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = root.join("copy.parquet");
        let mut w: Option<TableWriter> = None;
        TableFile::at(&input, &CUSTOMERS)
            .unwrap()
            .for_each_batch(&all_ref, |b| {
                let rb = b.record_batch();
                let w = w.get_or_insert_with(|| TableWriter::create(&out, rb.schema()).unwrap());
                w.write(rb)
            })
            .unwrap();
        w.unwrap().finish().unwrap();
        copy.push(t.elapsed().as_secs_f64());
    }
    let mut read_only = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut n = 0;
        TableFile::at(&input, &CUSTOMERS)
            .unwrap()
            .for_each_batch(&all_ref, |b| {
                n += b.len();
                Ok(())
            })
            .unwrap();
        assert_eq!(n, rows);
        read_only.push(t.elapsed().as_secs_f64());
    }
    let mut score = Vec::new();
    let out = root.join("scores.parquet");
    for _ in 0..runs {
        let t = Instant::now();
        churn_score::run(churn_score::Args::parse_from([
            "churn-score",
            "--model",
            models.join("churn").to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--reasons",
            &reasons,
            "--quiet",
        ]))
        .unwrap();
        score.push(t.elapsed().as_secs_f64());
    }
    // The limit for this job: read the input and write the output churn-score wrote
    // (its batches held in memory beforehand, so only the encoding is timed).
    let mut output_batches = Vec::new();
    let out_names: Vec<String> = TableFile::at(&out, &CUSTOMERS)
        .unwrap()
        .column_names()
        .unwrap();
    let out_ref: Vec<&str> = out_names.iter().map(String::as_str).collect();
    TableFile::at(&out, &CUSTOMERS)
        .unwrap()
        .for_each_batch(&out_ref, |b| {
            output_batches.push(b.record_batch().clone());
            Ok(())
        })
        .unwrap();
    let mut limit = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        TableFile::at(&input, &CUSTOMERS)
            .unwrap()
            .for_each_batch(&all_ref, |_| Ok(()))
            .unwrap();
        let dest = root.join("limit.parquet");
        let mut w = TableWriter::create(&dest, output_batches[0].schema()).unwrap();
        for b in &output_batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
        limit.push(t.elapsed().as_secs_f64());
    }
    drop(output_batches);
    println!(
        "read the input + write churn-score's output (the limit): median {:.2} s",
        median(limit)
    );
    println!(
        "read only: median {:.2} s; read + write the same columns: median {:.2} s; churn-score ({kind:?}, rules, {reasons} reasons): median {:.2} s ({:.0} rows/s) of {runs}; peak memory {:.0} MB",
        median(read_only),
        median(copy),
        median(score.clone()),
        rows as f64 / median(score),
        common::peak_rss_mb()
    );
}
