//! Atomic table writers. A table is written to a temporary file beside its destination
//! and renamed into place by [`TableWriter::finish`], so a crash or an error never
//! leaves a truncated file under the final name.

use crate::error::{DataError, Result};
use crate::read::Format;
use crate::time;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

enum Sink {
    Csv(csv::Writer<Box<dyn Write + Send>>),
    Parquet(ArrowWriter<File>),
}

/// Writes record batches of one schema to a CSV, gzipped CSV or Parquet file.
pub struct TableWriter {
    sink: Option<Sink>,
    temp: PathBuf,
    dest: PathBuf,
    schema: SchemaRef,
    rows: u64,
}

/// A temporary path beside `dest`, unique to this process, in the same directory so the
/// final rename is atomic.
pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The process id a temporary name of ours ends with (`.NAME.tmp-PID`).
fn temp_owner(name: &str) -> Option<u32> {
    let (stem, pid) = name.rsplit_once(".tmp-")?;
    if !stem.starts_with('.') || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` still runs (a process we may not signal counts as running).
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    match i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(e) if e == rustix::io::Errno::SRCH
        ),
        None => false,
    }
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    // Without a way to ask, every owner counts as alive and nothing is removed.
    true
}

/// Removes the temporary files and directories (`.NAME.tmp-PID`) that writers killed
/// mid-write (`kill -9`, a power cut) left in `dir`: those whose process is gone.
/// Returns how many were removed; errors are ignored (a temp file is litter, not data).
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        if pid == own || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

/// The directory `dest` is written in, created if missing, cleared of the temporary
/// files of dead writers.
fn prepare_dir(dest: &Path) -> Result<()> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    remove_stale_temps(parent);
    Ok(())
}

/// Writes `bytes` to `dest` through a temporary file renamed into place, so a crash never
/// leaves a truncated file under the final name.
pub fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    prepare_dir(dest)?;
    let temp = temp_path(dest);
    let result = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, dest));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(DataError::io(dest, e));
    }
    Ok(())
}

impl TableWriter {
    /// Starts writing `dest`; the format comes from its extension.
    pub fn create(dest: &Path, schema: SchemaRef) -> Result<TableWriter> {
        let format = Format::from_path(dest).ok_or_else(|| DataError::Malformed {
            file: dest.to_path_buf(),
            message: "unknown output type: expected .csv, .csv.gz or .parquet".into(),
        })?;
        prepare_dir(dest)?;
        let temp = temp_path(dest);
        let file = File::create(&temp).map_err(|e| DataError::io(&temp, e))?;
        let sink = match format {
            Format::Parquet => {
                let mut props = WriterProperties::builder().set_compression(Compression::ZSTD(
                    ZstdLevel::try_new(3).expect("valid level"),
                ));
                // Timestamps mostly grow within a customer's rows: delta encoding stores
                // them in under two thirds of the space a dictionary or plain ones take.
                for field in schema.fields() {
                    if matches!(field.data_type(), DataType::Timestamp(..)) {
                        let column = ColumnPath::from(field.name().as_str());
                        props = props
                            .set_column_dictionary_enabled(column.clone(), false)
                            .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
                    }
                }
                let props = props.build();
                Sink::Parquet(
                    ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| {
                        DataError::Malformed {
                            file: dest.to_path_buf(),
                            message: e.to_string(),
                        }
                    })?,
                )
            }
            Format::Csv | Format::CsvGz => {
                let out: Box<dyn Write + Send> = if format == Format::CsvGz {
                    Box::new(flate2::write::GzEncoder::new(
                        BufWriter::with_capacity(1 << 16, file),
                        flate2::Compression::default(),
                    ))
                } else {
                    Box::new(BufWriter::with_capacity(1 << 16, file))
                };
                let mut writer = csv::Writer::from_writer(out);
                writer
                    .write_record(schema.fields().iter().map(|f| f.name().as_str()))
                    .map_err(|e| csv_error(&temp, e))?;
                Sink::Csv(writer)
            }
            Format::Arrow | Format::Stream => {
                unreachable!("a file name never names a table in memory or a stream")
            }
        };
        Ok(TableWriter {
            sink: Some(sink),
            temp,
            dest: dest.to_path_buf(),
            schema,
            rows: 0,
        })
    }

    /// The schema every batch must have.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        match self.sink.as_mut().expect("writer used after finish") {
            Sink::Parquet(w) => w.write(batch).map_err(|e| DataError::Malformed {
                file: self.dest.clone(),
                message: e.to_string(),
            }),
            Sink::Csv(w) => write_csv_batch(w, batch).map_err(|e| csv_error(&self.temp, e)),
        }
    }

    /// Flushes, closes and renames the file into place; returns the rows written.
    pub fn finish(mut self) -> Result<u64> {
        match self.sink.take().expect("finish called once") {
            Sink::Parquet(w) => {
                w.close().map_err(|e| DataError::Malformed {
                    file: self.dest.clone(),
                    message: e.to_string(),
                })?;
            }
            Sink::Csv(w) => {
                let mut inner = w
                    .into_inner()
                    .map_err(|e| DataError::io(&self.temp, e.into_error()))?;
                inner.flush().map_err(|e| DataError::io(&self.temp, e))?;
                drop(inner); // finishes the gzip stream
            }
        }
        std::fs::rename(&self.temp, &self.dest).map_err(|e| DataError::io(&self.dest, e))?;
        Ok(self.rows)
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if self.sink.is_some() {
            // Not finished: an error happened, so leave nothing behind.
            self.sink = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    DataError::Malformed {
        file: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn write_csv_batch(
    w: &mut csv::Writer<Box<dyn Write + Send>>,
    batch: &RecordBatch,
) -> csv::Result<()> {
    let columns = batch.columns();
    let mut cell = String::new();
    let mut number = String::with_capacity(32);
    for row in 0..batch.num_rows() {
        for col in columns {
            cell.clear();
            if !col.is_null(row) {
                format_cell(col.as_ref(), row, &mut cell, &mut number);
            }
            w.write_field(&cell)?;
        }
        w.write_record(None::<&[u8]>)?;
    }
    Ok(())
}

fn format_cell(col: &dyn Array, row: usize, out: &mut String, scratch: &mut String) {
    use std::fmt::Write as _;
    match col.data_type() {
        DataType::Utf8 => out.push_str(col.as_string::<i32>().value(row)),
        DataType::Float64 => {
            scratch.clear();
            let _ = write!(scratch, "{}", col.as_primitive::<Float64Type>().value(row));
            out.push_str(scratch);
        }
        DataType::UInt8 => {
            let _ = write!(
                out,
                "{}",
                col.as_primitive::<arrow_array::types::UInt8Type>()
                    .value(row)
            );
        }
        DataType::Int64 => {
            let _ = write!(out, "{}", col.as_primitive::<Int64Type>().value(row));
        }
        DataType::Date32 => out.push_str(&time::format_date(
            col.as_primitive::<Date32Type>().value(row),
        )),
        DataType::Timestamp(unit, _) => {
            let (raw, per_second) = match unit {
                TimeUnit::Second => (col.as_primitive::<TimestampSecondType>().value(row), 1),
                TimeUnit::Millisecond => (
                    col.as_primitive::<TimestampMillisecondType>().value(row),
                    1_000,
                ),
                TimeUnit::Microsecond => (
                    col.as_primitive::<TimestampMicrosecondType>().value(row),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    col.as_primitive::<TimestampNanosecondType>().value(row),
                    1_000_000_000,
                ),
            };
            out.push_str(&time::format_timestamp(raw.div_euclid(per_second)))
        }
        DataType::Boolean => out.push_str(if col.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        other => panic!("the writers only produce contract types, not {other}"),
    }
}
