//! PostgreSQL as a place churn reads from and writes to.
//!
//! - [`source::open_dataset`]: the data contract's tables from a schema (renamed by a
//!   [`source::TableMapping`]), streamed by binary `COPY` as Arrow record batches through
//!   the file readers' own checks, all inside one repeatable-read snapshot.
//! - [`sink::TableWriter`]: a worklist written by binary `COPY` and swapped in at
//!   commit, or appended with a `scored_at` time.
//! - [`sink::import`]: a data directory loaded into a schema in one transaction.
//!
//! Locations are `postgres://` URLs ([`location::PgLocation`]) read as libpq reads
//! them, TLS included ([`tls`]); no message or log line shows a password.

pub mod copy;
pub mod location;
pub mod sink;
pub mod source;
pub mod tls;

pub use location::{is_postgres_url, PgLocation};
pub use sink::{import, TableWriter, WriteMode};
pub use source::{open_dataset, PgDataset, TableMapping};

use std::path::PathBuf;

/// Why a PostgreSQL read or write failed. Messages name the database (never its
/// password) and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The location is not a usable `postgres://` URL.
    #[error("{message}")]
    Url { message: String },
    /// The server could not be reached or refused the login.
    #[error("connecting to {target}: {cause}")]
    Connect { target: String, cause: String },
    /// A statement failed.
    #[error("{target}: {what}: {cause}")]
    Query {
        target: String,
        what: String,
        cause: String,
    },
    /// A required contract table is not in the schema.
    #[error("{target}: no table {table} (the `{contract}` table of the data contract; name another with --tables mapping.toml)")]
    MissingTable {
        target: String,
        table: String,
        contract: String,
    },
    /// The table-name mapping file is unreadable or names unknown tables.
    #[error("{}: {message}", path.display())]
    Mapping { path: PathBuf, message: String },
    /// A write stopped before it finished; nothing was committed.
    #[error("{target}: the write stopped before it finished; nothing was committed")]
    Aborted { target: String },
    /// A value read is not what the contract needs (names table, row and column).
    #[error(transparent)]
    Data(#[from] churn_features::DataError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// A PostgreSQL error as one line: the server's message, detail and hint when it sent
/// them, else the client's with its causes.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_string();
            if let Some(d) = db.detail() {
                text.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                text.push_str(&format!("; hint: {h}"));
            }
            text
        }
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}
