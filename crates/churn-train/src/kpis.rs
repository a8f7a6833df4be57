//! `churn-train kpis`: the retention KPIs of a data directory as an HTML page and JSON.

use crate::parse_day;
use anyhow::{Context, Result};
use churn_features::rules::RulesConfig;
use churn_features::time;
use churn_features::write::write_file_atomic;
use churn_kpis::KpiOptions;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct KpisArgs {
    /// Data directory.
    #[arg(long)]
    data: PathBuf,
    /// Measure as of this day (default: the first day of the month after the latest data).
    #[arg(long, value_parser = parse_day)]
    as_of: Option<time::Day>,
    /// The HTML report to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write every figure as JSON (a `summary` object and the full series).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Rules file for the health distribution (default: the built-in playbook).
    #[arg(long)]
    rules: Option<PathBuf>,
}

pub fn run(a: KpisArgs) -> Result<()> {
    let started = Instant::now();
    let ds = crate::open_dataset(&a.data)?;
    let rules = match &a.rules {
        Some(p) => RulesConfig::load(p)?,
        None => RulesConfig::default(),
    };
    let opts = KpiOptions {
        as_of: a.as_of,
        ..Default::default()
    };
    if let Some(d) = a.as_of {
        if let Some(w) = ds.as_of_warning(d) {
            eprintln!("warning: {w}");
        }
    }
    let report = churn_kpis::report::report(&ds, opts, &rules).context("computing the KPIs")?;
    let html = churn_kpis::html::page(&report, &a.data.display().to_string());
    write_file_atomic(&a.out, html.as_bytes())?;
    if let Some(j) = &a.json {
        write_file_atomic(j, &serde_json::to_vec_pretty(&report)?)?;
    }
    let s = &report.summary;
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
    println!(
        "KPIs as of {} (window from {}): monthly churn {:.2} %, retention m1/m3/m6 {}/{}/{} %, MRR ${:.0}, ARPA ${:.2}, NRR {} % ({} months), CLV ${}",
        s.base.as_of,
        s.base.window_start,
        s.base.monthly_churn_pct,
        opt(s.base.retention_m1_pct),
        opt(s.base.retention_m3_pct),
        opt(s.base.retention_m6_pct),
        s.base.mrr,
        s.base.arpa,
        opt(s.nrr_pct),
        s.nrr_months,
        opt(s.clv)
    );
    for g in &report.goals {
        println!(
            "  {:<30} now {:>8}  goal {:>7}  {}",
            g.goal.label,
            opt(g.current),
            g.goal.target,
            g.status
        );
    }
    println!(
        "wrote {}{} in {:.1}s",
        a.out.display(),
        a.json
            .as_ref()
            .map_or(String::new(), |j| format!(" and {}", j.display())),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
