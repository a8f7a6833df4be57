//! Across the workspace, end to end on real files and a real socket: a model trained by
//! the library, saved as an artifact, scored in batch by `churn-score` and served by
//! `churn-serve` gives the same answers, field by field, for the same customers.

use churn_model::model::ModelKind;
use churn_testkit::http::Client;
use clap::Parser;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn batch_and_server_give_identical_results_for_the_same_rows() {
    // Each estimator has its own path through scoring and explaining.
    for kind in [ModelKind::Gbm, ModelKind::Logistic, ModelKind::Forest] {
        same_results(kind);
    }
}

fn same_results(kind: ModelKind) {
    let st = churn_testkit::SavedModel::of_kind(kind);
    let (_, table) = churn_testkit::latest_rows(&st.fx);
    let features = st.dir.path().join("features.parquet");
    churn_features::features::write_table(&table, None, &features).unwrap();
    let out = st.dir.path().join("scores.parquet");
    churn_score::run(churn_score::Args::parse_from([
        "churn-score",
        "--model",
        s(&st.model),
        "--input",
        s(&features),
        "--output",
        s(&out),
        "--quiet",
    ]))
    .unwrap();
    let batch = churn_testkit::read_rows(&out);
    assert_eq!(batch.len(), table.len());
    // Dates are Parquet dates, readable as such by pandas, DuckDB or Spark.
    let types = churn_testkit::parquet_logical_types(&out);
    assert!(
        types.contains(&("as_of".to_string(), "Date".to_string())),
        "{types:?}"
    );

    // The server, in process on a real loopback socket.
    let registry =
        churn_serve::registry::Registry::open(&st.dir.path().join("models"), Default::default())
            .unwrap();
    let app = Arc::new(churn_serve::App::new(
        registry,
        None,
        Default::default(),
        None,
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(churn_serve::serve(listener, app, std::future::pending()));
    let customers: Vec<Value> = (0..table.len())
        .map(|r| {
            let mut f = serde_json::Map::new();
            for (info, col) in table.info.iter().zip(&table.columns) {
                let v = match col {
                    churn_features::dataset::Values::Numeric(v) => json!(v[r]),
                    churn_features::dataset::Values::Categorical(v) => json!(v[r]),
                };
                f.insert(info.name.clone(), v);
            }
            json!({"customer_id": table.customer_ids[r], "features": f})
        })
        .collect();
    let body = serde_json::to_vec(&json!({"customers": customers, "top": 3})).unwrap();
    let r = Client::connect(addr)
        .unwrap()
        .post("/v1/predict", &body)
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let served = r.json()["predictions"].as_array().unwrap().clone();
    assert_eq!(served.len(), batch.len());
    // A customer asked alone is scored alone (a gradient-boosted model walks its trees
    // for one row, and compares bins for a tile of many): the same answer, every
    // number to the bit (JSON numbers print the shortest text that reads back the same).
    for r in [0, table.len() / 2, table.len() - 1] {
        let body = serde_json::to_vec(&json!({"customers": [customers[r]], "top": 3})).unwrap();
        let alone = Client::connect(addr)
            .unwrap()
            .post("/v1/predict", &body)
            .unwrap();
        assert_eq!(alone.status, 200, "{}", alone.text());
        assert_eq!(
            alone.json()["predictions"][0],
            served[r],
            "{kind:?} row {r}"
        );
    }
    let text = |v: &Value| v.as_str().map(str::to_string);
    for (b, p) in batch.iter().zip(&served) {
        assert_eq!(b["customer_id"], text(&p["customer_id"]));
        let prob: f64 = b["churn_probability"].as_deref().unwrap().parse().unwrap();
        assert_eq!(
            prob.to_bits(),
            p["churn_probability"].as_f64().unwrap().to_bits()
        );
        assert_eq!(b["risk_band"], text(&p["risk_band"]));
        let rev = b["revenue_at_risk"]
            .as_deref()
            .map(|v| v.parse::<f64>().unwrap());
        assert_eq!(rev, p["revenue_at_risk"].as_f64());
        // Time to churn and CLV, bit for bit (the model has a survival model).
        for field in ["expected_lifetime_months", "clv", "clv_at_risk"] {
            let batch_value = b[field].as_deref().map(|v| v.parse::<f64>().unwrap());
            assert_eq!(
                batch_value.map(f64::to_bits),
                p[field].as_f64().map(f64::to_bits),
                "{field}"
            );
        }
        assert!(p["survival"]["points"].as_array().unwrap().len() == 5);
        let health = b["health_score"]
            .as_deref()
            .map(|v| v.parse::<f64>().unwrap());
        assert_eq!(health, p["health_score"]["score"].as_f64());
        assert_eq!(b["health_band"], text(&p["health_score"]["band"]));
        assert_eq!(b["intervention"], text(&p["intervention"]["level"]));
        assert_eq!(b["segment"], text(&p["segment"]));
        let signals: Vec<String> = p["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["signal"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(b["signals"].clone().unwrap_or_default(), signals.join(","));
        let reasons: Vec<(&str, f64)> = p["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["feature"].as_str().unwrap(),
                    r["contribution"].as_f64().unwrap(),
                )
            })
            .collect();
        // `name=value (+0.123)`: the same features in the same order, each with the
        // server's contribution to three decimals.
        let listed: Vec<(&str, f64)> = b["top_reasons"]
            .as_deref()
            .unwrap()
            .split("; ")
            .filter(|x| !x.is_empty())
            .map(|x| {
                let (name, rest) = x.split_once('=').unwrap();
                let shown = rest.rsplit_once(" (+").unwrap().1.trim_end_matches(')');
                (name, shown.parse::<f64>().unwrap())
            })
            .collect();
        assert!(!reasons.is_empty() || b["top_reasons"].as_deref() == Some(""));
        assert_eq!(
            listed.len(),
            reasons.len(),
            "{kind:?}: {listed:?} {reasons:?}"
        );
        for ((name, shown), (feature, contribution)) in listed.iter().zip(&reasons) {
            assert_eq!(name, feature, "{kind:?}");
            assert!(
                (shown - contribution).abs() <= 0.0005 + 1e-9,
                "{kind:?} {name}: {shown} vs {contribution}"
            );
        }
        assert_eq!(b["model_version"].as_deref(), Some("v1"));
    }
}
