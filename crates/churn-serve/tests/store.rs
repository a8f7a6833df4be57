//! `churn-serve --features postgres://...`: the real binary reading customers' rows from
//! a real PostgreSQL server (`churn_testkit::postgres`) answers as it does from the
//! feature file, keeps answering cached customers and request bodies while the database
//! is down (503 `store_unavailable` for the others, counted in the metrics), and reads
//! again once the database is back.

mod common;

use common::{predict_body, row_json, setup, Server};
use serde_json::Value;
use std::str::FromStr;

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn a_postgres_feature_store_answers_like_the_file_and_survives_a_database_restart() {
    let Some(pg) = churn_testkit::postgres::PgServer::start("churn-serve --features postgres://")
    else {
        return;
    };
    let s = setup();
    let url = format!("{}&table=features", pg.url("online"));
    churn_cli::data::Output::from_str(&url)
        .unwrap()
        .write_batches(
            churn_features::features::arrow_schema(&s.table, false),
            churn_features::features::arrow_batches(&s.table, None),
        )
        .unwrap();
    let by_file = Server::start(
        s.models.path(),
        &["--features", s.features_file.to_str().unwrap()],
    );
    let by_db = Server::start(
        s.models.path(),
        &[
            "--features",
            &url,
            "--store-ttl-secs",
            "600",
            "--store-timeout-ms",
            "1000",
        ],
    );
    let ids = &s.table.customer_ids;
    assert!(ids.len() > 40);
    let path = |id: &str| format!("/v1/customers/{id}/prediction");
    for id in &ids[..20] {
        let a = by_file.client().get(&path(id)).unwrap();
        let b = by_db.client().get(&path(id)).unwrap();
        assert_eq!(b.status, 200, "{}", b.text());
        assert_eq!(json(&a.body), json(&b.body), "customer {id}");
    }
    let unknown = by_db.client().get(&path("nobody")).unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(unknown.text().contains("unknown_customer"));

    // The database goes away.
    pg.stop();
    let cached = by_db.client().get(&path(&ids[0])).unwrap();
    assert_eq!(cached.status, 200, "a cached customer: {}", cached.text());
    let uncached = by_db.client().get(&path(&ids[30])).unwrap();
    assert_eq!(uncached.status, 503, "{}", uncached.text());
    assert!(
        uncached.text().contains("store_unavailable"),
        "{}",
        uncached.text()
    );
    let body = predict_body(&[row_json(&s.table, 31)]);
    let predicted = by_db.client().post("/v1/predict", &body).unwrap();
    assert_eq!(
        predicted.status,
        200,
        "bodies still score: {}",
        predicted.text()
    );
    let metrics = by_db.client().get("/metrics").unwrap().text();
    assert!(
        metrics.contains("churn_store_lookups_total{result=\"unavailable\"} 1"),
        "{metrics}"
    );

    // It comes back: the pool replaces its dead connections.
    pg.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = by_db.client().get(&path(&ids[30])).unwrap();
        if r.status == 200 {
            let a = by_file.client().get(&path(&ids[30])).unwrap();
            assert_eq!(json(&a.body), json(&r.body));
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(
            std::time::Instant::now() < deadline,
            "the store never recovered"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let log = by_db.stderr.lock().unwrap().clone();
    assert!(!log.contains(churn_testkit::postgres::PASSWORD), "{log}");
}
