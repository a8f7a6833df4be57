//! `churn-train`: the data scientist's command. It generates synthetic data, summarises
//! a data directory, and (as the trainer grows) builds features and trains models.

use anyhow::{Context, Result};
use churn_features::time;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod features;
mod kpis;
mod monitor;
mod rules;
mod summary;
mod train;

#[derive(Parser)]
#[command(
    name = "churn-train",
    version,
    about = "Churn prediction for subscription businesses: data, features, training"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: churn_cli::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic SaaS data set (all tables of the data contract).
    Generate(GenerateArgs),
    /// Check a data directory and print its tables and headline retention figures.
    Summary(SummaryArgs),
    /// Fit, calibrate and backtest churn models; write a versioned model and a report.
    Train(train::TrainArgs),
    /// Measure a trained model on labelled data it never saw.
    Evaluate(train::EvaluateArgs),
    /// Compare a trained model with the data as of a date: input and prediction drift,
    /// realised performance on matured dates, and a verdict (exit code 0 ok, 10 watch,
    /// 20 retrain).
    Monitor(monitor::MonitorArgs),
    /// Build the feature table as of a date (one row per active customer).
    Features(features::FeaturesArgs),
    /// Build labelled training examples over monthly observation dates.
    Examples(features::ExamplesArgs),
    /// Print every feature's name and description.
    Describe(features::DescribeArgs),
    /// Print the default rules, or measure the rules against churn in a data directory.
    Rules(rules::RulesArgs),
    /// Compute the retention KPIs of a data directory: an HTML report and JSON.
    Kpis(kpis::KpisArgs),
    /// Load a data directory into a PostgreSQL schema (one transaction; tables of the
    /// same names are replaced), to read it back with --data postgres://...
    Import(ImportArgs),
    /// Print the input data contract (tables and columns) as Markdown.
    Contract,
    /// Print a shell completion script, e.g. `churn-train completions bash >
    /// ~/.local/share/bash-completion/completions/churn-train`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Events as Parquet, the other tables as CSV.
    Mixed,
    Csv,
    Parquet,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Which business: the domain brief's SaaS company, or a consumer streaming app
    /// (one price, monthly billing rows, ~2 % monthly churn, eight event types).
    #[arg(long, value_enum, default_value_t = Preset::Saas)]
    preset: Preset,
    /// Size of the base: active customers when the data window opens (saas), or
    /// accounts signing up over the year before and the window (consumer-app).
    #[arg(long, default_value_t = 4000)]
    customers: u64,
    /// Months of data.
    #[arg(long, default_value_t = 24)]
    months: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First day of the data (YYYY-MM-DD).
    #[arg(long, default_value = "2024-01-01", value_parser = parse_day)]
    start: time::Day,
    #[arg(long, value_enum, default_value_t = Format::Mixed)]
    format: Format,
    /// Change the business from this day on (saas preset), to try monitoring: with the
    /// same seed, the rows before it are those of an unchanged run.
    #[arg(long, value_parser = parse_day, value_name = "DATE")]
    drift_from: Option<time::Day>,
    /// With --drift-from: multiply session lengths by this (0.6 = 40 % shorter); churn
    /// does not follow.
    #[arg(long, default_value_t = 1.0, requires = "drift_from")]
    drift_session_minutes: f64,
    /// With --drift-from: multiply the monthly churn hazard by this (a price rise).
    #[arg(long, default_value_t = 1.0, requires = "drift_from")]
    drift_churn: f64,
    /// With --drift-from: only customers on this plan (basic, pro, enterprise).
    #[arg(long, requires = "drift_from")]
    drift_plan: Option<String>,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The data directory to load.
    #[arg(long)]
    data: PathBuf,
    /// The schema to load it into: postgres://USER@HOST:PORT/DB?schema=NAME (password
    /// from PGPASSWORD or ~/.pgpass).
    #[arg(long, value_name = "URL")]
    to: String,
}

