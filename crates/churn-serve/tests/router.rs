//! The API driven in process: the router answers requests built in memory (tower's
//! `oneshot`), without a socket, so that every validation path is quick to check. The
//! real-port tests (`e2e.rs`, `hardening.rs`) cover the connection layer.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use churn_serve::registry::Registry;
use churn_serve::App;
use common::{predict_body, row_json, setup};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

struct Api {
    router: axum::Router,
}

impl Api {
    fn new(models: &std::path::Path) -> Api {
        let registry = Registry::open(models, Default::default()).unwrap();
        let app = Arc::new(App::new(registry, None, Default::default(), None));
        Api {
            router: churn_serve::router(app),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/v1/predict",
            serde_json::to_vec(&body).unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn the_routes_answer_in_process() {
    let s = setup();
    let api = Api::new(s.models.path());
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            api.call(Method::GET, path, Vec::new()).await.0,
            StatusCode::OK
        );
    }
    let (status, models) = api.call(Method::GET, "/v1/models", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(models.to_string().contains("\"v1\""), "{models}");
    // The windows the model's features were computed with.
    assert_eq!(
        models["models"][0]["feature_settings"]["usage_window_days"],
        json!(28),
        "{models}"
    );
    let rows: Vec<_> = (0..5).map(|r| row_json(&s.table, r)).collect();
    let (status, answer) = api
        .call(Method::POST, "/v1/predict", predict_body(&rows))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 5);
    for (p, row) in predictions.iter().zip(&rows) {
        assert_eq!(p["customer_id"], row["customer_id"]);
        let probability = p["churn_probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&probability));
    }
    // The OpenAPI document lists every error code a client can get.
    let (_, doc) = api.call(Method::GET, "/openapi.json", Vec::new()).await;
    let text = doc.to_string();
    for code in [
        "missing_customer_id",
        "wrong_type",
        "unknown_model",
        "not_finite",
    ] {
        assert!(text.contains(code), "{code} not in the OpenAPI document");
    }
}

#[tokio::test]
async fn every_client_mistake_is_a_4xx_naming_its_field() {
    let s = setup();
    let api = Api::new(s.models.path());
    let row = row_json(&s.table, 0);
    let with = |name: &str, value: Value| {
        let mut r = row.clone();
        r.insert(name.into(), value);
        json!({"customers": [{"features": r}]})
    };
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            with("mrr", json!("a lot")),
            StatusCode::BAD_REQUEST,
            "wrong_type",
            Some("customers[0].features.mrr"),
        ),
        (
            with("mrr", json!(true)),
            StatusCode::BAD_REQUEST,
            "wrong_type",
            Some("customers[0].features.mrr"),
        ),
        (
            with("plan", json!({"a": 1})),
            StatusCode::BAD_REQUEST,
            "wrong_type",
            Some("customers[0].features.plan"),
        ),
        (
            with("mrr", json!("NaN")),
            StatusCode::BAD_REQUEST,
            "not_finite",
            Some("customers[0].features.mrr"),
        ),
        (
            with("favourite_colour", json!("red")),
            StatusCode::BAD_REQUEST,
            "unknown_feature",
            Some("customers[0].features.favourite_colour"),
        ),
        (
            with("customer_id", json!("")),
            StatusCode::BAD_REQUEST,
            "missing_customer_id",
            Some("customers[0].customer_id"),
        ),
        (
            with("customer_id", json!("x".repeat(257))),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("customers[0].customer_id"),
        ),
        (
            json!({"model": "nope", "customers": [{"features": row}]}),
            StatusCode::NOT_FOUND,
            "unknown_model",
            Some("model"),
        ),
        (
            json!({"top": 51, "customers": [{"features": row}]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("top"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, e) = api.post(body.clone()).await;
        assert_eq!(got, status, "{body}: {e}");
        assert_eq!(e["error"]["code"], json!(code), "{body}: {e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
        if let Some(f) = field {
            assert_eq!(e["error"]["field"], json!(f), "{body}: {e}");
        }
    }
    let (status, e) = api
        .call(Method::POST, "/v1/predict", b"{\"customers\": [".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], json!("bad_json"));
}

/// Customers are checked and scored a tile at a time, but a request with several bad
/// customers fails on the first of them in customer order, whatever the kind of
/// mistake (its JSON, its id, a feature's value), within a tile and across tiles.
#[tokio::test]
async fn a_request_fails_on_its_first_bad_customer() {
    let s = setup();
    let api = Api::new(s.models.path());
    let good = |k: usize| {
        let mut r = row_json(&s.table, k % s.table.len());
        r.insert("customer_id".into(), json!(format!("C{k}")));
        json!({ "features": r })
    };
    let unknown_feature = |k: usize| {
        let mut c = good(k);
        c["features"]["favourite_colour"] = json!("red");
        c
    };
    let blank_id = |k: usize| {
        let mut c = good(k);
        c["features"]["customer_id"] = json!(" ");
        c
    };
    let not_json_shaped = |_: usize| json!({"features": 5});
    let tile = churn_scoring::TILE_ROWS;
    type Bad<'a> = &'a dyn Fn(usize) -> Value;
    // Customers, the bad ones (where, how), the error's code and field.
    type Case<'a> = (usize, Vec<(usize, Bad<'a>)>, &'a str, String);
    let cases: Vec<Case> = vec![
        (
            4,
            vec![(1, &unknown_feature), (2, &blank_id)],
            "unknown_feature",
            "customers[1].features.favourite_colour".into(),
        ),
        (
            4,
            vec![(1, &blank_id), (2, &unknown_feature)],
            "missing_customer_id",
            "customers[1].customer_id".into(),
        ),
        (
            4,
            vec![(0, &unknown_feature), (3, &not_json_shaped)],
            "unknown_feature",
            "customers[0].features.favourite_colour".into(),
        ),
        (
            4,
            vec![(2, &not_json_shaped), (3, &unknown_feature)],
            "invalid_request",
            "customers[2]".into(),
        ),
        // The first bad customer in a later tile, another bad one after it.
        (
            tile + 20,
            vec![(tile + 3, &unknown_feature), (tile + 9, &blank_id)],
            "unknown_feature",
            format!("customers[{}].features.favourite_colour", tile + 3),
        ),
        // The last customer of the first tile, and a bad one in the next.
        (
            tile + 5,
            vec![(tile - 1, &blank_id), (tile, &unknown_feature)],
            "missing_customer_id",
            format!("customers[{}].customer_id", tile - 1),
        ),
    ];
    for (n, bad, code, field) in cases {
        let customers: Vec<Value> = (0..n)
            .map(|k| match bad.iter().find(|(at, _)| *at == k) {
                Some((_, make)) => make(k),
                None => good(k),
            })
            .collect();
        let (status, e) = api.post(json!({ "customers": customers })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {e}");
        assert_eq!(e["error"]["code"], json!(code), "{field}: {e}");
        assert_eq!(e["error"]["field"], json!(field), "{e}");
    }
    // With no bad customer, every one is answered, in order.
    let customers: Vec<Value> = (0..tile + 5).map(good).collect();
    let (status, answer) = api.post(json!({ "customers": customers })).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ids: Vec<&str> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["customer_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..tile + 5).map(|k| format!("C{k}")).collect();
    assert_eq!(ids, expected);
}
