//! `churn-train monitor` end to end: a model trained on a simulated base, monitored on
//! the same base later, with and without the simulator's drift switch.

mod common;

use common::{churn_train, fails, generate, ok, s};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Customers of the simulated base: enough churners over six matured months (about
/// 250) that a calibration ratio of 1.25 is several standard errors away.
const CUSTOMERS: u32 = 1500;
/// Months of training data (from 2024-01-01), then of the data monitored. A data
/// window younger than about 18 months still moves the inputs that look back over the
/// whole history (days since the last survey, time to value): see docs/monitoring.md.
const TRAIN_MONTHS: u32 = 18;
const LATER_MONTHS: u32 = 24;
/// The first day after the training data: where drift starts.
const DRIFT_FROM: &str = "2025-07-01";

/// Trains the fast settings (logistic, no search, three backtest folds) on `months` of
/// the base of `seed`; returns the model directory.
fn train(dir: &Path, seed: u64) -> PathBuf {
    let data = dir.join(format!("train-{seed}"));
    generate(&data, CUSTOMERS, TRAIN_MONTHS, seed);
    let models = dir.join(format!("models-{seed}"));
    ok(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&models),
        "--models",
        "logistic",
        "--search",
        "none",
        "--folds",
        "3",
    ]);
    models.join("churn")
}

/// Simulates the later data of `seed`, with extra `generate` arguments (a drift).
fn later(dir: &Path, name: &str, seed: u64, extra: &[&str]) -> PathBuf {
    let data = dir.join(name);
    let mut args = vec![
        "generate".to_string(),
        "--out".into(),
        s(&data).into(),
        "--customers".into(),
        CUSTOMERS.to_string(),
        "--months".into(),
        LATER_MONTHS.to_string(),
        "--seed".into(),
        seed.to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    data
}

/// Runs the monitor; returns its exit code and its JSON.
fn monitor(model: &Path, data: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "monitor",
        "--model",
        s(model),
        "--data",
        s(data),
        "--json",
        "-",
    ];
    args.extend_from_slice(extra);
    let out = churn_train(&args);
    let code = out.status.code().expect("exited");
    assert!(
        [0, 10, 20].contains(&code),
        "monitor failed ({code}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        code,
        serde_json::from_slice(&out.stdout).expect("one JSON object"),
    )
}

