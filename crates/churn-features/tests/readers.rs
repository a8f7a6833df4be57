//! Every reader error names the file, the line or row, the column and what was expected.

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use churn_features::write::TableWriter;
use churn_features::{DataError, Dataset};
use std::path::Path;
use std::sync::Arc;

const SUBS: &str = "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,100,pro\nB,2024-02-01,2024-05-01,50,basic\n";

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn open_err(files: &[(&str, &str)]) -> String {
    let dir = dir_with(files);
    match Dataset::open(dir.path()) {
        Ok(_) => panic!("expected an error for {files:?}"),
        Err(e) => e.to_string(),
    }
}

fn check(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "`{message}` should contain `{p}`");
    }
}

#[test]
fn malformed_date_names_file_line_and_column() {
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,100,pro\nB,2024-13-01,,50,basic\n",
    )]);
    check(
        &m,
        &[
            "subscriptions.csv",
            "line 3",
            "column `start_date`",
            "expected a date (YYYY-MM-DD)",
            "found `2024-13-01`",
        ],
    );
}

#[test]
fn non_numeric_mrr_is_refused() {
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,12O,pro\n",
    )]);
    check(
        &m,
        &[
            "subscriptions.csv",
            "line 2",
            "column `mrr`",
            "expected a number",
            "found `12O`",
        ],
    );
}

#[test]
fn negative_mrr_and_end_before_start_are_refused() {
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,-5,pro\n",
    )]);
    check(&m, &["line 2", "column `mrr`", "non-negative"]);
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,2024-02-01,2024-01-01,5,pro\n",
    )]);
    check(
        &m,
        &[
            "line 2",
            "column `end_date`",
            "on or after start_date",
            "2024-01-01",
        ],
    );
}

#[test]
fn missing_required_column_lists_what_was_found() {
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,plan\nA,2024-01-01,,pro\n",
    )]);
    check(
        &m,
        &[
            "subscriptions.csv",
            "missing required column `mrr`",
            "customer_id, start_date, end_date, plan",
        ],
    );
}

#[test]
fn empty_required_value_is_refused() {
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,,,5,pro\n",
    )]);
    check(&m, &["line 2", "column `start_date`", "required"]);
}

#[test]
fn unknown_payment_status_is_refused() {
    let m = open_err(&[
        ("subscriptions.csv", SUBS),
        ("payments.csv", "customer_id,due_date,paid_at,amount,status\nA,2024-02-01,2024-02-01T10:00:00Z,100,paid\nA,2024-03-01,,100,bounced\n"),
    ]);
    check(
        &m,
        &[
            "payments.csv",
            "line 3",
            "column `status`",
            "one of paid, late, failed, refunded",
            "found `bounced`",
        ],
    );
}

#[test]
fn bad_timestamp_and_out_of_range_scores_are_refused() {
    let m = open_err(&[
        ("subscriptions.csv", SUBS),
        ("tickets.csv", "customer_id,opened_at,closed_at,first_response_at,priority,satisfaction\nA,2024-02-01 25:00,,,high,\n"),
    ]);
    check(
        &m,
        &["tickets.csv", "line 2", "column `opened_at`", "timestamp"],
    );
    let m = open_err(&[
        ("subscriptions.csv", SUBS),
        (
            "surveys.csv",
            "customer_id,answered_at,nps,csat\nA,2024-02-01T10:00:00Z,11,5\n",
        ),
    ]);
    check(
        &m,
        &[
            "surveys.csv",
            "line 2",
            "column `nps`",
            "from 0 to 10",
            "found `11`",
        ],
    );
    let m = open_err(&[
        ("subscriptions.csv", SUBS),
        (
            "tickets.csv",
            "customer_id,opened_at,closed_at\nA,2024-02-02T10:00:00Z,2024-02-01T10:00:00Z\n",
        ),
    ]);
    check(&m, &["column `closed_at`", "on or after opened_at"]);
}

#[test]
fn wrong_field_count_names_the_line() {
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,5,pro\nB,2024-01-01,5,pro\n",
    )]);
    check(
        &m,
        &[
            "subscriptions.csv",
            "line 3",
            "expected 5 fields",
            "found 4",
        ],
    );
}

