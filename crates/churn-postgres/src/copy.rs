//! PostgreSQL's binary `COPY` format to and from Arrow record batches.
//!
//! The format: an 11-byte signature, a flags word and a header extension, then per row
//! a 16-bit field count and per field a 32-bit length (-1 for NULL) and the value in the
//! type's binary send format (big-endian), then a field count of -1. Only the types the
//! readers ask the server for ([`PgKind`]) are decoded; any other column is cast to text
//! in the query.

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use churn_features::error::Location;
use churn_features::DataError;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

/// The binary COPY signature.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A column type as read from the server: what the query casts each column to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgKind {
    /// `text` (varchar, char, citext, enums and any type without a mapping are cast).
    Text,
    /// `double precision` (every numeric type is cast).
    Float8,
    /// `date`.
    Date,
    /// `timestamptz` (a `timestamp` without time zone is read as UTC).
    Timestamptz,
    /// `boolean`.
    Bool,
}

impl PgKind {
    /// The kind a column of PostgreSQL type `typname` (from `pg_type`) is read as.
    pub fn of_type(typname: &str) -> PgKind {
        match typname {
            "float8" | "float4" | "int2" | "int4" | "int8" | "numeric" | "money" | "oid" => {
                PgKind::Float8
            }
            "date" => PgKind::Date,
            "timestamptz" | "timestamp" => PgKind::Timestamptz,
            "bool" => PgKind::Bool,
            _ => PgKind::Text,
        }
    }

    /// The select expression reading column `quoted` (of type `typname`) as this kind.
    pub fn select(self, quoted: &str, typname: &str) -> String {
        match (self, typname) {
            (PgKind::Timestamptz, "timestamp") => format!("({quoted} AT TIME ZONE 'UTC')"),
            (PgKind::Float8, "float8") | (PgKind::Date, _) | (PgKind::Bool, _) => quoted.into(),
            (PgKind::Timestamptz, _) => quoted.into(),
            (PgKind::Float8, "money") => format!("({quoted})::numeric::float8"),
            (PgKind::Float8, _) => format!("({quoted})::float8"),
            (PgKind::Text, _) => format!("({quoted})::text"),
        }
    }

    /// The Arrow type the column becomes.
    pub fn arrow_type(self) -> DataType {
        match self {
            PgKind::Text => DataType::Utf8,
            PgKind::Float8 => DataType::Float64,
            PgKind::Date => DataType::Date32,
            PgKind::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PgKind::Bool => DataType::Boolean,
        }
    }
}

/// One column being decoded.
enum Builder {
    Text(StringBuilder),
    Float8(Float64Builder),
    Date(Date32Builder),
    Timestamptz(TimestampMicrosecondBuilder),
    Bool(BooleanBuilder),
}

