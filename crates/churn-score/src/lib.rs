//! `churn-score`: scores a whole customer base into a CSV or Parquet worklist, through
//! the same scoring core as `churn-serve`. The binary is [`Args`] + [`run`]; the
//! benchmark calls them in process.

mod output;

pub use output::{rules_table, schema as output_schema, Order, RejectedRow, Top};

use anyhow::{bail, Context, Result};
use arrow_array::{Array, Float64Array, RecordBatch};
use arrow_schema::SchemaRef;
use churn_cli::data::DataSource;
pub use churn_cli::data::Output;
use churn_features::contract::CUSTOMERS;
use churn_features::features::FeatureKind;
use churn_features::read::{Column, TableFile};
use churn_features::time::{format_date, parse_date, Day};
use churn_features::DataError;
use churn_model::artifact;
use churn_scoring::ScoreError;
use churn_scoring::{table_cell, Cell, Options, Scorer, Scratch, ROW_KEYS, TILE_ROWS};
use output::{Rejects, Scores, Summary, Worklist};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

/// Scores every customer of a feature table (or of a raw data directory as of a date).
#[derive(Debug, clap::Parser)]
#[command(version, about)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["input", "data"])))]
pub struct Args {
    /// The model: a version directory, a model directory (its LATEST) or a model.bin.
    #[arg(long)]
    pub model: PathBuf,
    /// A feature table (`churn-train features` output): .parquet, .csv or .csv.gz.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// A raw data directory, or a PostgreSQL schema
    /// (postgres://USER@HOST:PORT/DB?schema=NAME); features are built as of --as-of.
    #[arg(long, value_name = "DIR|URL", requires = "as_of")]
    pub data: Option<DataSource>,
    #[command(flatten)]
    pub tables: churn_cli::data::TablesArg,
    /// The as-of date for --data (features from what happened strictly before it).
    #[arg(long, requires = "data")]
    pub as_of: Option<String>,
    /// Output file (.parquet, .csv or .csv.gz), or a PostgreSQL table
    /// (postgres://USER@HOST:PORT/DB?schema=NAME&table=churn_scores), replaced in one
    /// transaction: readers see the old worklist or the new one, never a mix.
    #[arg(long, value_name = "FILE|URL")]
    pub output: Output,
    /// With a postgres:// --output: add the rows to the table, each with the run's
    /// `scored_at` time, instead of replacing it.
    #[arg(long)]
    pub append: bool,
    /// Keep the N customers with the most revenue at risk, sorted (the worklist).
    #[arg(long)]
    pub top: Option<usize>,
    /// What --top ranks by: revenue-at-risk (probability x MRR, this month's revenue),
    /// clv-at-risk (probability x lifetime value: revenue lost for good; needs a model
    /// with a survival curve) or probability.
    #[arg(long, value_enum, default_value_t = Order::RevenueAtRisk, requires = "top")]
    pub order: Order,
    /// Write rows that can be scored and list the others in a rejects file instead of
    /// stopping at the first.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Where --skip-invalid lists rejected rows (default: OUTPUT's name + .rejects.csv).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Reasons per customer in `top_reasons` (0: no explanations, faster).
    #[arg(long, default_value_t = 3)]
    pub reasons: usize,
    /// Leave `expected_lifetime_months`, `clv` and `clv_at_risk` empty: skips the
    /// survival curve (about a microsecond a row) when only the probability is wanted.
    #[arg(long)]
    pub no_survival: bool,
    /// Score an --as-of more than the model's horizon past the end of the data (almost
    /// always a typo: every customer would look inactive).
    #[arg(long, requires = "data")]
    pub allow_future: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print the run's figures as one JSON object on stdout (instead of text on stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: churn_cli::LogArgs,
}

/// Whether two paths name the same file (existing or not).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => match (std::path::absolute(a), std::path::absolute(b)) {
            (Ok(x), Ok(y)) => x.components().eq(y.components()),
            _ => a == b,
        },
    }
}

