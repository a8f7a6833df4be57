//! `churn-train rules`: print the default rules, or measure rules against labelled data.

use anyhow::Result;
use churn_features::features::FeatureConfig;
use churn_features::labels;
use churn_features::rules::{RulesConfig, DEFAULT_TOML};
use churn_model::baseline::rules_baseline;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RulesArgs {
    /// Print the documented default rules.toml and exit.
    #[arg(long)]
    print_default: bool,
    /// Measure the rules against churn on the observation dates of this data directory
    /// or postgres:// schema.
    #[arg(
        long,
        value_name = "DIR|URL",
        required_unless_present = "print_default"
    )]
    data: Option<churn_cli::data::DataSource>,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    /// Rules file (default: the built-in defaults).
    #[arg(long)]
    rules: Option<PathBuf>,
    #[arg(long, default_value_t = labels::DEFAULT_HORIZON_DAYS)]
    horizon_days: i32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: RulesArgs) -> Result<()> {
    if a.print_default {
        print!("{DEFAULT_TOML}");
        return Ok(());
    }
    let cfg = match &a.rules {
        Some(p) => RulesConfig::load(p)?,
        None => RulesConfig::default(),
    };
    let data = a.data.as_ref().expect("clap requires --data");
    let ds = crate::open_dataset(data, &a.tables)?;
    let dates = labels::observation_dates(&ds, a.horizon_days);
    anyhow::ensure!(
        !dates.is_empty(),
        "the data is too short for one observation date with a {}-day horizon",
        a.horizon_days
    );
    let ex = labels::examples(
        &ds,
        &dates,
        a.horizon_days,
        &FeatureConfig::default(),
        &|_| {},
    )?;
    let b = rules_baseline(&ex, &cfg);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&b)?);
        return Ok(());
    }
    let f = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.3}"));
    println!(
        "{} examples, {} churned within {} days, over {} observation dates",
        b.health.rows,
        b.health.positives,
        a.horizon_days,
        dates.len()
    );
    println!(
        "{:<22} {:>8} {:>8} {:>10}",
        "ranking by", "ROC AUC", "PR AUC", "top-10% lift"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>10}",
        "100 - health score",
        f(b.health.roc_auc),
        f(b.health.pr_auc),
        f(b.health.lift_top10)
    );
    println!(
        "{:<22} {:>8} {:>8} {:>10}",
        "signal count",
        f(b.signal_count.roc_auc),
        f(b.signal_count.pr_auc),
        f(b.signal_count.lift_top10)
    );
    for (title, groups) in [
        ("health band", &b.by_band),
        ("intervention", &b.by_intervention),
    ] {
        println!(
            "\n{title:<14} {:>8} {:>8} {:>8}",
            "rows", "churned", "churn %"
        );
        for g in groups.iter().filter(|g| g.rows > 0) {
            println!(
                "{:<14} {:>8} {:>8} {:>8.1}",
                g.group, g.rows, g.churned, g.churn_pct
            );
        }
    }
    Ok(())
}
