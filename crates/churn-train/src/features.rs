//! `churn-train features`, `examples` and `describe`.

use crate::{open_dataset, parse_day, progress_bar};
use anyhow::{Context, Result};
use churn_cli::data::DataSource;
use churn_features::features::{self, FeatureConfig};
use churn_features::labels;
use churn_features::time::{self, Day};
use churn_features::Dataset;
use std::path::PathBuf;
use std::time::Instant;

/// The feature windows a command builds features with.
#[derive(clap::Args)]
pub struct WindowArgs {
    /// Feature windows from a TOML file: `usage_window_days`, `adoption_window_days`,
    /// `support_window_days`, `support_quality_window_days`, `payment_window_days`,
    /// `mrr_change_days`, `grace_days` (missing keys keep their defaults: 28, 30, 30,
    /// 90, 90, 90, 7). Windowed feature names follow (`logins_per_week_14d`); a model
    /// keeps the windows it was trained with. For a feature table (`--table`), the
    /// windows it was built with.
    #[arg(long, value_name = "FILE")]
    windows: Option<PathBuf>,
}

impl WindowArgs {
    /// The settings: the file's, or the defaults.
    pub fn config(&self) -> Result<FeatureConfig> {
        match &self.windows {
            Some(p) => FeatureConfig::load(p).context("reading the feature windows (--windows)"),
            None => Ok(FeatureConfig::default()),
        }
    }
}

#[derive(clap::Args)]
pub struct FeaturesArgs {
    /// Data directory, or a PostgreSQL schema: postgres://USER@HOST:PORT/DB?schema=NAME
    /// (password from PGPASSWORD or ~/.pgpass).
    #[arg(long, value_name = "DIR|URL")]
    data: DataSource,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    /// Compute features from what happened strictly before this day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day)]
    as_of: Day,
    /// Output file (.parquet, .csv or .csv.gz), or a PostgreSQL table
    /// (postgres://USER@HOST:PORT/DB?schema=NAME&table=NAME, replaced at commit).
    #[arg(long, value_name = "FILE|URL")]
    out: churn_cli::data::Output,
    #[command(flatten)]
    windows: WindowArgs,
}

#[derive(clap::Args)]
pub struct ExamplesArgs {
    /// Data directory, or a PostgreSQL schema: postgres://USER@HOST:PORT/DB?schema=NAME
    /// (password from PGPASSWORD or ~/.pgpass).
    #[arg(long, value_name = "DIR|URL")]
    data: DataSource,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    /// Days ahead a churn counts for the label.
    #[arg(long, default_value_t = labels::DEFAULT_HORIZON_DAYS)]
    horizon_days: i32,
    /// Output file (.parquet, .csv or .csv.gz), or a PostgreSQL table
    /// (postgres://USER@HOST:PORT/DB?schema=NAME&table=NAME, replaced at commit).
    #[arg(long, value_name = "FILE|URL")]
    out: churn_cli::data::Output,
    /// Also write each example's future as a CSV file (customer_id, as_of, period_end,
    /// data_end, grace_days): what a survival model needs, for peers such as lifelines.
    #[arg(long, value_name = "FILE")]
    futures: Option<std::path::PathBuf>,
    #[command(flatten)]
    windows: WindowArgs,
}

#[derive(clap::Args)]
pub struct DescribeArgs {
    /// Data directory or postgres:// URL (the event types, feature groups and attributes
    /// it has add features).
    #[arg(long, value_name = "DIR|URL")]
    data: DataSource,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    #[command(flatten)]
    windows: WindowArgs,
}

pub fn event_bar() -> indicatif::ProgressBar {
    let bar = progress_bar("events");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg}: {pos} read ({per_sec})")
            .expect("valid template"),
    );
    bar
}

