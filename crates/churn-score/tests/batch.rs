//! The real `churn-score` binary on real files: it accounts for every row and scores raw
//! data as its feature file. (That it agrees with the server is a workspace end-to-end
//! test: `tests/batch_and_server.rs` at the top of the repository.)

use churn_features::time::format_date;
use std::path::Path;
use std::process::Command;

fn churn_score(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_churn-score"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run churn-score")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_row_is_scored_or_rejected_and_bad_rows_stop_by_default() {
    let st = churn_testkit::SavedModel::new();
    let (_, table) = churn_testkit::latest_rows(&st.fx);
    let clean = st.dir.path().join("features.csv");
    churn_features::features::write_table(&table, None, &clean).unwrap();
    // Put text into the numeric `mrr` column of three rows.
    let text = std::fs::read_to_string(&clean).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let mrr = header.iter().position(|h| *h == "mrr").unwrap();
    let mut bad_ids = Vec::new();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(k, l)| {
            if [5, 17, 40].contains(&k) {
                let mut cells: Vec<String> = l.split(',').map(str::to_string).collect();
                cells[mrr] = "n/a".into();
                bad_ids.push(cells[0].clone());
                cells.join(",")
            } else {
                l.to_string()
            }
        })
        .collect();
    let dirty = st.dir.path().join("dirty.csv");
    std::fs::write(&dirty, lines.join("\n") + "\n").unwrap();
    let rows_in = lines.len() - 1;

    let out = st.dir.path().join("scores.csv");
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&dirty),
        "--output",
        s(&out),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 6"), "{err}");
    assert!(err.contains(&format!("customer `{}`", bad_ids[0])), "{err}");
    assert!(
        err.contains("feature `mrr`: expected a number, found text `n/a`"),
        "{err}"
    );
    assert!(!out.exists(), "a failed run left an output file");
    let leftovers: Vec<_> = std::fs::read_dir(st.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // What a run killed with -9 mid-write leaves behind: its temp file, named for its
    // (now dead) process. The next run removes it.
    let mut killed = std::process::Command::new("true").spawn().unwrap();
    killed.wait().unwrap();
    let litter = st
        .dir
        .path()
        .join(format!(".scores.csv.tmp-{}", killed.id()));
    std::fs::write(&litter, b"a partial output").unwrap();
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&dirty),
        "--output",
        s(&out),
        "--skip-invalid",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !litter.exists(),
        "a dead run's temp file survived the next run"
    );
    let scored = churn_testkit::read_rows(&out);
    let rejects = churn_testkit::read_rows(&st.dir.path().join("scores.csv.rejects.csv"));
    assert_eq!(scored.len() + rejects.len(), rows_in);
    assert_eq!(rejects.len(), 3);
    let rejected: Vec<String> = rejects
        .iter()
        .map(|r| r["customer_id"].clone().unwrap())
        .collect();
    assert_eq!(rejected, bad_ids);
    assert_eq!(rejects[1]["location"].as_deref(), Some("line 18"));
    assert!(scored
        .iter()
        .all(|r| !bad_ids.contains(r["customer_id"].as_ref().unwrap())));
    // Input order is kept.
    let clean_ids: Vec<&String> = table
        .customer_ids
        .iter()
        .filter(|id| !bad_ids.contains(id))
        .collect();
    let out_ids: Vec<&String> = scored
        .iter()
        .map(|r| r["customer_id"].as_ref().unwrap())
        .collect();
    assert_eq!(out_ids, clean_ids);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("scored {} of {rows_in} rows", rows_in - 3)),
        "{err}"
    );

    // The worklist: the top 25 by revenue at risk, sorted.
    let top = st.dir.path().join("top.parquet");
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&clean),
        "--output",
        s(&top),
        "--top",
        "25",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let worklist = churn_testkit::read_rows(&top);
    assert_eq!(worklist.len(), 25);
    let all = st.dir.path().join("all.csv");
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&clean),
        "--output",
        s(&all),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // --json: the run's figures as one object on stdout, agreeing with the file.
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = churn_testkit::read_rows(&all);
    assert_eq!(summary["run"]["written"].as_u64(), Some(rows.len() as u64));
    assert_eq!(summary["run"]["scored"], summary["run"]["rows_read"]);
    assert_eq!(summary["run"]["rejected"], 0);
    let bands = summary["run"]["risk_bands"].as_object().unwrap();
    assert_eq!(bands.len(), 4);
    let high = rows
        .iter()
        .filter(|r| r["risk_band"].as_deref() == Some("high"))
        .count();
    assert_eq!(bands["high"].as_u64(), Some(high as u64));
    assert!(summary["model"]["version"].is_string());
    let mut revenue: Vec<f64> = rows
        .iter()
        .filter_map(|r| r["revenue_at_risk"].as_deref().map(|v| v.parse().unwrap()))
        .collect();
    revenue.sort_by(|a, b| b.total_cmp(a));
    let listed: Vec<f64> = worklist
        .iter()
        .map(|r| r["revenue_at_risk"].as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, revenue[..25]);

    // --order: the 25 with the most lifetime value at risk (not the same list: a
    // long-lived customer's month matters less than its lifetime), or probability.
    type Row = std::collections::HashMap<String, Option<String>>;
    let number = |r: &Row, c: &str| -> f64 { r[c].as_deref().unwrap().parse().unwrap() };
    let ranked_by = |order: &str, column: &str| -> Vec<Row> {
        let out = st.dir.path().join(format!("top_{order}.csv"));
        let o = churn_score(&[
            "--model",
            s(&st.model),
            "--input",
            s(&clean),
            "--output",
            s(&out),
            "--top",
            "25",
            "--order",
            order,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut all: Vec<f64> = rows.iter().map(|r| number(r, column)).collect();
        all.sort_by(|a, b| b.total_cmp(a));
        let worklist = churn_testkit::read_rows(&out);
        let listed: Vec<f64> = worklist.iter().map(|r| number(r, column)).collect();
        assert_eq!(listed, all[..25], "--order {order}");
        worklist
    };
    let ids = |rows: &[Row]| -> Vec<String> {
        rows.iter()
            .map(|r| r["customer_id"].clone().unwrap())
            .collect()
    };
    let by_clv = ranked_by("clv-at-risk", "clv_at_risk");
    assert_ne!(ids(&by_clv), ids(&churn_testkit::read_rows(&top)));
    ranked_by("probability", "churn_probability");
    // --order without --top is refused (it ranks the worklist only).
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&clean),
        "--output",
        s(&st.dir.path().join("unranked.csv")),
        "--order",
        "probability",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--top"));
}

