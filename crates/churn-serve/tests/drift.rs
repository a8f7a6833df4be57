//! Live drift on `/metrics`: the real server, a model saved by the trainer (with its
//! reference profile), and traffic like and unlike the training data.

mod common;

use common::{metric, predict_body, row_json, Server};
use serde_json::json;

#[test]
fn live_drift_gauges_follow_the_traffic_and_single_out_a_shifted_input() {
    let data = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(data.path(), 400, 21);
    let models = tempfile::tempdir().unwrap();
    churn_testkit::train_and_publish(&fx, models.path(), "churn");
    let (_, table) = churn_testkit::latest_rows(&fx);
    let server = Server::start(models.path(), &[]);
    let mut c = server.client();
    let scrape = |c: &mut churn_testkit::http::Client| c.get("/metrics").unwrap().text();

    // Before any traffic: the window is empty and every PSI is zero.
    let text = scrape(&mut c);
    assert_eq!(
        metric(&text, "churn_drift_window_predictions{model=\"churn\"}"),
        Some(0.0)
    );
    let shifted = "avg_session_minutes_28d";
    let psi_of = |text: &str, input: &str| {
        metric(
            text,
            &format!("churn_drift_input_psi{{model=\"churn\",input=\"{input}\"}}"),
        )
    };
    assert_eq!(psi_of(&text, shifted), Some(0.0), "{text}");

    // The latest training date's rows, as they are: the profile's own population.
    let rows: Vec<_> = (0..table.len()).map(|r| row_json(&table, r)).collect();
    assert_eq!(
        c.post("/v1/predict", &predict_body(&rows)).unwrap().status,
        200
    );
    let text = scrape(&mut c);
    assert_eq!(
        metric(&text, "churn_drift_window_predictions{model=\"churn\"}"),
        Some(table.len() as f64)
    );
    let inputs: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("churn_drift_input_psi{model=\"churn\",input=\""))
        .map(|l| {
            let (name, value) = l.split_once("\"} ").unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect();
    assert!(inputs.len() > 20, "{inputs:?}");
    assert!(inputs.iter().all(|(_, psi)| *psi < 0.1), "{inputs:?}");
    let score_psi = metric(&text, "churn_drift_score_psi{model=\"churn\"}").unwrap();
    assert!(score_psi < 0.25, "{score_psi}");

    // The same customers again with sessions a fifth as long: that input, and only
    // it, moves past the retrain threshold.
    let shorter: Vec<_> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(v) = r[shifted].as_f64() {
                r.insert(shifted.into(), json!(v * 0.2));
            }
            r
        })
        .collect();
    for _ in 0..3 {
        assert_eq!(
            c.post("/v1/predict", &predict_body(&shorter))
                .unwrap()
                .status,
            200
        );
    }
    let text = scrape(&mut c);
    assert_eq!(
        metric(&text, "churn_drift_window_predictions{model=\"churn\"}"),
        Some(4.0 * table.len() as f64)
    );
    assert!(psi_of(&text, shifted).unwrap() > 0.25, "{text}");
    for (name, _) in inputs.iter().filter(|(n, _)| n != shifted) {
        assert!(psi_of(&text, name).unwrap() < 0.1, "{name}: {text}");
    }

    // --drift-window-mins 0: no drift series at all.
    let off = Server::start(models.path(), &["--drift-window-mins", "0"]);
    let text = off.client().get("/metrics").unwrap().text();
    assert!(!text.contains("churn_drift_input_psi{"), "{text}");
}
