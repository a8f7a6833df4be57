//! `churn-train monitor`: a trained model against the data as of a date.

use crate::{parse_day, progress_bar};
use anyhow::{Context, Result};
use churn_cli::data::DataSource;
use churn_features::time::{self, Day};
use churn_features::write::write_file_atomic;
use churn_model::artifact;
use churn_monitor::{Monitor, Thresholds};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MonitorArgs {
    /// A model version directory, or a models/NAME directory (its LATEST).
    #[arg(long)]
    model: PathBuf,
    /// Data directory, or a PostgreSQL schema: postgres://USER@HOST:PORT/DB?schema=NAME.
    #[arg(long, value_name = "DIR|URL")]
    data: DataSource,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    /// The scoring date to monitor (default: the day after the latest data).
    #[arg(long, value_parser = parse_day)]
    as_of: Option<Day>,
    /// Write the HTML page here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write every figure as JSON here (`-` for stdout, instead of the text summary).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Thresholds of the verdict (TOML; keys left out keep their defaults, see
    /// docs/monitoring.md).
    #[arg(long, value_name = "FILE")]
    thresholds: Option<PathBuf>,
}

/// Runs the monitor and returns the verdict's exit code (0 ok, 10 watch, 20 retrain).
pub fn run(a: MonitorArgs) -> Result<i32> {
    let started = std::time::Instant::now();
    let thresholds = match &a.thresholds {
        Some(p) => Thresholds::load(p)?,
        None => Thresholds::default(),
    };
    let (art, _) = artifact::load(&a.model)?;
    let opened = a.data.open(a.tables.tables.as_deref())?;
    let ds = &opened.dataset;
    let as_of = a.as_of.unwrap_or_else(|| ds.date_range().1);
    if let Some(w) = ds.as_of_warning(as_of) {
        tracing::warn!("{w}");
    }
    let bar = progress_bar("reading events");
    let m = churn_monitor::monitor(&art, ds, &opened.source, as_of, &thresholds, &|n| {
        bar.set_position(n)
    })
    .with_context(|| {
        format!(
            "monitoring {} {} as of {}",
            art.name,
            art.version,
            time::format_date(as_of)
        )
    })?;
    bar.finish_and_clear();
    if let Some(out) = &a.out {
        write_file_atomic(out, churn_monitor::html::page(&m).as_bytes())?;
    }
    let json_to_stdout = a.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if let Some(path) = a.json.as_ref().filter(|_| !json_to_stdout) {
        write_file_atomic(path, &serde_json::to_vec_pretty(&m)?)?;
    }
    if json_to_stdout {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        print_summary(&m, &a, started.elapsed().as_secs_f64());
    }
    Ok(m.verdict.exit_code)
}

fn print_summary(m: &Monitor, a: &MonitorArgs, seconds: f64) {
    let s = &m.subject;
    println!(
        "model {} {} on {} as of {}: {} customers, {} matured scoring date(s)",
        s.model,
        s.version,
        s.data,
        s.as_of,
        s.rows,
        m.realised.dates.len()
    );
    let flagged: Vec<String> = m
        .inputs
        .iter()
        .filter(|i| i.flagged)
        .map(|i| format!("{} (PSI {:.3})", i.name, i.drift.psi))
        .collect();
    println!(
        "inputs flagged: {}",
        if flagged.is_empty() {
            "none".to_string()
        } else {
            flagged.join(", ")
        }
    );
    println!("predicted probabilities: PSI {:.3}", m.scores.drift.psi);
    if let Some(e) = &m.realised.pooled {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        println!(
            "realised: ROC AUC {} (backtest {}, lowest month {}), PR AUC {}, predicted {:.2} % vs realised {:.2} % churn over {} rows",
            f(e.roc_auc),
            f(m.backtest.roc_auc),
            f(m.backtest.roc_auc_low),
            f(e.pr_auc),
            e.predicted_churn_pct,
            e.actual_churn_pct,
            e.rows
        );
    }
    println!(
        "verdict: {} (exit code {})",
        m.verdict.level.as_str(),
        m.verdict.exit_code
    );
    for f in &m.verdict.findings {
        println!("  {}: {}", f.level.as_str(), f.message);
    }
    let mut written = Vec::new();
    if let Some(p) = &a.out {
        written.push(p.display().to_string());
    }
    if let Some(p) = &a.json {
        written.push(p.display().to_string());
    }
    if !written.is_empty() {
        println!("wrote {} in {seconds:.1}s", written.join(" and "));
    }
}
