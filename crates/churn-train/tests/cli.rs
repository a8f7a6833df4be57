//! The `churn-train` binary end to end on simulated files.

mod common;

use common::{fails, ok, s};

use std::path::Path;

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn generate_then_summarise_build_features_and_measure_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let out = ok(&[
        "generate",
        "--out",
        data_s,
        "--customers",
        "300",
        "--months",
        "6",
        "--seed",
        "9",
    ]);
    assert!(out.contains("customers") && out.contains("events"), "{out}");
    for f in [
        "subscriptions.csv",
        "customers.csv",
        "events.parquet",
        "tickets.csv",
        "payments.csv",
        "surveys.csv",
        "catalog.csv",
    ] {
        assert!(data.join(f).is_file(), "{f} missing");
    }

    let summary: serde_json::Value =
        serde_json::from_str(&ok(&["summary", "--data", data_s, "--json"])).unwrap();
    assert!(summary["events"].as_u64().unwrap() > 10_000);
    assert!(summary["kpis"]["active_customers"].as_u64().unwrap() > 200);

    // The KPI report: a self-contained page and JSON with the summary keys, which agree
    // with `summary --json` on the figures both give.
    let html = dir.path().join("kpis/report.html");
    let json = dir.path().join("kpis/report.json");
    let out = ok(&[
        "kpis",
        "--data",
        data_s,
        "--out",
        s(&html),
        "--json",
        s(&json),
    ]);
    assert!(out.contains("Monthly churn (%)"), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.to_ascii_lowercase().starts_with("<!doctype html>") && page.ends_with("</html>"));
    assert!(page.matches("<svg").count() >= 6, "charts missing");
    assert_eq!(churn_report::audit(&page), Vec::<String>::new());
    let kpis: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in [
        "monthly_churn_pct",
        "retention_m1_pct",
        "retention_m3_pct",
        "mrr",
        "arpa",
        "nrr_pct",
        "clv",
    ] {
        assert!(
            kpis["summary"][key].is_number(),
            "summary.{key}: {}",
            kpis["summary"]
        );
    }
    // Six months of data cannot measure month-6 retention: null, not a made-up number.
    assert!(kpis["summary"]["retention_m6_pct"].is_null());
    assert_eq!(
        kpis["summary"]["monthly_churn_pct"],
        summary["kpis"]["monthly_churn_pct"]
    );
    assert_eq!(kpis["summary"]["mrr"], summary["kpis"]["mrr"]);
    assert_eq!(kpis["months"].as_array().unwrap().len(), 6);
    assert_eq!(kpis["goals"].as_array().unwrap().len(), 10);
    // Baselines are measured on this data: six months, so at the window's start.
    assert_eq!(kpis["baseline"]["as_of"], kpis["summary"]["window_start"]);
    assert!(page.contains("Baselines measured on this data as of"));

    // A goals file of the user's own: one goal with a fixed baseline, one measured at a
    // baseline date; the default file round-trips through --print-goals.
    let default_goals = ok(&["kpis", "--print-goals"]);
    assert!(
        default_goals.contains("metric = \"monthly_churn_pct\""),
        "{default_goals}"
    );
    let goals = dir.path().join("goals.toml");
    std::fs::write(
        &goals,
        "baseline_date = \"2024-04-01\"\nhorizon_days = 30\n[[goal]]\nmetric = \"mau_share_pct\"\ntarget = 99.5\n[[goal]]\nmetric = \"monthly_churn_pct\"\ntarget = 1\nbaseline = 50\n",
    )
    .unwrap();
    let out = ok(&[
        "kpis",
        "--data",
        data_s,
        "--out",
        s(&html),
        "--json",
        s(&json),
        "--goals",
        s(&goals),
    ]);
    assert!(
        out.contains("goals (30 days), baselines as of 2024-04-01"),
        "{out}"
    );
    let kpis: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let g = kpis["goals"].as_array().unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(g[0]["baseline"], kpis["baseline"]["mau_share_pct"]);
    assert!(g[0]["baseline"].is_number());
    assert_eq!(
        (g[1]["baseline"].as_f64(), g[1]["baseline_given"].as_bool()),
        (Some(50.0), Some(true))
    );
    // Churn far below the given 50 % baseline, above the 1 % goal.
    assert_eq!(g[1]["status"], "improving");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<h2>Goals (30 days)</h2>") && page.contains("<i>given</i>"));
    std::fs::write(&goals, "[[goal]]\nmetric = \"happiness\"\ntarget = 1\n").unwrap();
    let e = fails(&[
        "kpis",
        "--data",
        data_s,
        "--out",
        s(&html),
        "--goals",
        s(&goals),
    ]);
    assert!(
        e.contains("(--goals)")
            && e.contains("goals.toml")
            && e.contains("unknown variant `happiness`"),
        "{e}"
    );

    // Features as CSV and as Parquet: one row per active customer plus a header.
    let csv = dir.path().join("features.csv");
    let out = ok(&[
        "features",
        "--data",
        data_s,
        "--as-of",
        "2024-05-01",
        "--out",
        csv.to_str().unwrap(),
    ]);
    let rows: usize = out
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(lines(&csv), rows + 1);
    let header = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        header.starts_with("customer_id,as_of,tenure_days,plan,mrr"),
        "{header}"
    );
    let pq = dir.path().join("features.parquet");
    ok(&[
        "features",
        "--data",
        data_s,
        "--as-of",
        "2024-05-01",
        "--out",
        pq.to_str().unwrap(),
    ]);
    assert!(std::fs::metadata(&pq).unwrap().len() > 1000);
    // No temp file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());

    let ex = dir.path().join("examples.csv");
    let out = ok(&["examples", "--data", data_s, "--out", ex.to_str().unwrap()]);
    assert!(
        out.contains("observation dates 2024-02-01 to 2024-06-01"),
        "{out}"
    );
    assert!(std::fs::read_to_string(&ex)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .ends_with(",label"));

    let rules: serde_json::Value =
        serde_json::from_str(&ok(&["rules", "--data", data_s, "--json"])).unwrap();
    assert!(
        rules["health"]["roc_auc"].as_f64().unwrap() > 0.6,
        "{rules}"
    );
    assert!(ok(&["rules", "--print-default"]).contains("[health.weights]"));
    // Shell completions name every subcommand.
    let bash = ok(&["completions", "bash"]);
    for sub in ["generate", "train", "kpis", "completions"] {
        assert!(bash.contains(sub), "bash completions lack {sub}");
    }
    assert!(
        bash.contains("-o default churn-train"),
        "{}",
        &bash[..200.min(bash.len())]
    );
    assert!(ok(&["completions", "zsh"]).starts_with("#compdef churn-train"));
    assert!(fails(&["completions", "cmd.exe"]).contains("invalid value 'cmd.exe'"));
    let describe = ok(&["describe", "--data", data_s]);
    assert!(describe.contains("adoption_core_30d") && describe.contains("events_export_28d"));
}

