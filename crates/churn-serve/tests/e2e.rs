//! End to end: the real `churn-serve` binary on an ephemeral loopback port, real model
//! artifacts trained by the product's code, a real HTTP client.

use churn_features::time::format_date;
use churn_model::model::ModelKind;
use churn_scoring::{table_cell, Options, Scorer};
use churn_testkit::http::Client;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::{predict_body, row_json, setup, Server};

#[test]
fn predictions_equal_the_library_for_the_same_rows() {
    let s = setup();
    let server = Server::start(
        s.models.path(),
        &["--features", s.features_file.to_str().unwrap()],
    );
    let mut c = server.client();
    let scorer = Scorer::new(s.v1.clone());
    let columns = scorer.table_columns(&s.table);
    let rows: Vec<usize> = (0..s.table.len().min(40)).collect();
    let jsons: Vec<_> = rows.iter().map(|&r| row_json(&s.table, r)).collect();
    let r = c.post("/v1/predict", &predict_body(&jsons)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["model"], json!({"name": "churn", "version": "v1"}));
    let preds = body["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), rows.len());
    for (&row, p) in rows.iter().zip(preds) {
        let lib = scorer
            .score(
                |i| table_cell(columns[i], row),
                Options::default(),
                &mut churn_scoring::Scratch::default(),
            )
            .unwrap();
        assert_eq!(p["customer_id"], json!(s.table.customer_ids[row]));
        assert_eq!(
            p["churn_probability"].as_f64().unwrap().to_bits(),
            lib.model.probability.to_bits()
        );
        assert_eq!(p["risk_band"], json!(lib.model.risk_band.as_str()));
        let rules = lib.rules.unwrap();
        assert_eq!(
            p["health_score"]["score"].as_f64(),
            rules.health.map(|h| h.score)
        );
        assert_eq!(
            p["intervention"]["level"],
            json!(rules.intervention.as_str())
        );
        assert_eq!(p["segment"], json!(rules.segment.as_str()));
        assert_eq!(p["signals"].as_array().unwrap().len(), rules.signal_count());
        assert_eq!(
            p["reasons"].as_array().unwrap().len(),
            lib.model.reasons.len()
        );
        assert_eq!(p["revenue_at_risk"].as_f64(), lib.model.revenue_at_risk);
        // The same customer through the feature store answers the same.
        let id = &s.table.customer_ids[row];
        let one = c.get(&format!("/v1/customers/{id}/prediction")).unwrap();
        assert_eq!(one.status, 200, "{}", one.text());
        let one = one.json();
        assert_eq!(one["churn_probability"], p["churn_probability"]);
        assert_eq!(one["health_score"], p["health_score"]);
        assert_eq!(one["as_of"], json!(s.table.as_of[row].map(format_date)));
    }
    // Explanations can be turned off.
    let body = json!({"explain": false, "customers": [{"features": jsons[0]}]});
    let r = c
        .post("/v1/predict", &serde_json::to_vec(&body).unwrap())
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["predictions"][0]["reasons"], json!([]));
    // An empty feature object is valid: everything is imputed and said so, in one
    // warning that names them all, and no imputed input is given as a reason.
    let r = c
        .post(
            "/v1/predict",
            br#"{"customers":[{"customer_id":"new","features":{}}]}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let p = &r.json()["predictions"][0];
    let w = p["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["code"], json!("imputed"));
    assert_eq!(w[0]["feature"], json!("*"));
    assert!(w[0]["message"].as_str().unwrap().contains("tenure_days"));
    assert_eq!(p["reasons"], json!([]), "{p}");
    // Two features given: the reasons are among them, never an imputed one.
    let r = c
        .post(
            "/v1/predict",
            br#"{"customers":[{"features":{"customer_id":7,"mrr":120,"logins_per_week_28d":0.5}}]}"#,
        )
        .unwrap();
    assert_eq!(r.json()["predictions"][0]["customer_id"], json!("7"));
    for reason in r.json()["predictions"][0]["reasons"].as_array().unwrap() {
        let f = reason["feature"].as_str().unwrap();
        assert!(f == "mrr" || f == "logins_per_week_28d", "{reason}");
        assert!(!reason["value"].is_null());
    }
    // The README's example request is a realistic row the model knows every field of.
    let example = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/example-request.json"
    ))
    .unwrap();
    let r = c.post("/v1/predict", &example).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let p = &r.json()["predictions"][0];
    assert_eq!(p["reasons"].as_array().unwrap().len(), 5, "{p}");
    assert!(
        p["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["feature"] != json!("*")),
        "{p}"
    );
    // The models route shows the schema and the history.
    let m = c.get("/v1/models").unwrap().json();
    assert_eq!(m["models"][0]["version"], json!("v1"));
    assert_eq!(
        m["models"][0]["features"].as_array().unwrap().len(),
        s.table.info.len()
    );
    assert_eq!(m["history"][0]["event"], json!("loaded"));
    let api = c.get("/openapi.json").unwrap().json();
    assert!(api["paths"]["/v1/predict"]["post"].is_object());
    // The document lists every error code a client can get.
    let codes: Vec<&str> = api["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no ErrorCode enum in {}", api["components"]))
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "bad_json",
        "missing_customer_id",
        "model_required",
        "overloaded",
        "timeout",
    ] {
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }
}

