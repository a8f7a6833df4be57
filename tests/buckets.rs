//! Point-in-time features depend on a customer's own rows, except for a few things of the
//! whole data set (event types and features first seen, the earliest event, the kind of
//! text attributes): a data set split by customer into buckets, each bucket loaded and
//! built with the merged [`DataSummary`] of all buckets, gives exactly the whole's
//! feature rows. This is what lets a cluster (churn.spark) build features bucket by
//! bucket.

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use churn_features::contract;
use churn_features::dataset::{MemoryTable, Values};
use churn_features::features::{self, DataSummary, FeatureConfig, FeatureTable};
use churn_features::read;
use churn_features::time::parse_date;
use churn_features::Dataset;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Every table of a data directory as record batches in memory.
fn tables_of(dir: &Path) -> Vec<MemoryTable> {
    let mut out = Vec::new();
    for spec in contract::TABLES {
        let Some(file) = read::locate(dir, spec).unwrap() else {
            continue;
        };
        let names = file.column_names().unwrap();
        let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut batches = Vec::new();
        file.for_each_batch(&wanted, |b| {
            batches.push(b.record_batch().clone());
            Ok(())
        })
        .unwrap();
        out.push(MemoryTable {
            name: spec.name.into(),
            schema: batches[0].schema(),
            batches,
        });
    }
    out
}

/// FNV-1a: any function of the id alone will do.
fn bucket_of(id: &str, buckets: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    h % buckets
}

/// The rows of `table` whose customer falls in `bucket` (every row of the catalog,
/// which has no customers).
fn bucket_rows(table: &MemoryTable, bucket: u64, buckets: u64) -> MemoryTable {
    let batches = table
        .batches
        .iter()
        .map(|b| {
            let Some(ids) = b.column_by_name("customer_id") else {
                return b.clone();
            };
            let ids = ids
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("text ids");
            let keep: UInt32Array = (0..b.num_rows() as u32)
                .filter(|&i| {
                    !ids.is_null(i as usize) && bucket_of(ids.value(i as usize), buckets) == bucket
                })
                .collect::<Vec<_>>()
                .into();
            arrow_select::take::take_record_batch(b, &keep).unwrap()
        })
        .collect();
    MemoryTable {
        name: table.name.clone(),
        schema: table.schema.clone(),
        batches,
    }
}

/// `table` with a column replaced or added.
fn with_column(table: &mut MemoryTable, name: &str, make: impl Fn(&RecordBatch) -> ArrayRef) {
    let mut fields: Vec<_> = table
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let at = fields.iter().position(|f| f.name() == name);
    let batches: Vec<RecordBatch> = table
        .batches
        .iter()
        .map(|b| {
            let mut columns = b.columns().to_vec();
            match at {
                Some(i) => columns[i] = make(b),
                None => columns.push(make(b)),
            }
            (columns, b.num_rows())
        })
        .map(|(columns, _)| columns)
        .collect::<Vec<_>>()
        .into_iter()
        .map(|columns| {
            if at.is_none() && fields.len() < columns.len() {
                fields.push(arrow_schema::Field::new(
                    name,
                    columns.last().unwrap().data_type().clone(),
                    true,
                ));
            }
            let schema = Arc::new(arrow_schema::Schema::new(fields.clone()));
            RecordBatch::try_new(schema, columns).unwrap()
        })
        .collect();
    table.schema = batches[0].schema();
    table.batches = batches;
}

/// Rows keyed by (customer, date), each with its values as text (bits of numbers).
fn rows_of(t: &FeatureTable) -> BTreeMap<(String, Option<i32>), Vec<String>> {
    (0..t.len())
        .map(|r| {
            let cells = t
                .columns
                .iter()
                .map(|c| match c {
                    Values::Numeric(v) => format!("{:?}", v[r].map(f64::to_bits)),
                    Values::Categorical(v) => format!("{:?}", v[r]),
                })
                .collect();
            ((t.customer_ids[r].clone(), t.as_of[r]), cells)
        })
        .collect()
}