#[test]
fn bad_input_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let e = fails(&["summary", "--data", d]);
    assert!(e.contains("no `subscriptions` table"), "{e}");
    std::fs::write(
        dir.path().join("subscriptions.csv"),
        "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,ten,pro\n",
    )
    .unwrap();
    let e = fails(&[
        "features",
        "--data",
        d,
        "--as-of",
        "2024-05-01",
        "--out",
        "/tmp/never.csv",
    ]);
    assert!(
        e.contains("subscriptions.csv, line 2, column `mrr`: expected a number, found `ten`"),
        "{e}"
    );
    let e = fails(&[
        "features",
        "--data",
        d,
        "--as-of",
        "May 1",
        "--out",
        "/tmp/never.csv",
    ]);
    assert!(
        e.contains("expected a date as YYYY-MM-DD, found `May 1`"),
        "{e}"
    );
    // Files a new user brings: a `;`-separated export, an empty file, a missing folder;
    // each message names the place once and says what to do.
    std::fs::write(
        dir.path().join("subscriptions.csv"),
        "customer_id;start_date;end_date;mrr;plan\nA;2024-01-01;;10;pro\n",
    )
    .unwrap();
    let e = fails(&["summary", "--data", d]);
    assert!(e.contains("looks like a `;`-separated file"), "{e}");
    std::fs::write(dir.path().join("subscriptions.csv"), "").unwrap();
    let e = fails(&["summary", "--data", d]);
    assert!(e.contains("the file is empty"), "{e}");
    let missing = dir.path().join("nowhere");
    let e = fails(&["summary", "--data", s(&missing)]);
    assert!(
        e.contains("(--data)") && e.contains("data directory not found"),
        "{e}"
    );
    assert_eq!(e.matches("not found").count(), 1, "{e}");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[health]\nweights = 3\n").unwrap();
    std::fs::write(
        dir.path().join("subscriptions.csv"),
        "customer_id,start_date,end_date,mrr,plan\nA,2024-01-01,,10,pro\n",
    )
    .unwrap();
    let e = fails(&["rules", "--data", d, "--rules", rules.to_str().unwrap()]);
    assert!(e.contains("rules.toml"), "{e}");
}

