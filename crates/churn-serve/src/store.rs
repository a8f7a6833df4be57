//! The online feature store behind `GET /v1/customers/{id}/prediction`: a feature table
//! (as `churn-train features` writes it) held in memory and keyed by customer id, or a
//! PostgreSQL table of the same columns looked up per customer through a connection
//! pool, with a bounded cache whose entries expire.

use churn_features::dataset::Values;
use churn_features::error::DataError;
use churn_features::features::{FeatureConfig, FeatureInfo, FeatureKind, FeatureTable};
use churn_features::table::read_table;
use churn_features::time::{format_date, parse_date};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where customers' feature rows come from.
pub enum FeatureStore {
    /// A feature file read at start.
    File(FileStore),
    /// A database table read per customer.
    Postgres(Box<PgStore>),
}

/// A customer's stored feature row: a table and the row in it.
pub struct StoredRow {
    pub table: Arc<FeatureTable>,
    pub row: usize,
}

impl StoredRow {
    /// The as-of date of the row, formatted (`None` for a table without dates).
    pub fn as_of(&self) -> Option<String> {
        self.table.as_of[self.row].map(format_date)
    }
}

/// How a look-up was answered, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupSource {
    /// The file in memory.
    File,
    /// The database store's cache.
    Cache,
    /// A query to the database.
    Database,
}

/// The database could not answer (down, unreachable, too slow, or the table is gone).
#[derive(Debug, thiserror::Error)]
#[error("the feature store {store} is unavailable: {cause}")]
pub struct StoreUnavailable {
    pub store: String,
    pub cause: String,
}

impl FeatureStore {
    /// The stored row of `customer_id` (`None`: no such customer) and how it was found.
    pub async fn lookup(
        &self,
        customer_id: &str,
    ) -> Result<(Option<StoredRow>, LookupSource), StoreUnavailable> {
        match self {
            FeatureStore::File(s) => Ok((s.lookup(customer_id), LookupSource::File)),
            FeatureStore::Postgres(s) => s.lookup(customer_id).await,
        }
    }

    /// What an unknown customer's message says of the store.
    pub fn describe(&self) -> String {
        match self {
            FeatureStore::File(s) => format!("the feature table ({} customers)", s.customers()),
            FeatureStore::Postgres(s) => format!("the feature store {}", s.shown),
        }
    }
}

/// A feature table with an index by customer id (the latest `as_of` row per customer).
#[derive(Debug)]
pub struct FileStore {
    pub path: PathBuf,
    pub table: Arc<FeatureTable>,
    index: HashMap<String, usize>,
}

impl FileStore {
    /// Reads the table; a customer with rows for several dates keeps its latest.
    pub fn open(path: &Path) -> Result<FileStore, DataError> {
        let loaded = read_table(path, Some("customer_id"), None)?;
        let table = loaded.table;
        let mut index: HashMap<String, usize> = HashMap::with_capacity(table.len());
        for (row, id) in table.customer_ids.iter().enumerate() {
            match index.get(id) {
                Some(&old) if table.as_of[old] > table.as_of[row] => {}
                _ => {
                    index.insert(id.clone(), row);
                }
            }
        }
        Ok(FileStore {
            path: path.to_path_buf(),
            table: Arc::new(table),
            index,
        })
    }

    /// Number of customers.
    pub fn customers(&self) -> usize {
        self.index.len()
    }

    /// The row of a customer.
    pub fn lookup(&self, customer_id: &str) -> Option<StoredRow> {
        self.index.get(customer_id).map(|&row| StoredRow {
            table: Arc::clone(&self.table),
            row,
        })
    }
}

/// Settings of a [`PgStore`].
#[derive(Debug, Clone, Copy)]
pub struct PgStoreSettings {
    /// Connections at most.
    pub connections: usize,
    /// How long a cached row (or "no such customer") is served before it is read again.
    pub ttl: Duration,
    /// Customers held in the cache at most.
    pub capacity: usize,
    /// Longest a look-up may wait for a connection and its query.
    pub timeout: Duration,
}

impl Default for PgStoreSettings {
    fn default() -> Self {
        PgStoreSettings {
            connections: 4,
            ttl: Duration::from_secs(60),
            capacity: 100_000,
            timeout: Duration::from_secs(2),
        }
    }
}

/// The query reading one customer's latest row, and what its columns are.
#[derive(Debug, Clone)]
struct Query {
    sql: String,
    /// The feature columns after `customer_id` and `as_of`.
    info: Vec<FeatureInfo>,
}

type Cached = (Instant, Option<Arc<FeatureTable>>);

