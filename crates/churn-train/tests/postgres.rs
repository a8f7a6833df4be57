//! `churn-train` against a real PostgreSQL server (started by `churn_testkit::postgres`):
//! a simulated data directory imported with `churn-train import` gives, read back with
//! `--data postgres://...`, the same bytes of features and examples, the same summary,
//! rules and KPI figures, and a model with the same backtest and predictions.

mod common;

use common::{generate, s};
use std::process::Command;

/// Runs `churn-train` with the database password in `PGPASSWORD` (never on the command
/// line); asserts success and returns stdout.
fn ok_pg(args: &[&str]) -> String {
    let out = run_pg(args);
    assert!(
        out.status.success(),
        "churn-train {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_pg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_churn-train"))
        .args(args)
        .env("PGPASSWORD", churn_testkit::postgres::PASSWORD)
        .output()
        .expect("run churn-train")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn every_command_reads_a_database_as_it_reads_the_same_files() {
    let Some(server) = churn_testkit::postgres::PgServer::start("churn-train --data postgres://")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    generate(&dir, 500, 8, 3);
    let url = server.url_without_password("churn");
    let loaded = ok_pg(&["import", "--data", s(&dir), "--to", &url]);
    assert!(
        loaded.contains("events") && loaded.contains("subscriptions"),
        "{loaded}"
    );

    let as_of = "2024-07-01";
    for (command, extra) in [("features", vec!["--as-of", as_of]), ("examples", vec![])] {
        let from_db = tmp.path().join(format!("{command}_db.parquet"));
        let from_dir = tmp.path().join(format!("{command}_dir.parquet"));
        for (data, out) in [(url.as_str(), &from_db), (s(&dir), &from_dir)] {
            let mut args = vec![command, "--data", data, "--out", s(out)];
            args.extend(&extra);
            ok_pg(&args);
        }
        assert!(
            std::fs::read(&from_db).unwrap() == std::fs::read(&from_dir).unwrap(),
            "{command}: the database's output differs from the files'"
        );
    }
    // Features written into the database: the rows of the file, as a table.
    let table_url = format!("{}&table=features", server.url_without_password("online"));
    ok_pg(&[
        "features",
        "--data",
        s(&dir),
        "--as-of",
        as_of,
        "--out",
        &table_url,
    ]);
    let mut c = churn_postgres::PgLocation::parse(&server.url("online"))
        .unwrap()
        .connect()
        .unwrap();
    let rows: i64 = c
        .query_one(
            "SELECT count(DISTINCT customer_id) FROM online.features",
            &[],
        )
        .unwrap()
        .get(0);
    let file_rows = churn_features::table::read_table(
        &tmp.path().join("features_dir.parquet"),
        Some("customer_id"),
        None,
    )
    .unwrap()
    .table
    .len();
    assert_eq!(rows as usize, file_rows);
    for args in [vec!["summary", "--json"], vec!["rules", "--json"]] {
        let mut db = args.clone();
        db.extend(["--data", url.as_str()]);
        let mut files = args.clone();
        files.extend(["--data", s(&dir)]);
        assert_eq!(json(&ok_pg(&db)), json(&ok_pg(&files)), "{args:?}");
    }
    let (kpis_db, kpis_dir) = (tmp.path().join("k_db.json"), tmp.path().join("k_dir.json"));
    for (data, out) in [(url.as_str(), &kpis_db), (s(&dir), &kpis_dir)] {
        let page = out.with_extension("html");
        ok_pg(&["kpis", "--data", data, "--out", s(&page), "--json", s(out)]);
    }
    assert_eq!(
        json(&std::fs::read_to_string(&kpis_db).unwrap()),
        json(&std::fs::read_to_string(&kpis_dir).unwrap())
    );

    // Training: the same backtest and the same model, whatever the source.
    let models = tmp.path().join("models");
    let mut summaries = Vec::new();
    for (data, name) in [(url.as_str(), "from_db"), (s(&dir), "from_dir")] {
        let out = ok_pg(&[
            "train",
            "--data",
            data,
            "--out",
            s(&models),
            "--name",
            name,
            "--models",
            "logistic,gbm",
            "--search",
            "none",
            "--json",
        ]);
        summaries.push(json(&out));
    }
    for key in ["chosen", "backtest", "candidates", "examples", "churners"] {
        assert_eq!(summaries[0].get(key), summaries[1].get(key), "{key}");
    }
    let latest = std::fs::read_to_string(models.join("from_db/LATEST")).unwrap();
    let provenance = std::fs::read_to_string(
        models
            .join("from_db")
            .join(latest.trim())
            .join("model.json"),
    )
    .unwrap();
    assert!(
        provenance.contains("postgres://churn@127.0.0.1"),
        "the source is recorded"
    );
    assert!(!provenance.contains(churn_testkit::postgres::PASSWORD));
    // Evaluation on a database date equals evaluation on the files.
    let mut evaluations = Vec::new();
    for data in [url.as_str(), s(&dir)] {
        let out = ok_pg(&[
            "evaluate",
            "--model",
            s(&models.join("from_dir")),
            "--data",
            data,
            "--as-of",
            "2024-08-01",
            "--json",
            "--allow-overlap",
        ]);
        evaluations.push(json(&out));
    }
    assert_eq!(evaluations[0], evaluations[1]);

    // Mistakes are named.
    let e = common::fails(&[
        "features",
        "--data",
        s(&dir),
        "--tables",
        "t.toml",
        "--as-of",
        as_of,
        "--out",
        "x.csv",
    ]);
    assert!(e.contains("--tables maps database table names"), "{e}");
    let wrong = server.url("elsewhere");
    let e = run_pg(&["summary", "--data", &wrong]);
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success());
    assert!(
        stderr.contains("no table elsewhere.subscriptions"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(churn_testkit::postgres::PASSWORD),
        "{stderr}"
    );
}