#[derive(clap::Args)]
struct SummaryArgs {
    /// Data directory, or a PostgreSQL schema: postgres://USER@HOST:PORT/DB?schema=NAME.
    #[arg(long, value_name = "DIR|URL")]
    data: churn_cli::data::DataSource,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    /// Measure as of this day (default: the month after the latest data).
    #[arg(long, value_parser = parse_day)]
    as_of: Option<time::Day>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn parse_day(s: &str) -> Result<time::Day, String> {
    time::parse_date(s).ok_or_else(|| format!("expected a date as YYYY-MM-DD, found `{s}`"))
}

fn main() {
    let cli = Cli::parse();
    churn_cli::quiet_on_closed_pipe();
    churn_cli::init(cli.log.log_format, "info", false);
    let format = cli.log.log_format;
    if let Err(e) = run(cli) {
        churn_cli::exit_with(format, &e);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(a) => generate(a),
        Command::Summary(a) => summary::run(&a.data, &a.tables, a.as_of, a.json),
        Command::Train(a) => train::run_train(a),
        Command::Evaluate(a) => train::run_evaluate(a),
        Command::Monitor(a) => {
            let code = monitor::run(a)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Features(a) => features::run_features(a),
        Command::Examples(a) => features::run_examples(a),
        Command::Describe(a) => features::run_describe(a),
        Command::Rules(a) => rules::run(a),
        Command::Kpis(a) => kpis::run(a),
        Command::Import(a) => import(a),
        Command::Contract => {
            print!("{}", churn_features::contract::markdown());
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "churn-train",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// A simulator preset on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Preset {
    Saas,
    ConsumerApp,
}

fn generate(a: GenerateArgs) -> Result<()> {
    let cfg = churn_sim::SimConfig {
        preset: match a.preset {
            Preset::Saas => churn_sim::Preset::Saas,
            Preset::ConsumerApp => churn_sim::Preset::ConsumerApp,
        },
        customers: a.customers,
        months: a.months,
        seed: a.seed,
        start: a.start,
        format: match a.format {
            Format::Mixed => churn_sim::OutputFormat::Mixed,
            Format::Csv => churn_sim::OutputFormat::Csv,
            Format::Parquet => churn_sim::OutputFormat::Parquet,
        },
        drift: a.drift_from.map(|from| churn_sim::Drift {
            from,
            session_minutes: a.drift_session_minutes,
            churn: a.drift_churn,
            plan: a.drift_plan.clone(),
        }),
    };
    let bar = progress_bar("simulating customers");
    let started = std::time::Instant::now();
    let stats = churn_sim::generate(&cfg, &a.out, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("generating data into {}", a.out.display()))?;
    bar.finish_and_clear();
    println!(
        "wrote {} in {:.1}s: {} customers, {} subscriptions, {} events, {} tickets, {} payments, {} surveys",
        a.out.display(),
        started.elapsed().as_secs_f64(),
        stats.customers,
        stats.subscriptions,
        stats.events,
        stats.tickets,
        stats.payments,
        stats.surveys
    );
    Ok(())
}

fn import(a: ImportArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let to = churn_postgres::PgLocation::parse(&a.to)?;
    let imported = churn_postgres::import(&a.data, &to)
        .with_context(|| format!("loading {} into {to}", a.data.display()))?;
    for column in &imported.skipped_columns {
        tracing::warn!("column {column} is not in the data contract and was not loaded");
    }
    let tables: Vec<String> = imported
        .tables
        .iter()
        .map(|(t, rows)| format!("{t} {rows}"))
        .collect();
    println!(
        "loaded {} into {to} in {:.1}s: {}",
        a.data.display(),
        started.elapsed().as_secs_f64(),
        tables.join(", ")
    );
    Ok(())
}

/// Opens a data directory or database, warning about rows that name unknown customers.
pub fn open_dataset(
    data: &churn_cli::data::DataSource,
    tables: &churn_cli::data::TablesArg,
) -> Result<churn_features::Dataset> {
    Ok(data.open(tables.tables.as_deref())?.dataset)
}

/// A progress bar on stderr that hides itself when stderr is not a terminal.
pub fn progress_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
