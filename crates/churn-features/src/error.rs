//! Typed errors of the data layer. Every message names the file and, for a bad value,
//! the line (CSV) or row (Parquet), the column, what was expected and what was found.

use std::fmt;
use std::path::PathBuf;

/// Where in a file a bad value sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A CSV line, 1-based, counting the header as line 1.
    Line(u64),
    /// A Parquet data row, 1-based.
    Row(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// An error reading or writing a data table.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file system refused an operation.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        /// Shown in the message and deliberately not an error `source`, so that a
        /// printed chain does not say it twice.
        cause: std::io::Error,
    },
    /// A required table is missing from a data directory.
    #[error("{}: no `{table}` table (expected {table}.csv, {table}.csv.gz or {table}.parquet)", dir.display())]
    MissingTable { dir: PathBuf, table: String },
    /// A table is present in more than one format.
    #[error("{}: table `{table}` is given twice: {first} and {second}; keep one", dir.display())]
    DuplicateTable {
        dir: PathBuf,
        table: String,
        first: String,
        second: String,
    },
    /// A required column is absent.
    #[error("{}: missing required column `{column}` (columns found: {found})", file.display())]
    MissingColumn {
        file: PathBuf,
        column: String,
        found: String,
    },
    /// A value does not have the expected form.
    #[error("{}, {location}, column `{column}`: expected {expected}, found `{found}`", file.display())]
    BadValue {
        file: PathBuf,
        location: Location,
        column: String,
        expected: String,
        found: String,
    },
    /// The file's structure is broken (bad CSV quoting, wrong field count, corrupt Parquet).
    #[error("{}: {message}", file.display())]
    Malformed { file: PathBuf, message: String },
    /// A batch visitor stopped the read on purpose; its caller holds the reason (a
    /// failure of its own, which is not a data error).
    #[error("{}: reading stopped", file.display())]
    Stopped { file: PathBuf },
    /// A column has an Arrow type that cannot hold what the contract needs.
    #[error("{}: column `{column}` has type {found}, expected {expected}", file.display())]
    BadColumnType {
        file: PathBuf,
        column: String,
        expected: String,
        found: String,
    },
    /// A column name appears twice in a file's header.
    #[error("{}: column `{column}` appears twice; give each column one name", file.display())]
    DuplicateColumn { file: PathBuf, column: String },
    /// More columns than the readers accept.
    #[error("{}: {found} columns; at most {max} are read (is this the right file?)", file.display())]
    TooManyColumns {
        file: PathBuf,
        found: usize,
        max: usize,
    },
    /// An argument outside what the library accepts (e.g. a zero window).
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter { name: String, message: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            cause,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
