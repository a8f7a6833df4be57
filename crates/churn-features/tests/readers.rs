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

/// An events table as Parquet, written with `rows_per_group` rows per row group and
/// dictionary encoding on or off; timestamps as `unit` (seconds is what files written
/// before timestamps carried a Parquet TIMESTAMP type hold).
fn write_events_parquet(
    path: &Path,
    rows: &[(&str, i64, Option<&str>)],
    rows_per_group: usize,
    dictionary: bool,
    unit: arrow_schema::TimeUnit,
) {
    use arrow_array::{TimestampMicrosecondArray, TimestampMillisecondArray, TimestampSecondArray};
    use arrow_schema::TimeUnit;
    let n = rows.len();
    let seconds: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let (ts, ty): (ArrayRef, DataType) = match unit {
        TimeUnit::Second => (
            Arc::new(TimestampSecondArray::from(seconds).with_timezone("UTC")),
            DataType::Timestamp(unit, Some("UTC".into())),
        ),
        TimeUnit::Millisecond => (
            Arc::new(
                TimestampMillisecondArray::from(
                    seconds.iter().map(|s| s * 1000).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            DataType::Timestamp(unit, Some("UTC".into())),
        ),
        _ => (
            Arc::new(
                TimestampMicrosecondArray::from(
                    seconds.iter().map(|s| s * 1_000_000).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("timestamp", ty, true),
        Field::new("event_type", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
        Field::new("feature", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(
            rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>(),
        )),
        ts,
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(vec![None; n])),
        Arc::new(StringArray::from(vec![Some("dashboard"); n])),
    ];
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .set_dictionary_enabled(dictionary)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    w.close().unwrap();
}

/// Every event of a data set as (customer id, seconds, type, feature), sorted, read with
/// `decoders` decoder threads.
fn decoded_events(ds: &Dataset, decoders: usize) -> (Vec<(String, i64, String, String)>, u64) {
    let mut vocab = Default::default();
    let mut raw = Vec::new();
    let orphans = ds
        .for_each_event_batch_with(decoders, &mut vocab, |b| {
            for i in 0..b.len() {
                raw.push((b.customer[i], b.ts[i], b.kind[i], b.feature[i]));
            }
            Ok(())
        })
        .unwrap();
    let vocab: &churn_features::dataset::Vocabulary = &vocab;
    let mut rows: Vec<_> = raw
        .into_iter()
        .map(|(c, t, k, f)| {
            (
                ds.customers[c as usize].id.clone(),
                t,
                vocab.event_types.name(k).to_string(),
                vocab.features.name(f).to_string(),
            )
        })
        .collect();
    rows.sort();
    (rows, orphans.rows)
}

const FEB_1: i64 = 1_706_745_600; // 2024-02-01T00:00:00Z

/// A data set of the two `SUBS` customers and `rows` as Parquet events in row groups of
/// ten rows.
fn events_in_groups_of_ten(
    rows: &[(&str, i64, Option<&str>)],
    dictionary: bool,
) -> (tempfile::TempDir, Dataset) {
    let dir = dir_with(&[("subscriptions.csv", SUBS)]);
    write_events_parquet(
        &dir.path().join("events.parquet"),
        rows,
        10,
        dictionary,
        arrow_schema::TimeUnit::Microsecond,
    );
    let ds = Dataset::open(dir.path()).unwrap();
    (dir, ds)
}

#[test]
fn parquet_events_read_alike_whatever_the_row_groups_encoding_unit_and_threads() {
    // 3 customers, two of them unknown to subscriptions, many event types.
    let ids = ["A", "B", "X", "A", "Y", "B"];
    let kinds = [
        "login",
        "session",
        "export",
        "feature_use",
        "login",
        "Report Viewed",
    ];
    let rows: Vec<(&str, i64, Option<&str>)> = (0..600)
        .map(|i| (ids[i % 6], FEB_1 + i as i64 * 97, Some(kinds[(i / 7) % 6])))
        .collect();
    let mut expected = None;
    for (per_group, dictionary, unit) in [
        (1_000, true, arrow_schema::TimeUnit::Microsecond),
        (7, true, arrow_schema::TimeUnit::Microsecond),
        (7, false, arrow_schema::TimeUnit::Millisecond),
        (50, true, arrow_schema::TimeUnit::Second),
    ] {
        let dir = dir_with(&[("subscriptions.csv", SUBS)]);
        write_events_parquet(
            &dir.path().join("events.parquet"),
            &rows,
            per_group,
            dictionary,
            unit,
        );
        let ds = Dataset::open(dir.path()).unwrap();
        for decoders in [1, 2, 5] {
            let got = decoded_events(&ds, decoders);
            assert_eq!(got.1, 200, "orphan rows (X and Y)");
            assert_eq!(got.0.len(), 400);
            match &expected {
                None => expected = Some(got),
                Some(e) => assert_eq!(
                    &got, e,
                    "{per_group} rows per group, dictionary {dictionary}, {unit:?}, {decoders} decoders"
                ),
            }
        }
    }
    let (events, _) = expected.unwrap();
    assert_eq!(
        events[0],
        ("A".into(), FEB_1, "login".into(), "dashboard".into())
    );
}

#[test]
fn the_first_bad_row_group_is_reported_whatever_the_threads() {
    // Row groups of 10 rows; rows 35 and 72 lack an event type. With any number of
    // decoders, the error names row 35, never the later one.
    let rows: Vec<(&str, i64, Option<&str>)> = (0..100)
        .map(|i| ("A", FEB_1 + i, (i != 34 && i != 71).then_some("login")))
        .collect();
    let (_dir, ds) = events_in_groups_of_ten(&rows, true);
    for decoders in [1, 2, 3, 8] {
        for _ in 0..10 {
            let e = ds
                .for_each_event_batch_with(decoders, &mut Default::default(), |_| Ok(()))
                .unwrap_err()
                .to_string();
            check(&e, &["events.parquet", "row 35", "column `event_type`"]);
        }
    }
}

#[test]
fn orphans_of_many_row_groups_are_listed_in_file_order() {
    let ids = ["Q1", "A", "Q2", "Q3", "B", "Q4", "Q5", "Q6", "Q7"];
    let rows: Vec<(&str, i64, Option<&str>)> = (0..90)
        .map(|i| (ids[i / 10], FEB_1 + i as i64, Some("login")))
        .collect();
    let (_dir, ds) = events_in_groups_of_ten(&rows, false);
    for decoders in [1, 4] {
        let orphans = ds
            .for_each_event_batch_with(decoders, &mut Default::default(), |_| Ok(()))
            .unwrap();
        assert_eq!(orphans.rows, 70);
        assert_eq!(orphans.first_ids, ["Q1", "Q2", "Q3", "Q4", "Q5"]);
    }
}

#[test]
fn small_tables_in_parquet_read_like_csv() {
    // Tickets, payments and surveys with typed Parquet columns give the same customers
    // as the same rows in CSV.
    let csv = dir_with(&[
        ("subscriptions.csv", SUBS),
        (
            "tickets.csv",
            "customer_id,opened_at,closed_at,first_response_at,priority,satisfaction\nA,2024-02-01T10:00:00Z,2024-02-02T10:00:00Z,,high,4\nB,2024-02-03T00:00:00Z,,2024-02-03T05:00:00Z,,\n",
        ),
        (
            "payments.csv",
            "customer_id,due_date,paid_at,amount,status\nA,2024-02-01,2024-02-03T08:00:00Z,100,late\nB,2024-03-01,,50,failed\n",
        ),
        (
            "surveys.csv",
            "customer_id,answered_at,nps,csat\nA,2024-02-10T12:00:00Z,9,\nB,2024-02-11T12:00:00Z,,7\n",
        ),
    ]);
    let from_csv = Dataset::open(csv.path()).unwrap();
    let pq = tempfile::tempdir().unwrap();
    std::fs::write(pq.path().join("subscriptions.csv"), SUBS).unwrap();
    for spec in [
        &churn_features::contract::TICKETS,
        &churn_features::contract::PAYMENTS,
        &churn_features::contract::SURVEYS,
    ] {
        // Through the product's own writer: typed columns (timestamps, dates, numbers).
        let table = churn_features::read::TableFile::at(
            &csv.path().join(format!("{}.csv", spec.name)),
            spec,
        )
        .unwrap();
        let schema = spec.arrow_schema();
        let mut w = TableWriter::create(
            &pq.path().join(format!("{}.parquet", spec.name)),
            schema.clone(),
        )
        .unwrap();
        let names: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
        table
            .for_each_batch(&names, |b| {
                let columns: Vec<ArrayRef> = spec
                    .columns
                    .iter()
                    .map(|c| {
                        let col = b.required(c.name).unwrap();
                        let text: StringArray = (0..b.len()).map(|i| col.text(i)).collect();
                        arrow_cast_text(&text, c.ty)
                    })
                    .collect();
                w.write(&RecordBatch::try_new(schema.clone(), columns).unwrap())
                    .unwrap();
                Ok(())
            })
            .unwrap();
        w.finish().unwrap();
    }
    let from_parquet = Dataset::open(pq.path()).unwrap();
    assert_eq!(from_csv.customers, from_parquet.customers);
    assert_eq!(from_parquet.customers[0].tickets[0].satisfaction, Some(4.0));
    assert_eq!(from_parquet.customers[1].payments[0].paid, None);
}

/// Parses contract text cells into the contract's Arrow type.
fn arrow_cast_text(text: &StringArray, ty: churn_features::contract::ColumnType) -> ArrayRef {
    use arrow_array::{Date32Array, TimestampMicrosecondArray};
    use churn_features::contract::ColumnType;
    use churn_features::time;
    match ty {
        ColumnType::Text => Arc::new(text.clone()),
        ColumnType::Number => Arc::new(
            text.iter()
                .map(|v| v.map(|v| v.parse::<f64>().unwrap()))
                .collect::<Float64Array>(),
        ),
        ColumnType::Date => Arc::new(
            text.iter()
                .map(|v| v.map(|v| time::parse_date(v).unwrap()))
                .collect::<Date32Array>(),
        ),
        ColumnType::Timestamp => Arc::new(
            text.iter()
                .map(|v| v.map(|v| time::parse_timestamp(v).unwrap() * 1_000_000))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
    }
}

#[test]
fn the_data_span_includes_parquet_events_and_names_each_table() {
    // Subscriptions end in August, events run to October 20 (Parquet, read from the
    // file's statistics without a scan).
    let dir = dir_with(&[(
        "subscriptions.csv",
        "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,2024-09-01,100,pro\n",
    )]);
    let oct_20 = 1_729_382_400; // 2024-10-20T00:00:00Z
    let rows: Vec<(&str, i64, Option<&str>)> = vec![
        ("A", FEB_1, Some("login")),
        ("A", oct_20 + 3600, Some("login")),
    ];
    write_events_parquet(
        &dir.path().join("events.parquet"),
        &rows,
        1,
        true,
        arrow_schema::TimeUnit::Microsecond,
    );
    let ds = Dataset::open(dir.path()).unwrap();
    let (first, end) = ds.date_range();
    assert_eq!(churn_features::time::format_date(first), "2024-02-01");
    assert_eq!(churn_features::time::format_date(end), "2024-10-21");
    // The end `summary` prints is inside the data; a later date names every table.
    assert!(ds.as_of_warning(end).is_none());
    let later = churn_features::time::parse_date("2024-12-01").unwrap();
    let w = ds.as_of_warning(later).unwrap();
    check(
        &w,
        &[
            "spans 2024-02-01 to 2024-10-20",
            "subscriptions 2024-01-01 to 2024-08-31",
            "events 2024-02-01 to 2024-10-20",
        ],
    );
}

#[test]
fn csv_events_span_the_data_as_parquet_events_do() {
    // The same data as above with the events as CSV: their span is read from the file,
    // so the data ends on the same day whichever format holds the events.
    let dir = dir_with(&[
        (
            "subscriptions.csv",
            "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,2024-09-01,100,pro\n",
        ),
        (
            "events.csv",
            "customer_id,timestamp,event_type\nA,2024-10-20T01:00:00Z,login\nA,not a time,login\nA, 2024-02-01T00:00:00Z ,login\n",
        ),
    ]);
    let ds = Dataset::open(dir.path()).unwrap();
    let (first, end) = ds.date_range();
    assert_eq!(churn_features::time::format_date(first), "2024-02-01");
    assert_eq!(churn_features::time::format_date(end), "2024-10-21");
    // The cell that is not a time is left to the events reader, which names it.
    let mut vocab = churn_features::dataset::Vocabulary::default();
    let e = ds
        .for_each_event_batch(&mut vocab, |_| Ok(()))
        .unwrap_err()
        .to_string();
    check(&e, &["events.csv", "line 3", "timestamp", "not a time"]);
}

/// Subscriptions as Arrow columns: `end_date` all null (Arrow's Null type, as pandas
/// and pyarrow give a column of `None`s).
fn subscriptions_batch(mrr: ArrayRef) -> RecordBatch {
    let n = mrr.len();
    let ids: Vec<String> = (0..n).map(|i| format!("C{i}")).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("start_date", DataType::Utf8, false),
        Field::new("end_date", DataType::Null, true),
        Field::new("mrr", mrr.data_type().clone(), true),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(vec!["2024-01-01"; n])),
        Arc::new(arrow_array::NullArray::new(n)),
        mrr,
        Arc::new(StringArray::from(vec!["pro"; n])),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// `batch` as a subscriptions table in memory, in two batches (rows are numbered
/// across them).
fn in_memory(batch: &RecordBatch) -> churn_features::dataset::MemoryTable {
    let n = batch.num_rows();
    churn_features::dataset::MemoryTable {
        name: "subscriptions".into(),
        schema: batch.schema(),
        batches: vec![batch.slice(0, n / 2), batch.slice(n / 2, n - n / 2)],
    }
}

#[test]
fn tables_in_memory_load_like_files_and_name_their_rows() {
    let batch = subscriptions_batch(Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 40.0])));
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("subscriptions.parquet"),
        batch.schema(),
        batch.columns().to_vec(),
    );
    let from_memory = Dataset::from_tables(&[in_memory(&batch)]).unwrap();
    let from_file = Dataset::open(dir.path()).unwrap();
    assert_eq!(from_memory.customers.len(), 4);
    assert_eq!(
        format!("{:?}", from_memory.customers),
        format!("{:?}", from_file.customers)
    );
    let cfg = churn_features::features::FeatureConfig::default();
    let as_of = churn_features::time::parse_date("2024-03-01").unwrap();
    let a = churn_features::features::features(&from_memory, as_of, &cfg).unwrap();
    let b = churn_features::features::features(&from_file, as_of, &cfg).unwrap();
    assert_eq!(format!("{:?}", a.columns), format!("{:?}", b.columns));

    let bad = subscriptions_batch(Arc::new(Float64Array::from(vec![10.0, 20.0, -3.0, 40.0])));
    let m = Dataset::from_tables(&[in_memory(&bad)])
        .unwrap_err()
        .to_string();
    check(
        &m,
        &["subscriptions table", "row 3", "column `mrr`", "found `-3`"],
    );
    let text = subscriptions_batch(Arc::new(StringArray::from(vec!["1", "2", "3", "lots"])));
    let m = Dataset::from_tables(&[in_memory(&text)])
        .unwrap_err()
        .to_string();
    check(
        &m,
        &[
            "subscriptions table",
            "row 4",
            "column `mrr`",
            "found `lots`",
        ],
    );
    let mut unknown = in_memory(&batch);
    unknown.name = "subscription".into();
    let m = Dataset::from_tables(&[unknown]).unwrap_err().to_string();
    check(&m, &["subscription", "not a table of the data contract"]);
}
