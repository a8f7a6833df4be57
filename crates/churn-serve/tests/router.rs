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
