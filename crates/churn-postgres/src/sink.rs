//! Writing Arrow record batches into PostgreSQL tables with binary `COPY`: a worklist
//! swapped in whole (readers see the old table or the new one, never a mix; a crash
//! leaves the old one), or appended with a `scored_at` column; and `import`, which loads
//! a data directory into a schema in one transaction.

use crate::copy;
use crate::location::{quote, PgLocation};
use crate::{PgError, Result};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use churn_features::contract::{self, ColumnType, Presence};
use churn_features::read::{self, TableFile};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Encoded bytes are sent to the server in pieces of about this size.
const SEND_BYTES: usize = 1 << 20;

/// How a [`TableWriter`] changes its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Replace the table in one transaction: the rows go into a new table, which takes
    /// the old one's name at commit.
    Replace,
    /// Add the rows to the table (created when missing), each with the same
    /// `scored_at` time, in one transaction.
    Append,
}

enum Message {
    Bytes(Vec<u8>),
    Finish,
}

/// How a [`TableWriter`]'s transaction ends once its rows are in.
enum Commit {
    /// This SQL, ending with `COMMIT`.
    Sql(String),
    /// The staging table takes the target's place ([`swap_in`]).
    Swap {
        target: String,
        staging: String,
        /// The target's own (quoted) name, without its schema.
        name: String,
    },
}

/// Writes record batches of one schema into a table (see [`WriteMode`]). Nothing is
/// visible to other sessions until [`finish`](TableWriter::finish) commits; dropping
/// the writer unfinished (or the process dying) rolls everything back.
pub struct TableWriter {
    tx: Option<SyncSender<Message>>,
    worker: Option<JoinHandle<Result<u64>>>,
    buf: Vec<u8>,
    scored_at: Option<i64>,
    target: String,
}

