//! `churn-train train` and `churn-train evaluate`.

use crate::{open_dataset, parse_day, progress_bar};
use anyhow::{bail, Context, Result};
use churn_cli::data::DataSource;
use churn_features::features::FeatureTable;
use churn_features::labels;
use churn_features::rules::RulesConfig;
use churn_features::table::read_table;
use churn_features::time::{self, Day};
use churn_model::artifact;
use churn_model::card;
use churn_model::compare::Comparison;
use churn_model::model::ModelKind;
use churn_model::publish;
use churn_model::survival::ClvSettings;
use churn_model::train::{self, Evaluation, TrainConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["data", "table"])))]
pub struct TrainArgs {
    /// Data directory, or a PostgreSQL schema (postgres://USER@HOST:PORT/DB?schema=NAME):
    /// examples come from monthly observation dates.
    #[arg(long, value_name = "DIR|URL")]
    data: Option<DataSource>,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    #[command(flatten)]
    table: LabelledTable,
    /// Where model directories go.
    #[arg(long, default_value = "models")]
    out: PathBuf,
    /// Model name (a directory under --out).
    #[arg(long, default_value = "churn")]
    name: String,
    #[arg(long, default_value_t = labels::DEFAULT_HORIZON_DAYS)]
    horizon_days: i32,
    /// Candidates, comma-separated.
    #[arg(
        long,
        default_value = "logistic,forest,gbm,blend",
        value_delimiter = ','
    )]
    models: Vec<String>,
    /// Backtest folds: the last K observation dates (default: every date with enough
    /// history before it, an expanding window); or cross-validation folds for a table
    /// without dates (default 3).
    #[arg(long)]
    folds: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How much each candidate's settings are searched: none (fixed settings), quick
    /// (four boosting settings with early stopping, log1p tried for the linear model),
    /// full (twelve boosting settings).
    #[arg(long, value_enum, default_value_t = SearchArg::Quick)]
    search: SearchArg,
    /// Rules file saved with the model (default: the built-in rules).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the text summary (what was written,
    /// the chosen candidate, the backtest figures).
    #[arg(long)]
    json: bool,
    /// A model to compare the new one with on the same backtest rows (a version
    /// directory, or models/NAME for its LATEST): printed, and saved as the new
    /// version's comparison.json.
    #[arg(long, value_name = "MODEL")]
    compare_to: Option<PathBuf>,
    /// Move LATEST to the new version only when it beats --compare-to (lower log loss on
    /// the compared rows); otherwise the version is saved beside the serving one.
    #[arg(long, requires = "compare_to")]
    promote_if_better: bool,
    #[command(flatten)]
    windows: crate::features::WindowArgs,
    /// Share of revenue the survival model's CLV counts (1: revenue, as the domain
    /// brief measures CLV; 0.8 for an 80 % gross margin). Saved with the model.
    #[arg(long, default_value_t = 1.0)]
    gross_margin: f64,
    /// Annual rate the CLV discounts future months by (0: undiscounted). Saved with the
    /// model.
    #[arg(long, default_value_t = 0.0)]
    annual_discount: f64,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["data", "table"])))]