#[test]
fn buckets_built_with_the_whole_summary_give_the_whole_features() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let mut tables = tables_of(&dir);
    // What a bucket alone would get wrong: a rare event type (one event), and a text
    // attribute that is a number for every customer but one.
    let events = tables.iter_mut().find(|t| t.name == "events").unwrap();
    with_column(events, "event_type", |b| {
        let types = b
            .column_by_name("event_type")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        let first = b
            .column_by_name("customer_id")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .to_string();
        Arc::new(
            (0..b.num_rows())
                .map(|i| {
                    let id = b
                        .column_by_name("customer_id")
                        .unwrap()
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .value(i);
                    if i == 0 && id == first {
                        Some("rare_thing".to_string())
                    } else {
                        types.is_valid(i).then(|| types.value(i).to_string())
                    }
                })
                .collect::<StringArray>(),
        )
    });
    let customers = tables.iter_mut().find(|t| t.name == "customers").unwrap();
    with_column(customers, "region_code", |b| {
        Arc::new(
            (0..b.num_rows())
                .map(|i| {
                    Some(if i == 3 {
                        "unknown".to_string()
                    } else {
                        (i % 7).to_string()
                    })
                })
                .collect::<StringArray>(),
        )
    });
    let cfg = FeatureConfig::default();
    let dates = [
        parse_date("2025-03-01").unwrap(),
        parse_date("2025-06-01").unwrap(),
    ];
    let whole_ds = Dataset::from_tables(&tables).unwrap();
    let whole = features::build(&whole_ds, &dates, &cfg).unwrap();
    assert!(whole
        .info
        .iter()
        .any(|i| i.name.starts_with("events_rare_thing")));
    let region = whole
        .column("region_code")
        .expect("the attribute is a feature");
    assert!(
        matches!(region, Values::Categorical(_)),
        "text somewhere: categorical"
    );
    let expected = rows_of(&whole);

    for buckets in [1u64, 3, 16] {
        let parts: Vec<Vec<MemoryTable>> = (0..buckets)
            .map(|k| tables.iter().map(|t| bucket_rows(t, k, buckets)).collect())
            .collect();
        // Pass 1: each bucket's summary; merged, the whole's.
        let mut summary = DataSummary::default();
        for part in &parts {
            summary.merge(&features::summarise(&Dataset::from_tables(part).unwrap()).unwrap());
        }
        // Pass 2: each bucket with the whole's summary.
        let kinds = summary.numeric_text_attributes();
        let mut got = BTreeMap::new();
        let mut lone_bucket_differs = false;
        for part in &parts {
            let ds = Dataset::from_tables_with(part, &kinds).unwrap();
            let t = features::build_summarised(&ds, &dates, &cfg, &summary).unwrap();
            assert_eq!(
                t.info.iter().map(|i| (&i.name, i.kind)).collect::<Vec<_>>(),
                whole
                    .info
                    .iter()
                    .map(|i| (&i.name, i.kind))
                    .collect::<Vec<_>>(),
                "{buckets} buckets: the columns differ"
            );
            let alone =
                features::build(&Dataset::from_tables(part).unwrap(), &dates, &cfg).unwrap();
            lone_bucket_differs |= alone.info.len() != whole.info.len()
                || rows_of(&alone)
                    .iter()
                    .any(|(k, v)| expected.get(k) != Some(v));
            got.extend(rows_of(&t));
        }
        // Examples: the observation dates from the merged spans, labels per customer.
        let horizon = 30;
        let whole_dates = churn_features::labels::observation_dates(&whole_ds, horizon);
        assert_eq!(
            churn_features::labels::observation_dates_in(summary.date_range(), horizon),
            whole_dates,
            "{buckets} buckets: observation dates"
        );
        let mut labels = BTreeMap::new();
        for part in &parts {
            let ds = Dataset::from_tables_with(part, &kinds).unwrap();
            let ex = churn_features::labels::examples_summarised(
                &ds,
                &whole_dates,
                horizon,
                &cfg,
                &summary,
            )
            .unwrap();
            for (r, l) in ex.labels.iter().enumerate() {
                labels.insert(
                    (ex.features.customer_ids[r].clone(), ex.features.as_of[r]),
                    *l,
                );
            }
        }
        let all = churn_features::labels::examples(&whole_ds, &whole_dates, horizon, &cfg, &|_| {})
            .unwrap();
        assert_eq!(labels.len(), all.labels.len());
        for (r, l) in all.labels.iter().enumerate() {
            let key = (all.features.customer_ids[r].clone(), all.features.as_of[r]);
            assert_eq!(
                labels.get(&key),
                Some(l),
                "{buckets} buckets: label of {key:?}"
            );
        }
        assert_eq!(got.len(), expected.len(), "{buckets} buckets: rows");
        for (key, values) in &expected {
            assert_eq!(got.get(key), Some(values), "{buckets} buckets: row {key:?}");
        }
        if buckets > 1 {
            assert!(
                lone_bucket_differs,
                "the test must exercise what the summary fixes"
            );
        }
    }
}