#[test]
fn missing_and_duplicate_tables_are_named() {
    let m = open_err(&[("events.csv", "customer_id,timestamp,event_type\n")]);
    check(
        &m,
        &[
            "no `subscriptions` table",
            "subscriptions.csv, subscriptions.csv.gz or subscriptions.parquet",
        ],
    );
    let dir = dir_with(&[("subscriptions.csv", SUBS)]);
    write_parquet_subscriptions(
        &dir.path().join("subscriptions.parquet"),
        &["A"],
        &["2024-01-01"],
        &[1.0],
    );
    let m = Dataset::open(dir.path()).unwrap_err().to_string();
    check(
        &m,
        &["given twice", "subscriptions.csv", "subscriptions.parquet"],
    );
}

#[test]
fn orphan_rows_are_reported_not_dropped_silently() {
    let dir = dir_with(&[
        ("subscriptions.csv", SUBS),
        ("tickets.csv", "customer_id,opened_at\nA,2024-02-01T10:00:00Z\nZZ,2024-02-01T10:00:00Z\nYY,2024-02-02T10:00:00Z\nZZ,2024-02-03T10:00:00Z\n"),
        ("events.csv", "customer_id,timestamp,event_type\nA,2024-02-01T10:00:00Z,login\nQ,2024-02-01T10:00:00Z,login\n"),
    ]);
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.orphans.len(), 1);
    assert_eq!(ds.orphans[0].table, "tickets");
    assert_eq!(ds.orphans[0].rows, 3);
    assert_eq!(ds.orphans[0].first_ids, vec!["ZZ", "YY"]);
    assert!(ds.orphans[0].to_string().contains("3 row(s)"));
    let mut vocab = Default::default();
    let mut seen = 0;
    let orphans = ds
        .for_each_event_batch(&mut vocab, |b| {
            seen += b.len();
            Ok(())
        })
        .unwrap();
    assert_eq!(
        (seen, orphans.rows, orphans.first_ids.clone()),
        (1, 1, vec!["Q".to_string()])
    );
}

/// Writes one record batch as a Parquet file.
fn write_parquet(path: &Path, schema: Arc<Schema>, columns: Vec<ArrayRef>) {
    let mut w = TableWriter::create(path, schema.clone()).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    w.finish().unwrap();
}

fn write_parquet_subscriptions(path: &Path, ids: &[&str], starts: &[&str], mrr: &[f64]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("start_date", DataType::Utf8, false),
        Field::new("end_date", DataType::Utf8, true),
        Field::new("mrr", DataType::Float64, false),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let n = ids.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids.to_vec())),
        Arc::new(StringArray::from(starts.to_vec())),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(Float64Array::from(mrr.to_vec())),
        Arc::new(StringArray::from(vec!["pro"; n])),
    ];
    write_parquet(path, schema, columns);
}

#[test]
fn parquet_errors_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet_subscriptions(
        &dir.path().join("subscriptions.parquet"),
        &["A", "B", "C"],
        &["2024-01-01", "2024-01-02", "01/03/2024"],
        &[1.0, 2.0, 3.0],
    );
    let m = Dataset::open(dir.path()).unwrap_err().to_string();
    check(
        &m,
        &[
            "subscriptions.parquet",
            "row 3",
            "column `start_date`",
            "found `01/03/2024`",
        ],
    );
}

#[test]
fn parquet_with_wrong_column_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("start_date", DataType::Float64, false),
        Field::new("end_date", DataType::Utf8, true),
        Field::new("mrr", DataType::Float64, false),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["A"])),
        Arc::new(Float64Array::from(vec![3.5])),
        Arc::new(StringArray::from(vec![None::<&str>])),
        Arc::new(Float64Array::from(vec![1.0])),
        Arc::new(StringArray::from(vec!["pro"])),
    ];
    let path = dir.path().join("subscriptions.parquet");
    write_parquet(&path, schema, columns);
    let m = Dataset::open(dir.path()).unwrap_err().to_string();
    check(
        &m,
        &[
            "row 1",
            "column `start_date`",
            "expected a date",
            "found `3.5`",
        ],
    );
}

