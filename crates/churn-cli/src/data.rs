//! `--data DIR|URL`: a data directory or a PostgreSQL database, opened the same way by
//! every command that reads the data contract's tables.

use anyhow::{Context, Result};
use churn_features::Dataset;
use std::path::{Path, PathBuf};

/// Where a command reads the data contract's tables.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// A data directory of CSV and Parquet files.
    Dir(PathBuf),
    /// A PostgreSQL schema: `postgres://USER@HOST:PORT/DB?schema=SCHEMA`.
    Postgres(Box<churn_postgres::PgLocation>),
}

impl std::str::FromStr for DataSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if churn_postgres::is_postgres_url(text) {
            churn_postgres::PgLocation::parse(text)
                .map(|l| DataSource::Postgres(Box::new(l)))
                .map_err(|e| e.to_string())
        } else {
            Ok(DataSource::Dir(PathBuf::from(text)))
        }
    }
}

impl std::fmt::Display for DataSource {
    /// The directory, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Dir(d) => write!(f, "{}", d.display()),
            DataSource::Postgres(l) => write!(f, "{l}"),
        }
    }
}

/// A data set opened from a [`DataSource`], with what a model's provenance records.
#[derive(Debug)]
pub struct Opened {
    pub dataset: Dataset,
    /// The directory, or `postgres://...` (no password) and the tables read.
    pub source: String,
    /// A database's snapshot and tables, which its fingerprint covers.
    pub snapshot: Option<String>,
}

impl DataSource {
    /// Opens the tables (`tables`: a mapping file of database table names, for a
    /// database only) and warns about rows naming unknown customers.
    pub fn open(&self, tables: Option<&Path>) -> Result<Opened> {
        let opened = match self {
            DataSource::Dir(dir) => {
                if tables.is_some() {
                    anyhow::bail!(
                        "--tables maps database table names; --data {} is a directory",
                        dir.display()
                    );
                }
                let dataset = Dataset::open(dir).context("reading the data directory (--data)")?;
                Opened {
                    dataset,
                    source: dir.display().to_string(),
                    snapshot: None,
                }
            }
            DataSource::Postgres(location) => {
                let mapping = match tables {
                    Some(p) => churn_postgres::TableMapping::load(p)?,
                    None => churn_postgres::TableMapping::default(),
                };
                let pg = churn_postgres::open_dataset(location, &mapping)
                    .context("reading the database (--data)")?;
                let tables: Vec<String> = pg
                    .tables
                    .iter()
                    .map(|(name, table)| format!("{name}={table}"))
                    .collect();
                Opened {
                    source: format!("{} ({})", pg.location, tables.join(", ")),
                    snapshot: Some(format!("{} {}", pg.snapshot, tables.join(","))),
                    dataset: pg.dataset,
                }
            }
        };
        for o in &opened.dataset.orphans {
            tracing::warn!("{o}");
        }
        Ok(opened)
    }
}

/// `--tables FILE`, beside a `--data` that may name a database.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TablesArg {
    /// With a postgres:// --data: a TOML file naming the database tables that hold the
    /// contract's tables when their names differ (`[tables] subscriptions =
    /// "billing.stripe_subscriptions"`; optional `schema = "..."`).
    #[arg(long, value_name = "FILE")]
    pub tables: Option<PathBuf>,
}

/// Where a command writes a table: a file, or a PostgreSQL table (`&table=NAME`).
#[derive(Debug, Clone)]
pub enum Output {
    /// A file (`.parquet`, `.csv`, `.csv.gz`), written to a temporary file and renamed.
    File(PathBuf),
    /// A PostgreSQL table (`?table=` in the URL).
    Postgres(Box<churn_postgres::PgLocation>),
}

impl std::str::FromStr for Output {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if !churn_postgres::is_postgres_url(text) {
            return Ok(Output::File(PathBuf::from(text)));
        }
        let location = churn_postgres::PgLocation::parse(text).map_err(|e| e.to_string())?;
        if location.table.is_none() {
            return Err(format!(
                "{location}: name the table to write with `&table=NAME` (e.g. ?schema=public&table=churn_scores)"
            ));
        }
        Ok(Output::Postgres(Box::new(location)))
    }
}

impl std::fmt::Display for Output {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::File(p) => write!(f, "{}", p.display()),
            Output::Postgres(l) => write!(f, "{l}"),
        }
    }
}

impl Output {
    /// Writes `batches` (of `schema`) to the file or table, replacing it whole: a file
    /// through a temporary file renamed at the end, a table swapped in at commit.
    /// Returns the rows written.
    pub fn write_batches(
        &self,
        schema: arrow_schema::SchemaRef,
        batches: impl Iterator<Item = arrow_array::RecordBatch>,
    ) -> Result<u64> {
        match self {
            Output::File(path) => {
                let mut writer = churn_features::write::TableWriter::create(path, schema)?;
                for batch in batches {
                    writer.write(&batch)?;
                }
                Ok(writer.finish()?)
            }
            Output::Postgres(location) => {
                let table = location.table.as_deref().expect("checked when parsed");
                let mut writer = churn_postgres::TableWriter::create(
                    location,
                    table,
                    &schema,
                    churn_postgres::WriteMode::Replace,
                )?;
                for batch in batches {
                    writer.write(&batch)?;
                }
                Ok(writer.finish()?)
            }
        }
    }
}