fn flagged(m: &Value) -> Vec<String> {
    m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["flagged"] == true)
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(m: &'a Value, code: &str) -> Option<&'a Value> {
    m["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
}

#[test]
fn an_unchanged_base_stays_ok_and_shorter_sessions_are_flagged_with_the_calibration_shift() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), 11);
    let plain = later(dir.path(), "plain", 11, &[]);
    let (code, m) = monitor(&model, &plain, &[]);
    assert_eq!(m["verdict"]["level"], "ok", "{:#}", m["verdict"]);
    assert_eq!(code, 0);
    assert!(flagged(&m).is_empty(), "{:?}", flagged(&m));
    // Six monthly scoring dates after the training labels have matured by the end.
    let dates = m["realised"]["dates"].as_array().unwrap();
    assert_eq!(dates.len(), 6, "{:#}", m["realised"]);
    assert_eq!(dates[0]["as_of"], DRIFT_FROM);

    // Realised figures are what `evaluate --as-of` reports for each matured date.
    for d in dates {
        let as_of = d["as_of"].as_str().unwrap();
        let e: Value = serde_json::from_str(&ok(&[
            "evaluate",
            "--model",
            s(&model),
            "--data",
            s(&plain),
            "--as-of",
            as_of,
            "--json",
        ]))
        .unwrap();
        for field in [
            "rows",
            "positives",
            "roc_auc",
            "pr_auc",
            "lift_top10",
            "log_loss",
            "brier",
            "predicted_churn_pct",
            "actual_churn_pct",
        ] {
            assert_eq!(d[field], e[field], "{field} on {as_of}");
        }
    }

    // Every matured row counts in exactly one signup cohort.
    let cohort_rows: u64 = m["realised"]["by_cohort"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(
        cohort_rows,
        m["realised"]["pooled"]["rows"].as_u64().unwrap()
    );

    // Sessions 40 % shorter on the basic plan from the first day after training: the
    // session length input is flagged, nothing else, and the model (which reads short
    // sessions as risk) now over-predicts churn that did not follow.
    let drifted = later(
        dir.path(),
        "drifted",
        11,
        &[
            "--drift-from",
            DRIFT_FROM,
            "--drift-session-minutes",
            "0.6",
            "--drift-plan",
            "basic",
        ],
    );
    let (code, m) = monitor(&model, &drifted, &["--out", s(&dir.path().join("m.html"))]);
    assert_eq!(
        flagged(&m),
        ["avg_session_minutes_28d"],
        "{:#}",
        m["verdict"]
    );
    let calibration = finding(&m, "calibration").expect("a calibration finding");
    assert!(
        calibration["message"]
            .as_str()
            .unwrap()
            .contains("over-predicted"),
        "{calibration}"
    );
    assert!(m["realised"]["calibration_ratio"].as_f64().unwrap() > 1.25);
    assert_ne!(m["verdict"]["level"], "ok");
    assert_eq!(code, m["verdict"]["exit_code"].as_i64().unwrap() as i32);
    // The churn actually realised is the unchanged base's: the drift is in the inputs.
    assert_eq!(
        m["realised"]["pooled"]["actual_churn_pct"],
        monitor(&model, &plain, &[]).1["realised"]["pooled"]["actual_churn_pct"]
    );
    let html = std::fs::read_to_string(dir.path().join("m.html")).unwrap();
    assert!(html.contains("avg_session_minutes_28d") && html.contains("Realised performance"));
    let problems = churn_report::audit(&html);
    assert!(problems.is_empty(), "{problems:?}");

    // Stricter thresholds from a file: the same shift now asks for a retrain.
    let strict = dir.path().join("monitor.toml");
    std::fs::write(
        &strict,
        "[calibration]\nratio_watch = 1.1\nratio_retrain = 1.2\n",
    )
    .unwrap();
    let (code, m) = monitor(&model, &drifted, &["--thresholds", s(&strict)]);
    assert_eq!(
        (code, m["verdict"]["level"].as_str().unwrap()),
        (20, "retrain")
    );
    std::fs::write(
        &strict,
        "[calibration]\nratio_watch = 2.0\nratio_retrain = 1.5\n",
    )
    .unwrap();
    let e = fails(&[
        "monitor",
        "--model",
        s(&model),
        "--data",
        s(&drifted),
        "--thresholds",
        s(&strict),
    ]);
    assert!(
        e.contains("calibration.ratio_retrain") && e.contains("monitor.toml"),
        "{e}"
    );
    std::fs::write(&strict, "[inputs]\npsi_wach = 0.2\n").unwrap();
    let e = fails(&[
        "monitor",
        "--model",
        s(&model),
        "--data",
        s(&drifted),
        "--thresholds",
        s(&strict),
    ]);
    assert!(e.contains("psi_wach"), "{e}");
}

#[test]
fn a_churn_rise_shows_as_under_prediction_and_other_seeds_raise_no_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), 12);
    // A price rise: churn hazard x1.8 for everyone from the first day after training.
    let risen = later(
        dir.path(),
        "risen",
        12,
        &["--drift-from", DRIFT_FROM, "--drift-churn", "1.8"],
    );
    let (_, m) = monitor(&model, &risen, &[]);
    let calibration = finding(&m, "calibration").expect("a calibration finding");
    assert!(
        calibration["message"]
            .as_str()
            .unwrap()
            .contains("under-predicted"),
        "{calibration}"
    );
    assert_ne!(m["verdict"]["level"], "ok");

    // No false alarm on other seeds: each its own model and its own later data.
    for seed in [13, 14] {
        let model = train(dir.path(), seed);
        let plain = later(dir.path(), &format!("plain-{seed}"), seed, &[]);
        let (code, m) = monitor(&model, &plain, &[]);
        assert_eq!(
            (code, flagged(&m).len()),
            (0, 0),
            "seed {seed}: {:#}",
            m["verdict"]
        );
    }
}

