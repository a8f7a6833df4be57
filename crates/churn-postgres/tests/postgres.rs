//! Against a real PostgreSQL server (started in a temp directory; see
//! `churn_testkit::postgres`): a data directory imported into a schema reads back as the
//! same dataset, bit for bit; bad values name table, row and column; all tables come
//! from one snapshot; a worklist swap is all or nothing.

use churn_features::features::{features, FeatureConfig};
use churn_features::labels;
use churn_features::Dataset;
use churn_postgres::{PgLocation, TableMapping};
use churn_testkit::postgres::PgServer;

fn client(server: &PgServer) -> postgres::Client {
    PgLocation::parse(&server.url("public"))
        .unwrap()
        .connect()
        .unwrap()
}

#[test]
fn a_data_directory_reads_back_from_postgres_bit_for_bit() {
    let Some(server) = PgServer::start("churn-postgres: round trip") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 300, 5);
    let url = server.url("churn");
    let location = PgLocation::parse(&url).unwrap();
    let imported = churn_postgres::import(&fx.data, &location).unwrap();
    let counted: Vec<&str> = imported.tables.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        counted.contains(&"events") && counted.contains(&"subscriptions"),
        "{counted:?}"
    );

    let from_files = Dataset::open(&fx.data).unwrap();
    let from_db = churn_postgres::open_dataset(&location, &TableMapping::default()).unwrap();
    let ds = &from_db.dataset;
    assert!(ds.customers == from_files.customers, "customers differ");
    // Attributes that are numbers in every row are stored as numbers (the CSV held
    // them as text): the same values.
    let values = |d: &Dataset| {
        d.attributes
            .iter()
            .map(|a| (a.name.clone(), a.values.clone()))
            .collect::<Vec<_>>()
    };
    assert!(values(ds) == values(&from_files), "attributes differ");
    assert_eq!(ds.date_range(), from_files.date_range());
    assert!(!from_db.location.contains(churn_testkit::postgres::PASSWORD));
    // Every observation date's examples (one pass over the events each) are the same.
    let dates = labels::observation_dates(ds, 30);
    assert_eq!(dates, fx.examples.dates);
    let cfg = FeatureConfig::default();
    let examples = labels::examples(ds, &dates, 30, &cfg, &|_| {}).unwrap();
    assert!(examples.labels == fx.examples.labels, "labels differ");
    assert!(examples.features.customer_ids == fx.examples.features.customer_ids);
    assert!(
        examples.features.info == fx.examples.features.info,
        "feature kinds differ"
    );
    assert!(
        examples.features.columns == fx.examples.features.columns,
        "features differ"
    );
    let last = *dates.last().unwrap();
    assert!(
        features(ds, last, &cfg).unwrap().columns
            == features(&from_files, last, &cfg).unwrap().columns
    );
}

#[test]
fn bad_values_and_missing_tables_are_named() {
    let Some(server) = PgServer::start("churn-postgres: errors") else {
        return;
    };
    let mut c = client(&server);
    c.batch_execute(
        "CREATE SCHEMA crm;
         CREATE TABLE crm.subscriptions (customer_id text, start_date text, end_date date, mrr numeric, plan text);
         INSERT INTO crm.subscriptions VALUES ('a', '2024-01-01', NULL, 100, 'pro'), ('b', '2024-02-30', NULL, 50, 'basic');",
    )
    .unwrap();
    let location = PgLocation::parse(&server.url("crm")).unwrap();
    let e = churn_postgres::open_dataset(&location, &TableMapping::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("table crm.subscriptions")
            && e.contains("row 2")
            && e.contains("column `start_date`")
            && e.contains("found `2024-02-30`"),
        "{e}"
    );
    assert!(!e.contains(churn_testkit::postgres::PASSWORD), "{e}");
    c.batch_execute(
        "UPDATE crm.subscriptions SET start_date = '2024-02-01' WHERE customer_id = 'b';
         ALTER TABLE crm.subscriptions DROP COLUMN plan;",
    )
    .unwrap();
    let e = churn_postgres::open_dataset(&location, &TableMapping::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing required column `plan`"), "{e}");
    // A schema without the table, then a mapping that names it.
    let empty = PgLocation::parse(&server.url("nowhere")).unwrap();
    let e = churn_postgres::open_dataset(&empty, &TableMapping::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no table nowhere.subscriptions"), "{e}");
    c.batch_execute(
        "ALTER TABLE crm.subscriptions ADD COLUMN plan text DEFAULT 'pro';
         ALTER TABLE crm.subscriptions RENAME TO stripe_subs;",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mapping_file = dir.path().join("tables.toml");
    std::fs::write(
        &mapping_file,
        "[tables]\nsubscriptions = \"crm.stripe_subs\"\n",
    )
    .unwrap();
    let mapping = TableMapping::load(&mapping_file).unwrap();
    let ds = churn_postgres::open_dataset(&empty, &mapping).unwrap();
    assert_eq!(ds.dataset.customers.len(), 2);
    std::fs::write(&mapping_file, "[tables]\nsubscription = \"x\"\n").unwrap();
    let e = TableMapping::load(&mapping_file).unwrap_err().to_string();
    assert!(
        e.contains("`subscription` is not a table of the data contract"),
        "{e}"
    );
    // A wrong password: the server's refusal, never the password.
    let wrong = server
        .url("crm")
        .replace(churn_testkit::postgres::PASSWORD, "not-it");
    let e = churn_postgres::open_dataset(&PgLocation::parse(&wrong).unwrap(), &mapping)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("password authentication failed") && !e.contains("not-it"),
        "{e}"
    );
}

#[test]
fn every_pass_reads_the_snapshot_the_dataset_was_opened_in() {
    let Some(server) = PgServer::start("churn-postgres: snapshot") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 100, 9);
    let location = PgLocation::parse(&server.url("churn")).unwrap();
    churn_postgres::import(&fx.data, &location).unwrap();
    let opened = churn_postgres::open_dataset(&location, &TableMapping::default()).unwrap();
    let count = |ds: &Dataset| {
        let mut vocab = Default::default();
        let mut n = 0;
        ds.for_each_event_batch(&mut vocab, |b| {
            n += b.len();
            Ok(())
        })
        .unwrap();
        n
    };
    let before = count(&opened.dataset);
    // Another session loads a day of events and a new customer after the snapshot.
    let mut c = client(&server);
    c.batch_execute(
        "INSERT INTO churn.events SELECT * FROM churn.events LIMIT 500;
         INSERT INTO churn.subscriptions (customer_id, start_date, mrr, plan) VALUES ('late', '2024-03-01', 10, 'x');",
    )
    .unwrap();
    assert_eq!(
        count(&opened.dataset),
        before,
        "the open dataset's snapshot"
    );
    let fresh = churn_postgres::open_dataset(&location, &TableMapping::default()).unwrap();
    assert_eq!(count(&fresh.dataset), before + 500);
    assert_eq!(
        fresh.dataset.customers.len(),
        opened.dataset.customers.len() + 1
    );
}