#[test]
fn every_parquet_file_written_has_real_timestamp_and_date_types() {
    // Readers that go by Parquet's own types (pyarrow, pandas, DuckDB, Spark) see time,
    // not integers, in everything the product writes.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&[
        "generate",
        "--out",
        s(&data),
        "--customers",
        "150",
        "--months",
        "4",
        "--format",
        "parquet",
    ]);
    let types =
        |path: &Path| -> Vec<(String, String)> { churn_testkit::parquet_logical_types(path) };
    let timestamp = "Timestamp(TimestampType { is_adjusted_to_u_t_c: true, unit: MICROS })";
    let mut checked = 0;
    for spec in churn_features::contract::TABLES {
        let path = data.join(format!("{}.parquet", spec.name));
        assert!(path.is_file(), "{} missing", spec.name);
        let found = types(&path);
        for c in spec.columns {
            let (_, ty) = found
                .iter()
                .find(|(n, _)| n == c.name)
                .unwrap_or_else(|| panic!("{}.{} missing", spec.name, c.name));
            match c.ty {
                churn_features::contract::ColumnType::Timestamp => {
                    assert_eq!(ty, timestamp, "{}.{}: {ty}", spec.name, c.name);
                    checked += 1;
                }
                churn_features::contract::ColumnType::Date => {
                    assert_eq!(ty, "Date", "{}.{}", spec.name, c.name);
                    checked += 1;
                }
                _ => {}
            }
        }
    }
    assert!(checked >= 9, "only {checked} time columns checked");
    // What the files say is what the data says: the timestamps read back as the same
    // instants through the product's readers (simulated events are whole seconds).
    let out = ok(&["summary", "--data", s(&data), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(summary["events"].as_u64().unwrap() > 1000);

    for command in ["features", "examples"] {
        let out = dir.path().join(format!("{command}.parquet"));
        let mut args = vec![command, "--data", s(&data), "--out", s(&out)];
        if command == "features" {
            args.extend(["--as-of", "2024-04-01"]);
        }
        ok(&args);
        let found = types(&out);
        let as_of = found.iter().find(|(n, _)| n == "as_of").expect("as_of");
        assert_eq!(as_of.1, "Date", "{command}");
        assert_eq!(found[0], ("customer_id".to_string(), "String".to_string()));
    }
}

/// The committed sample data.
fn sample() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample")
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::process::{Command, Stdio};
    // `churn-train summary --json | head -c 0`: the reader is gone before the output.
    let mut child = Command::new(env!("CARGO_BIN_EXE_churn-train"))
        .args(["summary", "--data", sample(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Killed by SIGPIPE as `cat` would be (or done before noticing).
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{:?}: {stderr}",
            out.status
        );
    }
}

#[test]
fn logs_are_plain_text_off_a_terminal_and_json_on_request() {
    let missing = std::env::temp_dir().join("churn-no-such-data-dir");
    let text = fails(&["summary", "--data", s(&missing)]);
    assert!(
        !text.contains('\u{1b}'),
        "colour codes off a terminal: {text:?}"
    );
    assert!(text.starts_with("error: "), "{text}");

    let json = fails(&["summary", "--data", s(&missing), "--log-format", "json"]);
    let line: serde_json::Value = serde_json::from_str(json.trim_end().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("not a JSON line ({e}): {json}"));
    assert_eq!(line["level"], "ERROR");
    let message = line["fields"]["message"].as_str().unwrap();
    assert!(message.contains("not found"), "{message}");
    assert!(
        line["fields"]["causes"].as_array().unwrap().len() >= 2,
        "{line}"
    );
}
