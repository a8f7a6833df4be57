//! `churn-score`: scores a whole customer base into a CSV or Parquet worklist, through
//! the same scoring core as `churn-serve`.

mod output;

use anyhow::{bail, Context, Result};
use churn_features::contract::CUSTOMERS;
use churn_features::features::{FeatureConfig, FeatureKind};
use churn_features::read::{Column, TableFile};
use churn_features::time::{format_date, parse_date, Day};
use churn_features::Dataset;
use churn_model::artifact;
use churn_scoring::{table_cell, Cell, Options, Scorer, ROW_KEYS};
use clap::Parser;
use output::{Rejects, Summary, Worklist};
use std::path::PathBuf;
use std::time::Instant;

/// Scores every customer of a feature table (or of a raw data directory as of a date).
#[derive(Debug, Parser)]
#[command(version, about)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["input", "data"])))]
struct Args {
    /// The model: a version directory, a model directory (its LATEST) or a model.bin.
    #[arg(long)]
    model: PathBuf,
    /// A feature table (`churn-train features` output): .parquet, .csv or .csv.gz.
    #[arg(long)]
    input: Option<PathBuf>,
    /// A raw data directory; features are built as of --as-of.
    #[arg(long, requires = "as_of")]
    data: Option<PathBuf>,
    /// The as-of date for --data (features from what happened strictly before it).
    #[arg(long, requires = "data")]
    as_of: Option<String>,
    /// Output file: .parquet, .csv or .csv.gz.
    #[arg(long)]
    output: PathBuf,
    /// Keep the N customers with the most revenue at risk, sorted (the worklist).
    #[arg(long)]
    top: Option<usize>,
    /// Write rows that can be scored and list the others in a rejects file instead of
    /// stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
    /// Where --skip-invalid lists rejected rows (default: OUTPUT's name + .rejects.csv).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Reasons per customer in `top_reasons` (0: no explanations, faster).
    #[arg(long, default_value_t = 3)]
    reasons: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
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

fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let (a, dir) = artifact::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    eprintln!("model {} version {} ({})", a.name, a.version, dir.display());
    let scorer = Scorer::new(a);
    let options = Options {
        explain: args.reasons > 0,
        top: args.reasons,
    };
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        let mut name = args.output.file_name().unwrap_or_default().to_os_string();
        name.push(".rejects.csv");
        args.output.with_file_name(name)
    });
    let mut sink = Worklist::new(&scorer, &args.output, args.top)?;
    let mut rejects = Rejects::new(args.skip_invalid, rejects_path);
    let mut summary = Summary::default();
    let bar = progress(args.quiet);
    let rows_in = match (&args.input, &args.data) {
        (Some(input), _) => score_file(
            &scorer,
            input,
            options,
            &mut sink,
            &mut rejects,
            &mut summary,
            &bar,
        )?,
        (None, Some(data)) => {
            let text = args.as_of.as_deref().unwrap_or_default();
            let as_of = parse_date(text)
                .with_context(|| format!("--as-of `{text}` is not a date (YYYY-MM-DD)"))?;
            score_data(
                &scorer,
                data,
                as_of,
                options,
                &mut sink,
                &mut rejects,
                &mut summary,
                &bar,
            )?
        }
        (None, None) => unreachable!("clap requires --input or --data"),
    };
    bar.finish_and_clear();
    let written = sink.finish()?;
    let rejected = rejects.finish()?;
    let kept = summary.scored;
    // Nothing silently lost: every row read was scored or rejected, and every scored
    // row was written (or left out of a --top worklist, said below).
    if rows_in != kept + rejected {
        bail!("internal error: {rows_in} rows read but {kept} scored and {rejected} rejected");
    }
    if args.top.is_none() && written != kept {
        bail!("internal error: {kept} rows scored but {written} written");
    }
    summary.print(
        &args.output,
        rows_in,
        written,
        rejected,
        rejects.path(),
        start.elapsed(),
    );
    Ok(())
}

/// One input column mapped to a schema position.
struct Mapped {
    name: String,
    position: usize,
}

/// Maps the file's columns onto the model's schema; refuses columns the model does not
/// know (a feature table of another model would otherwise lose them silently).
fn map_columns(scorer: &Scorer, names: &[String], file: &std::path::Path) -> Result<Vec<Mapped>> {
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
        bail!(
            "{}: column(s) {} are not features of model {} version {}",
            file.display(),
            unknown.join(", "),
            scorer.artifact().name,
            scorer.artifact().version
        );
    }
    if !names.iter().any(|n| n == "customer_id") {
        bail!("{}: no `customer_id` column", file.display());
    }
    let missing: Vec<&str> = scorer
        .schema()
        .iter()
        .enumerate()
        .filter(|(p, _)| scorer.is_model_input(*p) && !mapped.iter().any(|m| m.position == *p))
        .map(|(_, f)| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: {} lacks model input(s) {}: they are imputed for every row",
            file.display(),
            missing.join(", ")
        );
    }
    Ok(mapped)
}

