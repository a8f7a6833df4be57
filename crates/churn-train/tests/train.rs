//! `churn-train train` and `evaluate` end to end on simulated files.

mod common;

use common::{fails, generate, ok, s};

use std::path::{Path, PathBuf};

fn latest(models: &Path, name: &str) -> PathBuf {
    let v = std::fs::read_to_string(models.join(name).join("LATEST")).unwrap();
    models.join(name).join(v.trim())
}

#[test]
fn trains_on_event_data_beats_the_rules_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let models = dir.path().join("models");
    generate(&data, 600, 10, 5);
    let out = ok(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&models),
        "--name",
        "demo",
    ]);
    assert!(
        out.contains("all folds") && out.contains("model written to"),
        "{out}"
    );
    let version = latest(&models, "demo");
    for f in ["model.bin", "model.json", "report.json", "report.html"] {
        assert!(version.join(f).is_file(), "{f} missing");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("report.json")).unwrap()).unwrap();
    let model_auc = report["overall"]["roc_auc"].as_f64().unwrap();
    let rules_auc = report["rules_health"]["roc_auc"].as_f64().unwrap();
    assert!(
        model_auc > rules_auc,
        "backtest ROC AUC {model_auc} should beat the health score's {rules_auc}"
    );
    // An expanding window: every observation date with enough history before it is a
    // backtest fold (not just the last three), in date order.
    let folds: Vec<&str> = report["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(folds.len() >= 4, "{folds:?}");
    assert!(folds.windows(2).all(|w| w[0] < w[1]), "{folds:?}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("model.json")).unwrap()).unwrap();
    assert_eq!(
        meta["format_version"],
        churn_model::artifact::FORMAT_VERSION
    );
    assert_eq!(meta["horizon_days"], 30);
    assert_eq!(meta["training_data"]["sha256"].as_str().unwrap().len(), 64);
    assert!(meta["rules"]["health"]["weights"]["usage"]
        .as_f64()
        .is_some());
    let html = std::fs::read_to_string(version.join("report.html")).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("ROC curve")
            && !html.contains("http://")
            && !html.contains("https://")
    );
    // Read by a person: the creation time to the second, the cohort bars with a legend,
    // and no cohort row resting on a handful of rows.
    let created = meta["created"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && !created.contains('.'),
        "{created}"
    );
    assert!(
        html.contains(&format!("Trained {created}")),
        "creation time not shown as {created}"
    );
    assert!(html.contains(">predicted</text>") && html.contains(">actual</text>"));
    for c in report["by_cohort"].as_array().unwrap() {
        let rows = c["rows"].as_u64().unwrap();
        let churners = c["metrics"]["positives"].as_u64().unwrap();
        // Pooled to at least 200 rows and 10 churners, unless the whole set is smaller.
        assert!(
            (rows >= 200 && churners >= 10) || report["by_cohort"].as_array().unwrap().len() == 1,
            "{c}"
        );
    }

    // The examples file, trained as a table, gets the same out-of-time backtest.
    let examples = dir.path().join("examples.parquet");
    ok(&["examples", "--data", s(&data), "--out", s(&examples)]);
    let from_table = dir.path().join("from-table");
    let summary = ok(&[
        "train",
        "--table",
        s(&examples),
        "--id",
        "customer_id",
        "--label",
        "label",
        "--out",
        s(&from_table),
        "--name",
        "demo",
        "--json",
    ]);
    // --json: one object on stdout, nothing else, that agrees with the files written.
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let written = latest(&from_table, "demo");
    assert_eq!(summary["path"].as_str().unwrap(), s(&written));
    assert_eq!(
        summary["version"].as_str().unwrap(),
        written.file_name().unwrap().to_str().unwrap()
    );
    assert!(["logistic", "forest", "gbm", "blend"].contains(&summary["chosen"].as_str().unwrap()));
    assert_eq!(summary["candidates"].as_array().unwrap().len(), 4);
    assert_eq!(summary["search"], "quick");
    assert!(summary["rules_rank_as_well"].is_boolean());
    let report2: serde_json::Value = serde_json::from_slice(
        &std::fs::read(latest(&from_table, "demo").join("report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report2["validation"], "out-of-time backtest");
    assert_eq!(summary["backtest"], report2["overall"]);
    assert_eq!(summary["validation"], report2["validation"]);
    assert_eq!(report2["folds"][0]["name"], report["folds"][0]["name"]);
    assert_eq!(
        report2["overall"]["log_loss"],
        report["overall"]["log_loss"]
    );
    assert_eq!(report2["overall"]["roc_auc"], report["overall"]["roc_auc"]);

    // evaluate on a date the model learned the outcomes of: refused, since its help
    // promises data the model never saw...
    let err = fails(&[
        "evaluate",
        "--model",
        s(&models.join("demo")),
        "--data",
        s(&data),
        "--as-of",
        "2024-10-01",
    ]);
    assert!(
        err.contains("trained on outcomes until") && err.contains("--allow-overlap"),
        "{err}"
    );
    // ...unless asked for; evaluate --json through the model directory's LATEST.
    let json = ok(&[
        "evaluate",
        "--model",
        s(&models.join("demo")),
        "--data",
        s(&data),
        "--as-of",
        "2024-10-01",
        "--allow-overlap",
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    for field in [
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "lift_top10",
        "rows",
        "positives",
    ] {
        assert!(!e[field].is_null(), "evaluate --json lacks {field}: {json}");
    }
    assert!(e["rows"].as_u64().unwrap() > 300);
    assert_eq!(
        e["model"]["path"].as_str().unwrap(),
        s(&latest(&models, "demo"))
    );
    let err = fails(&[
        "evaluate",
        "--model",
        s(&models.join("demo")),
        "--data",
        s(&data),
        "--as-of",
        "2024-10-20",
    ]);
    assert!(err.contains("label window"), "{err}");

    // A truncated or foreign model.bin is refused with a clear message.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    let bytes = std::fs::read(version.join("model.bin")).unwrap();
    std::fs::write(broken.join("model.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&[
        "evaluate",
        "--model",
        s(&broken),
        "--data",
        s(&data),
        "--as-of",
        "2024-10-01",
    ]);
    assert!(err.contains("truncated"), "{err}");
    std::fs::write(broken.join("model.bin"), b"PK\x03\x04 not a model").unwrap();
    let err = fails(&[
        "evaluate",
        "--model",
        s(&broken),
        "--data",
        s(&data),
        "--as-of",
        "2024-10-01",
    ]);
    assert!(err.contains("not a churn model file"), "{err}");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    std::fs::write(broken.join("model.bin"), &flipped).unwrap();
    let err = fails(&[
        "evaluate",
        "--model",
        s(&broken),
        "--data",
        s(&data),
        "--as-of",
        "2024-10-01",
    ]);
    assert!(err.contains("checksum"), "{err}");

    // A second run is a new version and moves LATEST.
    ok(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&models),
        "--name",
        "demo",
    ]);
    let versions = std::fs::read_dir(models.join("demo"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(versions, 2);
    assert_ne!(latest(&models, "demo"), version);
}

/// A telco-style table: mixed types, blank numeric cells, Yes/No labels.
fn telco_table(path: &Path, rows: usize, seed: u64) {
    let mut s = seed;
    let mut r = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut text = String::from(
        "customerID,gender,tenure,Contract,MonthlyCharges,TotalCharges,PaperlessBilling,Churn\n",
    );
    for i in 0..rows {
        let tenure = (r() * 72.0).floor();
        let contract = ["Month-to-month", "One year", "Two year"][(r() * 3.0) as usize];
        let monthly = 20.0 + r() * 100.0;
        let total = if i % 97 == 0 {
            String::new()
        } else {
            format!("{:.2}", monthly * tenure)
        };
        let risk = -1.0 - 0.04 * tenure
            + if contract == "Month-to-month" {
                1.5
            } else {
                -0.5
            }
            + 0.01 * monthly
            + (r() - 0.5) * 2.0;
        let churn = if risk > 0.0 { "Yes" } else { "No" };
        let gender = if r() < 0.5 { "Female" } else { "Male" };
        let paperless = if r() < 0.6 { "Yes" } else { "No" };
        text.push_str(&format!(
            "C{i:05},{gender},{tenure},{contract},{monthly:.2},{total},{paperless},{churn}\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn trains_on_a_plain_table_with_cross_validation() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("telco.csv");
    telco_table(&table, 1500, 11);
    let models = dir.path().join("models");
    let out = ok(&[
        "train",
        "--table",
        s(&table),
        "--id",
        "customerID",
        "--label",
        "Churn",
        "--out",
        s(&models),
        "--folds",
        "4",
        "--search",
        "none",
    ]);
    assert!(out.contains("fold 4"), "{out}");
    let version = latest(&models, "churn");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("report.json")).unwrap()).unwrap();
    // Fixed settings: one boosting setting (150 trees of depth 4), no log transform.
    assert_eq!(report["search"], "none");
    for fold in report["folds"].as_array().unwrap() {
        for c in fold["candidates"].as_array().unwrap() {
            let settings = c["settings"].as_str().unwrap();
            assert!(!settings.contains("log1p"), "{settings}");
            if c["kind"] == "gbm" {
                assert!(settings.starts_with("150 trees, depth 4"), "{settings}");
            }
        }
    }
    assert!(
        report["overall"]["roc_auc"].as_f64().unwrap() > 0.8,
        "{}",
        report["overall"]
    );
    assert!(report["rules_health"].is_null());
    let holdout = dir.path().join("holdout.csv");
    telco_table(&holdout, 500, 12);
    let e: serde_json::Value = serde_json::from_str(
        ok(&[
            "evaluate",
            "--model",
            s(&version),
            "--table",
            s(&holdout),
            "--id",
            "customerID",
            "--label",
            "Churn",
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(e["rows"], 500);
    assert!(e["roc_auc"].as_f64().unwrap() > 0.8);
    // A table with nothing but an id and a label is refused, not a panic.
    let bare = dir.path().join("bare.csv");
    std::fs::write(&bare, "id,label\na,yes\nb,no\nc,yes\nd,no\ne,no\nf,yes\n").unwrap();
    let err = fails(&[
        "train",
        "--table",
        s(&bare),
        "--id",
        "id",
        "--label",
        "label",
        "--out",
        s(&models),
        "--folds",
        "2",
    ]);
    assert!(
        err.contains("no feature columns") && !err.contains("panicked"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--table",
        s(&table),
        "--id",
        "customerID",
        "--label",
        "Churned",
        "--out",
        s(&models),
    ]);
    assert!(err.contains("missing required column `Churned`"), "{err}");
    let err = fails(&[
        "train",
        "--table",
        s(&table),
        "--id",
        "customerID",
        "--label",
        "Churn",
        "--out",
        s(&models),
        "--models",
        "svm",
    ]);
    assert!(err.contains("unknown model `svm`"), "{err}");
}

#[test]
fn feature_windows_from_a_file_name_the_features_and_travel_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let models = dir.path().join("models");
    generate(&data, 300, 8, 3);
    let windows = dir.path().join("windows.toml");
    std::fs::write(
        &windows,
        "usage_window_days = 14\nsupport_window_days = 60\n",
    )
    .unwrap();
    let described = ok(&["describe", "--data", s(&data), "--windows", s(&windows)]);
    assert!(described.contains("logins_per_week_14d") && described.contains("tickets_60d"));
    assert!(described.contains("(14 days)") && !described.contains("logins_per_week_28d"));
    ok(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&models),
        "--windows",
        s(&windows),
        "--models",
        "logistic",
        "--search",
        "none",
    ]);
    let version = latest(&models, "churn");
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["feature_settings"]["usage_window_days"], 14);
    assert_eq!(card["feature_settings"]["support_window_days"], 60);
    // The rules found their inputs under the renamed columns.
    assert_eq!(card["rules_apply"], true);
    let names: Vec<&str> = card["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"logins_per_week_14d"), "{names:?}");
    // Evaluating on raw data builds the features with the model's windows.
    let last = card["training_data"]["last_as_of"].as_str().unwrap();
    let run = common::churn_train(&[
        "evaluate",
        "--model",
        s(&version),
        "--data",
        s(&data),
        "--as-of",
        last,
        "--allow-overlap",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && !stderr.contains("lacks model input"),
        "{stderr}"
    );
    let e: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(e["rows"].as_u64().unwrap() > 100, "{e}");
    assert!(e["roc_auc"].as_f64().unwrap() > 0.6, "{e}");

    // A bad windows file names the file and the key.
    std::fs::write(&windows, "usage_window_days = 0\n").unwrap();
    let err = fails(&["describe", "--data", s(&data), "--windows", s(&windows)]);
    assert!(
        err.contains("windows.toml") && err.contains("usage_window_days"),
        "{err}"
    );
    std::fs::write(&windows, "usage_days = 14\n").unwrap();
    let err = fails(&["describe", "--data", s(&data), "--windows", s(&windows)]);
    assert!(err.contains("unknown field `usage_days`"), "{err}");
}
