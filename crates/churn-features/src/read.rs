//! Streaming table readers. CSV (plain or gzipped) and Parquet files are read in Arrow
//! record batches of bounded size; [`Batch`] then gives typed, checked access to cells,
//! so every table parser reports bad values the same way, whatever the file format.

use crate::contract::{ColumnType, Presence, TableSpec};
use crate::error::{DataError, Location, Result};
use crate::time::{self, Day, Ts};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A borrowed Arrow buffer of values.
macro_rules! borrowed {
    ($array:expr, $t:ty) => {
        $array.as_primitive::<$t>().values().as_ref()
    };
}

/// The raw values of a timestamp array and how many of them make a second.
fn timestamp_values(array: &dyn Array) -> Option<(&[i64], i64)> {
    let DataType::Timestamp(unit, _) = array.data_type() else {
        return None;
    };
    Some(match unit {
        TimeUnit::Second => (borrowed!(array, TimestampSecondType), 1),
        TimeUnit::Millisecond => (borrowed!(array, TimestampMillisecondType), 1_000),
        TimeUnit::Microsecond => (borrowed!(array, TimestampMicrosecondType), 1_000_000),
        TimeUnit::Nanosecond => (borrowed!(array, TimestampNanosecondType), 1_000_000_000),
    })
}

/// The first day a date may be (1900-01-01), as days since 1970-01-01.
const MIN_DAY: Day = -25_567;
/// The day after the last day a date may be (2200-01-01).
pub(crate) const MAX_DAY: Day = 84_006;

/// The instants a timestamp cell may hold: from [`MIN_DAY`] to before [`MAX_DAY`].
fn valid_instants() -> std::ops::Range<Ts> {
    time::day_start(MIN_DAY)..time::day_start(MAX_DAY)
}

/// Widens `span` (first, last) to take in `t`.
fn widen(span: &mut Option<(Ts, Ts)>, t: Ts) {
    *span = Some(span.map_or((t, t), |(a, z)| (a.min(t), z.max(t))));
}

/// The most columns a table file may have: wider files are refused before any column
/// is read (a 10 MB header of a million columns would otherwise take gigabytes).
pub const MAX_COLUMNS: usize = 2048;

/// Rows per record batch when streaming.
pub const BATCH_ROWS: usize = 64 * 1024;

/// The on-disk format of a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    CsvGz,
    Parquet,
    /// Arrow record batches held in memory (a table handed over by a caller, such as the
    /// Python package): read like a Parquet file, its rows numbered from 1.
    Arrow,
    /// Arrow record batches streamed from elsewhere (a database table, see
    /// [`TableStream`]), read afresh for every pass, its rows numbered from 1.
    Stream,
}

/// A table whose rows come as a stream of Arrow record batches from outside the files
/// of a data directory, such as a database table read inside one snapshot. Each call of
/// [`read`](TableStream::read) streams the table again from its first row, in the same
/// order.
pub trait TableStream: Send + Sync + std::fmt::Debug {
    /// The columns every batch has (a [`read`](TableStream::read) may give fewer).
    fn schema(&self) -> arrow_schema::SchemaRef;

    /// Streams the table's rows in order, with at least `columns` (absent ones skipped),
    /// handing each record batch to `visit`; stops at the first error of either side.
    fn read(
        &self,
        columns: &[&str],
        visit: &mut dyn FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()>;

    /// The earliest and latest instant of a timestamp column, when the source can tell
    /// without the caller reading every row.
    fn timestamp_span(&self, _column: &str) -> Option<(Ts, Ts)> {
        None
    }
}

impl Format {
    /// The format a path's extension names (`.csv`, `.csv.gz`, `.parquet`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".csv.gz") {
            Some(Format::CsvGz)
        } else if name.ends_with(".csv") {
            Some(Format::Csv)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Some(Format::Parquet)
        } else {
            None
        }
    }
}

/// A table file found in a data directory, or a table held in memory.
#[derive(Debug, Clone)]
pub struct TableFile {
    pub spec: &'static TableSpec,
    /// The file; for a table in memory, the name errors give it (`subscriptions table`).
    pub path: PathBuf,
    pub format: Format,
    /// The batches of a table in memory ([`Format::Arrow`]).
    memory: Option<Arc<MemoryTable>>,
    /// The source of a streamed table ([`Format::Stream`]).
    stream: Option<Arc<dyn TableStream>>,
}

/// Record batches of one schema, held in memory.
#[derive(Debug)]
struct MemoryTable {
    schema: arrow_schema::SchemaRef,
    batches: Vec<RecordBatch>,
    /// Rows that came before these batches (in a stream read piece by piece).
    rows_before: u64,
}