fn progress(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {human_pos} rows scored ({per_sec}) {msg}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Scores the input into the output; prints progress and a summary on stderr.
///
/// A pipeline: this thread reads batches and scores each in parallel (rayon), a writer
/// thread turns scored rows into Arrow batches and encodes the file, two batches apart.
pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let (a, dir) = artifact::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    tracing::info!("model {} version {} ({})", a.name, a.version, dir.display());
    let scorer = Scorer::new(a);
    let options = Options {
        explain: args.reasons > 0,
        top: args.reasons,
        warnings: false,
        survival: !args.no_survival,
    };
    let output_file = match &args.output {
        Output::File(p) => Some(p.as_path()),
        Output::Postgres(_) => None,
    };
    if args.append && output_file.is_some() {
        bail!("--append adds to a database table: --output must be a postgres:// URL");
    }
    let rejects_path = match (&args.rejects, output_file) {
        (Some(p), _) => p.clone(),
        (None, Some(out)) => {
            let mut name = out.file_name().unwrap_or_default().to_os_string();
            name.push(".rejects.csv");
            out.with_file_name(name)
        }
        (None, None) if args.skip_invalid => {
            bail!("--skip-invalid with a database --output needs --rejects FILE for the rows it leaves out")
        }
        (None, None) => PathBuf::from("rejects.csv"),
    };
    // Refuse to overwrite what is read, or to write two outputs into one file.
    if let (Some(input), Some(out)) = (&args.input, output_file) {
        if same_file(input, out) {
            bail!(
                "--output {} is the input file: choose another output",
                out.display()
            );
        }
    }
    if let Some(input) = &args.input {
        if args.skip_invalid && same_file(input, &rejects_path) {
            bail!(
                "the rejects file {} is the input file: choose another --rejects",
                rejects_path.display()
            );
        }
    }
    if let Some(out) = output_file {
        if args.skip_invalid && same_file(out, &rejects_path) {
            bail!(
                "--rejects {} is the output file: choose another",
                rejects_path.display()
            );
        }
    }
    let top = args.top.map(|n| Top {
        n,
        order: args.order,
    });
    if args.order == Order::ClvAtRisk && args.no_survival {
        bail!(
            "--order clv-at-risk ranks by the survival model's lifetime value: drop --no-survival"
        );
    }
    if args.order == Order::ClvAtRisk && scorer.artifact().survival.is_none() {
        bail!(
            "--order clv-at-risk needs a model with a survival curve (model format 5 or later, trained on a data directory); {} has none",
            args.model.display()
        );
    }
    let sink = match &args.output {
        Output::File(path) => Worklist::new(&scorer, path, top)?,
        Output::Postgres(location) => {
            let mode = if args.append {
                churn_postgres::WriteMode::Append
            } else {
                churn_postgres::WriteMode::Replace
            };
            let table = location.table.as_deref().expect("checked when parsed");
            Worklist::to_postgres(&scorer, location, table, mode, top)?
        }
    };
    let bar = progress(args.quiet);
    let rejects = Rejects::new(args.skip_invalid, rejects_path);
    let ran = pipeline(&scorer, options, sink, rejects, &bar, |job| {
        match (&args.input, &args.data) {
            (Some(input), _) => job.score_file(&TableFile::at(input, &CUSTOMERS)?),
            (None, Some(data)) => {
                let text = args.as_of.as_deref().unwrap_or_default();
                match parse_date(text) {
                    Some(as_of) => job.score_data(data, &args.tables, as_of, args.allow_future),
                    None => Err(anyhow::anyhow!(
                        "--as-of `{text}` is not a date (YYYY-MM-DD)"
                    )),
                }
            }
            (None, None) => unreachable!("clap requires --input or --data"),
        }
    })?;
    let (rows_in, written, mut rejects, summary) =
        (ran.rows_in, ran.written.rows, ran.rejects, ran.summary);
    bar.finish_and_clear();
    let rejected = rejects.finish()?;
    let kept = summary.scored;
    // Nothing silently lost: every row read was scored or rejected, and every scored
    // row was written (or left out of a --top worklist).
    if rows_in != kept + rejected {
        bail!("internal error: {rows_in} rows read but {kept} scored and {rejected} rejected");
    }
    if args.top.is_none() && written != kept {
        bail!("internal error: {kept} rows scored but {written} written");
    }
    let totals = summary.totals(
        &args.output.to_string(),
        rows_in,
        written,
        rejected,
        rejects.path(),
        start.elapsed(),
    );
    if args.json {
        let out = JsonSummary {
            model: scorer.artifact().reference(&dir),
            run: &totals,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        totals.print();
    }
    Ok(())
}

/// Scores a feature table (a file, or batches held in memory) as `churn-score --input`
/// scores a file: the same columns and the same values, returned as Arrow batches in
/// input order (or the `top` rows, ranked). The first row that cannot be scored is the
/// error.
pub fn score_table(
    scorer: &Scorer,
    table: &TableFile,
    options: Options,
    top: Option<Top>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let sink = Worklist::in_memory(scorer, top);
    let schema = sink.schema();
    let bar = indicatif::ProgressBar::hidden();
    let ran = pipeline(scorer, options, sink, Rejects::none(), &bar, |job| {
        job.score_file(table)
    })?;
    Ok((schema, ran.written.batches))
}

/// What a scoring run read, wrote and counted.
struct Ran {
    rows_in: u64,
    written: output::Written,
    rejects: Rejects,
    summary: Summary,
}

/// Runs `read` (which scores batches through the [`Job`] it is given) on this thread
/// while a writer thread turns scored rows into Arrow batches for `sink`, two batches
/// apart. Only a run that read everything finishes the sink.
fn pipeline(
    scorer: &Scorer,
    options: Options,
    sink: Worklist,
    rejects: Rejects,
    bar: &indicatif::ProgressBar,
    read: impl FnOnce(&mut Job) -> Result<u64>,
) -> Result<Ran> {
    std::thread::scope(|scope| -> Result<Ran> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Scores>(2);
        // The writer hands the sink back unfinished: only a run that read everything
        // finishes (renames) it; dropping it removes the temporary file.
        let writer = scope.spawn(move || -> Result<Worklist> {
            let mut sink = sink;
            for rows in rx {
                sink.add(rows)?;
            }
            Ok(sink)
        });
        let mut job = Job {
            scorer,
            options,
            tx,
            rejects,
            summary: Summary::default(),
            bar,
        };
        let read = read(&mut job);
        // Dropping the job closes the channel, so the writer stops.
        let (rejects, summary) = job.into_parts();
        let sink = writer.join().expect("the writer thread does not panic");
        // A failed write shows up as a closed channel on this side: report the cause.
        let rows_in = match (read, &sink) {
            (Err(_), Err(w)) => bail!("{w:#}"),
            (r, _) => r?,
        };
        Ok(Ran {
            rows_in,
            written: sink?.finish()?,
            rejects,
            summary,
        })
    })
}