impl TableWriter {
    /// Opens a transaction on `location` writing table `table` (a dotted name names its
    /// schema; the schema is created when missing) with columns `schema`.
    pub fn create(
        location: &PgLocation,
        table: &str,
        schema: &SchemaRef,
        mode: WriteMode,
    ) -> Result<TableWriter> {
        let target = location.qualified(table);
        let shown = format!("{location} (table {table})");
        let mut client = location.connect()?;
        let (schema_name, table_name) = location.schema_and_table(table);
        let mut columns: Vec<String> = Vec::new();
        for f in schema.fields() {
            let ty = copy::pg_type(f.data_type()).ok_or_else(|| PgError::Query {
                target: shown.clone(),
                what: "choosing column types".into(),
                cause: format!(
                    "column `{}` has type {}, which is not written to PostgreSQL",
                    f.name(),
                    f.data_type()
                ),
            })?;
            let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
            columns.push(format!("{} {ty}{not_null}", quote(f.name())));
        }
        let names: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
        let (setup, copy_into, finish, scored_at) = match mode {
            WriteMode::Replace => {
                let staging = format!(
                    "{}_churn_{}_{}",
                    table_name.chars().take(30).collect::<String>(),
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros())
                );
                let staging_q = format!("{}.{}", quote(schema_name), quote(&staging));
                (
                    format!(
                        "BEGIN; CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE {staging_q} ({});",
                        quote(schema_name),
                        columns.join(", ")
                    ),
                    format!(
                        "COPY {staging_q} ({}) FROM STDIN (FORMAT binary)",
                        names.join(", ")
                    ),
                    Commit::Swap {
                        target: target.clone(),
                        staging: staging_q,
                        name: quote(table_name),
                    },
                    None,
                )
            }
            WriteMode::Append => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as i64);
                (
                    format!(
                        "BEGIN; CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {target} ({}, scored_at timestamptz NOT NULL);",
                        quote(schema_name),
                        columns.join(", ")
                    ),
                    format!(
                        "COPY {target} ({}, scored_at) FROM STDIN (FORMAT binary)",
                        names.join(", ")
                    ),
                    Commit::Sql("COMMIT;".to_string()),
                    Some(now),
                )
            }
        };
        client
            .batch_execute(&setup)
            .map_err(|e| query_failed(&shown, "creating the table", e))?;
        let (tx, rx) = sync_channel::<Message>(4);
        let worker = std::thread::spawn(move || -> Result<u64> {
            let failed = |what: &str, e: postgres::Error| query_failed(&shown, what, e);
            let mut writer = client
                .copy_in(copy_into.as_str())
                .map_err(|e| failed("starting COPY", e))?;
            let mut start = Vec::new();
            copy::header(&mut start);
            writer.write_all(&start).map_err(|e| failed_io(&shown, e))?;
            for message in rx {
                match message {
                    Message::Bytes(bytes) => {
                        writer.write_all(&bytes).map_err(|e| failed_io(&shown, e))?
                    }
                    Message::Finish => {
                        let mut end = Vec::new();
                        copy::trailer(&mut end);
                        writer.write_all(&end).map_err(|e| failed_io(&shown, e))?;
                        let rows = writer.finish().map_err(|e| failed("writing rows", e))?;
                        match &finish {
                            Commit::Sql(sql) => client
                                .batch_execute(sql)
                                .map_err(|e| failed("committing", e))?,
                            Commit::Swap {
                                target,
                                staging,
                                name,
                            } => swap_in(&mut client, target, staging, name, &shown)?,
                        }
                        return Ok(rows);
                    }
                }
            }
            // The sender went away unfinished: dropping the writer aborts the COPY and
            // dropping the connection rolls the transaction back.
            Err(PgError::Aborted { target: shown })
        });
        Ok(TableWriter {
            tx: Some(tx),
            worker: Some(worker),
            buf: Vec::with_capacity(SEND_BYTES * 2),
            scored_at,
            target: location.to_string(),
        })
    }

    /// Adds a batch's rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let encoded = match self.scored_at {
            Some(at) => {
                let stamp: ArrayRef = Arc::new(
                    TimestampMicrosecondArray::from(vec![at; batch.num_rows()])
                        .with_timezone("UTC"),
                );
                let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
                fields.push(Arc::new(Field::new(
                    "scored_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                )));
                let mut columns = batch.columns().to_vec();
                columns.push(stamp);
                let with = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                    .map_err(|e| self.encode_failed(e.to_string()))?;
                copy::encode(&with, &mut self.buf)
            }
            None => copy::encode(batch, &mut self.buf),
        };
        encoded.map_err(|e| self.encode_failed(e))?;
        if self.buf.len() >= SEND_BYTES {
            let bytes = std::mem::replace(&mut self.buf, Vec::with_capacity(SEND_BYTES * 2));
            self.send(Message::Bytes(bytes))?;
        }
        Ok(())
    }

    fn encode_failed(&self, cause: String) -> PgError {
        PgError::Query {
            target: self.target.clone(),
            what: "encoding rows".into(),
            cause,
        }
    }

    fn send(&mut self, message: Message) -> Result<()> {
        let sent = self.tx.as_ref().map(|tx| tx.send(message).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The worker stopped: its error says why.
        Err(self.join().err().unwrap_or(PgError::Aborted {
            target: self.target.clone(),
        }))
    }

    fn join(&mut self) -> Result<u64> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w.join().expect("the COPY writer does not panic"),
            None => Err(PgError::Aborted {
                target: self.target.clone(),
            }),
        }
    }

    /// Sends the last rows and commits; returns the rows written.
    pub fn finish(mut self) -> Result<u64> {
        if !self.buf.is_empty() {
            let bytes = std::mem::take(&mut self.buf);
            self.send(Message::Bytes(bytes))?;
        }
        self.send(Message::Finish)?;
        self.join()
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        // Unfinished: closing the channel makes the worker abort and roll back.
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Puts the filled `staging` table in the place of `target` (qualified and quoted;
/// `name` its quoted table name) and commits. A new table is renamed in. An old one is
/// dropped and the new one renamed in, after which the old table's privileges, comment,
/// indexes and constraints are made again on it: the people and tools granted the
/// worklist keep reading it, a lookup index stays. When views depend on the old table
/// (a `DROP` would fail, or destroy them with `CASCADE`), it is emptied and refilled
/// from the staging table instead, which needs the same columns; with other columns
/// the write fails, naming the views. Triggers, row security policies and the owner
/// are not carried.
fn swap_in(
    client: &mut postgres::Client,
    target: &str,
    staging: &str,
    name: &str,
    shown: &str,
) -> Result<()> {
    let failed = |what: &str, e: postgres::Error| query_failed(shown, what, e);
    let oid_of = |client: &mut postgres::Client, table: &str| {
        client
            .query_one("SELECT to_regclass($1)::oid", &[&table])
            .map(|row| row.get::<_, Option<u32>>(0))
            .map_err(|e| failed("looking up the table", e))
    };
    let Some(old) = oid_of(client, target)? else {
        return client
            .batch_execute(&format!("ALTER TABLE {staging} RENAME TO {name}; COMMIT;"))
            .map_err(|e| failed("committing", e));
    };
    // Locked before its privileges, indexes and views are read, so that what is carried
    // is what the table has when it is replaced (the `DROP` took this lock anyway).
    client
        .batch_execute(&format!("LOCK TABLE {target} IN ACCESS EXCLUSIVE MODE"))
        .map_err(|e| failed("locking the table", e))?;
    let new = oid_of(client, staging)?.ok_or_else(|| PgError::Aborted {
        target: shown.to_string(),
    })?;
    let strings = |client: &mut postgres::Client,
                   sql: &str,
                   params: &[&(dyn postgres::types::ToSql + Sync)],
                   what: &str| {
        client
            .query(sql, params)
            .map(|rows| {
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| failed(what, e))
    };
    let views = strings(
        client,
        "SELECT DISTINCT r.ev_class::regclass::text FROM pg_depend d \
         JOIN pg_rewrite r ON r.oid = d.objid \
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1 AND r.ev_class <> $1 \
         ORDER BY 1",
        &[&old],
        "looking up the views on the table",
    )?;
    if !views.is_empty() {
        let columns_sql = "SELECT coalesce(string_agg(quote_ident(attname) || ' ' || \
             format_type(atttypid, atttypmod), ', ' ORDER BY attnum), '') FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped";
        let old_columns = strings(client, columns_sql, &[&old], "reading the table's columns")?;
        let new_columns = strings(client, columns_sql, &[&new], "reading the table's columns")?;
        if old_columns != new_columns {
            return Err(PgError::Query {
                target: shown.to_string(),
                what: "replacing the table".into(),
                cause: format!(
                    "views depend on it ({}) and its columns ({}) are not the new rows' ({}): change or drop the views, or write to another table; the old table is unchanged",
                    views.join(", "),
                    old_columns.concat(),
                    new_columns.concat()
                ),
            });
        }
        return client
            .batch_execute(&format!(
                "TRUNCATE {target}; INSERT INTO {target} SELECT * FROM {staging}; \
                 DROP TABLE {staging}; COMMIT;"
            ))
            .map_err(|e| failed("refilling the table its views read", e));
    }
    // What the old table had, as statements naming the target (the new table's name
    // once renamed).
    let carried = strings(
        client,
        "SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, $2::text, \
             CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
             CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) \
         FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1 AND a.grantee <> c.relowner \
         UNION ALL \
         SELECT format('COMMENT ON TABLE %s IS %L', $2::text, obj_description($1, 'pg_class')) \
         WHERE obj_description($1, 'pg_class') IS NOT NULL \
         UNION ALL \
         SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', $2::text, conname, pg_get_constraintdef(oid)) \
         FROM pg_constraint WHERE conrelid = $1 AND contype IN ('p', 'u', 'c', 'f', 'x') \
         UNION ALL \
         SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i \
         WHERE i.indrelid = $1 AND NOT EXISTS \
             (SELECT 1 FROM pg_constraint k WHERE k.conrelid = $1 AND k.conindid = i.indexrelid)",
        &[&old, &target],
        "reading the table's privileges, comment and indexes",
    )?;
    let mut sql = format!("DROP TABLE {target}; ALTER TABLE {staging} RENAME TO {name};");
    for statement in &carried {
        sql.push(' ');
        sql.push_str(statement);
        sql.push(';');
    }
    sql.push_str(" COMMIT;");
    client.batch_execute(&sql).map_err(|e| {
        failed(
            "replacing the table (and making its privileges, comment and indexes again)",
            e,
        )
    })
}

fn query_failed(target: &str, what: &str, e: postgres::Error) -> PgError {
    PgError::Query {
        target: target.to_string(),
        what: what.into(),
        cause: crate::describe(&e),
    }
}

fn failed_io(target: &str, e: std::io::Error) -> PgError {
    PgError::Query {
        target: target.to_string(),
        what: "sending rows".into(),
        cause: e.to_string(),
    }
}

/// What [`import`] loaded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    /// Contract table name, rows loaded.
    pub tables: Vec<(String, u64)>,
    /// Columns of the files left out (not in the contract), as `table.column`.
    pub skipped_columns: Vec<String>,
}

/// Loads every table of data directory `dir` into `location`'s schema in one
/// transaction, replacing tables of the same names: contract columns with their
/// contract types (`text`, `date`, `timestamptz`, `double precision`), customer
/// attributes as `double precision` when every value is a number, else as their type
/// in the file. Values are checked as the readers check them.
pub fn import(dir: &Path, location: &PgLocation) -> Result<Imported> {
    let shown = location.to_string();
    let mut client = location.connect()?;
    let failed = |what: String, e: postgres::Error| PgError::Query {
        target: shown.clone(),
        what,
        cause: crate::describe(&e),
    };
    client
        .batch_execute(&format!(
            "BEGIN; CREATE SCHEMA IF NOT EXISTS {}",
            quote(&location.schema)
        ))
        .map_err(|e| failed("creating the schema".into(), e))?;
    let mut imported = Imported {
        tables: Vec::new(),
        skipped_columns: Vec::new(),
    };
    for spec in contract::TABLES.iter() {
        let Some(file) = read::locate(dir, spec)? else {
            continue;
        };
        let names = file.check_columns()?;
        let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut batches = Vec::new();
        let mut rows = 0u64;
        let target = location.qualified(spec.name);
        if spec.open {
            // The customers table's attributes need the whole column to pick a type,
            // so that (small) table is held in memory.
            file.for_each_batch(&wanted, |b| {
                batches.push(convert(spec, &names, b)?);
                Ok(())
            })?;
            let typed = attribute_types(spec, batches)?;
            let s = match typed.first() {
                Some(b) => b.schema(),
                None => empty_schema(spec, &names),
            };
            create_table(&mut client, &target, &s)?;
            let mut w = client
                .copy_in(copy_sql(&target, &s).as_str())
                .map_err(|e| failed("starting COPY".into(), e))?;
            let mut buf = Vec::new();
            copy::header(&mut buf);
            for b in &typed {
                copy::encode(b, &mut buf).map_err(|e| PgError::Query {
                    target: shown.clone(),
                    what: "encoding rows".into(),
                    cause: e,
                })?;
                rows += b.num_rows() as u64;
            }
            copy::trailer(&mut buf);
            w.write_all(&buf).map_err(|e| failed_io(&shown, e))?;
            w.finish()
                .map_err(|e| failed(format!("loading {target}"), e))?;
        } else {
            // Contract columns have their contract types: the table is created before
            // the first row is read, and batches stream through.
            let s = empty_schema(spec, &names);
            create_table(&mut client, &target, &s)?;
            let mut w = client
                .copy_in(copy_sql(&target, &s).as_str())
                .map_err(|e| failed("starting COPY".into(), e))?;
            let mut buf = Vec::with_capacity(SEND_BYTES * 2);
            copy::header(&mut buf);
            file.for_each_batch(&wanted, |b| {
                let converted = convert(spec, &names, b)?;
                copy::encode(&converted, &mut buf).map_err(|e| read_stop(&file, e))?;
                if buf.len() >= SEND_BYTES {
                    w.write_all(&buf)
                        .map_err(|e| stop(&file, failed_io(&shown, e)))?;
                    buf.clear();
                }
                rows += converted.num_rows() as u64;
                Ok(())
            })?;
            copy::trailer(&mut buf);
            w.write_all(&buf).map_err(|e| failed_io(&shown, e))?;
            w.finish()
                .map_err(|e| failed(format!("loading {target}"), e))?;
        }
        for n in &names {
            if !spec.open && spec.column(n).is_none() {
                imported.skipped_columns.push(format!("{}.{n}", spec.name));
            }
        }
        imported.tables.push((spec.name.to_string(), rows));
    }
    client
        .batch_execute("COMMIT")
        .map_err(|e| failed("committing".into(), e))?;
    Ok(imported)
}

/// A PostgreSQL error inside a batch visitor: the visitor stops the read, and the
/// error is carried out through a data error naming the file.
fn stop(file: &TableFile, e: PgError) -> churn_features::DataError {
    churn_features::DataError::Malformed {
        file: file.path.clone(),
        message: format!("while loading it: {e}"),
    }
}

fn read_stop(file: &TableFile, message: String) -> churn_features::DataError {
    churn_features::DataError::Malformed {
        file: file.path.clone(),
        message,
    }
}

fn copy_sql(target: &str, schema: &SchemaRef) -> String {
    let names: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
    format!(
        "COPY {target} ({}) FROM STDIN (FORMAT binary)",
        names.join(", ")
    )
}

fn create_table(client: &mut postgres::Client, target: &str, schema: &SchemaRef) -> Result<()> {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = copy::pg_type(f.data_type()).unwrap_or("text");
            format!("{} {ty}", quote(f.name()))
        })
        .collect();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {target}; CREATE TABLE {target} ({})",
            columns.join(", ")
        ))
        .map_err(|e| PgError::Query {
            target: target.to_string(),
            what: "creating the table".into(),
            cause: crate::describe(&e),
        })
}