#[test]
fn a_corrupt_parquet_file_is_refused_with_its_name() {
    let dir = dir_with(&[("subscriptions.parquet", "not a parquet file at all")]);
    let e = Dataset::open(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::Malformed { .. }), "{e:?}");
    assert!(e.to_string().contains("subscriptions.parquet"));
}

#[test]
fn gzipped_csv_reads_like_plain_csv() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("subscriptions.csv.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(SUBS.as_bytes()).unwrap();
    gz.finish().unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let plain = dir_with(&[("subscriptions.csv", SUBS)]);
    assert_eq!(ds.customers, Dataset::open(plain.path()).unwrap().customers);
    assert_eq!(ds.customers.len(), 2);
}

#[test]
fn attributes_are_typed_by_their_values() {
    let dir = dir_with(&[
        ("subscriptions.csv", SUBS),
        (
            "customers.csv",
            "customer_id,country,has_csm,seats\nA,US,true,3\nB,DE,false,\n",
        ),
    ]);
    let ds = Dataset::open(dir.path()).unwrap();
    use churn_features::dataset::Values::*;
    let by_name = |n: &str| {
        ds.attributes
            .iter()
            .find(|a| a.name == n)
            .unwrap()
            .values
            .clone()
    };
    assert_eq!(
        by_name("country"),
        Categorical(vec![Some("US".into()), Some("DE".into())])
    );
    assert_eq!(by_name("has_csm"), Numeric(vec![Some(1.0), Some(0.0)]));
    assert_eq!(by_name("seats"), Numeric(vec![Some(3.0), None]));
    let m = open_err(&[
        ("subscriptions.csv", SUBS),
        ("customers.csv", "customer_id,country\nA,US\nA,DE\n"),
    ]);
    check(&m, &["customers.csv", "line 3", "one row per customer"]);
}

#[test]
fn event_errors_cross_the_decoding_thread() {
    // A bad timestamp deep in the events file: the decoder's error reaches the caller.
    let mut events = String::from("customer_id,timestamp,event_type\n");
    for i in 0..70_000 {
        events.push_str(&format!("A,2024-02-01T10:{:02}:00Z,login\n", i % 60));
    }
    events.push_str("A,yesterday,login\n");
    let dir = dir_with(&[("subscriptions.csv", SUBS), ("events.csv", &events)]);
    let ds = Dataset::open(dir.path()).unwrap();
    let mut seen = 0;
    let e = ds
        .for_each_event_batch(&mut Default::default(), |b| {
            seen += b.len();
            Ok(())
        })
        .unwrap_err()
        .to_string();
    check(
        &e,
        &[
            "events.csv",
            "line 70002",
            "column `timestamp`",
            "found `yesterday`",
        ],
    );
    assert_eq!(
        seen, 65_536,
        "the first full batch was visited before the error"
    );
    // An error of the visitor stops the pass and is the one returned.
    let e = ds
        .for_each_event_batch(&mut Default::default(), |_| {
            Err(DataError::InvalidParameter {
                name: "visit".into(),
                message: "stop".into(),
            })
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("stop"), "{e}");
}

#[test]
fn dates_outside_1900_to_2199_are_refused() {
    let m = open_err(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,1850-01-01,,5,pro\n",
    )]);
    check(
        &m,
        &[
            "line 2",
            "column `start_date`",
            "between 1900-01-01 and 2199-12-31",
            "1850-01-01",
        ],
    );
    // A corrupt Parquet date far beyond any calendar is an error, not a panic.
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("start_date", DataType::Date32, false),
        Field::new("end_date", DataType::Date32, true),
        Field::new("mrr", DataType::Float64, false),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["A"])),
        Arc::new(arrow_array::Date32Array::from(vec![2_000_000_000])),
        Arc::new(arrow_array::Date32Array::from(vec![None])),
        Arc::new(Float64Array::from(vec![1.0])),
        Arc::new(StringArray::from(vec!["pro"])),
    ];
    let path = dir.path().join("subscriptions.parquet");
    write_parquet(&path, schema, columns);
    let m = Dataset::open(dir.path()).unwrap_err().to_string();
    check(
        &m,
        &[
            "row 1",
            "column `start_date`",
            "between 1900-01-01 and 2199-12-31",
            "day 2000000000",
        ],
    );
}
