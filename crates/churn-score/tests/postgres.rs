//! `churn-score` reading its data from PostgreSQL and writing the worklist into it, on a
//! real server (`churn_testkit::postgres`): the rows in the table are the rows of the
//! file the same run writes from the same data on disk.

use churn_features::time::format_date;
use std::process::Command;

fn churn_score(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_churn-score"))
        .args(args)
        .arg("--quiet")
        .env("PGPASSWORD", churn_testkit::postgres::PASSWORD)
        .output()
        .expect("run churn-score")
}

fn succeeded(o: &std::process::Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_worklist_from_and_into_a_database_equals_the_one_from_files() {
    let Some(server) = churn_testkit::postgres::PgServer::start("churn-score postgres://") else {
        return;
    };
    let st = churn_testkit::SavedModel::new();
    let (as_of, _) = churn_testkit::latest_rows(&st.fx);
    let data_url = server.url_without_password("churn");
    churn_postgres::import(
        &st.fx.data,
        &churn_postgres::PgLocation::parse(&server.url("churn")).unwrap(),
    )
    .unwrap();
    let model = st.model.to_str().unwrap();
    let date = format_date(as_of);
    let file = st.dir.path().join("worklist.csv");
    succeeded(&churn_score(&[
        "--model",
        model,
        "--data",
        st.fx.data.to_str().unwrap(),
        "--as-of",
        &date,
        "--output",
        file.to_str().unwrap(),
    ]));
    let table_url = format!("{}&table=worklist", server.url_without_password("cs"));
    for _ in 0..2 {
        // The second run replaces the first: still one worklist, not two.
        succeeded(&churn_score(&[
            "--model", model, "--data", &data_url, "--as-of", &date, "--output", &table_url,
        ]));
    }
    let mut c = churn_postgres::PgLocation::parse(&server.url("cs"))
        .unwrap()
        .connect()
        .unwrap();
    let columns = "customer_id, as_of::text, churn_probability, risk_band, revenue_at_risk, health_score, health_band, signals, intervention, segment, top_reasons";
    let rows = c
        .query(&format!("SELECT {columns} FROM cs.worklist"), &[])
        .unwrap();
    let csv = std::fs::read_to_string(&file).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(rows.len(), csv.lines().count() - 1);
    let records: Vec<Vec<String>> = {
        let mut r = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        r.records()
            .map(|x| x.unwrap().iter().map(String::from).collect())
            .collect()
    };
    for (row, record) in rows.iter().zip(&records) {
        let field = |name: &str| record[header.iter().position(|h| *h == name).unwrap()].clone();
        assert_eq!(row.get::<_, String>(0), field("customer_id"));
        assert_eq!(row.get::<_, String>(1), field("as_of"));
        let p: f64 = row.get(2);
        assert_eq!(p, field("churn_probability").parse::<f64>().unwrap());
        assert_eq!(row.get::<_, String>(3), field("risk_band"));
        assert_eq!(row.get::<_, String>(10), field("top_reasons"));
    }

    // --append keeps earlier runs, each with its scored_at.
    let history = format!("{}&table=history", server.url_without_password("cs"));
    for _ in 0..2 {
        succeeded(&churn_score(&[
            "--model", model, "--data", &data_url, "--as-of", &date, "--output", &history,
            "--append", "--top", "5",
        ]));
    }
    let runs: Vec<i64> = c
        .query("SELECT count(*) FROM cs.history GROUP BY scored_at", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(runs, [5, 5]);
    // Mistakes are named before anything is written.
    let no_table = churn_score(&[
        "--model",
        model,
        "--data",
        &data_url,
        "--as-of",
        &date,
        "--output",
        &server.url_without_password("cs"),
    ]);
    assert!(String::from_utf8_lossy(&no_table.stderr).contains("&table=NAME"));
    let append_file = churn_score(&[
        "--model",
        model,
        "--data",
        &data_url,
        "--as-of",
        &date,
        "--output",
        file.to_str().unwrap(),
        "--append",
    ]);
    assert!(
        String::from_utf8_lossy(&append_file.stderr).contains("--append adds to a database table")
    );
}