/// A PostgreSQL table of feature rows (`customer_id`, `as_of`, one column per feature;
/// what `churn-train features --out postgres://...&table=NAME` writes), read per
/// customer: the row with the latest `as_of`.
pub struct PgStore {
    pool: deadpool_postgres::Pool,
    /// `"schema"."table"`.
    qualified: String,
    schema: String,
    table: String,
    shown: String,
    settings: PgStoreSettings,
    /// Found on the first look-up that reaches the database, then kept.
    query: tokio::sync::OnceCell<Query>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl PgStore {
    /// A store of table `location.table` (required); nothing is read until the first
    /// look-up, so the server starts while the database is down.
    pub fn new(
        location: &churn_postgres::PgLocation,
        settings: PgStoreSettings,
    ) -> Result<PgStore, String> {
        let name = location
            .table
            .clone()
            .ok_or_else(|| format!("{location}: name the feature table with `&table=NAME`"))?;
        let (schema, table) = location.schema_and_table(&name);
        let manager = deadpool_postgres::Manager::from_config(
            location.config.clone(),
            location.tls().map_err(|e| e.to_string())?,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(settings.connections.max(1))
            .wait_timeout(Some(settings.timeout))
            .create_timeout(Some(settings.timeout))
            .recycle_timeout(Some(settings.timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PgStore {
            pool,
            qualified: location.qualified(&name),
            schema: schema.to_string(),
            table: table.to_string(),
            shown: location.to_string(),
            settings,
            query: tokio::sync::OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn unavailable(&self, cause: impl std::fmt::Display) -> StoreUnavailable {
        StoreUnavailable {
            store: self.shown.clone(),
            cause: cause.to_string(),
        }
    }

    /// Reads the table's columns: numbers are read as `double precision`, everything
    /// else as text (a category).
    async fn discover(
        &self,
        client: &deadpool_postgres::Client,
    ) -> Result<Query, StoreUnavailable> {
        let columns = churn_postgres::source::table_columns(client, &self.schema, &self.table)
            .await
            .map_err(|e| self.unavailable(churn_postgres::describe(&e)))?;
        if columns.is_empty() {
            return Err(self.unavailable(format!("no table {}.{}", self.schema, self.table)));
        }
        if !columns.iter().any(|(n, _)| n == "customer_id") {
            return Err(self.unavailable("the table has no `customer_id` column"));
        }
        let has_as_of = columns.iter().any(|(n, _)| n == "as_of");
        let mut select = vec![
            "\"customer_id\"::text".to_string(),
            if has_as_of {
                "\"as_of\"::text".to_string()
            } else {
                "NULL::text".to_string()
            },
        ];
        let mut info = Vec::new();
        for (name, ty) in &columns {
            if name == "customer_id" || name == "as_of" {
                continue;
            }
            let numeric = matches!(
                ty.as_str(),
                "float8" | "float4" | "int2" | "int4" | "int8" | "numeric" | "bool"
            );
            let quoted = churn_postgres::location::quote(name);
            select.push(match ty.as_str() {
                // true/false read as 1/0, as the file readers do.
                "bool" => format!("({quoted})::int::float8"),
                _ if numeric => format!("({quoted})::float8"),
                _ => format!("({quoted})::text"),
            });
            info.push(FeatureInfo {
                name: name.clone(),
                kind: if numeric {
                    FeatureKind::Numeric
                } else {
                    FeatureKind::Categorical
                },
                description: format!("column `{name}` of {}", self.qualified),
            });
        }
        let order = if has_as_of {
            " ORDER BY \"as_of\" DESC NULLS LAST"
        } else {
            ""
        };
        Ok(Query {
            sql: format!(
                "SELECT {} FROM {} WHERE \"customer_id\"::text = $1{order} LIMIT 1",
                select.join(", "),
                self.qualified
            ),
            info,
        })
    }

    /// The latest row of `customer_id`, from the cache while fresh, else the database.
    pub async fn lookup(
        &self,
        customer_id: &str,
    ) -> Result<(Option<StoredRow>, LookupSource), StoreUnavailable> {
        let now = Instant::now();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(customer_id)
            .filter(|(at, _)| now.duration_since(*at) < self.settings.ttl)
            .map(|(_, t)| t.clone());
        if let Some(table) = cached {
            return Ok((
                table.map(|table| StoredRow { table, row: 0 }),
                LookupSource::Cache,
            ));
        }
        let read = tokio::time::timeout(self.settings.timeout, self.read(customer_id))
            .await
            .map_err(|_| {
                self.unavailable(format!(
                    "no answer within {} ms",
                    self.settings.timeout.as_millis()
                ))
            })??;
        self.remember(customer_id, read.clone());
        Ok((
            read.map(|table| StoredRow { table, row: 0 }),
            LookupSource::Database,
        ))
    }

    async fn read(&self, customer_id: &str) -> Result<Option<Arc<FeatureTable>>, StoreUnavailable> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| self.unavailable(pool_error(&e)))?;
        let query = self
            .query
            .get_or_try_init(|| self.discover(&client))
            .await?;
        let statement = client
            .prepare_cached(&query.sql)
            .await
            .map_err(|e| self.unavailable(churn_postgres::describe(&e)))?;
        let Some(row) = client
            .query_opt(&statement, &[&customer_id])
            .await
            .map_err(|e| self.unavailable(churn_postgres::describe(&e)))?
        else {
            return Ok(None);
        };
        let as_of = row
            .get::<_, Option<String>>(1)
            .as_deref()
            .and_then(parse_date);
        let mut columns = Vec::with_capacity(query.info.len());
        for (k, info) in query.info.iter().enumerate() {
            columns.push(match info.kind {
                FeatureKind::Numeric => Values::Numeric(vec![row
                    .get::<_, Option<f64>>(k + 2)
                    .filter(|v| v.is_finite())]),
                FeatureKind::Categorical => {
                    Values::Categorical(vec![row.get::<_, Option<String>>(k + 2)])
                }
            });
        }
        Ok(Some(Arc::new(FeatureTable {
            customer_ids: vec![row.get(0)],
            customers: vec![0],
            as_of: vec![as_of],
            info: query.info.clone(),
            columns,
            config: FeatureConfig::default(),
        })))
    }

    /// Caches a look-up; when full, expired entries go first, then arbitrary ones.
    fn remember(&self, customer_id: &str, table: Option<Arc<FeatureTable>>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.settings.capacity.max(1) {
            let now = Instant::now();
            let ttl = self.settings.ttl;
            cache.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            while cache.len() >= self.settings.capacity.max(1) {
                let Some(key) = cache.keys().next().cloned() else {
                    break;
                };
                cache.remove(&key);
            }
        }
        cache.insert(customer_id.to_string(), (Instant::now(), table));
    }
}

fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => churn_postgres::describe(e),
        other => other.to_string(),
    }
}