/// `--json`: the model that scored and the run's figures.
#[derive(serde::Serialize)]
struct JsonSummary<'a> {
    model: churn_model::artifact::ModelRef,
    run: &'a output::Totals,
}

/// One input column mapped to a schema position.
struct Mapped {
    name: String,
    position: usize,
}

/// Maps the file's columns onto the model's schema; refuses columns the model does not
/// know (a feature table of another model would otherwise lose them silently).
fn map_columns(scorer: &Scorer, names: &[String], file: &Path) -> Result<Vec<Mapped>> {
    let mut mapped = Vec::new();
    let mut unknown = Vec::new();
    for n in names {
        match scorer.position(n) {
            Some(position) => mapped.push(Mapped {
                name: n.clone(),
                position,
            }),
            None if ROW_KEYS.contains(&n.as_str()) => {}
            None => unknown.push(n.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(DataError::Malformed {
            file: file.to_path_buf(),
            message: format!(
                "column(s) {} are not features of model {} version {}",
                unknown.join(", "),
                scorer.artifact().name,
                scorer.artifact().version
            ),
        }
        .into());
    }
    if !names.iter().any(|n| n == "customer_id") {
        return Err(DataError::MissingColumn {
            file: file.to_path_buf(),
            column: "customer_id".into(),
            found: names.join(", "),
        }
        .into());
    }
    let missing: Vec<&str> = scorer
        .schema()
        .iter()
        .enumerate()
        .filter(|(p, _)| scorer.is_model_input(*p) && !mapped.iter().any(|m| m.position == *p))
        .map(|(_, f)| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "{} lacks model input(s) {}: they are imputed for every row",
            file.display(),
            missing.join(", ")
        );
    }
    Ok(mapped)
}

/// Where a schema position's cells come from in a file batch.
enum Source<'b> {
    /// A Float64 column's values and nulls (none when it has no null), read directly
    /// (the common Parquet case).
    Floats(&'b [f64], Option<&'b arrow_buffer::NullBuffer>),
    /// Any other column: text (all of a CSV) is parsed by the preprocessing.
    Column(Column<'b>),
    Absent,
}

impl Source<'_> {
    #[inline]
    fn cell(&self, i: usize) -> Cell<'_> {
        match self {
            Source::Floats(values, nulls) => match nulls {
                Some(nulls) if nulls.is_null(i) => Cell::Missing,
                _ => Cell::Number(values[i]),
            },
            Source::Column(c) if c.is_text() => match c.str(i) {
                Some(s) if !s.trim().is_empty() => Cell::Text(s),
                _ => Cell::Missing,
            },
            Source::Column(c) => match c.number(i) {
                Ok(Some(v)) => Cell::Number(v),
                _ => Cell::Missing,
            },
            Source::Absent => Cell::Missing,
        }
    }
}