fn expect_error(r: &churn_testkit::http::Response, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"]["code"], json!(code), "{e}");
    assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    if let Some(f) = field {
        assert_eq!(e["error"]["field"], json!(f), "{e}");
    }
}

#[test]
fn client_mistakes_get_4xx_json_errors_naming_the_field() {
    let s = setup();
    let server = Server::start(
        s.models.path(),
        &[
            "--max-batch",
            "3",
            "--max-body-bytes",
            "20000",
            "--features",
            s.features_file.to_str().unwrap(),
        ],
    );
    let mut c = server.client();
    let row = row_json(&s.table, 0);
    let post = |c: &mut Client, v: Value| {
        c.post("/v1/predict", &serde_json::to_vec(&v).unwrap())
            .unwrap()
    };

    let r = post(
        &mut c,
        json!({"model": "nope", "customers": [{"features": row}]}),
    );
    expect_error(&r, 404, "unknown_model", Some("model"));

    let mut wrong = row.clone();
    wrong.insert("mrr".into(), json!("a lot"));
    let r = post(
        &mut c,
        json!({"customers": [{"features": row}, {"features": wrong}]}),
    );
    expect_error(&r, 400, "wrong_type", Some("customers[1].features.mrr"));
    assert!(r.text().contains("expects a number or null"));

    let mut obj = row.clone();
    obj.insert("plan".into(), json!({"a": 1}));
    let r = post(&mut c, json!({"customers": [{"features": obj}]}));
    expect_error(&r, 400, "wrong_type", Some("customers[0].features.plan"));

    for bad in ["NaN", "Infinity", "-inf"] {
        let mut nan = row.clone();
        nan.insert("tenure_days".into(), json!(bad));
        let r = post(&mut c, json!({"customers": [{"features": nan}]}));
        expect_error(
            &r,
            400,
            "not_finite",
            Some("customers[0].features.tenure_days"),
        );
    }
    // A literal out of f64 range is refused by the JSON parser.
    let r = c
        .post(
            "/v1/predict",
            br#"{"customers":[{"features":{"mrr":1e999}}]}"#,
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());

    let mut unknown = row.clone();
    unknown.insert("favourite_colour".into(), json!("blue"));
    let r = post(&mut c, json!({"customers": [{"features": unknown}]}));
    expect_error(
        &r,
        400,
        "unknown_feature",
        Some("customers[0].features.favourite_colour"),
    );

    // A prediction that cannot be matched to its customer is refused, not answered `null`.
    let mut anonymous = row.clone();
    anonymous.remove("customer_id");
    let r = post(
        &mut c,
        json!({"customers": [{"features": row}, {"features": anonymous}]}),
    );
    expect_error(
        &r,
        400,
        "missing_customer_id",
        Some("customers[1].customer_id"),
    );
    assert!(
        r.text().contains("`customer_id` is required"),
        "{}",
        r.text()
    );
    // The error is the first bad customer's, whichever check finds it (a wrong type at
    // 1 before a missing id at 2).
    let r = post(
        &mut c,
        json!({"customers": [{"features": row}, {"features": wrong}, {"features": anonymous}]}),
    );
    expect_error(&r, 400, "wrong_type", Some("customers[1].features.mrr"));
    for blank in ["", "  "] {
        let r = post(
            &mut c,
            json!({"customers": [{"customer_id": blank, "features": row}]}),
        );
        expect_error(
            &r,
            400,
            "missing_customer_id",
            Some("customers[0].customer_id"),
        );
    }
    let r = post(
        &mut c,
        json!({"customers": [{"customer_id": "x".repeat(257), "features": row}]}),
    );
    expect_error(&r, 400, "invalid_request", Some("customers[0].customer_id"));
    assert!(
        r.text().contains("longer than 256 characters"),
        "{}",
        r.text()
    );
    // A JSON boolean is not a number: refused, naming the field, not scored as 1.
    let mut flagged = row.clone();
    flagged.insert("mrr".into(), json!(true));
    let r = post(&mut c, json!({"customers": [{"features": flagged}]}));
    expect_error(&r, 400, "wrong_type", Some("customers[0].features.mrr"));
    assert!(r.text().contains("found the boolean true"), "{}", r.text());

    let four: Vec<Value> = (0..4).map(|_| json!({"features": {}})).collect();
    let r = post(&mut c, json!({ "customers": four }));
    expect_error(&r, 413, "batch_too_large", Some("customers"));

    let big = vec![b' '; 30_000];
    let r = c.post("/v1/predict", &big).unwrap();
    expect_error(&r, 413, "body_too_large", None);

    let r = c.post("/v1/predict", b"{\"customers\": [").unwrap();
    expect_error(&r, 400, "bad_json", None);
    let r = c.post("/v1/predict", br#"{"customers": 3}"#).unwrap();
    expect_error(&r, 400, "invalid_request", None);
    let r = c.post("/v1/predict", br#"{"clients": []}"#).unwrap();
    expect_error(&r, 400, "invalid_request", None);
    let r = post(&mut c, json!({"top": 500, "customers": []}));
    expect_error(&r, 400, "invalid_request", Some("top"));

    let r = c.get("/v1/customers/nobody/prediction").unwrap();
    expect_error(&r, 404, "unknown_customer", None);
    let r = c.get("/v1/nothing-here").unwrap();
    expect_error(&r, 404, "not_found", None);

    // None of it was a server error, and the server still answers.
    let metrics = c.get("/metrics").unwrap().text();
    assert!(!metrics.contains("status=\"5"), "{metrics}");
    // A string (twice), an object and a boolean for a number or a category.
    assert!(
        metrics.contains("churn_http_errors_total{code=\"wrong_type\"} 4"),
        "{metrics}"
    );
    let r = post(&mut c, json!({"customers": [{"features": row}]}));
    assert_eq!(r.status, 200);
}

#[test]
fn a_token_guards_v1_routes_but_not_health_or_metrics() {
    let s = setup();
    let token_file = s.models.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let server = Server::start(
        s.models.path(),
        &["--token-file", token_file.to_str().unwrap()],
    );
    let mut c = server.client();
    expect_error(&c.get("/v1/models").unwrap(), 401, "unauthorized", None);
    assert_eq!(
        c.get("/v1/models").unwrap().header("www-authenticate"),
        Some("Bearer")
    );
    c.token = Some("s3cret-tokeN".into());
    expect_error(&c.get("/v1/models").unwrap(), 401, "unauthorized", None);
    c.token = Some("s3cret".into());
    expect_error(
        &c.post("/v1/predict", br#"{"customers":[]}"#).unwrap(),
        401,
        "unauthorized",
        None,
    );
    c.token = Some("s3cret-token".into());
    assert_eq!(c.get("/v1/models").unwrap().status, 200);
    assert_eq!(
        c.post("/v1/predict", br#"{"customers":[]}"#)
            .unwrap()
            .status,
        200
    );
    c.token = None;
    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(c.get(open).unwrap().status, 200, "{open}");
    }

    // Without a token file the same routes need nothing.
    let server = Server::start(s.models.path(), &[]);
    assert_eq!(server.client().get("/v1/models").unwrap().status, 200);
}

#[test]
fn reload_swaps_versions_under_load_without_a_failed_request() {
    let s = setup();
    let server = Server::start(s.models.path(), &["--watch-ms", "100"]);
    let body = Arc::new(predict_body(&[row_json(&s.table, 0)]));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let versions = Arc::new(Mutex::new(Vec::<String>::new()));
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let (body, stop, failures, versions) = (
                body.clone(),
                stop.clone(),
                failures.clone(),
                versions.clone(),
            );
            let mut c = server.client();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match c.post("/v1/predict", &body) {
                        Ok(r) if r.status == 200 => {
                            let v = r.json()["model"]["version"].as_str().unwrap().to_string();
                            let mut vs = versions.lock().unwrap();
                            if vs.last() != Some(&v) {
                                vs.push(v);
                            }
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // v2 by explicit reload.
    let v2 = churn_testkit::train(&s.fx, ModelKind::Gbm, "churn", "v2");
    churn_testkit::save(s.models.path(), &v2);
    let mut c = server.client();
    let r = c.post("/v1/models/reload", b"").unwrap();
    assert!(r.status == 200, "{}", r.text());
    let outcome = &r.json()["models"][0];
    // The watcher may have swapped it first; either way v2 serves.
    assert_eq!(outcome["serving"], json!("v2"), "{outcome}");
    std::thread::sleep(Duration::from_millis(300));
    // v3 found by the watcher alone.
    let v3 = churn_testkit::train(&s.fx, ModelKind::Logistic, "churn", "v3");
    churn_testkit::save(s.models.path(), &v3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.get("/v1/models").unwrap().json()["models"][0]["version"] != json!("v3") {
        assert!(Instant::now() < deadline, "the watcher did not load v3");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.join().unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let seen = versions.lock().unwrap().clone();
    assert_eq!(seen.first().map(String::as_str), Some("v1"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("v3"), "{seen:?}");
    let history = c.get("/v1/models").unwrap().json()["history"].clone();
    let events: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{} {}",
                h["event"].as_str().unwrap(),
                h["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(events, ["loaded v1", "swapped v2", "swapped v3"]);
    assert!(server.stderr.lock().unwrap().contains("swapped"));
}

#[test]
fn a_corrupt_new_version_is_refused_and_the_old_keeps_answering() {
    let s = setup();
    let server = Server::start(s.models.path(), &["--watch-ms", "0"]);
    let mut c = server.client();
    let body = predict_body(&[row_json(&s.table, 0)]);
    let before = c.post("/v1/predict", &body).unwrap().json();
    // A version whose model.bin is cut short, named by LATEST.
    let mut v2 = s.v1.clone();
    v2.version = "v2".into();
    let dir = churn_testkit::save(s.models.path(), &v2);
    let bytes = std::fs::read(dir.join("model.bin")).unwrap();
    std::fs::write(dir.join("model.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let r = c.post("/v1/models/reload", b"").unwrap();
    assert_eq!(r.status, 422, "{}", r.text());
    let j = r.json();
    assert_eq!(j["ok"], json!(false));
    assert_eq!(j["models"][0]["outcome"], json!("failed"));
    assert_eq!(j["models"][0]["serving"], json!("v1"));
    assert!(
        j["models"][0]["message"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{j}"
    );
    let after = c.post("/v1/predict", &body).unwrap();
    assert_eq!(after.status, 200);
    assert_eq!(after.json(), before);
    let metrics = c.get("/metrics").unwrap().text();
    assert!(
        metrics.contains("churn_model_reload_failures_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("churn_model_info{model=\"churn\",version=\"v1\"} 1"));
    let history = c.get("/v1/models").unwrap().json()["history"].clone();
    assert_eq!(history[1]["event"], json!("failed"));
    assert_eq!(history[1]["version"], json!("v2"));
}

#[test]
fn start_is_refused_without_a_valid_model() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_churn-serve"))
        .arg("--models")
        .arg(empty.path())
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no valid model under"), "{err}");
    // A model directory whose only version is corrupt names the problem.
    let m = empty.path().join("churn");
    std::fs::create_dir_all(m.join("v1")).unwrap();
    std::fs::write(m.join("v1/model.bin"), b"not a model").unwrap();
    std::fs::write(m.join("LATEST"), "v1").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_churn-serve"))
        .arg("--models")
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a churn model file"), "{err}");
}

/// Checks the OpenMetrics text exposition format line by line: comments are HELP, TYPE
/// (of a known type) or UNIT, the text ends with `# EOF`, each sample is
/// `name{labels} value` with a valid name, well-formed labels and a float value, every
/// sample belongs to a declared family (counters as `_total`), and histogram buckets are
/// cumulative and end with `+Inf` equal to `_count`.
fn check_exposition(text: &str) -> usize {
    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut types = std::collections::HashMap::new();
    let mut samples = 0;
    let mut last_bucket: Option<(String, f64)> = None;
    assert_eq!(text.lines().last(), Some("# EOF"), "no # EOF at the end");
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("a metric name");
            assert!(valid_name(name), "{line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(
                    [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "info",
                        "unknown"
                    ]
                    .contains(&t),
                    "{line}"
                );
                types.insert(name.to_string(), t.to_string());
            } else {
                assert!(kind == "HELP" || kind == "UNIT", "{line}");
            }
            continue;
        }
        assert!(!line.trim().is_empty(), "blank line in exposition");
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(valid_name(name), "{line}");
        let mut le = None;
        if !labels.is_empty() {
            // label="value" pairs separated by commas; values may hold escaped quotes.
            let mut rest = labels;
            while !rest.is_empty() {
                let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                assert!(valid_name(key), "{line}");
                let mut end = None;
                let mut escaped = false;
                for (i, ch) in after.char_indices() {
                    match ch {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => {
                            end = Some(i);
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                let end = end.expect("closing quote");
                if key == "le" {
                    le = Some(after[..end].to_string());
                }
                rest = after[end + 1..].trim_start_matches(',');
            }
        }
        let family = [
            ("_bucket", "histogram"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
            ("_total", "counter"),
        ]
        .iter()
        .find_map(|(suffix, kind)| {
            name.strip_suffix(suffix)
                .filter(|f| types.get(*f).is_some_and(|t| t == kind))
        })
        .unwrap_or(name);
        assert!(
            types.get(family).is_none_or(|t| t != "counter") || name.ends_with("_total"),
            "a counter sample without _total: {line}"
        );
        assert!(
            types.contains_key(family),
            "sample of undeclared family: {line}"
        );
        if name.ends_with("_bucket") {
            let le = le.expect("a bucket has le");
            // The series without its `le` label, wherever the label sits.
            let key = series
                .split([',', '{', '}'])
                .filter(|part| !part.starts_with("le="))
                .collect::<Vec<_>>()
                .join(",");
            if let Some((k, prev)) = &last_bucket {
                if *k == key {
                    assert!(value >= *prev, "buckets not cumulative: {line}");
                }
            }
            last_bucket = Some((key, value));
            if le == "+Inf" {
                let count_line = format!("{}_count", family);
                assert!(text.contains(&count_line));
            }
        }
        samples += 1;
    }
    samples
}

#[test]
fn metrics_are_prometheus_text_with_phases_and_bands() {
    let s = setup();
    let server = Server::start(s.models.path(), &[]);
    let mut c = server.client();
    let rows: Vec<_> = (0..20).map(|r| row_json(&s.table, r)).collect();
    assert_eq!(
        c.post("/v1/predict", &predict_body(&rows)).unwrap().status,
        200
    );
    assert_eq!(c.post("/v1/predict", b"oops").unwrap().status, 400);
    let r = c.get("/metrics").unwrap();
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text; version=1.0.0"));
    let text = r.text();
    assert!(check_exposition(&text) > 50);
    for phase in ["parse", "validate", "predict", "rules", "serialise"] {
        assert!(
            text.contains(&format!(
                "churn_predict_phase_duration_seconds_count{{phase=\"{phase}\"}} 1"
            )),
            "{phase}: {text}"
        );
    }
    let banded: f64 = text
        .lines()
        .filter(|l| l.starts_with("churn_predictions_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(banded, 20.0);
    assert!(text.contains("churn_http_requests_total{route=\"/v1/predict\",status=\"400\"} 1"));
    assert!(text.contains("churn_http_errors_total{code=\"bad_json\"} 1"));
    // The checker itself refuses broken text.
    let broken = std::panic::catch_unwind(|| {
        check_exposition("# TYPE x counter\nx_total{a=\"1} 2\n# EOF\n")
    });
    assert!(broken.is_err());
    let undeclared = std::panic::catch_unwind(|| check_exposition("y 1\n# EOF\n"));
    assert!(undeclared.is_err());
    let unterminated = std::panic::catch_unwind(|| check_exposition("# TYPE x gauge\nx 1\n"));
    assert!(unterminated.is_err());
    let bare_counter =
        std::panic::catch_unwind(|| check_exposition("# TYPE x counter\nx 1\n# EOF\n"));
    assert!(bare_counter.is_err());
    assert_eq!(check_exposition("# TYPE x counter\nx_total 1\n# EOF\n"), 1);
}

#[test]
fn sigterm_drains_a_request_in_flight_then_exits() {
    let s = setup();
    let server = Server::start(s.models.path(), &[]);
    let rows: Vec<_> = (0..s.table.len()).map(|r| row_json(&s.table, r)).collect();
    let mut many = Vec::new();
    while many.len() < 5000 {
        many.extend(rows.iter().cloned());
    }
    many.truncate(5000);
    let body = predict_body(&many);
    let mut c = server.client();
    let pending = std::thread::spawn(move || c.post("/v1/predict", &body).unwrap());
    // Signal only once the request is being handled (the metrics request itself is the
    // other one in flight), so the test does not depend on timing.
    let mut probe = server.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = probe.get("/metrics").unwrap().text();
        let in_flight: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("churn_http_requests_in_flight "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        // (On a fast machine it may even be done already; then there is nothing to drain.)
        let done = text.contains("route=\"/v1/predict\",status=\"200\"");
        if in_flight >= 2.0 || done {
            break;
        }
        assert!(Instant::now() < deadline, "the large request never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(probe);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let r = pending.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["predictions"].as_array().unwrap().len(), 5000);
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(server.stderr.lock().unwrap().contains("draining"));
}
