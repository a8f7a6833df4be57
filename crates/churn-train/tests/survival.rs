//! The survival model's backtest through the real binary: figures that say the model
//! learned something and came true, written where the docs say, and the futures file
//! the lifelines peer reads.

mod common;

use common::{fails, generate, ok, s};

#[test]
fn the_survival_backtest_beats_one_curve_for_everyone_and_its_revenue_comes_true() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(&data, 1500, 24, 21);
    let models = dir.path().join("models");
    let summary = ok(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&models),
        "--models",
        "logistic",
        "--search",
        "none",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let r = &summary["survival"];
    let dates = r["test_dates"].as_array().unwrap();
    assert!((2..=4).contains(&dates.len()), "{r}");
    // Every candidate was judged; the chosen one is the lowest integrated Brier score.
    let candidates = r["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 6);
    let lowest = candidates
        .iter()
        .map(|c| c["integrated_brier"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(r["integrated_brier"].as_f64().unwrap(), lowest);
    // Better than giving everyone the training rows' Kaplan-Meier curve, and ranks.
    let reference = r["reference_integrated_brier"].as_f64().unwrap();
    assert!(lowest < 0.97 * reference, "{lowest} vs {reference}");
    assert!(r["concordance"].as_f64().unwrap() > 0.65, "{r}");
    // Calibrated against Kaplan-Meier at 3, 6 and 12 months.
    let calibration = r["calibration"].as_array().unwrap();
    let months: Vec<u64> = calibration
        .iter()
        .map(|c| c["months"].as_u64().unwrap())
        .collect();
    assert_eq!(months, [3, 6, 12]);
    for c in calibration {
        let (p, k) = (
            c["predicted"].as_f64().unwrap(),
            c["realised"].as_f64().unwrap(),
        );
        assert!((p - k).abs() < 0.05, "{c}");
        assert!(c["mean_abs_error"].as_f64().unwrap() < 0.1, "{c}");
    }
    // What the customers seen through twelve months paid, against the curve's promise.
    let value = &r["value_12m"];
    let ratio = value["realised"].as_f64().unwrap() / value["predicted"].as_f64().unwrap();
    assert!((0.85..1.15).contains(&ratio), "{value}");
    assert!(r["agreement"]["correlation"].as_f64().unwrap() > 0.7, "{r}");
    // Saved beside the model, and shown in the report.
    let version = std::path::PathBuf::from(summary["path"].as_str().unwrap());
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("survival.json")).unwrap()).unwrap();
    assert_eq!(&saved, r);
    let html = std::fs::read_to_string(version.join("report.html")).unwrap();
    assert!(html.contains("Time to churn (survival model)"));
    // The final model's follow-up: the data's months after its first observation date.
    let follow_up = r["follow_up_months"].as_u64().unwrap();
    assert!((2..24).contains(&follow_up), "{r}");
    assert!(html.contains(&format!(
        "Past month {follow_up}, the last its data observed"
    )));
    // The model card describes the survival model the version scores with.
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("model.json")).unwrap()).unwrap();
    let model = &card["survival"];
    assert_eq!(model["follow_up"].as_u64(), Some(follow_up), "{model}");
    assert!(model["beyond_score"].as_f64().is_some(), "{model}");
    assert_eq!(
        model["weights"].as_array().map(Vec::len),
        Some(
            model["preprocessor"]["output_names"]
                .as_array()
                .unwrap()
                .len()
        )
    );

    // The KPI page values today's customers with the model, per cohort, segment and plan.
    let kpis = |model: &std::path::Path, name: &str| -> serde_json::Value {
        let json = dir.path().join(format!("{name}.json"));
        let out = ok(&[
            "kpis",
            "--data",
            s(&data),
            "--out",
            s(&dir.path().join(format!("{name}.html"))),
            "--json",
            s(&json),
            "--model",
            s(model),
        ]);
        assert!(out.contains("model CLV (churn "), "{out}");
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
    };
    let k = kpis(&models.join("churn"), "kpis");
    let v = &k["model_clv"];
    let base = &v["base"];
    let n = base["customers"].as_u64().unwrap();
    // Customers active on the as-of day, counting those in a payment lapse (the model
    // values them at their last MRR); the headline counts the paying ones of the day
    // before.
    let active = k["summary"]["active_customers"].as_u64().unwrap() as f64;
    let valued = (n + v["not_valued"].as_u64().unwrap()) as f64;
    assert!((valued / active - 1.0).abs() < 0.03, "{valued} vs {active}");
    // The base's formula figures are the headline's: the same monthly churn, and so
    // the same CLV up to those few customers' MRR.
    let within = |a: &serde_json::Value, b: &serde_json::Value, tolerance: f64| {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= tolerance * b.abs(), "{a} vs {b}");
    };
    let close = |a: &serde_json::Value, b: &serde_json::Value| within(a, b, 1e-9);
    close(
        &base["monthly_churn_pct"],
        &k["summary"]["monthly_churn_pct"],
    );
    within(&base["arpa"], &k["summary"]["arpa"], 0.02);
    within(&base["formula_clv"], &k["summary"]["clv"], 0.02);
    assert_eq!(v["goal"].as_f64(), Some(4000.0));
    // Each grouping covers every valued customer once; means and shares add up.
    for grouping in ["by_cohort", "by_segment", "by_plan"] {
        let groups = v[grouping].as_array().unwrap();
        assert!(groups.len() >= 2, "{grouping}: {groups:?}");
        let count: u64 = groups
            .iter()
            .map(|g| g["customers"].as_u64().unwrap())
            .sum();
        assert_eq!(count, n, "{grouping}");
        let value: f64 = groups
            .iter()
            .map(|g| g["mean_clv"].as_f64().unwrap() * g["customers"].as_f64().unwrap())
            .sum();
        close(
            &value.into(),
            &(base["mean_clv"].as_f64().unwrap() * n as f64).into(),
        );
        let shares: f64 = groups
            .iter()
            .map(|g| g["share_of_value_pct"].as_f64().unwrap())
            .sum();
        assert!((shares - 100.0).abs() < 1e-9, "{grouping}: {shares}");
    }
    let page = std::fs::read_to_string(dir.path().join("kpis.html")).unwrap();
    assert!(page.contains("Lifetime value (survival model)"));
    assert_eq!(churn_report::audit(&page), Vec::<String>::new());

    // The margin is saved with the model and scales every value: the same curves (the
    // fit does not depend on it) at half the margin give half the CLV.
    let half = dir.path().join("half");
    ok(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&half),
        "--models",
        "logistic",
        "--search",
        "none",
        "--gross-margin",
        "0.5",
    ]);
    let h = kpis(&half.join("churn"), "half");
    assert_eq!(h["model_clv"]["gross_margin"].as_f64(), Some(0.5));
    close(
        &h["model_clv"]["base"]["mean_clv"],
        &(0.5 * base["mean_clv"].as_f64().unwrap()).into(),
    );
    let err = fails(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&half),
        "--gross-margin",
        "1.5",
    ]);
    assert!(
        err.contains("gross margin 1.5: expected a share of revenue in (0, 1]"),
        "{err}"
    );

    // The futures file: one row per example, in the examples' order.
    let examples = dir.path().join("examples.csv");
    let futures = dir.path().join("futures.csv");
    ok(&[
        "examples",
        "--data",
        s(&data),
        "--out",
        s(&examples),
        "--futures",
        s(&futures),
    ]);
    let futures = std::fs::read_to_string(&futures).unwrap();
    let examples = std::fs::read_to_string(&examples).unwrap();
    let mut lines = futures.lines();
    assert_eq!(
        lines.next(),
        Some("customer_id,as_of,period_end,data_end,grace_days")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), examples.lines().count() - 1);
    let data_end = rows[0][3];
    for row in &rows {
        // A period that ended did so after the customer's date minus a lapse, and the
        // data end is one date for every row.
        assert_eq!(row[3], data_end);
        assert!(row[2].is_empty() || row[2] > "2000", "{row:?}");
    }
    assert!(rows.iter().any(|r| r[2].is_empty()) && rows.iter().any(|r| !r[2].is_empty()));
    // A futures path that cannot be written is named.
    let err = fails(&[
        "examples",
        "--data",
        s(&data),
        "--out",
        s(&dir.path().join("again.csv")),
        "--futures",
        s(&data),
    ]);
    assert!(
        err.contains(&format!("writing {}", data.display())),
        "{err}"
    );
}