/// Finds the file of `spec` in `dir`: `NAME.csv`, `NAME.csv.gz` or `NAME.parquet`.
/// Two of them at once is an error; none is `Ok(None)` (or an error for a required table).
pub fn locate(dir: &Path, spec: &'static TableSpec) -> Result<Option<TableFile>> {
    let mut found: Option<TableFile> = None;
    for (ext, format) in [
        ("csv", Format::Csv),
        ("csv.gz", Format::CsvGz),
        ("parquet", Format::Parquet),
    ] {
        let path = dir.join(format!("{}.{ext}", spec.name));
        if path.is_file() {
            if let Some(first) = &found {
                return Err(DataError::DuplicateTable {
                    dir: dir.to_path_buf(),
                    table: spec.name.into(),
                    first: file_name(&first.path),
                    second: file_name(&path),
                });
            }
            found = Some(TableFile {
                spec,
                path,
                format,
                memory: None,
                stream: None,
            });
        }
    }
    if found.is_none() && spec.required {
        if !dir.is_dir() {
            return Err(DataError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "data directory not found"),
            ));
        }
        return Err(DataError::MissingTable {
            dir: dir.to_path_buf(),
            table: spec.name.into(),
        });
    }
    Ok(found)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl TableFile {
    /// A table file at an explicit path (format from the extension).
    pub fn at(path: &Path, spec: &'static TableSpec) -> Result<TableFile> {
        let format = Format::from_path(path).ok_or_else(|| DataError::Malformed {
            file: path.to_path_buf(),
            message: "unknown file type: expected .csv, .csv.gz or .parquet".into(),
        })?;
        Ok(TableFile {
            spec,
            path: path.to_path_buf(),
            format,
            memory: None,
            stream: None,
        })
    }

    /// A table streamed from `stream` ([`Format::Stream`]), read with the same checks as
    /// a file; errors call it `label` and number its rows from 1.
    pub fn streamed(
        label: &str,
        spec: &'static TableSpec,
        stream: Arc<dyn TableStream>,
    ) -> TableFile {
        TableFile {
            spec,
            path: PathBuf::from(label),
            format: Format::Stream,
            memory: None,
            stream: Some(stream),
        }
    }

    /// A table held in memory as Arrow record batches of one schema, read with the same
    /// checks as a file; errors call it `label` and number its rows from 1. The batches
    /// are shared, not copied.
    pub fn in_memory(
        label: &str,
        spec: &'static TableSpec,
        schema: arrow_schema::SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<TableFile> {
        let path = PathBuf::from(label);
        if let Some(b) = batches
            .iter()
            .find(|b| b.schema().fields() != schema.fields())
        {
            return Err(DataError::Malformed {
                file: path,
                message: format!(
                    "its record batches differ in schema: {} then {}",
                    schema,
                    b.schema()
                ),
            });
        }
        Ok(TableFile {
            spec,
            path,
            format: Format::Arrow,
            memory: Some(Arc::new(MemoryTable {
                schema,
                batches,
                rows_before: 0,
            })),
            stream: None,
        })
    }

    /// The same table in memory, its rows numbered after `rows_before` earlier ones (a
    /// piece of a stream): errors name row `rows_before + 1` for its first row.
    pub fn after_rows(mut self, rows_before: u64) -> TableFile {
        if let Some(m) = &self.memory {
            self.memory = Some(Arc::new(MemoryTable {
                schema: m.schema.clone(),
                batches: m.batches.clone(),
                rows_before,
            }));
        }
        self
    }

    /// The table's rows in memory, in pieces of at most [`BATCH_ROWS`] rows (slices that
    /// share the caller's buffers), each with the number of rows before it.
    fn memory_parts(&self) -> Vec<(u64, RecordBatch)> {
        let mut parts = Vec::new();
        let mut first_row = self.memory.as_ref().map_or(0, |m| m.rows_before);
        for batch in self.memory.iter().flat_map(|m| &m.batches) {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let len = BATCH_ROWS.min(batch.num_rows() - offset);
                parts.push((first_row, batch.slice(offset, len)));
                first_row += len as u64;
                offset += len;
            }
        }
        parts
    }

    /// A piece of a table in memory as a [`Batch`], with only `columns`.
    fn memory_batch(
        &self,
        first_row: u64,
        batch: &RecordBatch,
        columns: &[&str],
    ) -> Result<Batch<'_>> {
        let wanted = positions(&batch.schema(), columns);
        let projected = batch.project(&wanted).map_err(|e| self.malformed(e))?;
        Ok(Batch::new(&self.path, projected, Rows::Parquet(first_row)))
    }

    /// The column names the file has, in file order; refuses duplicate names and more
    /// than [`MAX_COLUMNS`] columns.
    pub fn column_names(&self) -> Result<Vec<String>> {
        let names = self.raw_column_names()?;
        self.check_names(&names)?;
        Ok(names)
    }

    fn check_names<S: AsRef<str>>(&self, names: &[S]) -> Result<()> {
        if names.len() > MAX_COLUMNS {
            return Err(DataError::TooManyColumns {
                file: self.path.clone(),
                found: names.len(),
                max: MAX_COLUMNS,
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        for n in names {
            if !seen.insert(n.as_ref()) {
                return Err(DataError::DuplicateColumn {
                    file: self.path.clone(),
                    column: n.as_ref().chars().take(200).collect(),
                });
            }
        }
        Ok(())
    }

    fn raw_column_names(&self) -> Result<Vec<String>> {
        match self.format {
            Format::Stream => Ok(self
                .stream
                .iter()
                .flat_map(|s| {
                    s.schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect::<Vec<_>>()
                })
                .collect()),
            Format::Arrow => Ok(self
                .memory
                .iter()
                .flat_map(|m| m.schema.fields().iter().map(|f| f.name().clone()))
                .collect()),
            Format::Parquet => {
                let builder = self.parquet_builder()?;
                Ok(builder
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect())
            }
            Format::Csv | Format::CsvGz => {
                let mut reader = self.csv_reader()?;
                let headers = reader.headers().map_err(|e| self.csv_error(e))?;
                Ok(headers.iter().map(|h| h.trim().to_string()).collect())
            }
        }
    }

    /// Checks that every required column is there; returns the file's column names.
    pub fn check_columns(&self) -> Result<Vec<String>> {
        let names = self.column_names()?;
        if names.is_empty() || names.iter().all(String::is_empty) {
            return Err(DataError::Malformed {
                file: self.path.clone(),
                message: format!(
                    "the file is empty: expected a header line with the columns {}",
                    self.spec
                        .columns
                        .iter()
                        .filter(|c| c.presence != Presence::Optional)
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if let [only] = names.as_slice() {
            if let Some(sep) = [';', '\t', '|'].into_iter().find(|s| only.contains(*s)) {
                let shown = if sep == '\t' {
                    "tab".to_string()
                } else {
                    format!("`{sep}`")
                };
                return Err(DataError::Malformed {
                    file: self.path.clone(),
                    message: format!(
                        "this looks like a {shown}-separated file (its header is one column, `{}`); churn reads comma-separated CSV: save it with commas, or as Parquet",
                        only.chars().take(80).collect::<String>()
                    ),
                });
            }
        }
        for c in self.spec.columns {
            if c.presence != Presence::Optional && !names.iter().any(|n| n == c.name) {
                return Err(DataError::MissingColumn {
                    file: self.path.clone(),
                    column: c.name.into(),
                    found: names.join(", "),
                });
            }
        }
        Ok(names)
    }

    /// Streams the file in record batches of at most [`BATCH_ROWS`] rows, reading only
    /// `columns` (absent ones are skipped; check required ones with [`check_columns`]).
    ///
    /// [`check_columns`]: TableFile::check_columns
    pub fn for_each_batch(
        &self,
        columns: &[&str],
        visit: impl FnMut(&Batch) -> Result<()>,
    ) -> Result<()> {
        self.for_each_batch_keeping(columns, &[], visit)
    }

    /// [`TableFile::for_each_batch`], with the text columns named in `keep_dictionaries`
    /// dictionary-encoded when every Parquet row group stores them with a dictionary:
    /// a row's text then lies in its batch's dictionary, so rows of one value share one
    /// string (and [`PerValue`] works once per value).
    pub fn for_each_batch_keeping(
        &self,
        columns: &[&str],
        keep_dictionaries: &[&str],
        mut visit: impl FnMut(&Batch) -> Result<()>,
    ) -> Result<()> {
        match self.format {
            Format::Parquet => {
                let parquet = self.open_parquet(keep_dictionaries)?;
                let all: Vec<usize> = (0..parquet.row_groups()).collect();
                parquet.read_row_groups(self, columns, all, &mut visit)
            }
            Format::Csv | Format::CsvGz => self.csv_batches(columns, visit),
            Format::Stream => self.stream_batches(columns, visit),
            Format::Arrow => {
                self.check_names(&self.raw_column_names()?)?;
                for (first_row, batch) in self.memory_parts() {
                    visit(&self.memory_batch(first_row, &batch, columns)?)?;
                }
                Ok(())
            }
        }
    }

    /// Streams the file like [`for_each_batch`](TableFile::for_each_batch), decoding on up
    /// to `threads` threads: a Parquet file's row groups are shared out among them (a CSV
    /// file is read by one). Each thread starts from `init(thread)` and calls
    /// `visit(state, part, batch)`, where `part` is the row group's index (0 for CSV);
    /// batches of one part arrive in order, parts in any order. The states come back in
    /// thread order.
    ///
    /// Text columns named in `keep_dictionaries` stay dictionary-encoded when every row
    /// group stores them with a dictionary, so a caller can work once per distinct value
    /// (see [`PerValue`]).
    ///
    /// When several parts fail, the error of the first part is returned, whatever the
    /// threads' timing: the outcome does not depend on scheduling.
    pub fn for_each_batch_parallel<S: Send>(
        &self,
        columns: &[&str],
        keep_dictionaries: &[&str],
        threads: usize,
        init: impl Fn(usize) -> S + Sync,
        visit: impl Fn(&mut S, usize, &Batch) -> Result<()> + Sync,
    ) -> Result<Vec<S>> {
        // A part is a Parquet row group, or a piece of a table in memory.
        let (parts, read_part): (usize, Box<ReadPart>) = match self.format {
            Format::Csv | Format::CsvGz => {
                let mut state = init(0);
                self.csv_batches(columns, |b| visit(&mut state, 0, b))?;
                return Ok(vec![state]);
            }
            Format::Stream => {
                let mut state = init(0);
                self.stream_batches(columns, |b| visit(&mut state, 0, b))?;
                return Ok(vec![state]);
            }
            Format::Parquet => {
                let parquet = self.open_parquet(keep_dictionaries)?;
                (
                    parquet.row_groups(),
                    Box::new(move |part, visit| {
                        parquet.read_row_groups(self, columns, vec![part], visit)
                    }),
                )
            }
            Format::Arrow => {
                self.check_names(&self.raw_column_names()?)?;
                let pieces = self.memory_parts();
                (
                    pieces.len(),
                    Box::new(move |part, visit| {
                        let (first_row, batch) = &pieces[part];
                        visit(&self.memory_batch(*first_row, batch, columns)?)
                    }),
                )
            }
        };
        let threads = threads.clamp(1, parts.max(1));
        let next = AtomicUsize::new(0);
        let first_failed = AtomicUsize::new(usize::MAX);
        let outcomes: Vec<(S, Option<(usize, DataError)>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (read_part, next, first_failed) = (&read_part, &next, &first_failed);
                    let (init, visit) = (&init, &visit);
                    scope.spawn(move || {
                        let mut state = init(t);
                        loop {
                            // Parts are claimed in increasing order, so every part
                            // before a failed one is read by some thread.
                            let part = next.fetch_add(1, Ordering::Relaxed);
                            if part >= parts || part > first_failed.load(Ordering::Relaxed) {
                                return (state, None);
                            }
                            let read = read_part(part, &mut |b| visit(&mut state, part, b));
                            if let Err(e) = read {
                                first_failed.fetch_min(part, Ordering::Relaxed);
                                return (state, Some((part, e)));
                            }
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a table decoder does not panic"))
                .collect()
        });
        let mut states = Vec::with_capacity(outcomes.len());
        let mut first: Option<(usize, DataError)> = None;
        for (state, failed) in outcomes {
            states.push(state);
            if let Some((part, e)) = failed {
                if first.as_ref().is_none_or(|(p, _)| part < *p) {
                    first = Some((part, e));
                }
            }
        }
        match first {
            Some((_, e)) => Err(e),
            None => Ok(states),
        }
    }

    /// The earliest and latest instant of a timestamp column: from a Parquet file's
    /// row-group statistics (its footer: no data is read), else by reading the column
    /// (CSV, a table in memory, a Parquet file without statistics in some row group), so
    /// that the same rows span the same dates in any format. `None` for a column not
    /// stored as timestamps with statistics nor readable as timestamps, or without
    /// values.
    pub fn timestamp_span(&self, column: &str) -> Option<(Ts, Ts)> {
        if let Some(stream) = &self.stream {
            return stream.timestamp_span(column);
        }
        match self.format {
            Format::Parquet => self
                .parquet_timestamp_span(column)
                .or_else(|| self.scanned_timestamp_span(column)),
            Format::Csv | Format::CsvGz => self.csv_timestamp_span(column),
            _ => self.scanned_timestamp_span(column),
        }
    }

    /// [`TableFile::timestamp_span`] of a CSV file: its records read as bytes and only
    /// the column's field decoded (0.85 s for 8.6 M events, 382 MB, against 1.3 s read
    /// as a table). A file that fails to read gives the span of what was read before:
    /// the reader that reads it for the features reports the failure.
    fn csv_timestamp_span(&self, column: &str) -> Option<(Ts, Ts)> {
        let mut reader = self.csv_reader().ok()?;
        let headers = reader.byte_headers().ok()?;
        let at = headers
            .iter()
            .position(|h| h.trim_ascii() == column.as_bytes())?;
        let valid = valid_instants();
        let mut span: Option<(Ts, Ts)> = None;
        let mut record = csv::ByteRecord::new();
        while let Ok(true) = reader.read_byte_record(&mut record) {
            let t = record
                .get(at)
                .and_then(|field| std::str::from_utf8(field).ok())
                .and_then(time::parse_timestamp)
                .filter(|t| valid.contains(t));
            if let Some(t) = t {
                widen(&mut span, t);
            }
        }
        span
    }

    /// [`TableFile::timestamp_span`] from a Parquet file's statistics.
    fn parquet_timestamp_span(&self, column: &str) -> Option<(Ts, Ts)> {
        use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
        let file = File::open(&self.path).ok()?;
        let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).ok()?;
        let converter =
            StatisticsConverter::try_new(column, meta.schema(), meta.parquet_schema()).ok()?;
        let groups = meta.metadata().row_groups();
        let seconds = |array: ArrayRef, pick: fn(i64, i64) -> i64| -> Option<Ts> {
            let (raw, per_second) = timestamp_values(array.as_ref())?;
            if array.null_count() > 0 || raw.is_empty() {
                return None; // a row group without statistics: unknown
            }
            raw.iter()
                .copied()
                .reduce(pick)
                .map(|v| v.div_euclid(per_second))
        };
        let first = seconds(converter.row_group_mins(groups.iter()).ok()?, i64::min)?;
        let last = seconds(converter.row_group_maxes(groups.iter()).ok()?, i64::max)?;
        Some((first, last))
    }

    /// [`TableFile::timestamp_span`] over every row, read: values that are not
    /// timestamps, and a file that fails to read, are left to the reader that reads them
    /// for the features (which reports them).
    fn scanned_timestamp_span(&self, column: &str) -> Option<(Ts, Ts)> {
        let mut span: Option<(Ts, Ts)> = None;
        let _ = self.for_each_batch(&[column], |b| {
            if let Some(c) = b.column(column)? {
                for i in 0..b.len() {
                    if let Ok(Some(t)) = c.timestamp(i) {
                        widen(&mut span, t);
                    }
                }
            }
            Ok(())
        });
        span
    }

    fn parquet_builder(&self) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(&self.path).map_err(|e| DataError::io(&self.path, e))?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| self.malformed(e))
    }

    /// Reads a Parquet file's metadata once, asking for the text columns named in
    /// `keep_dictionaries` as dictionaries where every row group has one for them.
    fn open_parquet(&self, keep_dictionaries: &[&str]) -> Result<ParquetFile> {
        let file = File::open(&self.path).map_err(|e| DataError::io(&self.path, e))?;
        let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| self.malformed(e))?;
        let names: Vec<&str> = meta
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        self.check_names(&names)?;
        let row_groups = meta.metadata().row_groups();
        let dictionary_everywhere = |name: &str| {
            let leaf = meta
                .parquet_schema()
                .columns()
                .iter()
                .position(|c| c.path().parts() == [name]);
            leaf.is_some_and(|leaf| {
                row_groups
                    .iter()
                    .all(|rg| rg.column(leaf).dictionary_page_offset().is_some())
            })
        };
        let mut changed = false;
        let fields: Vec<Field> = meta
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8
                    if keep_dictionaries.contains(&f.name().as_str())
                        && dictionary_everywhere(f.name()) =>
                {
                    changed = true;
                    let ty = DataType::Dictionary(
                        Box::new(DataType::Int32),
                        Box::new(f.data_type().clone()),
                    );
                    f.as_ref().clone().with_data_type(ty)
                }
                _ => f.as_ref().clone(),
            })
            .collect();
        let meta = if changed {
            let schema = Arc::new(Schema::new_with_metadata(
                fields,
                meta.schema().metadata().clone(),
            ));
            ArrowReaderMetadata::try_new(
                meta.metadata().clone(),
                ArrowReaderOptions::new().with_schema(schema),
            )
            .map_err(|e| self.malformed(e))?
        } else {
            meta
        };
        Ok(ParquetFile { meta })
    }

    fn csv_reader(&self) -> Result<csv::Reader<Box<dyn Read>>> {
        let file = File::open(&self.path).map_err(|e| DataError::io(&self.path, e))?;
        let inner: Box<dyn Read> = match self.format {
            Format::CsvGz => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 16,
                file,
            ))),
            _ => Box::new(file),
        };
        Ok(csv::ReaderBuilder::new()
            .buffer_capacity(1 << 16)
            .from_reader(inner))
    }

    fn csv_batches(
        &self,
        columns: &[&str],
        mut visit: impl FnMut(&Batch) -> Result<()>,
    ) -> Result<()> {
        let mut reader = self.csv_reader()?;
        let headers = reader.headers().map_err(|e| self.csv_error(e))?.clone();
        let trimmed: Vec<&str> = headers.iter().map(str::trim).collect();
        self.check_names(&trimmed)?;
        let picked: Vec<(usize, &str)> = headers
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let h = h.trim();
                columns.iter().find(|c| **c == h).map(|c| (i, *c))
            })
            .collect();
        let schema = Arc::new(Schema::new(
            picked
                .iter()
                .map(|(_, name)| Field::new(*name, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let mut record = csv::StringRecord::new();
        loop {
            let mut builders: Vec<arrow_array::builder::StringBuilder> = picked
                .iter()
                .map(|_| {
                    arrow_array::builder::StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8)
                })
                .collect();
            let mut lines = Vec::with_capacity(BATCH_ROWS);
            while lines.len() < BATCH_ROWS {
                let more = reader
                    .read_record(&mut record)
                    .map_err(|e| self.csv_error(e))?;
                if !more {
                    break;
                }
                let line = record.position().map_or(0, |p| p.line());
                if record.len() == 1 && record.get(0) == Some("") {
                    continue; // a blank line
                }
                for ((i, _), builder) in picked.iter().zip(builders.iter_mut()) {
                    match record.get(*i) {
                        Some(v) if !v.trim().is_empty() => builder.append_value(v.trim()),
                        _ => builder.append_null(),
                    }
                }
                lines.push(line);
            }
            if lines.is_empty() {
                return Ok(());
            }
            let arrays: Vec<ArrayRef> = builders
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef)
                .collect();
            let batch = RecordBatch::try_new_with_options(
                schema.clone(),
                arrays,
                &arrow_array::RecordBatchOptions::new().with_row_count(Some(lines.len())),
            )
            .map_err(|e| self.malformed(e))?;
            let done = lines.len() < BATCH_ROWS;
            visit(&Batch::new(&self.path, batch, Rows::Csv(lines)))?;
            if done {
                return Ok(());
            }
        }
    }

    /// Streams a [`Format::Stream`] table in pieces of at most [`BATCH_ROWS`] rows.
    fn stream_batches(
        &self,
        columns: &[&str],
        mut visit: impl FnMut(&Batch) -> Result<()>,
    ) -> Result<()> {
        let Some(stream) = &self.stream else {
            return Ok(());
        };
        self.check_names(&self.raw_column_names()?)?;
        let mut first_row = 0u64;
        stream.read(columns, &mut |batch| {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let len = BATCH_ROWS.min(batch.num_rows() - offset);
                visit(&self.memory_batch(first_row, &batch.slice(offset, len), columns)?)?;
                first_row += len as u64;
                offset += len;
            }
            Ok(())
        })
    }

    fn malformed(&self, e: impl std::fmt::Display) -> DataError {
        DataError::Malformed {
            file: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn csv_error(&self, e: csv::Error) -> DataError {
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                pos,
                expected_len,
                len,
            } => format!(
                "line {}: expected {expected_len} fields like the header, found {len}",
                pos.as_ref().map_or(0, |p| p.line())
            ),
            csv::ErrorKind::Utf8 { pos, err } => format!(
                "line {}: invalid UTF-8 in field {}",
                pos.as_ref().map_or(0, |p| p.line()),
                err.field() + 1
            ),
            _ => e.to_string(),
        };
        DataError::Malformed {
            file: self.path.clone(),
            message,
        }
    }
}

