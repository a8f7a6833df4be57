//! A simulator of a SaaS customer base that writes the churn data contract.
//!
//! The business exists before the simulated window: customers sign up over the years
//! before it, so the window opens on a base with realistic tenures. Each customer has
//! latent traits (plan, CSM coverage, engagement, time to value, support needs) that
//! set a tenure-dependent monthly churn hazard; a churn has a root cause (the brief's
//! onboarding / support / pricing / features / competition) and is preceded by a
//! decline whose signature depends on that cause (less usage, shorter sessions, ticket
//! bursts, failed payments), so early-warning signals really precede churn. Temporary
//! dips that do not end in churn keep a model honest.
//!
//! Output is deterministic: the same [`SimConfig`] gives the same bytes, whatever the
//! number of threads.

mod catalog;
pub mod consumer;
mod emit;
mod life;

pub use catalog::{Group, CATALOG};

use churn_features::contract::{self, TableSpec};
use churn_features::time::{self, Day};
use churn_features::write::TableWriter;
use churn_features::DataError;
use emit::{Chunk, TableRows, Window, CUSTOMER_ATTRIBUTES};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("invalid simulator setting `{name}`: {message}")]
    Invalid { name: &'static str, message: String },
}

/// File format of the generated tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Events as Parquet, the small tables as CSV (the committed sample's layout).
    Mixed,
    /// Every table as CSV.
    Csv,
    /// Every table as Parquet.
    Parquet,
}

/// Which business to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// The domain brief's B2B SaaS business (the default).
    #[default]
    Saas,
    /// A consumer streaming app: one price, monthly billing rows, about 2 % monthly
    /// churn, eight product event types (see [`consumer`]).
    ConsumerApp,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Which business.
    pub preset: Preset,
    /// Size of the active customer base when the window opens.
    pub customers: u64,
    /// Length of the data window in months.
    pub months: u32,
    pub seed: u64,
    /// First day of the data window.
    pub start: Day,
    pub format: OutputFormat,
    /// A change in the business from a date (none by default): what a monitor must
    /// notice.
    pub drift: Option<Drift>,
}

/// A change in the simulated SaaS business from a date on, for testing drift
/// monitoring: the same seed with and without it gives the same rows before `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// The first day the change applies.
    pub from: Day,
    /// Session lengths are multiplied by this (0.6: sessions 40 % shorter). Churn does
    /// not follow: a model that reads short sessions as risk is now miscalibrated.
    pub session_minutes: f64,
    /// The monthly churn hazard is multiplied by this (a price rise: churn moves while
    /// the inputs stay the same).
    pub churn: f64,
    /// Only customers on this plan (`basic`, `pro` or `enterprise`); everyone when
    /// `None`.
    pub plan: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            preset: Preset::Saas,
            customers: 4000,
            months: 24,
            seed: 42,
            start: time::ymd(2024, 1, 1).expect("valid date"),
            format: OutputFormat::Mixed,
            drift: None,
        }
    }
}

/// Row counts of a generated data set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub customers: u64,
    pub subscriptions: u64,
    pub events: u64,
    pub tickets: u64,
    pub payments: u64,
    pub surveys: u64,
}

/// Months of signups simulated before the window so the base has realistic tenures.
const WARM_UP_MONTHS: i32 = 120;
/// Simulated customers per parallel chunk.
const CHUNK: u64 = 2048;

/// Average signups per month that keep a base of `customers` roughly stable, from the
/// mean customer lifetime implied by the hazard.
fn signups_per_month(customers: u64) -> f64 {
    customers as f64 * 0.05
}

struct Writers {
    subscriptions: TableWriter,
    customers: TableWriter,
    events: TableWriter,
    tickets: TableWriter,
    payments: TableWriter,
    surveys: TableWriter,
}

pub(crate) fn writer(
    dir: &Path,
    spec: &TableSpec,
    ext: &str,
    schema: arrow_schema::SchemaRef,
) -> Result<TableWriter, SimError> {
    Ok(TableWriter::create(
        &dir.join(format!("{}.{ext}", spec.name)),
        schema,
    )?)
}

/// A table's contract schema with text columns added.
pub(crate) fn with_text_columns(spec: &TableSpec, names: &[&str]) -> arrow_schema::SchemaRef {
    let mut fields: Vec<arrow_schema::Field> = spec
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(
        names
            .iter()
            .map(|n| arrow_schema::Field::new(*n, arrow_schema::DataType::Utf8, true)),
    );
    Arc::new(arrow_schema::Schema::new(fields))
}

/// The file extensions of the small tables and of the events table.
pub(crate) fn extensions(format: OutputFormat) -> (&'static str, &'static str) {
    match format {
        OutputFormat::Mixed => ("csv", "parquet"),
        OutputFormat::Csv => ("csv", "csv"),
        OutputFormat::Parquet => ("parquet", "parquet"),
    }
}

