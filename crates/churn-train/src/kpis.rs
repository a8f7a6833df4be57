//! `churn-train kpis`: the retention KPIs of a data directory as an HTML page and JSON.

use crate::parse_day;
use anyhow::{Context, Result};
use churn_features::rules::RulesConfig;
use churn_features::time;
use churn_features::write::write_file_atomic;
use churn_kpis::goals::{Goals, Metric};
use churn_kpis::KpiOptions;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct KpisArgs {
    /// Print the default goals file (the domain brief's 90-day goals, documented) and exit.
    #[arg(long)]
    print_goals: bool,
    /// Data directory, or a PostgreSQL schema: postgres://USER@HOST:PORT/DB?schema=NAME.
    #[arg(long, value_name = "DIR|URL", required_unless_present = "print_goals")]
    data: Option<churn_cli::data::DataSource>,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    /// Measure as of this day (default: the first day of the month after the latest data).
    #[arg(long, value_parser = parse_day)]
    as_of: Option<time::Day>,
    /// The HTML report to write.
    #[arg(long, required_unless_present = "print_goals")]
    out: Option<PathBuf>,
    /// Also write every figure as JSON (a `summary` object and the full series).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Rules file for the health distribution (default: the built-in playbook).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Goals file: targets and optional fixed baselines (default: the brief's goals, see
    /// --print-goals; baselines measured on the data a year before as-of).
    #[arg(long)]
    goals: Option<PathBuf>,
    /// A model with a survival curve (a version directory, or models/NAME for its
    /// LATEST): adds each active customer's lifetime value, per signup year, segment and
    /// plan, next to the formula's and the goal.
    #[arg(long, value_name = "MODEL")]
    model: Option<PathBuf>,
}

pub fn run(a: KpisArgs) -> Result<()> {
    if a.print_goals {
        print!("{}", churn_kpis::goals::DEFAULT_TOML);
        return Ok(());
    }
    let (Some(data), Some(out)) = (&a.data, &a.out) else {
        anyhow::bail!("--data and --out are required");
    };
    let started = Instant::now();
    let rules = match &a.rules {
        Some(p) => RulesConfig::load(p).context("reading the rules file (--rules)")?,
        None => RulesConfig::default(),
    };
    let goals = match &a.goals {
        Some(p) => Goals::load(p).context("reading the goals file (--goals)")?,
        None => Goals::default(),
    };
    let scorer = match &a.model {
        Some(p) => {
            let (artifact, _) = churn_model::artifact::load(p)
                .with_context(|| format!("loading the model {}", p.display()))?;
            Some(churn_scoring::Scorer::new(artifact))
        }
        None => None,
    };
    let ds = crate::open_dataset(data, &a.tables)?;
    let opts = KpiOptions {
        as_of: a.as_of,
        ..Default::default()
    };
    if let Some(d) = a.as_of {
        if let Some(w) = ds.as_of_warning(d) {
            tracing::warn!("{w}");
        }
    }
    let mut report =
        churn_kpis::report::report(&ds, opts, &rules, &goals).context("computing the KPIs")?;
    if let Some(scorer) = &scorer {
        report.model_clv = Some(
            churn_kpis::clv::model_clv(&ds, opts, scorer, goals.target(Metric::Clv))
                .context("valuing the customers with the model (--model)")?,
        );
    }
    let html = churn_kpis::html::page(&report, &data.to_string());
    write_file_atomic(out, html.as_bytes())?;
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
    if let Some(v) = &report.model_clv {
        println!(
            "model CLV ({}): mean ${:.0}, median ${:.0} over {} customers, remaining value ${:.0}, expected lifetime {:.1} months",
            v.model,
            v.base.mean_clv,
            v.base.median_clv,
            v.base.customers,
            v.base.mean_clv * v.base.customers as f64,
            v.base.mean_lifetime_months
        );
    }
    println!(
        "goals ({} days), baselines as of {}:",
        report.goals_horizon_days, report.baseline.base.as_of
    );
    for g in &report.goals {
        println!(
            "  {:<30} baseline {:>8}  now {:>8}  goal {:>7}  {}",
            g.label,
            opt(g.baseline),
            opt(g.current),
            g.target,
            g.status.as_str()
        );
    }
    println!(
        "wrote {}{} in {:.1}s",
        out.display(),
        a.json
            .as_ref()
            .map_or(String::new(), |j| format!(" and {}", j.display())),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