/// The state of one scoring run on the reading side.
struct Job<'a> {
    scorer: &'a Scorer,
    options: Options,
    tx: SyncSender<Scores>,
    rejects: Rejects,
    summary: Summary,
    bar: &'a indicatif::ProgressBar,
}

impl Job<'_> {
    fn into_parts(self) -> (Rejects, Summary) {
        (self.rejects, self.summary)
    }

    /// Scores `n` rows in parallel, a chunk of rows per task; keeps the good ones in
    /// order, hands bad ones to the rejects (which stop the run unless --skip-invalid),
    /// and sends the rest on as output columns.
    fn score_rows<'c>(
        &mut self,
        n: usize,
        cell: impl Fn(usize, usize) -> Cell<'c> + Sync,
        id: impl Fn(usize) -> Cow<'c, str> + Sync,
        as_of: impl Fn(usize) -> Option<Day> + Sync,
        location: impl Fn(usize) -> String,
    ) -> Result<()> {
        /// Rows per task: big enough that a task's set-up is noise, small enough that
        /// both cores stay busy to the end of a 64 K-row batch.
        const CHUNK: usize = 4096;
        let scorer = self.scorer;
        let options = self.options;
        let reasons = if options.explain { options.top } else { 0 };
        let chunks: Vec<(Scores, Vec<(usize, ScoreError)>)> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let rows = c * CHUNK..((c + 1) * CHUNK).min(n);
                let mut scores = Scores::with_capacity(rows.len(), reasons);
                let mut failed = Vec::new();
                let mut scratch = Scratch::default();
                for start in rows.clone().step_by(TILE_ROWS) {
                    let tile_rows = start..(start + TILE_ROWS).min(rows.end);
                    let cells = |j: usize, p: usize| cell(p, start + j);
                    scorer.score_rows(tile_rows.len(), cells, options, &mut scratch, |j, s| {
                        let r = start + j;
                        match s {
                            Ok(s) => scores.push(scorer, &id(r), as_of(r), &s, |p| cells(j, p)),
                            Err(e) => failed.push((r, e)),
                        }
                    });
                }
                (scores, failed)
            })
            .collect();
        let mut all = Scores::with_capacity(n, reasons);
        for (scores, failed) in chunks {
            for (r, e) in failed {
                self.rejects.add(&id(r), &location(r), &e.to_string())?;
            }
            all.append(scores);
        }
        self.summary.add(&all);
        self.tx
            .send(all)
            .map_err(|_| anyhow::anyhow!("the output writer stopped"))?;
        self.bar.inc(n as u64);
        Ok(())
    }

    fn score_file(&mut self, file: &TableFile) -> Result<u64> {
        let input = file.path.as_path();
        let names = file
            .column_names()
            .with_context(|| format!("reading the feature table {}", input.display()))?;
        let mapped = map_columns(self.scorer, &names, input)?;
        let mut wanted: Vec<&str> = mapped.iter().map(|m| m.name.as_str()).collect();
        // A category's rows then share their level's string, which the preprocessing
        // looks up once a tile.
        let categories: Vec<&str> = mapped
            .iter()
            .filter(|m| self.scorer.schema()[m.position].kind == FeatureKind::Categorical)
            .map(|m| m.name.as_str())
            .collect();
        wanted.extend(["customer_id", "as_of"]);
        let mut rows_in = 0u64;
        let mut failure: Option<anyhow::Error> = None;
        let width = self.scorer.schema().len();
        file.for_each_batch_keeping(&wanted, &categories, |b| {
            let ids = b.required("customer_id")?;
            let as_of = b.column("as_of")?;
            let mut sources: Vec<Source> = (0..width).map(|_| Source::Absent).collect();
            for m in &mapped {
                let array = b.record_batch().column_by_name(&m.name);
                if let Some(f) = array.and_then(|a| a.as_any().downcast_ref::<Float64Array>()) {
                    // A NaN or infinity in a Parquet double column is a bad value, not
                    // a number: rejected by the preprocessing like text in a number.
                    let nulls = f.nulls().filter(|n| n.null_count() > 0);
                    sources[m.position] = Source::Floats(f.values(), nulls);
                    continue;
                }
                let c = b.required(&m.name)?;
                // A typed column that is not a number (a date, say) fails on its first
                // non-empty cell: a file-level problem, reported as such.
                if !c.is_text() && self.scorer.schema()[m.position].kind == FeatureKind::Numeric {
                    if let Some(i) = (0..b.len()).find(|&i| !c.is_null(i)) {
                        c.number(i)?;
                    }
                }
                sources[m.position] = Source::Column(c);
            }
            let mut dates: Vec<Option<Day>> = Vec::with_capacity(b.len());
            for i in 0..b.len() {
                dates.push(match &as_of {
                    Some(c) => c.date(i)?,
                    None => None,
                });
            }
            let scored = self.score_rows(
                b.len(),
                |p, r| sources[p].cell(r),
                |r| ids.text_ref(r).unwrap_or_default(),
                |r| dates[r],
                |r| b.location(r).to_string(),
            );
            if let Err(e) = scored {
                failure = Some(e.context(input.display().to_string()));
                return Err(churn_features::DataError::Stopped {
                    file: input.to_path_buf(),
                });
            }
            rows_in += b.len() as u64;
            Ok(())
        })
        .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
        Ok(rows_in)
    }

    fn score_data(
        &mut self,
        data: &DataSource,
        tables: &churn_cli::data::TablesArg,
        as_of: Day,
        allow_future: bool,
    ) -> Result<u64> {
        let opened = self.bar.suspend(|| data.open(tables.tables.as_deref()))?;
        let ds = opened.dataset;
        let horizon = match self.scorer.artifact().horizon_days {
            h if h > 0 => h,
            _ => churn_features::labels::DEFAULT_HORIZON_DAYS,
        };
        let (_, end) = ds.date_range();
        if as_of > end + horizon && !allow_future {
            bail!(
                "--as-of {} is more than the model's {horizon}-day horizon past the end of the data ({}): every customer would look inactive. Pass --allow-future to score it anyway",
                format_date(as_of),
                format_date(end - 1)
            );
        }
        if let Some(w) = ds.as_of_warning(as_of) {
            self.bar.suspend(|| tracing::warn!("{w}"));
        }
        self.bar
            .set_message(format!("(features as of {})", format_date(as_of)));
        // Built with the windows the model was trained on.
        let table =
            churn_features::features::features(&ds, as_of, &self.scorer.artifact().feature_config)?;
        let unknown: Vec<&str> = table
            .info
            .iter()
            .map(|f| f.name.as_str())
            .filter(|n| self.scorer.position(n).is_none())
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(
                "features {} of this data are not in the model's schema and are not used",
                unknown.join(", ")
            );
        }
        let columns = self.scorer.table_columns(&table);
        let step = churn_features::read::BATCH_ROWS;
        for from in (0..table.len()).step_by(step) {
            let to = (from + step).min(table.len());
            self.score_rows(
                to - from,
                |p, r| table_cell(columns[p], from + r),
                |r| Cow::Borrowed(table.customer_ids[from + r].as_str()),
                |_| Some(as_of),
                |r| format!("row {}", from + r + 1),
            )?;
        }
        Ok(table.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_parse() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }

    #[test]
    fn orders_are_named_as_on_the_command_line_or_in_python() {
        use super::Order;
        assert_eq!(Order::from_name("clv_at_risk"), Some(Order::ClvAtRisk));
        assert_eq!(Order::from_name("CLV-at-risk"), Some(Order::ClvAtRisk));
        assert_eq!(
            Order::from_name("revenue_at_risk"),
            Some(Order::RevenueAtRisk)
        );
        assert_eq!(Order::from_name("probability"), Some(Order::Probability));
        assert_eq!(Order::from_name("lifetime"), None);
    }
}