/// The positions of `columns` in `schema`, in schema order (absent ones skipped).
fn positions(schema: &Schema, columns: &[&str]) -> Vec<usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect()
}

/// Reads one part of a table (see [`TableFile::for_each_batch_parallel`]).
type ReadPart<'a> = dyn Fn(usize, &mut dyn FnMut(&Batch) -> Result<()>) -> Result<()> + Sync + 'a;

/// A Parquet file's metadata, read once.
struct ParquetFile {
    meta: ArrowReaderMetadata,
}

impl ParquetFile {
    fn row_groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    /// Streams `row_groups` (in that order), reading only `columns`.
    fn read_row_groups(
        &self,
        table: &TableFile,
        columns: &[&str],
        row_groups: Vec<usize>,
        mut visit: impl FnMut(&Batch) -> Result<()>,
    ) -> Result<()> {
        let all = self.meta.metadata().row_groups();
        let mut first_row: u64 = match row_groups.first() {
            Some(&rg) => all[..rg].iter().map(|g| g.num_rows() as u64).sum(),
            None => return Ok(()),
        };
        debug_assert!(row_groups.windows(2).all(|w| w[1] == w[0] + 1));
        // A file of its own: clones of one descriptor share the read position, and the
        // reader seeks, so threads must not share one.
        let file = File::open(&table.path).map_err(|e| DataError::io(&table.path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone());
        let wanted = positions(builder.schema(), columns);
        let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
        let reader = builder
            .with_projection(mask)
            .with_row_groups(row_groups)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| table.malformed(e))?;
        for batch in reader {
            let batch = batch.map_err(|e| table.malformed(e))?;
            let rows = batch.num_rows() as u64;
            visit(&Batch::new(&table.path, batch, Rows::Parquet(first_row)))?;
            first_row += rows;
        }
        Ok(())
    }
}