/// The columns a table of `spec` gets when its file has `names` (the contract's, in
/// file order; every column of an open table).
fn kept_columns<'a>(spec: &contract::TableSpec, names: &'a [String]) -> Vec<&'a String> {
    names
        .iter()
        .filter(|n| spec.open || spec.column(n).is_some())
        .collect()
}

fn empty_schema(spec: &contract::TableSpec, names: &[String]) -> SchemaRef {
    Arc::new(Schema::new(
        kept_columns(spec, names)
            .into_iter()
            .map(|n| {
                let ty = spec.column(n).map_or(DataType::Utf8, |c| c.ty.arrow_type());
                Field::new(n, ty, true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// One batch of a table file with its contract columns in their contract types (parsed
/// and checked as the readers do) and other columns of an open table as they are.
fn convert(
    spec: &contract::TableSpec,
    names: &[String],
    b: &read::Batch,
) -> churn_features::Result<RecordBatch> {
    use arrow_array::builder::{Date32Builder, Float64Builder, StringBuilder};
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for name in kept_columns(spec, names) {
        let column = b.required(name)?;
        let Some(c) = spec.column(name) else {
            let array = b
                .record_batch()
                .column_by_name(name)
                .expect("the column was found above")
                .clone();
            fields.push(Field::new(name, array.data_type().clone(), true));
            arrays.push(array);
            continue;
        };
        let n = b.len();
        let array: ArrayRef = match c.ty {
            ColumnType::Text => {
                let mut out = StringBuilder::with_capacity(n, n * 8);
                for i in 0..n {
                    out.append_option(column.text_ref(i));
                }
                Arc::new(out.finish())
            }
            ColumnType::Number => {
                let mut out = Float64Builder::with_capacity(n);
                for i in 0..n {
                    out.append_option(column.number(i)?);
                }
                Arc::new(out.finish())
            }
            ColumnType::Date => {
                let mut out = Date32Builder::with_capacity(n);
                for i in 0..n {
                    out.append_option(column.date(i)?);
                }
                Arc::new(out.finish())
            }
            ColumnType::Timestamp => {
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    values.push(
                        column
                            .timestamp(i)?
                            .map(|t| t * contract::MICROS_PER_SECOND),
                    );
                }
                Arc::new(TimestampMicrosecondArray::from(values).with_timezone(contract::TIMEZONE))
            }
        };
        if c.presence == Presence::Required {
            if let Some(i) = (0..n).find(|i| column.is_null(*i)) {
                return Err(column.bad(
                    i,
                    &format!("a {} (the column is required)", c.ty.describe()),
                    "",
                ));
            }
        }
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| {
        churn_features::DataError::Malformed {
            file: std::path::PathBuf::from(spec.name),
            message: e.to_string(),
        }
    })
}

/// The customers table's attribute columns typed over the whole table: text columns
/// whose every value is a finite number become `double precision`.
fn attribute_types(
    spec: &contract::TableSpec,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let schema = first.schema();
    let numeric: Vec<bool> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(k, f)| {
            spec.column(f.name()).is_none()
                && f.data_type() == &DataType::Utf8
                && batches.iter().all(|b| {
                    let a = arrow_array::cast::AsArray::as_string::<i32>(b.column(k).as_ref());
                    a.iter()
                        .flatten()
                        .all(|s| s.trim().parse::<f64>().is_ok_and(f64::is_finite))
                })
        })
        .collect();
    if !numeric.contains(&true) {
        return Ok(batches);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&numeric)
        .map(|(f, num)| {
            if *num {
                Field::new(f.name(), DataType::Float64, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let typed_schema = Arc::new(Schema::new(fields));
    batches
        .into_iter()
        .map(|b| {
            let columns: Vec<ArrayRef> = b
                .columns()
                .iter()
                .zip(&numeric)
                .map(|(a, num)| -> ArrayRef {
                    if !*num {
                        return a.clone();
                    }
                    let text = arrow_array::cast::AsArray::as_string::<i32>(a.as_ref());
                    Arc::new(
                        text.iter()
                            .map(|v| v.and_then(|s| s.trim().parse::<f64>().ok()))
                            .collect::<arrow_array::Float64Array>(),
                    )
                })
                .collect();
            RecordBatch::try_new(typed_schema.clone(), columns).map_err(|e| PgError::Query {
                target: spec.name.into(),
                what: "typing attributes".into(),
                cause: e.to_string(),
            })
        })
        .collect()
}