pub struct EvaluateArgs {
    /// A model version directory, or a models/NAME directory (its LATEST).
    #[arg(long)]
    model: PathBuf,
    /// Labelled data: a data directory or postgres:// schema, examples at --as-of.
    #[arg(long, value_name = "DIR|URL", requires = "as_of")]
    data: Option<DataSource>,
    #[command(flatten)]
    tables: churn_cli::data::TablesArg,
    /// Observation date for --data.
    #[arg(long, value_parser = parse_day)]
    as_of: Option<Day>,
    #[command(flatten)]
    table: LabelledTable,
    /// Evaluate even on dates whose outcomes the model was trained on (the figures are
    /// then optimistic).
    #[arg(long)]
    allow_overlap: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `--search` on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SearchArg {
    None,
    Quick,
    Full,
}

/// A labelled table given on the command line, for `train` and `evaluate`.
#[derive(clap::Args)]
pub struct LabelledTable {
    /// A labelled table (CSV or Parquet) instead of a data directory. With an `as_of`
    /// column over 3+ dates it is backtested out of time, otherwise cross-validated.
    #[arg(long, requires_all = ["id", "label"])]
    table: Option<PathBuf>,
    /// Customer id column of --table.
    #[arg(long)]
    id: Option<String>,
    /// Label column of --table (1/0, yes/no, true/false).
    #[arg(long)]
    label: Option<String>,
}

impl LabelledTable {
    /// Reads the table and its labels (clap guarantees --table, --id and --label).
    fn load(&self) -> Result<(PathBuf, FeatureTable, Vec<u8>)> {
        let path = self.table.clone().expect("clap requires --data or --table");
        let loaded = read_table(&path, self.id.as_deref(), self.label.as_deref())?;
        let labels = loaded.labels.expect("a label column was named");
        Ok((path, loaded.table, labels))
    }
}

pub fn run_train(a: TrainArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let (cfg, rules) = settings(&a)?;
    // A model to compare with is read first: a wrong path fails before the training.
    let previous = match &a.compare_to {
        Some(path) => Some(artifact::load(path)?.0),
        None => None,
    };
    let windows = a.windows.config()?;
    let (trained, source, inputs) = match &a.data {
        Some(data) => train_on_data(data, &a.tables, a.horizon_days, &windows, &cfg, &rules)?,
        None => {
            let (path, mut table, labels) = a.table.load()?;
            table.config = windows;
            let bar = training_bar();
            let trained =
                train::train_table(table, labels, a.horizon_days, &cfg, &rules, &|done, all| {
                    bar.set_length(all as u64);
                    bar.set_position(done as u64);
                })?;
            bar.finish_and_clear();
            (
                trained,
                path.display().to_string(),
                Inputs::Files(vec![path]),
            )
        }
    };
    let sha256 = match inputs {
        Inputs::Files(files) => publish::fingerprint(&files)?,
        Inputs::Snapshot(snapshot) => publish::fingerprint_text(&snapshot),
    };
    let comparison = match (&a.compare_to, &previous) {
        (Some(path), Some(previous)) => Some(
            churn_model::compare::compare(
                previous,
                &trained.outcome,
                &trained.table,
                &trained.labels,
                trained.horizon_days,
            )
            .with_context(|| format!("comparing with {}", path.display()))?,
        ),
        _ => None,
    };
    let mut run = publish::Run::of(&trained, &rules, a.seed, &source, sha256);
    run.comparison = comparison.as_ref();
    run.promote = !a.promote_if_better || comparison.as_ref().is_some_and(|c| c.better);
    let saved = publish::save(&a.out, &a.name, &run)?;
    warn_suspicious(&trained.outcome);
    report_saved(
        &a,
        &trained,
        &saved,
        comparison.as_ref(),
        started.elapsed().as_secs_f64(),
    )
}

/// The trainer's settings and the rules from the arguments.
fn settings(a: &TrainArgs) -> Result<(TrainConfig, RulesConfig)> {
    let kinds: Vec<ModelKind> = a
        .models
        .iter()
        .map(|m| {
            ModelKind::parse(m).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown model `{m}` in --models: expected logistic, forest, gbm or blend"
                )
            })
        })
        .collect::<Result<_>>()?;
    let rules = match &a.rules {
        Some(p) => RulesConfig::load(p)?,
        None => RulesConfig::default(),
    };
    let cfg = TrainConfig {
        search: match a.search {
            SearchArg::None => train::Search::None,
            SearchArg::Quick => train::Search::Quick,
            SearchArg::Full => train::Search::Full,
        },
        kinds,
        folds: a.folds,
        seed: a.seed,
        clv: ClvSettings::new(a.gross_margin, a.annual_discount)
            .map_err(|e| anyhow::anyhow!("--gross-margin / --annual-discount: {e}"))?,
    };
    Ok((cfg, rules))
}

/// What a model's fingerprint covers: the table files read, or a database snapshot.
enum Inputs {
    Files(Vec<PathBuf>),
    Snapshot(String),
}