#[test]
fn no_survival_leaves_the_lifetime_columns_empty_and_every_other_value_equal() {
    let st = churn_testkit::SavedModel::new();
    let (_, table) = churn_testkit::latest_rows(&st.fx);
    let features = st.dir.path().join("features.csv");
    churn_features::features::write_table(&table, None, &features).unwrap();
    let score = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--model",
            s(&st.model),
            "--input",
            s(&features),
            "--output",
            s(out),
        ];
        args.extend_from_slice(extra);
        let o = churn_score(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        churn_testkit::read_rows(out)
    };
    let with = score(&st.dir.path().join("with.csv"), &[]);
    let without = score(&st.dir.path().join("without.csv"), &["--no-survival"]);
    assert_eq!(with.len(), without.len());
    let lifetime = ["expected_lifetime_months", "clv", "clv_at_risk"];
    assert!(with
        .iter()
        .all(|r| lifetime.iter().all(|c| r[*c].is_some())));
    for (a, b) in with.iter().zip(&without) {
        for (column, value) in b {
            if lifetime.contains(&column.as_str()) {
                assert_eq!(*value, None, "{column}");
            } else {
                assert_eq!(value, &a[column], "{column}");
            }
        }
    }
    // Ranking by lifetime value without computing it is refused by name.
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&features),
        "--output",
        s(&st.dir.path().join("refused.csv")),
        "--top",
        "5",
        "--order",
        "clv-at-risk",
        "--no-survival",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("drop --no-survival"));
}