enum Rows {
    Csv(Vec<u64>),
    Parquet(u64),
}

/// One record batch of a table file, with typed access to its cells.
pub struct Batch<'a> {
    file: &'a Path,
    batch: RecordBatch,
    rows: Rows,
}

impl<'a> Batch<'a> {
    fn new(file: &'a Path, batch: RecordBatch, rows: Rows) -> Self {
        Batch { file, batch, rows }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// The Arrow record batch underneath.
    pub fn record_batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where row `i` of this batch is in the file.
    pub fn location(&self, i: usize) -> Location {
        match &self.rows {
            Rows::Csv(lines) => Location::Line(lines[i]),
            Rows::Parquet(first) => Location::Row(first + i as u64 + 1),
        }
    }

    /// The column `name`, or `None` when the file does not have it.
    pub fn column(&self, name: &str) -> Result<Option<Column<'_>>> {
        let Some(array) = self.batch.column_by_name(name) else {
            return Ok(None);
        };
        let cells = Cells::new(array.as_ref()).ok_or_else(|| DataError::BadColumnType {
            file: self.file.to_path_buf(),
            column: name.into(),
            expected: "text, a number, a date or a timestamp".into(),
            found: array.data_type().to_string(),
        })?;
        Ok(Some(Column {
            batch: self,
            name: name.to_string(),
            cells,
            nulls: array.logical_nulls().filter(|n| n.null_count() > 0),
        }))
    }