/// Trains on the examples of every observation date of a data directory or database;
/// returns the run, the source's name and what its fingerprint covers.
fn train_on_data(
    data: &DataSource,
    tables: &churn_cli::data::TablesArg,
    horizon_days: i32,
    windows: &churn_features::features::FeatureConfig,
    cfg: &TrainConfig,
    rules: &RulesConfig,
) -> Result<(train::Trained, String, Inputs)> {
    let opened = data.open(tables.tables.as_deref())?;
    let ds = &opened.dataset;
    let events = crate::features::event_bar();
    let bar = training_bar();
    let trained = train::train_dataset(
        ds,
        horizon_days,
        windows,
        cfg,
        rules,
        &|n| events.set_position(n),
        &|done, all| {
            if done == 0 {
                events.finish_and_clear();
            }
            bar.set_length(all as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let inputs = match (opened.snapshot, data) {
        (Some(snapshot), _) => Inputs::Snapshot(snapshot),
        (None, DataSource::Dir(dir)) => Inputs::Files(publish::data_files(dir)?),
        (None, DataSource::Postgres(_)) => unreachable!("a database gives its snapshot"),
    };
    Ok((trained, opened.source, inputs))
}

/// Prints what was saved: one JSON object with `--json`, the figures as text otherwise.
fn report_saved(
    a: &TrainArgs,
    trained: &train::Trained,
    saved: &publish::Saved,
    comparison: Option<&Comparison>,
    seconds: f64,
) -> Result<()> {
    let outcome = &trained.outcome;
    let dir = &saved.dir;
    if a.json {
        let summary = publish::RunSummary::new(&a.name, trained, saved, comparison, seconds);
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    print_summary(outcome);
    if let Some(c) = comparison {
        print_comparison(c, saved.promoted, a.promote_if_better);
    }
    println!(
        "model written to {} in {seconds:.1}s (report: {})",
        dir.display(),
        dir.join("report.html").display()
    );
    Ok(())
}

fn print_comparison(c: &Comparison, promoted: bool, if_better: bool) {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    println!(
        "against {} on {} backtest rows with {} churners ({} to {}){}:",
        c.previous,
        c.rows,
        c.positives,
        c.from.as_deref().unwrap_or("?"),
        c.to.as_deref().unwrap_or("?"),
        if c.unseen_by_previous {
            ", all after its training labels"
        } else {
            "; they overlap its training, which favours it"
        }
    );
    for (who, e) in [("new", &c.new), ("previous", &c.previous_model)] {
        println!(
            "  {who:<9} log loss {:.4}  ROC AUC {}  PR AUC {}  top-10% lift {}  predicted {:.2} % vs realised {:.2} %",
            e.log_loss,
            f(e.roc_auc),
            f(e.pr_auc),
            f(e.lift_top10),
            e.predicted_churn_pct,
            e.actual_churn_pct
        );
    }
    let verdict = if c.better { "better" } else { "not better" };
    if if_better && !promoted {
        println!("the new version is {verdict} (log loss): LATEST stays where it was");
    } else {
        println!(
            "the new version is {verdict} (log loss); LATEST {}",
            if promoted { "moved to it" } else { "unchanged" }
        );
    }
}

/// A bar over fitting steps (candidates x folds, then the final fit).
fn training_bar() -> indicatif::ProgressBar {
    let bar = progress_bar("fitting candidates");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} fits, {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn print_summary(o: &train::TrainOutcome) {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    println!(
        "{:<12} {:<10} {:>8} {:>8} {:>9} {:>8} {:>7} {:>6}",
        "fold", "model", "ROC AUC", "PR AUC", "log loss", "Brier", "ECE", "lift"
    );
    for fold in &o.folds {
        for c in &fold.candidates {
            let e = &c.evaluation;
            println!(
                "{:<12} {:<10} {:>8} {:>8} {:>9.4} {:>8.4} {:>7.4} {:>6}",
                fold.name,
                c.kind.as_str(),
                f(e.roc_auc),
                f(e.pr_auc),
                e.log_loss,
                e.brier,
                e.ece,
                f(e.lift_top10)
            );
        }
    }
    let e = &o.overall;
    println!(
        "{:<12} {:<10} {:>8} {:>8} {:>9.4} {:>8.4} {:>7.4} {:>6}",
        "all folds",
        o.chosen.as_str(),
        f(e.roc_auc),
        f(e.pr_auc),
        e.log_loss,
        e.brier,
        e.ece,
        f(e.lift_top10)
    );
    if let (Some(h), Some(s)) = (&o.rules_health, &o.rules_signals) {
        println!(
            "{:<12} {:<10} {:>8} {:>8}",
            "rules",
            "health",
            f(h.roc_auc),
            f(h.pr_auc)
        );
        println!(
            "{:<12} {:<10} {:>8} {:>8}",
            "rules",
            "signals",
            f(s.roc_auc),
            f(s.pr_auc)
        );
    }
    println!(
        "chose {} by the pooled backtest log loss over {} test rows with {} churners",
        o.chosen.as_str(),
        e.rows,
        e.positives
    );
    if let Some((rules, model)) = o.rules_rank_as_well() {
        println!(
            "note: the rule-based health score ranks churners as well as or better than the model on these rows (ROC AUC {rules:.3} vs {model:.3}, {} churners decided it): consider the rules, or more data",
            e.positives
        );
    }
}

/// The leakage guard's findings, on stderr whatever the output format.
fn warn_suspicious(o: &train::TrainOutcome) {
    for s in &o.suspicious {
        tracing::warn!(
            "suspicious {} (ROC AUC {:.3}): {}",
            s.what,
            s.roc_auc,
            s.message
        );
    }
}

/// The end of the label window of the model's training data, from its card.
fn labels_until(dir: &std::path::Path) -> Option<Day> {
    time::parse_date(card::training_data(dir)?.labels_until.as_deref()?)
}

pub fn run_evaluate(a: EvaluateArgs) -> Result<()> {
    let (art, dir) = artifact::load(&a.model)?;
    // Rows whose label window starts before the training labels ended were (or share
    // outcomes with) training rows: "data it never saw" would not be true.
    let overlap = |first: Day| -> Result<Option<String>> {
        let Some(until) = labels_until(&dir) else {
            return Ok(None);
        };
        if first >= until {
            return Ok(None);
        }
        let message = format!(
            "the model was trained on outcomes until {}, and the evaluation starts at {}: its figures would be optimistic",
            time::format_date(until),
            time::format_date(first)
        );
        if a.allow_overlap {
            Ok(Some(message))
        } else {
            bail!(
                "{message}; evaluate on a date from {} on, or pass --allow-overlap",
                time::format_date(until)
            )
        }
    };
    let (table, labels) = if let Some(data) = &a.data {
        let as_of = a.as_of.expect("clap requires --as-of");
        let ds = open_dataset(data, &a.tables)?;
        let horizon = if art.horizon_days > 0 {
            art.horizon_days
        } else {
            labels::DEFAULT_HORIZON_DAYS
        };
        let (_, end) = ds.date_range();
        if as_of + horizon > end {
            bail!(
                "{}: the data ends {} but a {horizon}-day label window from {} needs data until {}",
                data,
                time::format_date(end),
                time::format_date(as_of),
                time::format_date(as_of + horizon)
            );
        }
        if let Some(w) = overlap(as_of)? {
            tracing::warn!("{w}");
        }
        let ex = labels::examples(&ds, &[as_of], horizon, &art.feature_config, &|_| {})?;
        (ex.features, ex.labels)
    } else {
        let (_, table, labels) = a.table.load()?;
        if let Some(first) = table.as_of.iter().flatten().copied().min() {
            if let Some(w) = overlap(first)? {
                tracing::warn!("{w}");
            }
        }
        (table, labels)
    };
    if labels.is_empty() {
        bail!("no labelled rows to evaluate on");
    }
    // A model input the data lacks is imputed on every row: the figures would describe
    // a weaker model than the one trained, so say which.
    let missing: Vec<&str> = art
        .model
        .preprocessor
        .transforms
        .iter()
        .map(|t| t.name())
        .filter(|name| table.column(name).is_none())
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "the data lacks model input(s) {}: they are imputed for every row, so the figures understate the model",
            missing.join(", ")
        );
    }
    let rows: Vec<usize> = (0..labels.len()).collect();
    let p = art.model.predict_table(&table, &rows)?;
    let e = Evaluation::of(&p, &labels, art.model.threshold);
    if a.json {
        /// `evaluate --json`: the model and every figure of the evaluation.
        #[derive(serde::Serialize)]
        struct EvaluateSummary<'a> {
            model: artifact::ModelRef,
            #[serde(flatten)]
            evaluation: &'a Evaluation,
        }
        let out = EvaluateSummary {
            model: art.reference(&dir),
            evaluation: &e,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        println!(
            "model {} {} on {} rows ({} churned)",
            art.name, art.version, e.rows, e.positives
        );
        println!("ROC AUC {}  PR AUC {}  log loss {:.4}  Brier {:.4}  ECE {:.4}  top-10% lift {}  precision {:.3}  recall {:.3} at {:.3}", f(e.roc_auc), f(e.pr_auc), e.log_loss, e.brier, e.ece, f(e.lift_top10), e.precision, e.recall, e.threshold);
    }
    Ok(())
}