#[test]
fn scoring_raw_data_as_of_a_date_equals_scoring_its_feature_file() {
    let st = churn_testkit::SavedModel::new();
    let (as_of, table) = churn_testkit::latest_rows(&st.fx);
    let features = st.dir.path().join("features.csv");
    churn_features::features::write_table(&table, None, &features).unwrap();
    let from_file = st.dir.path().join("from_file.csv");
    let from_data = st.dir.path().join("from_data.csv");
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&features),
        "--output",
        s(&from_file),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let date = format_date(as_of);
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--data",
        s(&st.fx.data),
        "--as-of",
        &date,
        "--output",
        s(&from_data),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = std::fs::read_to_string(&from_file).unwrap();
    let b = std::fs::read_to_string(&from_data).unwrap();
    assert_eq!(a.lines().count(), table.len() + 1);
    for (x, y) in a.lines().zip(b.lines()) {
        assert_eq!(x, y);
    }
}

#[test]
fn a_feature_file_of_another_model_is_refused() {
    let st = churn_testkit::SavedModel::new();
    let other = st.dir.path().join("other.csv");
    std::fs::write(&other, "customer_id,favourite_colour\nC1,blue\n").unwrap();
    let out = st.dir.path().join("o.csv");
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&other),
        "--output",
        s(&out),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("favourite_colour are not features of model churn"),
        "{err}"
    );
}

#[test]
fn extreme_values_give_finite_scores_and_outputs_never_overwrite_inputs() {
    let st = churn_testkit::SavedModel::new();
    let (_, mut table) = churn_testkit::latest_rows(&st.fx);
    // Every numeric feature of the first rows pushed to the edges of f64.
    let extremes = [1e308, -1e308, f64::MAX, f64::MIN, 5e-324];
    for col in &mut table.columns {
        if let churn_features::dataset::Values::Numeric(v) = col {
            for (r, x) in extremes.iter().enumerate() {
                v[r] = Some(*x);
            }
        }
    }
    let features = st.dir.path().join("extreme.csv");
    churn_features::features::write_table(&table, None, &features).unwrap();
    let out = st.dir.path().join("scores.csv");
    let o = churn_score(&[
        "--model",
        s(&st.model),
        "--input",
        s(&features),
        "--output",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{stderr}");
    assert!(
        !stderr.contains("NaN") && !stderr.contains("inf"),
        "{stderr}"
    );
    let rows = churn_testkit::read_rows(&out);
    assert_eq!(rows.len(), table.len());
    for row in &rows {
        let p: f64 = row["churn_probability"]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=1.0).contains(&p), "{row:?}");
        if let Some(r) = row["revenue_at_risk"].as_deref() {
            assert!(r.parse::<f64>().unwrap().is_finite(), "{row:?}");
        }
    }
    // Writing over the input, or the rejects over the output, is refused up front.
    for args in [
        vec!["--output", s(&features)],
        vec!["--output", s(&out), "--skip-invalid", "--rejects", s(&out)],
        vec![
            "--output",
            s(&out),
            "--skip-invalid",
            "--rejects",
            s(&features),
        ],
    ] {
        let mut all = vec!["--model", s(&st.model), "--input", s(&features)];
        all.extend(args.iter().copied());
        let o = churn_score(&all);
        assert!(!o.status.success(), "{args:?} was accepted");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("input file") || e.contains("output file"), "{e}");
    }
    // The input is untouched.
    let again = churn_features::table::read_table(&features, Some("customer_id"), None).unwrap();
    assert_eq!(again.table.len(), table.len());
}

#[test]
fn a_date_far_past_the_data_is_refused_unless_asked_for() {
    let st = churn_testkit::SavedModel::new();
    let out = st.dir.path().join("future.csv");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--model",
            s(&st.model),
            "--data",
            s(&st.fx.data),
            "--as-of",
            "2030-01-01",
            "--output",
            s(&out),
        ];
        a.extend(extra.iter().copied());
        churn_score(&a)
    };
    let o = args(&[]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--allow-future") && e.contains("horizon"), "{e}");
    assert!(!out.exists());
    let o = args(&["--allow-future"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside the data"));
}