/// Generates a data set into `out`, calling `progress(done, total)` as chunks finish.
pub fn generate(
    cfg: &SimConfig,
    out: &Path,
    progress: impl Fn(u64, u64) + Sync,
) -> Result<SimStats, SimError> {
    if cfg.customers == 0 {
        return Err(SimError::Invalid {
            name: "customers",
            message: "must be at least 1".into(),
        });
    }
    if cfg.months == 0 || cfg.months > 240 {
        return Err(SimError::Invalid {
            name: "months",
            message: "must be from 1 to 240".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(|e| DataError::Io {
        path: out.to_path_buf(),
        cause: e,
    })?;
    let drift = cfg.drift.as_ref().map(life::ActiveDrift::of).transpose()?;
    if cfg.preset == Preset::ConsumerApp {
        if drift.is_some() {
            return Err(SimError::Invalid {
                name: "drift",
                message: "the consumer-app preset has no drift switch; use the saas preset".into(),
            });
        }
        return consumer::generate(cfg, out, progress);
    }
    let window = Window {
        start: cfg.start,
        end: time::add_months(cfg.start, cfg.months as i32),
        drift,
    };
    let first_signup = time::add_months(cfg.start, -WARM_UP_MONTHS);
    let span = i64::from(window.end - first_signup);
    let per_month = signups_per_month(cfg.customers);
    let total = (per_month * f64::from(WARM_UP_MONTHS + cfg.months as i32))
        .round()
        .max(1.0) as u64;

    let (small, big) = extensions(cfg.format);
    let mut w = Writers {
        subscriptions: writer(
            out,
            &contract::SUBSCRIPTIONS,
            small,
            contract::SUBSCRIPTIONS.arrow_schema(),
        )?,
        customers: writer(
            out,
            &contract::CUSTOMERS,
            small,
            with_text_columns(&contract::CUSTOMERS, &CUSTOMER_ATTRIBUTES),
        )?,
        events: writer(out, &contract::EVENTS, big, contract::EVENTS.arrow_schema())?,
        tickets: writer(
            out,
            &contract::TICKETS,
            small,
            contract::TICKETS.arrow_schema(),
        )?,
        payments: writer(
            out,
            &contract::PAYMENTS,
            small,
            contract::PAYMENTS.arrow_schema(),
        )?,
        surveys: writer(
            out,
            &contract::SURVEYS,
            small,
            contract::SURVEYS.arrow_schema(),
        )?,
    };
    write_catalog(out, small)?;

    let width = total.to_string().len().max(6);
    let mut stats = SimStats::default();
    let chunk_starts: Vec<u64> = (0..total).step_by(CHUNK as usize).collect();
    // Chunks are simulated in parallel a few at a time and written in order, so memory
    // stays bounded by a handful of chunks whatever the size of the run.
    let threads = rayon::current_num_threads().max(1);
    for group in chunk_starts.chunks(threads * 2) {
        let chunks: Vec<Chunk> = group
            .par_iter()
            .map(|&first| {
                let mut chunk = Chunk::default();
                for i in first..(first + CHUNK).min(total) {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(cfg.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let signup =
                        first_signup + ((i64::from(i as u32) * span) / total as i64) as Day;
                    if signup >= window.end {
                        continue;
                    }
                    let mut traits = life::draw_traits(&mut rng);
                    let start_traits = traits.clone();
                    let life =
                        life::simulate_life(&mut rng, &mut traits, signup, window.end, drift);
                    let id = format!("C{i:0width$}");
                    chunk.add(&mut rng, &id, &start_traits, &life, window);
                }
                chunk
            })
            .collect();
        for mut chunk in chunks {
            stats.customers += chunk.customers_written;
            stats.subscriptions += flush(&mut chunk.subscriptions, &mut w.subscriptions)?;
            stats.customers += 0;
            flush(&mut chunk.customers, &mut w.customers)?;
            stats.events += flush(&mut chunk.events, &mut w.events)?;
            stats.tickets += flush(&mut chunk.tickets, &mut w.tickets)?;
            stats.payments += flush(&mut chunk.payments, &mut w.payments)?;
            stats.surveys += flush(&mut chunk.surveys, &mut w.surveys)?;
        }
        progress(
            (group.last().copied().unwrap_or(0) + CHUNK).min(total),
            total,
        );
    }
    for t in [
        w.subscriptions,
        w.customers,
        w.events,
        w.tickets,
        w.payments,
        w.surveys,
    ] {
        t.finish()?;
    }
    Ok(stats)
}

pub(crate) fn flush(rows: &mut TableRows, w: &mut TableWriter) -> Result<u64, SimError> {
    let n = rows.rows as u64;
    let batch = rows.finish(w.schema().clone());
    if batch.num_rows() > 0 {
        w.write(&batch)?;
    }
    Ok(n)
}

fn write_catalog(out: &Path, ext: &str) -> Result<(), SimError> {
    let schema = contract::CATALOG.arrow_schema();
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow_array::StringArray::from_iter_values(
                CATALOG.iter().map(|(f, _)| *f),
            )),
            Arc::new(arrow_array::StringArray::from_iter_values(
                CATALOG.iter().map(|(_, g)| g.name()),
            )),
        ],
    )
    .expect("catalog columns match");
    let mut w = writer(out, &contract::CATALOG, ext, schema)?;
    w.write(&batch)?;
    w.finish()?;
    Ok(())
}