impl Builder {
    fn new(kind: PgKind, rows: usize) -> Builder {
        match kind {
            PgKind::Text => Builder::Text(StringBuilder::with_capacity(rows, rows * 12)),
            PgKind::Float8 => Builder::Float8(Float64Builder::with_capacity(rows)),
            PgKind::Date => Builder::Date(Date32Builder::with_capacity(rows)),
            PgKind::Timestamptz => Builder::Timestamptz(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            PgKind::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
        }
    }

    fn null(&mut self) {
        match self {
            Builder::Text(b) => b.append_null(),
            Builder::Float8(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamptz(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
        }
    }

    /// Appends one value in its binary send format; the error says what was wrong.
    fn value(&mut self, bytes: &[u8]) -> Result<(), (&'static str, String)> {
        let fixed = |n: usize, what: &'static str| -> Result<(), (&'static str, String)> {
            if bytes.len() == n {
                Ok(())
            } else {
                Err((what, format!("{} bytes", bytes.len())))
            }
        };
        match self {
            Builder::Text(b) => match std::str::from_utf8(bytes) {
                Ok(s) => b.append_value(s),
                Err(_) => return Err(("UTF-8 text", String::from_utf8_lossy(bytes).into_owned())),
            },
            Builder::Float8(b) => {
                fixed(8, "an 8-byte float")?;
                b.append_value(f64::from_be_bytes(bytes.try_into().expect("8 bytes")));
            }
            Builder::Date(b) => {
                fixed(4, "a 4-byte date")?;
                let days = i32::from_be_bytes(bytes.try_into().expect("4 bytes"));
                if days == i32::MAX || days == i32::MIN {
                    return Err(("a date", "infinity".into()));
                }
                b.append_value(days.saturating_add(EPOCH_DAYS));
            }
            Builder::Timestamptz(b) => {
                fixed(8, "an 8-byte timestamp")?;
                let micros = i64::from_be_bytes(bytes.try_into().expect("8 bytes"));
                if micros == i64::MAX || micros == i64::MIN {
                    return Err(("a timestamp", "infinity".into()));
                }
                b.append_value(micros.saturating_add(EPOCH_MICROS));
            }
            Builder::Bool(b) => {
                fixed(1, "a 1-byte boolean")?;
                b.append_value(bytes[0] != 0);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Float8(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Timestamptz(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// The Arrow schema of columns `names` read as `kinds` (every column nullable).
pub fn schema_of(names: &[String], kinds: &[PgKind]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .zip(kinds)
            .map(|(n, k)| Field::new(n, k.arrow_type(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Decodes a binary COPY stream of columns `schema` (read as `kinds`) into record
/// batches of at most `batch_rows` rows, handing each to `visit`. Errors name `label`
/// and the row, counted from 1 in the stream's order. Returns the rows read.
pub fn decode(
    mut input: impl BufRead,
    schema: &SchemaRef,
    kinds: &[PgKind],
    label: &str,
    batch_rows: usize,
    visit: &mut dyn FnMut(RecordBatch) -> churn_features::Result<()>,
) -> churn_features::Result<u64> {
    let mut decoder = Decoder::new(schema, kinds, label, batch_rows);
    loop {
        let chunk = input.fill_buf().map_err(|e| decoder.io(e))?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        decoder.push(chunk, visit)?;
        input.consume(n);
    }
    decoder.finish(visit)
}

/// A binary COPY stream decoded as its bytes arrive, in pieces of any size (the server
/// sends a row per message): rows whole in a piece are read where they lie, and only a
/// row cut between pieces is copied.
pub struct Decoder<'a> {
    schema: &'a SchemaRef,
    kinds: &'a [PgKind],
    file: PathBuf,
    batch_rows: usize,
    /// Bytes of a row (or the header) cut between pieces.
    pending: Vec<u8>,
    header_done: bool,
    ended: bool,
    rows_done: u64,
    builders: Vec<Builder>,
    in_batch: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder of columns `schema` read as `kinds`; errors name `label`.
    pub fn new(
        schema: &'a SchemaRef,
        kinds: &'a [PgKind],
        label: &str,
        batch_rows: usize,
    ) -> Decoder<'a> {
        Decoder {
            schema,
            kinds,
            file: PathBuf::from(label),
            batch_rows: batch_rows.max(1),
            pending: Vec::new(),
            header_done: false,
            ended: false,
            rows_done: 0,
            builders: kinds.iter().map(|k| Builder::new(*k, batch_rows)).collect(),
            in_batch: 0,
        }
    }

    fn malformed(&self, message: String) -> DataError {
        DataError::Malformed {
            file: self.file.clone(),
            message,
        }
    }

    /// An error reading from the server.
    pub fn io(&self, e: impl std::fmt::Display) -> DataError {
        self.malformed(format!("reading from the server: {e}"))
    }

    /// Decodes the next piece of the stream.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        visit: &mut dyn FnMut(RecordBatch) -> churn_features::Result<()>,
    ) -> churn_features::Result<()> {
        if !self.pending.is_empty() {
            // Complete the cut row (or header) first, then go on in the piece itself.
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(chunk);
            let used = self.consume(&joined, visit)?;
            let from_chunk = used.saturating_sub(joined.len() - chunk.len());
            if used < joined.len() - chunk.len() {
                // Still no whole row: keep everything.
                self.pending = joined;
                return Ok(());
            }
            chunk = &chunk[from_chunk..];
            if used == joined.len() {
                return Ok(());
            }
        }
        let used = self.consume(chunk, visit)?;
        self.pending.extend_from_slice(&chunk[used..]);
        Ok(())
    }

    /// Decodes the header and every whole row at the start of `bytes`; returns the
    /// bytes used.
    fn consume(
        &mut self,
        bytes: &[u8],
        visit: &mut dyn FnMut(RecordBatch) -> churn_features::Result<()>,
    ) -> churn_features::Result<usize> {
        let mut pos = 0;
        if !self.header_done {
            if bytes.len() < 19 {
                return Ok(0);
            }
            if &bytes[..11] != SIGNATURE {
                return Err(self.malformed("not a binary COPY stream".into()));
            }
            let ext = u32::from_be_bytes(bytes[15..19].try_into().expect("4 bytes")) as usize;
            if bytes.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        while !self.ended {
            let Some(len) = complete_row(&bytes[pos..]) else {
                break;
            };
            self.row(&bytes[pos..pos + len])?;
            pos += len;
            if self.in_batch == self.batch_rows {
                self.flush(visit)?;
            }
        }
        if self.ended {
            // Nothing follows the trailer.
            return Ok(bytes.len());
        }
        Ok(pos)
    }

    /// One whole row (or the trailer).
    fn row(&mut self, row: &[u8]) -> churn_features::Result<()> {
        let count = i16::from_be_bytes([row[0], row[1]]);
        if count == -1 {
            self.ended = true;
            return Ok(());
        }
        if count as usize != self.kinds.len() {
            return Err(self.malformed(format!(
                "row {} has {count} fields, expected {}",
                self.rows_done + 1,
                self.kinds.len()
            )));
        }
        let mut at = 2;
        for k in 0..self.builders.len() {
            let len = i32::from_be_bytes(row[at..at + 4].try_into().expect("4 bytes"));
            at += 4;
            if len < 0 {
                self.builders[k].null();
                continue;
            }
            let bytes = &row[at..at + len as usize];
            at += len as usize;
            if let Err((expected, found)) = self.builders[k].value(bytes) {
                return Err(DataError::BadValue {
                    file: self.file.clone(),
                    location: Location::Row(self.rows_done + 1),
                    column: self.schema.field(k).name().clone(),
                    expected: expected.into(),
                    found,
                });
            }
        }
        self.rows_done += 1;
        self.in_batch += 1;
        Ok(())
    }

    fn flush(
        &mut self,
        visit: &mut dyn FnMut(RecordBatch) -> churn_features::Result<()>,
    ) -> churn_features::Result<()> {
        if self.in_batch == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| self.malformed(format!("building a record batch: {e}")))?;
        self.in_batch = 0;
        visit(batch)
    }

    /// Ends the stream: its last rows go to `visit`; a stream without its trailer is
    /// an error. Returns the rows read.
    pub fn finish(
        mut self,
        visit: &mut dyn FnMut(RecordBatch) -> churn_features::Result<()>,
    ) -> churn_features::Result<u64> {
        if !self.ended {
            return Err(self.malformed(format!(
                "the COPY stream ended after {} rows without its trailer",
                self.rows_done
            )));
        }
        self.flush(visit)?;
        Ok(self.rows_done)
    }
}

/// The length of the row (or trailer) at the start of `bytes`, when all of it is there.
fn complete_row(bytes: &[u8]) -> Option<usize> {
    let count = i16::from_be_bytes(bytes.get(..2)?.try_into().ok()?);
    if count == -1 {
        return Some(2);
    }
    let mut at = 2usize;
    for _ in 0..count.max(0) {
        let len = i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len > 0 {
            at += len as usize;
        }
    }
    (bytes.len() >= at).then_some(at)
}

/// The PostgreSQL column type a column of Arrow type `ty` is written as.
pub fn pg_type(ty: &DataType) -> Option<&'static str> {
    Some(match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Dictionary(_, v) if pg_type(v) == Some("text") => "text",
        DataType::Float64 | DataType::Float32 => "double precision",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 => "bigint",
        DataType::Boolean => "boolean",
        DataType::Date32 => "date",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::Timestamp(_, None) => "timestamp",
        _ => return None,
    })
}

/// One column being encoded.
enum Encoder<'a> {
    Text(Box<dyn Fn(usize) -> &'a str + 'a>),
    F64(Box<dyn Fn(usize) -> f64 + 'a>),
    I16(Box<dyn Fn(usize) -> i16 + 'a>),
    I32(Box<dyn Fn(usize) -> i32 + 'a>),
    I64(Box<dyn Fn(usize) -> i64 + 'a>),
    Bool(&'a arrow_array::BooleanArray),
    /// Days since 1970-01-01.
    Date(&'a [i32]),
    /// Raw values and the factor that makes them microseconds (or divides, when < 0).
    Time(&'a [i64], i64),
}

fn encoder<'a>(array: &'a dyn Array) -> Option<Encoder<'a>> {
    macro_rules! prim {
        ($variant:ident, $t:ty, $conv:expr) => {{
            let v = array.as_primitive::<$t>().values();
            Encoder::$variant(Box::new(move |i| $conv(v[i])))
        }};
    }
    Some(match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            Encoder::Text(Box::new(move |i| a.value(i)))
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            Encoder::Text(Box::new(move |i| a.value(i)))
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            Encoder::Text(Box::new(move |i| a.value(i)))
        }
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary_opt()?;
            let keys = dict.normalized_keys();
            let values = dict.values();
            let text: Box<dyn Fn(usize) -> &'a str + 'a> = match values.data_type() {
                DataType::Utf8 => {
                    let v = values.as_string::<i32>();
                    Box::new(move |k| v.value(k))
                }
                DataType::LargeUtf8 => {
                    let v = values.as_string::<i64>();
                    Box::new(move |k| v.value(k))
                }
                _ => return None,
            };
            Encoder::Text(Box::new(move |i| text(keys[i])))
        }
        DataType::Float64 => prim!(F64, Float64Type, |v: f64| v),
        DataType::Float32 => prim!(F64, Float32Type, f64::from),
        DataType::Int8 => prim!(I16, Int8Type, i16::from),
        DataType::Int16 => prim!(I16, Int16Type, |v: i16| v),
        DataType::UInt8 => prim!(I16, UInt8Type, i16::from),
        DataType::Int32 => prim!(I32, Int32Type, |v: i32| v),
        DataType::UInt16 => prim!(I32, UInt16Type, i32::from),
        DataType::Int64 => prim!(I64, Int64Type, |v: i64| v),
        DataType::UInt32 => prim!(I64, UInt32Type, i64::from),
        DataType::Boolean => Encoder::Bool(array.as_boolean()),
        DataType::Date32 => Encoder::Date(
            array
                .as_primitive::<arrow_array::types::Date32Type>()
                .values(),
        ),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => Encoder::Time(
                array.as_primitive::<TimestampSecondType>().values(),
                1_000_000,
            ),
            TimeUnit::Millisecond => Encoder::Time(
                array.as_primitive::<TimestampMillisecondType>().values(),
                1_000,
            ),
            TimeUnit::Microsecond => {
                Encoder::Time(array.as_primitive::<TimestampMicrosecondType>().values(), 1)
            }
            TimeUnit::Nanosecond => Encoder::Time(
                array.as_primitive::<TimestampNanosecondType>().values(),
                -1_000,
            ),
        },
        _ => return None,
    })
}

/// The binary COPY header.
pub fn header(out: &mut Vec<u8>) {
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
}

/// The binary COPY trailer.
pub fn trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i16).to_be_bytes());
}

/// Appends the rows of `batch` to `out` in binary COPY format (each column as
/// [`pg_type`] names it). A column of another Arrow type is an error naming it.
pub fn encode(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), String> {
    let schema = batch.schema();
    let columns: Vec<(Encoder, Option<&arrow_buffer::NullBuffer>)> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(a, f)| {
            encoder(a.as_ref())
                .map(|e| (e, a.logical_nulls_ref()))
                .ok_or_else(|| {
                    format!(
                        "column `{}` has type {}, which is not written to PostgreSQL",
                        f.name(),
                        f.data_type()
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let fields = i16::try_from(columns.len()).map_err(|_| "too many columns".to_string())?;
    for i in 0..batch.num_rows() {
        out.extend_from_slice(&fields.to_be_bytes());
        for (enc, nulls) in &columns {
            if nulls.is_some_and(|n| n.is_null(i)) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            match enc {
                Encoder::Text(f) => {
                    let s = f(i).as_bytes();
                    let len = i32::try_from(s.len()).map_err(|_| "a text over 2 GB".to_string())?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(s);
                }
                Encoder::F64(f) => put(out, &f(i).to_be_bytes()),
                Encoder::I16(f) => put(out, &f(i).to_be_bytes()),
                Encoder::I32(f) => put(out, &f(i).to_be_bytes()),
                Encoder::I64(f) => put(out, &f(i).to_be_bytes()),
                Encoder::Bool(a) => put(out, &[u8::from(a.value(i))]),
                Encoder::Date(v) => put(out, &(v[i] - EPOCH_DAYS).to_be_bytes()),
                Encoder::Time(v, factor) => {
                    let micros = if *factor > 0 {
                        v[i].saturating_mul(*factor)
                    } else {
                        v[i].div_euclid(-*factor)
                    };
                    put(out, &(micros - EPOCH_MICROS).to_be_bytes());
                }
            }
        }
    }
    Ok(())
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Extension for `logical_nulls` borrowed where the array has a plain null buffer.
trait NullsRef {
    fn logical_nulls_ref(&self) -> Option<&arrow_buffer::NullBuffer>;
}

impl NullsRef for ArrayRef {
    fn logical_nulls_ref(&self) -> Option<&arrow_buffer::NullBuffer> {
        self.nulls().filter(|n| n.null_count() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        BooleanArray, Date32Array, Float64Array, StringArray, TimestampMicrosecondArray, UInt8Array,
    };

    #[test]
    fn what_is_encoded_decodes_to_the_same_values() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
            Field::new("d", DataType::Date32, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("b", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("é,\"x\""), None, Some("")])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(-0.0), None])),
                Arc::new(Date32Array::from(vec![Some(0), None, Some(-25_567)])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_700_000_000_123_456),
                        None,
                        Some(-1),
                    ])
                    .with_timezone("UTC"),
                ),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ],
        )
        .unwrap();
        let mut bytes = Vec::new();
        header(&mut bytes);
        encode(&batch, &mut bytes).unwrap();
        trailer(&mut bytes);
        let kinds = [
            PgKind::Text,
            PgKind::Float8,
            PgKind::Date,
            PgKind::Timestamptz,
            PgKind::Bool,
        ];
        let mut got = Vec::new();
        // A reader that hands the stream over 3 bytes at a time: rows straddle chunks.
        let reader = std::io::BufReader::with_capacity(3, bytes.as_slice());
        let rows = decode(reader, &schema, &kinds, "t", 2, &mut |b| {
            got.push(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(rows, 3);
        assert_eq!(got.len(), 2, "batches of at most 2 rows");
        let back = arrow_select_concat(&schema, &got);
        assert_eq!(back, batch);
        // A stream cut short is an error, not fewer rows.
        let cut = &bytes[..bytes.len() - 2];
        let e = decode(cut, &schema, &kinds, "table churn.x", 64, &mut |_| Ok(())).unwrap_err();
        assert!(
            e.to_string().contains("table churn.x") && e.to_string().contains("trailer"),
            "{e}"
        );
        // Types without a PostgreSQL column type are refused by name.
        let odd = RecordBatch::try_from_iter([(
            "u",
            Arc::new(arrow_array::UInt64Array::from(vec![1u64])) as ArrayRef,
        )])
        .unwrap();
        assert!(encode(&odd, &mut Vec::new())
            .unwrap_err()
            .contains("column `u`"));
        let small =
            RecordBatch::try_from_iter([("n", Arc::new(UInt8Array::from(vec![7u8])) as ArrayRef)])
                .unwrap();
        let mut b = Vec::new();
        encode(&small, &mut b).unwrap();
        assert_eq!(b, [0, 1, 0, 0, 0, 2, 0, 7]);
    }

    fn arrow_select_concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
        let columns: Vec<ArrayRef> = (0..schema.fields().len())
            .map(|c| {
                let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
                arrow_select::concat::concat(&parts).unwrap()
            })
            .collect();
        RecordBatch::try_new(schema.clone(), columns).unwrap()
    }
}
