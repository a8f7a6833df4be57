//! The contract's tables read from a PostgreSQL schema inside one repeatable-read,
//! read-only transaction: every table (and every later pass over the events) sees the
//! same snapshot, so a nightly job never reads half of a day being loaded.

use crate::copy::{self, PgKind};
use crate::location::{quote, PgLocation, Session};
use crate::{PgError, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use churn_features::contract::{self, TableSpec};
use churn_features::dataset::{SourceRows, SourceTable};
use churn_features::read::{TableStream, BATCH_ROWS};
use churn_features::time::Ts;
use churn_features::{DataError, Dataset};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Table names that differ from the contract's: `--tables mapping.toml`.
///
/// ```toml
/// schema = "billing"              # optional: overrides the URL's ?schema=
/// [tables]
/// subscriptions = "stripe_subscriptions"
/// events = "analytics.product_events"   # a dotted name names its own schema
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    /// The schema to read (instead of the URL's).
    pub schema: Option<String>,
    /// Contract table name to database table name.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
}

impl TableMapping {
    /// Reads a mapping file; unknown contract tables are refused by name.
    pub fn load(path: &Path) -> Result<TableMapping> {
        let text = std::fs::read_to_string(path).map_err(|e| PgError::Mapping {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mapping: TableMapping = toml::from_str(&text).map_err(|e| PgError::Mapping {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        for name in mapping.tables.keys() {
            if !contract::TABLES.iter().any(|t| t.name == name) {
                return Err(PgError::Mapping {
                    path: path.to_path_buf(),
                    message: format!(
                        "`{name}` is not a table of the data contract (expected {})",
                        contract::TABLES.map(|t| t.name).join(", ")
                    ),
                });
            }
        }
        Ok(mapping)
    }

    /// The database table holding contract table `name`.
    fn table<'a>(&'a self, name: &'a str) -> &'a str {
        self.tables.get(name).map_or(name, String::as_str)
    }
}

/// A connection inside the snapshot transaction, shared by the tables read from it.
struct Snapshot {
    session: Mutex<Session>,
    location: String,
}

impl Snapshot {
    /// The connection, for one statement or one whole COPY at a time.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "snapshot of {}", self.location)
    }
}

/// A database table streamed by binary `COPY` inside the snapshot.
#[derive(Debug)]
struct PgTable {
    snapshot: Arc<Snapshot>,
    /// `"schema"."table"`.
    qualified: String,
    label: String,
    /// Column names, their PostgreSQL types and how they are read.
    columns: Vec<(String, String, PgKind)>,
    schema: SchemaRef,
}

impl PgTable {
    fn failed(&self, what: &str, e: tokio_postgres::Error) -> DataError {
        DataError::Malformed {
            file: PathBuf::from(&self.label),
            message: format!("{what}: {}", crate::describe(&e)),
        }
    }
}

impl TableStream for PgTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn read(
        &self,
        columns: &[&str],
        visit: &mut dyn FnMut(RecordBatch) -> churn_features::Result<()>,
    ) -> churn_features::Result<()> {
        let picked: Vec<&(String, String, PgKind)> = self
            .columns
            .iter()
            .filter(|(n, _, _)| columns.contains(&n.as_str()))
            .collect();
        let names: Vec<String> = picked.iter().map(|c| c.0.clone()).collect();
        let kinds: Vec<PgKind> = picked.iter().map(|c| c.2).collect();
        let schema = copy::schema_of(&names, &kinds);
        let select = if picked.is_empty() {
            "NULL".to_string()
        } else {
            picked
                .iter()
                .map(|(n, ty, k)| k.select(&quote(n), ty))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "COPY (SELECT {select} FROM {}) TO STDOUT (FORMAT binary)",
            self.qualified
        );
        let session = self.snapshot.session();
        let mut decoder = copy::Decoder::new(&schema, &kinds, &self.label, BATCH_ROWS);
        session.rt.block_on(async {
            use futures_util::StreamExt;
            let stream = session
                .client
                .copy_out(sql.as_str())
                .await
                .map_err(|e| self.failed("reading the table", e))?;
            let mut stream = std::pin::pin!(stream);
            while let Some(piece) = stream.next().await {
                let piece = piece.map_err(|e| self.failed("reading the table", e))?;
                if !picked.is_empty() {
                    decoder.push(&piece, visit)?;
                }
            }
            Ok::<_, DataError>(())
        })?;
        if picked.is_empty() {
            return Ok(());
        }
        decoder.finish(visit).map(|_| ())
    }

    fn timestamp_span(&self, column: &str) -> Option<(Ts, Ts)> {
        let (name, ty, kind) = self.columns.iter().find(|c| c.0 == column)?;
        if *kind != PgKind::Timestamptz {
            return None;
        }
        let expr = kind.select(&quote(name), ty);
        let sql = format!(
            "SELECT floor(extract(epoch FROM min({expr})))::int8, floor(extract(epoch FROM max({expr})))::int8 FROM {}",
            self.qualified
        );
        let session = self.snapshot.session();
        let row = session
            .rt
            .block_on(session.client.query_one(sql.as_str(), &[]))
            .ok()?;
        Some((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?))
    }
}

/// A data set read from PostgreSQL, with what a model's provenance records of it.
#[derive(Debug)]
pub struct PgDataset {
    pub dataset: Dataset,
    /// `postgres://user@host:port/db?schema=...` (no password).
    pub location: String,
    /// The tables read, as `contract name = "schema"."table"`.
    pub tables: Vec<(String, String)>,
    /// The snapshot read: the server's transaction snapshot (`xmin:xmax:xip`) and the
    /// transaction's start time, for a model's provenance.
    pub snapshot: String,
}

/// Opens the contract's tables in `location`'s schema (renamed by `mapping`), with the
/// same checks and messages as a data directory. One connection holds a
/// repeatable-read, read-only transaction for as long as the dataset lives, so the
/// events streamed later come from the same snapshot as the small tables.
pub fn open_dataset(location: &PgLocation, mapping: &TableMapping) -> Result<PgDataset> {
    let mut location = location.clone();
    if let Some(schema) = &mapping.schema {
        location.schema = schema.clone();
    }
    let shown = location.to_string();
    let session = location.session()?;
    let (rt, client) = (&session.rt, &session.client);
    let query_failed = |what: String, e: tokio_postgres::Error| PgError::Query {
        target: shown.clone(),
        what,
        cause: crate::describe(&e),
    };
    rt.block_on(client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        .map_err(|e| query_failed("starting the snapshot transaction".into(), e))?;
    let snapshot_id: String = rt
        .block_on(client.query_one(
            "SELECT pg_current_snapshot()::text || ' at ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        ))
        .map_err(|e| query_failed("reading the snapshot".into(), e))?
        .get(0);
    let mut found = Vec::new();
    for spec in contract::TABLES.iter() {
        let name = mapping.table(spec.name);
        let (schema, table) = location.schema_and_table(name);
        let listed = rt
            .block_on(table_columns(client, schema, table))
            .map_err(|e| query_failed(format!("listing the columns of {schema}.{table}"), e))?;
        if listed.is_empty() {
            if spec.required {
                return Err(PgError::MissingTable {
                    target: shown.clone(),
                    table: format!("{schema}.{table}"),
                    contract: spec.name.into(),
                });
            }
            continue;
        }
        let columns: Vec<(String, String, PgKind)> = listed
            .into_iter()
            .map(|(name, ty)| {
                let kind = kind_for(spec, &name, &ty);
                (name, ty, kind)
            })
            .collect();
        found.push((
            spec,
            location.qualified(name),
            format!("{schema}.{table}"),
            columns,
        ));
    }
    let snapshot = Arc::new(Snapshot {
        session: Mutex::new(session),
        location: shown.clone(),
    });
    let mut tables = Vec::new();
    let mut sources = Vec::new();
    for (spec, qualified, plain, columns) in found {
        let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
        let kinds: Vec<PgKind> = columns.iter().map(|c| c.2).collect();
        let label = format!("table {plain} in {}", snapshot.location);
        tables.push((spec.name.to_string(), qualified.clone()));
        sources.push(SourceTable {
            name: spec.name.into(),
            label: label.clone(),
            rows: SourceRows::Stream(Arc::new(PgTable {
                snapshot: Arc::clone(&snapshot),
                qualified,
                label,
                schema: copy::schema_of(&names, &kinds),
                columns,
            })),
        });
    }
    let dataset = Dataset::from_sources(Path::new(&shown), &sources, &BTreeMap::new())?;
    Ok(PgDataset {
        dataset,
        location: shown,
        tables,
        snapshot: snapshot_id,
    })
}

/// The columns of table `schema.table` (a table, view, materialized view, foreign or
/// partitioned table) and their PostgreSQL type names, in order; empty when there is
/// no such relation.
pub async fn table_columns(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT a.attname::text, t.typname::text
             FROM pg_attribute a
             JOIN pg_class c ON a.attrelid = c.oid
             JOIN pg_namespace n ON c.relnamespace = n.oid
             JOIN pg_type t ON a.atttypid = t.oid
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0
               AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
             ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// How a column is read: as the contract's type where the contract names the column
/// and the database type holds it, else by its database type (a text column the
/// contract wants as a date is read as text and parsed, with the same messages as CSV).
fn kind_for(spec: &TableSpec, name: &str, typname: &str) -> PgKind {
    let natural = PgKind::of_type(typname);
    match spec.column(name).map(|c| c.ty) {
        // Text the contract asks for is text, whatever the database stores.
        Some(contract::ColumnType::Text) => PgKind::Text,
        _ => natural,
    }
}