    /// The column `name`, which the contract requires (checked up front).
    pub fn required(&self, name: &str) -> Result<Column<'_>> {
        self.column(name)?.ok_or_else(|| DataError::MissingColumn {
            file: self.file.to_path_buf(),
            column: name.into(),
            found: self
                .batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// The cells of one Arrow column, borrowed: numeric, date and timestamp values are read
/// from the array's own buffer and converted per cell, never copied per batch.
enum Cells<'a> {
    /// A column with no values at all (Arrow's Null type: what pandas and pyarrow give a
    /// column of `None`s); every cell is null.
    Null,
    Utf8(&'a StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
    Dict {
        keys: Vec<usize>,
        values: Box<Cells<'a>>,
        dictionary: &'a ArrayRef,
    },
    Bool(&'a arrow_array::BooleanArray),
    Number(Numbers<'a>),
    Date(Dates<'a>),
    /// Raw values and how many of them make a second.
    Time(&'a [i64], i64),
}

/// A borrowed numeric buffer of any Arrow primitive type.
enum Numbers<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
    I64(&'a [i64]),
    I32(&'a [i32]),
    I16(&'a [i16]),
    I8(&'a [i8]),
    U64(&'a [u64]),
    U32(&'a [u32]),
    U16(&'a [u16]),
    U8(&'a [u8]),
}

impl Numbers<'_> {
    #[inline]
    fn get(&self, i: usize) -> f64 {
        match self {
            Numbers::F64(v) => v[i],
            Numbers::F32(v) => f64::from(v[i]),
            Numbers::I64(v) => v[i] as f64,
            Numbers::I32(v) => f64::from(v[i]),
            Numbers::I16(v) => f64::from(v[i]),
            Numbers::I8(v) => f64::from(v[i]),
            Numbers::U64(v) => v[i] as f64,
            Numbers::U32(v) => f64::from(v[i]),
            Numbers::U16(v) => f64::from(v[i]),
            Numbers::U8(v) => f64::from(v[i]),
        }
    }
}

/// A borrowed date buffer: days (`date32`) or milliseconds (`date64`) since 1970-01-01.
enum Dates<'a> {
    Days(&'a [i32]),
    Millis(&'a [i64]),
}

impl Dates<'_> {
    #[inline]
    fn get(&self, i: usize) -> Day {
        match self {
            Dates::Days(v) => v[i],
            Dates::Millis(v) => time::day_of(v[i].div_euclid(1000)),
        }
    }
}

impl<'a> Cells<'a> {
    fn new(array: &'a dyn Array) -> Option<Cells<'a>> {
        let number = Cells::Number;
        Some(match array.data_type() {
            DataType::Null => Cells::Null,
            DataType::Utf8 => Cells::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Cells::LargeUtf8(array.as_string::<i64>()),
            DataType::Utf8View => Cells::Utf8View(array.as_string_view()),
            DataType::Dictionary(_, _) => {
                let dict = array.as_any_dictionary_opt()?;
                let values = Cells::new(dict.values().as_ref())?;
                Cells::Dict {
                    keys: dict.normalized_keys(),
                    values: Box::new(values),
                    dictionary: dict.values(),
                }
            }
            DataType::Boolean => Cells::Bool(array.as_boolean()),
            DataType::Float64 => number(Numbers::F64(borrowed!(array, Float64Type))),
            DataType::Float32 => number(Numbers::F32(borrowed!(array, Float32Type))),
            DataType::Int64 => number(Numbers::I64(borrowed!(array, Int64Type))),
            DataType::Int32 => number(Numbers::I32(borrowed!(array, Int32Type))),
            DataType::Int16 => number(Numbers::I16(borrowed!(array, Int16Type))),
            DataType::Int8 => number(Numbers::I8(borrowed!(array, Int8Type))),
            DataType::UInt64 => number(Numbers::U64(borrowed!(array, UInt64Type))),
            DataType::UInt32 => number(Numbers::U32(borrowed!(array, UInt32Type))),
            DataType::UInt16 => number(Numbers::U16(borrowed!(array, UInt16Type))),
            DataType::UInt8 => number(Numbers::U8(borrowed!(array, UInt8Type))),
            DataType::Date32 => Cells::Date(Dates::Days(borrowed!(array, Date32Type))),
            DataType::Date64 => Cells::Date(Dates::Millis(borrowed!(array, Date64Type))),
            DataType::Timestamp(..) => {
                let (raw, per_second) = timestamp_values(array)?;
                Cells::Time(raw, per_second)
            }
            _ => return None,
        })
    }

    fn text(&self, i: usize) -> Option<&str> {
        match self {
            Cells::Utf8(a) => Some(a.value(i)),
            Cells::LargeUtf8(a) => Some(a.value(i)),
            Cells::Utf8View(a) => Some(a.value(i)),
            Cells::Dict { keys, values, .. } => values.text(keys[i]),
            _ => None,
        }
    }

    /// Seconds since 1970-01-01 of a timestamp cell.
    #[inline]
    fn seconds(raw: &[i64], per_second: i64, i: usize) -> Ts {
        raw[i].div_euclid(per_second)
    }
}

/// The results of a function of a text column's values, computed once per distinct value
/// of a dictionary-encoded column and kept while later batches share the dictionary (the
/// batches of one Parquet row group do): per-row work becomes an array look-up.
#[derive(Debug)]
pub struct PerValue<T> {
    dictionary: Option<ArrayRef>,
    results: Vec<T>,
}

impl<T> Default for PerValue<T> {
    fn default() -> Self {
        PerValue {
            dictionary: None,
            results: Vec::new(),
        }
    }
}

impl<T> PerValue<T> {
    /// For a dictionary-encoded text column: each row's key and the results by key,
    /// running `compute` on every dictionary value not seen in the previous call. `None`
    /// when the column is not dictionary-encoded text. A null row's key is meaningless:
    /// check [`Column::is_null`] first.
    pub fn of<'c>(
        &'c mut self,
        column: &'c Column<'_>,
        mut compute: impl FnMut(&str) -> T,
    ) -> Option<(&'c [usize], &'c [T])> {
        let Cells::Dict {
            keys,
            values,
            dictionary,
            ..
        } = &column.cells
        else {
            return None;
        };
        if !matches!(
            values.as_ref(),
            Cells::Utf8(_) | Cells::LargeUtf8(_) | Cells::Utf8View(_)
        ) {
            return None;
        }
        // The previous dictionary is held, so its address cannot be reused by another.
        let same = self
            .dictionary
            .as_ref()
            .is_some_and(|d| Arc::ptr_eq(d, dictionary));
        if !same {
            self.results.clear();
            self.results
                .extend((0..dictionary.len()).map(|k| compute(values.text(k).unwrap_or_default())));
            self.dictionary = Some(Arc::clone(dictionary));
        }
        Some((keys, &self.results))
    }
}

/// A typed view of one column of a [`Batch`]. Each getter returns `Ok(None)` for an
/// empty cell and an error naming file, line or row, and column for a bad value.
pub struct Column<'a> {
    batch: &'a Batch<'a>,
    name: String,
    cells: Cells<'a>,
    /// Empty cells, resolved once (a dictionary's null keys and null values together).
    nulls: Option<NullBuffer>,
}

impl Column<'_> {
    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether row `i` is empty.
    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n.is_null(i))
    }

    /// An error for row `i` of this column.
    pub fn bad(&self, i: usize, expected: &str, found: impl std::fmt::Display) -> DataError {
        DataError::BadValue {
            file: self.batch.file.to_path_buf(),
            location: self.batch.location(i),
            column: self.name.clone(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    fn found(&self, i: usize) -> String {
        match &self.cells {
            Cells::Number(v) => v.get(i).to_string(),
            Cells::Date(v) if (MIN_DAY..MAX_DAY).contains(&v.get(i)) => time::format_date(v.get(i)),
            Cells::Time(v, per)
                if (MIN_DAY..MAX_DAY).contains(&time::day_of(Cells::seconds(v, *per, i))) =>
            {
                time::format_timestamp(Cells::seconds(v, *per, i))
            }
            Cells::Date(..) | Cells::Time(..) => self.found_day(i),
            Cells::Bool(a) => a.value(i).to_string(),
            _ => self.cells.text(i).unwrap_or_default().to_string(),
        }
    }

    /// The cell as text (numbers, dates and booleans are formatted).
    pub fn text(&self, i: usize) -> Option<String> {
        self.text_ref(i).map(std::borrow::Cow::into_owned)
    }

    /// [`Column::text`], borrowed when the column is stored as text (no allocation on
    /// the paths that read every row).
    pub fn text_ref(&self, i: usize) -> Option<std::borrow::Cow<'_, str>> {
        if self.is_null(i) {
            return None;
        }
        Some(match self.cells.text(i) {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(self.found(i)),
        })
    }

    /// The cell as borrowed text, when the column is stored as text.
    pub fn str(&self, i: usize) -> Option<&str> {
        if self.is_null(i) {
            None
        } else {
            self.cells.text(i)
        }
    }

    /// Whether the column is stored as text (for CSV, always).
    pub fn is_text(&self) -> bool {
        !matches!(
            self.cells,
            Cells::Number(..) | Cells::Date(..) | Cells::Time(..) | Cells::Bool(_)
        )
    }

    /// The cell as a finite number.
    pub fn number(&self, i: usize) -> Result<Option<f64>> {
        if self.is_null(i) {
            return Ok(None);
        }
        let v = match &self.cells {
            Cells::Number(v) => v.get(i),
            Cells::Bool(a) => f64::from(u8::from(a.value(i))),
            Cells::Date(..) | Cells::Time(..) => {
                return Err(self.bad(i, "a number", self.found(i)))
            }
            _ => {
                let t = self.cells.text(i).unwrap_or_default();
                match t.parse::<f64>() {
                    Ok(v) => v,
                    Err(_) => return Err(self.bad(i, "a number", t)),
                }
            }
        };
        if v.is_finite() {
            Ok(Some(v))
        } else {
            Err(self.bad(i, "a finite number", v))
        }
    }

    /// The cell as a date (`YYYY-MM-DD`; a timestamp column gives its UTC date), between
    /// 1900-01-01 and 2199-12-31.
    pub fn date(&self, i: usize) -> Result<Option<Day>> {
        match self.raw_date(i)? {
            Some(d) if !(MIN_DAY..MAX_DAY).contains(&d) => Err(self.bad(
                i,
                "a date between 1900-01-01 and 2199-12-31",
                self.found_day(i),
            )),
            d => Ok(d),
        }
    }

    fn found_day(&self, i: usize) -> String {
        match &self.cells {
            Cells::Date(v) => format!("day {} since 1970-01-01", v.get(i)),
            Cells::Time(v, per) => {
                format!("{} seconds since 1970-01-01", Cells::seconds(v, *per, i))
            }
            _ => self.cells.text(i).unwrap_or_default().to_string(),
        }
    }

    fn raw_date(&self, i: usize) -> Result<Option<Day>> {
        if self.is_null(i) {
            return Ok(None);
        }
        match &self.cells {
            Cells::Date(v) => Ok(Some(v.get(i))),
            Cells::Time(v, per) => Ok(Some(time::day_of(Cells::seconds(v, *per, i)))),
            Cells::Number(..) | Cells::Bool(_) => {
                Err(self.bad(i, "a date (YYYY-MM-DD)", self.found(i)))
            }
            _ => {
                let t = self.cells.text(i).unwrap_or_default();
                time::parse_date(t)
                    .map(Some)
                    .ok_or_else(|| self.bad(i, "a date (YYYY-MM-DD)", t))
            }
        }
    }

    /// The cell as an instant (RFC 3339; UTC when no offset; a date means midnight),
    /// between 1900-01-01 and 2199-12-31.
    pub fn timestamp(&self, i: usize) -> Result<Option<Ts>> {
        match self.raw_timestamp(i)? {
            Some(t) if !valid_instants().contains(&t) => Err(self.bad(
                i,
                "a time between 1900-01-01 and 2199-12-31",
                self.found_day(i),
            )),
            t => Ok(t),
        }
    }

    fn raw_timestamp(&self, i: usize) -> Result<Option<Ts>> {
        if self.is_null(i) {
            return Ok(None);
        }
        match &self.cells {
            Cells::Time(v, per) => Ok(Some(Cells::seconds(v, *per, i))),
            Cells::Date(v) => Ok(Some(time::day_start(v.get(i)))),
            Cells::Number(..) | Cells::Bool(_) => {
                Err(self.bad(i, "a timestamp (RFC 3339)", self.found(i)))
            }
            _ => {
                let t = self.cells.text(i).unwrap_or_default();
                time::parse_timestamp(t).map(Some).ok_or_else(|| {
                    self.bad(i, "a timestamp (RFC 3339, e.g. 2024-03-01T12:00:00Z)", t)
                })
            }
        }
    }

    /// Turns an empty cell of a required column into an error.
    pub fn filled<T>(&self, i: usize, value: Option<T>, ty: ColumnType) -> Result<T> {
        value.ok_or_else(|| {
            self.bad(
                i,
                &format!("a {} (the column is required)", ty.describe()),
                "",
            )
        })
    }
}