pub fn run_features(a: FeaturesArgs) -> Result<()> {
    let ds = open_dataset(&a.data, &a.tables)?;
    let started = Instant::now();
    let bar = event_bar();
    if let Some(w) = ds.as_of_warning(a.as_of) {
        tracing::warn!("{w}");
    }
    let cfg = a.windows.config()?;
    let table = features::build_with_progress(&ds, &[a.as_of], &cfg, &|n| bar.set_position(n))
        .context("building features")?;
    bar.finish_and_clear();
    if table.is_empty() {
        let (first, end) = ds.date_range();
        tracing::warn!(
            "no customer is active at {}; the data spans {} to {}",
            time::format_date(a.as_of),
            time::format_date(first),
            time::format_date(end - 1)
        );
    }
    let rows = a
        .out
        .write_batches(
            features::arrow_schema(&table, false),
            features::arrow_batches(&table, None),
        )
        .with_context(|| format!("writing {}", a.out))?;
    println!(
        "wrote {}: {rows} customers x {} features as of {} in {:.2}s",
        a.out,
        table.info.len(),
        time::format_date(a.as_of),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn run_examples(a: ExamplesArgs) -> Result<()> {
    let ds = open_dataset(&a.data, &a.tables)?;
    let dates = labels::observation_dates(&ds, a.horizon_days);
    anyhow::ensure!(
        !dates.is_empty(),
        "the data is too short for one observation date with a {}-day horizon",
        a.horizon_days
    );
    let started = Instant::now();
    let cfg = a.windows.config()?;
    let ex = build_examples(&ds, &dates, a.horizon_days, &cfg)?;
    if let Some(path) = &a.futures {
        write_futures(&ds, &ex.features, cfg.grace_days, path)?;
    }
    a.out
        .write_batches(
            features::arrow_schema(&ex.features, true),
            features::arrow_batches(&ex.features, Some(&ex.labels)),
        )
        .with_context(|| format!("writing {}", a.out))?;
    let positives = ex.labels.iter().filter(|&&l| l == 1).count();
    println!(
        "wrote {}: {} examples ({} churned within {} days, {:.1} %) over {} observation dates {} to {} in {:.2}s",
        a.out,
        ex.labels.len(),
        positives,
        a.horizon_days,
        100.0 * positives as f64 / ex.labels.len().max(1) as f64,
        dates.len(),
        time::format_date(dates[0]),
        time::format_date(*dates.last().expect("non-empty")),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Each example's active period end (empty while open) and where the data ends, as CSV.
fn write_futures(
    ds: &Dataset,
    table: &churn_features::features::FeatureTable,
    grace_days: i32,
    path: &std::path::Path,
) -> Result<()> {
    use std::fmt::Write;
    let data_end = time::format_date(ds.date_range().1);
    let mut out = String::from("customer_id,as_of,period_end,data_end,grace_days\n");
    for r in 0..table.len() {
        let as_of = table.as_of[r].expect("examples have dates");
        let customer = &ds.customers[table.customers[r] as usize];
        let end = labels::period_end(customer, as_of, grace_days)
            .expect("examples are active customers")
            .map(time::format_date)
            .unwrap_or_default();
        let id = &table.customer_ids[r];
        let id = if id.contains([',', '"', '\n']) {
            format!("\"{}\"", id.replace('"', "\"\""))
        } else {
            id.clone()
        };
        writeln!(
            out,
            "{id},{},{end},{data_end},{grace_days}",
            time::format_date(as_of)
        )
        .expect("writing to a string");
    }
    churn_features::write::write_file_atomic(path, out.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Labelled examples for `dates`, with a progress bar over the events read.
pub fn build_examples(
    ds: &Dataset,
    dates: &[Day],
    horizon_days: i32,
    cfg: &FeatureConfig,
) -> Result<labels::Examples> {
    let bar = event_bar();
    let ex = labels::examples(ds, dates, horizon_days, cfg, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    Ok(ex)
}

pub fn run_describe(a: DescribeArgs) -> Result<()> {
    let ds = open_dataset(&a.data, &a.tables)?;
    let (_, end) = ds.date_range();
    let table = features::features(&ds, end, &a.windows.config()?)?;
    let width = table.info.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for i in &table.info {
        let kind = match i.kind {
            features::FeatureKind::Numeric => "number",
            features::FeatureKind::Categorical => "category",
        };
        println!("{:width$}  {kind:8}  {}", i.name, i.description);
    }
    Ok(())
}