/// The cell of row `i` of a file column: text columns (all of a CSV) as text, which the
/// preprocessing parses; typed columns as numbers.
fn file_cell<'c>(c: &'c Column, i: usize, numeric_ok: bool) -> Cell<'c> {
    if c.is_text() {
        match c.str(i) {
            Some(s) if !s.trim().is_empty() => Cell::Text(s),
            _ => Cell::Missing,
        }
    } else if numeric_ok {
        match c.number(i) {
            Ok(Some(v)) => Cell::Number(v),
            _ => Cell::Missing,
        }
    } else {
        Cell::Missing
    }
}

#[allow(clippy::too_many_arguments)]
fn score_file(
    scorer: &Scorer,
    input: &std::path::Path,
    options: Options,
    sink: &mut Worklist,
    rejects: &mut Rejects,
    summary: &mut Summary,
    bar: &indicatif::ProgressBar,
) -> Result<u64> {
    let file = TableFile::at(input, &CUSTOMERS)?;
    let names = file.column_names()?;
    let mapped = map_columns(scorer, &names, input)?;
    let mut wanted: Vec<&str> = mapped.iter().map(|m| m.name.as_str()).collect();
    wanted.extend(["customer_id", "as_of"]);
    let mut rows_in = 0u64;
    let mut failure: Option<anyhow::Error> = None;
    file.for_each_batch(&wanted, |b| {
        let ids = b.required("customer_id")?;
        let as_of = b.column("as_of")?;
        let mut by_position: Vec<Option<Column>> =
            (0..scorer.schema().len()).map(|_| None).collect();
        for m in &mapped {
            let c = b.required(&m.name)?;
            // A typed column that is not a number (a date, say) fails on its first
            // non-empty cell: a file-level problem, reported as such.
            if !c.is_text() && scorer.schema()[m.position].kind == FeatureKind::Numeric {
                if let Some(i) = (0..b.len()).find(|&i| !c.is_null(i)) {
                    c.number(i)?;
                }
            }
            by_position[m.position] = Some(c);
        }
        let mut dates: Vec<Option<Day>> = Vec::with_capacity(b.len());
        for i in 0..b.len() {
            dates.push(match &as_of {
                Some(c) => c.date(i)?,
                None => None,
            });
        }
        let results = scorer.score_batch(
            b.len(),
            |r, p| match &by_position[p] {
                Some(c) => file_cell(c, r, true),
                None => Cell::Missing,
            },
            options,
        );
        let mut rows = Vec::with_capacity(results.len());
        for (i, res) in results.into_iter().enumerate() {
            let id = ids.text(i).unwrap_or_default();
            match res {
                Ok(s) => rows.push((id, dates[i], s, i)),
                Err(e) => {
                    let location = b.location(i).to_string();
                    if let Err(stop) = rejects.add(&id, &location, &e.to_string()) {
                        failure = Some(stop.context(format!("{}", input.display())));
                        return Err(churn_features::DataError::Malformed {
                            file: input.to_path_buf(),
                            message: "stopped at an invalid row".into(),
                        });
                    }
                }
            }
        }
        rows_in += b.len() as u64;
        summary.add(scorer, rows.iter().map(|(_, _, s, _)| s));
        sink.add(scorer, rows, |p, i| match &by_position[p] {
            Some(c) => file_cell(c, i, true),
            None => Cell::Missing,
        })
        .map_err(|e| churn_features::DataError::Malformed {
            file: input.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        bar.inc(b.len() as u64);
        Ok(())
    })
    .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
    Ok(rows_in)
}

#[allow(clippy::too_many_arguments)]
fn score_data(
    scorer: &Scorer,
    data: &std::path::Path,
    as_of: Day,
    options: Options,
    sink: &mut Worklist,
    rejects: &mut Rejects,
    summary: &mut Summary,
    bar: &indicatif::ProgressBar,
) -> Result<u64> {
    let ds = Dataset::open(data).with_context(|| format!("reading {}", data.display()))?;
    if let Some(w) = ds.as_of_warning(as_of) {
        bar.suspend(|| eprintln!("warning: {w}"));
    }
    bar.set_message(format!("(features as of {})", format_date(as_of)));
    let table = churn_features::features::features(&ds, as_of, &FeatureConfig::default())?;
    let names: Vec<String> = table.info.iter().map(|f| f.name.clone()).collect();
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| scorer.position(n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "warning: features {} of this data are not in the model's schema and are not used",
            unknown.join(", ")
        );
    }
    let columns = scorer.table_columns(&table);
    let step = churn_features::read::BATCH_ROWS;
    for from in (0..table.len()).step_by(step) {
        let to = (from + step).min(table.len());
        let results =
            scorer.score_batch(to - from, |r, p| table_cell(columns[p], from + r), options);
        let mut rows = Vec::with_capacity(results.len());
        for (i, res) in results.into_iter().enumerate() {
            let id = table.customer_ids[from + i].clone();
            match res {
                Ok(s) => rows.push((id, Some(as_of), s, i)),
                Err(e) => rejects.add(&id, &format!("row {}", from + i + 1), &e.to_string())?,
            }
        }
        summary.add(scorer, rows.iter().map(|(_, _, s, _)| s));
        sink.add(scorer, rows, |p, i| table_cell(columns[p], from + i))?;
        bar.inc((to - from) as u64);
    }
    Ok(table.len() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_parse() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