#[test]
fn monitoring_needs_a_model_with_a_profile_and_says_what_has_not_matured() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), 15);
    // Monitored on its own training data: no scoring date after its labels has
    // matured, so only drift can be judged, and the output says so.
    let data = dir.path().join("train-15");
    let (code, m) = monitor(&model, &data, &[]);
    assert_eq!(code, 0);
    assert!(m["realised"]["dates"].as_array().unwrap().is_empty());
    let nothing = finding(&m, "nothing_matured").expect("says nothing matured");
    assert!(
        nothing["message"].as_str().unwrap().contains(DRIFT_FROM),
        "{nothing}"
    );
    // A bad date and a directory that is not a model are refused with their names.
    let e = fails(&["monitor", "--model", s(&data), "--data", s(&data)]);
    assert!(e.contains("not a model"), "{e}");
    let e = fails(&[
        "monitor",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--as-of",
        "2024-13-01",
    ]);
    assert!(e.contains("2024-13-01"), "{e}");
}

/// The version `LATEST` of a model directory names.
fn latest(model: &Path) -> String {
    std::fs::read_to_string(model.join("LATEST"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn retraining_compares_with_the_serving_model_before_latest_moves() {
    let dir = tempfile::tempdir().unwrap();
    let previous = train(dir.path(), 16);
    let first = latest(&previous);
    let plain = later(dir.path(), "plain", 16, &[]);
    let models = previous.parent().unwrap();
    let retrain = |extra: &[&str]| -> Value {
        let mut args = vec![
            "train",
            "--data",
            s(&plain),
            "--out",
            s(models),
            "--models",
            "logistic",
            "--search",
            "none",
            "--folds",
            "3",
            "--json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    // Retrained on six more months: compared on the backtest rows after the previous
    // model's training labels, and promoted only if its log loss is lower there.
    let run = retrain(&["--compare-to", s(&previous), "--promote-if-better"]);
    let c = &run["comparison"];
    assert_eq!(c["unseen_by_previous"], true, "{c:#}");
    assert!(c["from"].as_str().unwrap() >= DRIFT_FROM, "{c:#}");
    assert!(c["positives"].as_u64().unwrap() >= 30, "{c:#}");
    let better = c["new"]["log_loss"].as_f64() < c["previous_model"]["log_loss"].as_f64();
    assert_eq!(c["better"], better);
    assert_eq!(run["promoted"], better);
    let second = run["version"].as_str().unwrap().to_string();
    assert_eq!(
        latest(&previous),
        if better {
            second.clone()
        } else {
            first.clone()
        }
    );
    let saved: Value = serde_json::from_slice(
        &std::fs::read(models.join("churn").join(&second).join("comparison.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(&saved, c);

    // The same data and settings again, against the version trained on all of it:
    // every row overlaps its training (which favours it), the new out-of-time figures
    // cannot beat its in-sample ones, and LATEST stays.
    let serving = latest(&previous);
    let against = models.join("churn").join(&second);
    let run = retrain(&["--compare-to", s(&against), "--promote-if-better"]);
    assert_eq!(run["comparison"]["unseen_by_previous"], false);
    assert_eq!(run["comparison"]["better"], false);
    assert_eq!(run["promoted"], false);
    assert_eq!(latest(&previous), serving);
    // Without --promote-if-better the comparison is only information.
    let run = retrain(&["--compare-to", s(&against)]);
    assert_eq!(run["promoted"], true);
    assert_eq!(latest(&previous), run["version"].as_str().unwrap());
    let e = fails(&[
        "train",
        "--data",
        s(&plain),
        "--out",
        s(models),
        "--promote-if-better",
    ]);
    assert!(e.contains("--compare-to"), "{e}");
    // A model to compare with that is not there fails at once, naming it.
    let e = fails(&[
        "train",
        "--data",
        s(&plain),
        "--out",
        s(models),
        "--compare-to",
        "/nowhere/churn",
    ]);
    assert!(e.contains("/nowhere/churn"), "{e}");
}
