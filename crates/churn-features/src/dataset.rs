//! A data directory loaded for feature computation. The small tables (subscriptions,
//! customers, tickets, payments, surveys, catalog) are held in memory per customer; the
//! events table, the large one, is only ever streamed ([`Dataset::for_each_event_batch`]).

use crate::contract::{self, ColumnType, TableSpec};
use crate::error::{DataError, Result};
use crate::read::{self, Batch, TableFile};
use crate::time::{Day, Ts};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One subscription period.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub start: Day,
    /// First day no longer covered; `None` while ongoing.
    pub end: Option<Day>,
    pub mrr: f64,
    pub plan: String,
    /// Why the customer cancelled (optional `cancel_reason` column), on a row ending a
    /// churn. Never a model input: it is known only once the customer has left.
    pub cancel_reason: Option<String>,
}

/// One support ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub opened: Ts,
    pub closed: Option<Ts>,
    pub first_response: Option<Ts>,
    pub priority: Option<String>,
    pub satisfaction: Option<f64>,
}

/// The outcome of an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PaymentStatus {
    Paid,
    Late,
    Failed,
    Refunded,
}

impl PaymentStatus {
    /// Parses the contract's spelling (case-insensitive).
    pub fn parse(text: &str) -> Option<PaymentStatus> {
        match text.trim().to_ascii_lowercase().as_str() {
            "paid" => Some(PaymentStatus::Paid),
            "late" => Some(PaymentStatus::Late),
            "failed" => Some(PaymentStatus::Failed),
            "refunded" => Some(PaymentStatus::Refunded),
            _ => None,
        }
    }

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Paid => "paid",
            PaymentStatus::Late => "late",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// One invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub due: Day,
    pub paid: Option<Ts>,
    pub amount: Option<f64>,
    pub status: PaymentStatus,
}

/// One survey answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub answered: Ts,
    pub nps: Option<f64>,
    pub csat: Option<f64>,
}

/// Everything known about one customer outside the events table, sorted by time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customer {
    pub id: String,
    pub subscriptions: Vec<Subscription>,
    pub tickets: Vec<Ticket>,
    pub payments: Vec<Payment>,
    pub surveys: Vec<Survey>,
}

/// A column of optional values: numbers or categories (attributes, features).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
}

/// A static attribute from the `customers` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub values: Values,
    /// Read from a text column (CSV, or text in Parquet): its kind was inferred from its
    /// values rather than given by the column's type.
    pub text: bool,
}

/// The product feature catalog: feature name and group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub features: Vec<(String, String)>,
}

impl Catalog {
    /// Group names, sorted: the feature columns they name do not depend on the order of
    /// the catalog's rows.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.features.iter().map(|(_, g)| g.clone()).collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }
}

/// Rows of one table that name customers absent from `subscriptions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Orphans {
    pub table: String,
    pub rows: u64,
    /// Up to five distinct ids, in file order.
    pub first_ids: Vec<String>,
}

impl Orphans {
    fn new(table: &str) -> Self {
        Orphans {
            table: table.into(),
            ..Default::default()
        }
    }

    /// Counts one orphan row.
    pub fn add(&mut self, id: &str) {
        self.rows += 1;
        if self.first_ids.len() < 5 && !self.first_ids.iter().any(|x| x == id) {
            self.first_ids.push(id.to_string());
        }
    }
}

impl std::fmt::Display for Orphans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} row(s) name customers absent from subscriptions (first: {}); they are not used",
            self.table,
            self.rows,
            self.first_ids.join(", ")
        )
    }
}

/// Which optional tables (and optional columns that change meaning) a data set has.
/// Features from an absent table are missing, not zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Present {
    pub events: bool,
    pub tickets: bool,
    pub payments: bool,
    /// `payments.paid_at` exists (without it, lateness comes from `status` alone).
    pub paid_at: bool,
    pub surveys: bool,
}

impl Present {
    /// Every table and column present.
    pub const ALL: Present = Present {
        events: true,
        tickets: true,
        payments: true,
        paid_at: true,
        surveys: true,
    };
}

/// A loaded data directory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    /// Customers in order of first appearance in `subscriptions`.
    pub customers: Vec<Customer>,
    pub index: HashMap<String, u32>,
    pub attributes: Vec<Attribute>,
    pub catalog: Option<Catalog>,
    /// The events file, streamed on demand.
    pub events: Option<TableFile>,
    /// The events' first and last instant (from a Parquet file's statistics, else read
    /// from the file).
    pub event_span: Option<(Ts, Ts)>,
    /// Rows of the small tables that reference unknown customers (events are reported
    /// by the scan that reads them).
    pub orphans: Vec<Orphans>,
    pub tables: Present,
}

/// Where a dataset's tables come from: a data directory, or tables handed over.
enum Source<'a> {
    Dir(&'a Path),
    Tables(&'a [SourceTable]),
}

/// A table of the data contract from outside a data directory: record batches in
/// memory, or a stream read afresh for every pass (a database table).
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// The contract's name for it (`subscriptions`, `events`, ...).
    pub name: String,
    /// What errors call it (`subscriptions table`, `table churn.events in postgres://...`).
    pub label: String,
    pub rows: SourceRows,
}

/// The rows of a [`SourceTable`].
#[derive(Debug, Clone)]
pub enum SourceRows {
    /// Record batches of one schema, held in memory.
    Batches {
        schema: arrow_schema::SchemaRef,
        batches: Vec<arrow_array::RecordBatch>,
    },
    /// A stream of record batches, read again for every pass.
    Stream(Arc<dyn read::TableStream>),
}

/// A table of the data contract held in memory: its name (`subscriptions`, `events`,
/// ...), its schema and its record batches.
#[derive(Debug, Clone)]
pub struct MemoryTable {
    pub name: String,
    pub schema: arrow_schema::SchemaRef,
    pub batches: Vec<arrow_array::RecordBatch>,
}

impl Source<'_> {
    /// The table of `spec`, its required columns checked; `None` when absent.
    fn open(&self, spec: &'static TableSpec) -> Result<Option<TableFile>> {
        let file = match self {
            Source::Dir(dir) => read::locate(dir, spec)?,
            Source::Tables(tables) => match tables.iter().find(|t| t.name == spec.name) {
                Some(t) => Some(match &t.rows {
                    SourceRows::Batches { schema, batches } => {
                        TableFile::in_memory(&t.label, spec, schema.clone(), batches.clone())?
                    }
                    SourceRows::Stream(stream) => {
                        TableFile::streamed(&t.label, spec, Arc::clone(stream))
                    }
                }),
                None if spec.required => {
                    return Err(DataError::MissingTable {
                        dir: PathBuf::from(MEMORY_DIR),
                        table: spec.name.into(),
                    })
                }
                None => None,
            },
        };
        if let Some(f) = &file {
            f.check_columns()?;
        }
        Ok(file)
    }
}

/// What a dataset built from tables in memory gives as its directory.
const MEMORY_DIR: &str = "tables in memory";

fn column_names(spec: &TableSpec) -> Vec<&'static str> {
    spec.columns.iter().map(|c| c.name).collect()
}

impl Dataset {
    /// Loads every table of `dir` except the events, which are checked and streamed later.
    pub fn open(dir: &Path) -> Result<Dataset> {
        Dataset::load(dir, &Source::Dir(dir), &BTreeMap::new())
    }

    /// Loads tables held in memory as Arrow record batches, with the same checks as
    /// [`open`](Dataset::open): each is named like its file (`subscriptions`, `events`,
    /// ...) and errors name it `subscriptions table`, with rows numbered from 1. The
    /// events are streamed from the batches, which are shared, not copied.
    pub fn from_tables(tables: &[MemoryTable]) -> Result<Dataset> {
        Dataset::from_tables_with(tables, &BTreeMap::new())
    }

    /// [`from_tables`](Dataset::from_tables), with the kind of text attributes decided
    /// beforehand (`true`: numeric) instead of inferred from these rows' values: for a
    /// part of a data set whose kinds were decided over the whole (see
    /// [`DataSummary`](crate::features::DataSummary)).
    pub fn from_tables_with(
        tables: &[MemoryTable],
        numeric_text_attributes: &BTreeMap<String, bool>,
    ) -> Result<Dataset> {
        let tables: Vec<SourceTable> = tables
            .iter()
            .map(|t| SourceTable {
                name: t.name.clone(),
                label: format!("{} table", t.name),
                rows: SourceRows::Batches {
                    schema: t.schema.clone(),
                    batches: t.batches.clone(),
                },
            })
            .collect();
        Dataset::from_sources(Path::new(MEMORY_DIR), &tables, numeric_text_attributes)
    }

    /// Loads tables from outside a data directory (a database's, say), with the same
    /// checks as [`open`](Dataset::open); `dir` is what the dataset calls its source.
    /// Small tables are read once here; a streamed events table is read on every pass.
    pub fn from_sources(
        dir: &Path,
        tables: &[SourceTable],
        numeric_text_attributes: &BTreeMap<String, bool>,
    ) -> Result<Dataset> {
        for (i, t) in tables.iter().enumerate() {
            if !contract::TABLES.iter().any(|spec| spec.name == t.name) {
                return Err(DataError::InvalidParameter {
                    name: t.name.clone(),
                    message: format!(
                        "not a table of the data contract (expected {})",
                        contract::TABLES.map(|spec| spec.name).join(", ")
                    ),
                });
            }
            if tables[..i].iter().any(|u| u.name == t.name) {
                return Err(DataError::InvalidParameter {
                    name: t.name.clone(),
                    message: "the table is given twice".into(),
                });
            }
        }
        Dataset::load(dir, &Source::Tables(tables), numeric_text_attributes)
    }

    fn load(
        dir: &Path,
        source: &Source,
        numeric_text_attributes: &BTreeMap<String, bool>,
    ) -> Result<Dataset> {
        let open = |spec| source.open(spec);
        let subs = open(&contract::SUBSCRIPTIONS)?.expect("required table");
        let mut ds = Dataset {
            dir: dir.to_path_buf(),
            customers: Vec::new(),
            index: HashMap::new(),
            attributes: Vec::new(),
            catalog: None,
            events: open(&contract::EVENTS)?,
            event_span: None,
            orphans: Vec::new(),
            tables: Present {
                events: false,
                tickets: false,
                payments: false,
                paid_at: false,
                surveys: false,
            },
        };
        ds.tables.events = ds.events.is_some();
        ds.event_span = ds
            .events
            .as_ref()
            .and_then(|f| f.timestamp_span("timestamp"));
        ds.load_subscriptions(&subs)?;
        let customers = open(&contract::CUSTOMERS)?;
        let tickets = open(&contract::TICKETS)?;
        let payments = open(&contract::PAYMENTS)?;
        let surveys = open(&contract::SURVEYS)?;
        let catalog = open(&contract::CATALOG)?;
        ds.tables.tickets = tickets.is_some();
        ds.tables.payments = payments.is_some();
        ds.tables.surveys = surveys.is_some();
        if let Some(f) = &payments {
            ds.tables.paid_at = f.column_names()?.iter().any(|n| n == "paid_at");
        }
        // The tables only need the customer index, so they are read side by side; the
        // first error in table order is the one reported, whatever the timing.
        let reader = &ds;
        let (attributes, tickets, payments, surveys, catalog) = std::thread::scope(|scope| {
            let attributes = scope
                .spawn(|| customers.map(|f| reader.read_attributes(&f, numeric_text_attributes)));
            let tickets = scope.spawn(|| tickets.map(|f| reader.read_tickets(&f)));
            let payments = scope.spawn(|| payments.map(|f| reader.read_payments(&f)));
            let surveys = scope.spawn(|| surveys.map(|f| reader.read_surveys(&f)));
            let catalog = catalog.map(|f| load_catalog(&f));
            let done = "the table readers do not panic";
            (
                attributes.join().expect(done),
                tickets.join().expect(done),
                payments.join().expect(done),
                surveys.join().expect(done),
                catalog,
            )
        });
        if let Some(read) = attributes {
            let (attributes, orphans) = read?;
            ds.attributes = attributes;
            ds.add_orphans(orphans);
        }
        if let Some(read) = tickets {
            ds.attach(read?, |c, t| c.tickets.push(t));
        }
        if let Some(read) = payments {
            ds.attach(read?, |c, p| c.payments.push(p));
        }
        if let Some(read) = surveys {
            ds.attach(read?, |c, s| c.surveys.push(s));
        }
        ds.catalog = catalog.transpose()?;
        ds.sort();
        Ok(ds)
    }

    /// Builds a dataset from in-memory customers (tests), with every small table
    /// present and no events file.
    pub fn from_customers(customers: Vec<Customer>) -> Dataset {
        let index = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i as u32))
            .collect();
        let mut ds = Dataset {
            dir: PathBuf::new(),
            customers,
            index,
            attributes: Vec::new(),
            catalog: None,
            events: None,
            event_span: None,
            orphans: Vec::new(),
            tables: Present {
                events: false,
                ..Present::ALL
            },
        };
        ds.sort();
        ds
    }

    /// Puts every per-customer list in a canonical order, so results never depend on
    /// the order of rows in the input files.
    fn sort(&mut self) {
        for c in &mut self.customers {
            c.subscriptions.sort_by(|a, b| {
                (a.start, a.end.unwrap_or(Day::MAX), &a.plan)
                    .cmp(&(b.start, b.end.unwrap_or(Day::MAX), &b.plan))
                    .then(a.mrr.total_cmp(&b.mrr))
            });
            c.tickets.sort_by(|a, b| {
                (a.opened, a.closed, a.first_response, &a.priority)
                    .cmp(&(b.opened, b.closed, b.first_response, &b.priority))
                    .then(cmp_opt(a.satisfaction, b.satisfaction))
            });
            c.payments.sort_by(|a, b| {
                (a.due, a.paid, a.status)
                    .cmp(&(b.due, b.paid, b.status))
                    .then(cmp_opt(a.amount, b.amount))
            });
            c.surveys.sort_by(|a, b| {
                a.answered
                    .cmp(&b.answered)
                    .then(cmp_opt(a.nps, b.nps))
                    .then(cmp_opt(a.csat, b.csat))
            });
        }
    }

    /// A warning when `as_of` is outside the span the data covers: features would then
    /// read missing history or a stopped feed as customer behaviour. It says where each
    /// table starts and ends.
    pub fn as_of_warning(&self, as_of: Day) -> Option<String> {
        let spans = self.table_spans();
        let (first, end) = range_of(&spans);
        (as_of < first || as_of > end).then(|| {
            let spans: Vec<String> = spans
                .iter()
                .map(|(t, a, b)| {
                    format!(
                        "{t} {} to {}",
                        crate::time::format_date(*a),
                        crate::time::format_date(*b)
                    )
                })
                .collect();
            format!(
                "as-of {} is outside the data, which spans {} to {} ({}): activity features will read the gap as inactivity",
                crate::time::format_date(as_of),
                crate::time::format_date(first),
                crate::time::format_date(end - 1),
                spans.join(", ")
            )
        })
    }

    /// The first and last day of each table with rows: subscriptions (starts and the
    /// last day before an end), payments (due and paid), tickets and surveys, and
    /// events (a Parquet file's statistics, else its timestamps read).
    pub fn table_spans(&self) -> Vec<(&'static str, Day, Day)> {
        use crate::time::day_of;
        let mut spans: Vec<(&'static str, Day, Day)> = Vec::new();
        let mut see = |table: &'static str, d: Day| match spans.iter_mut().find(|s| s.0 == table) {
            Some(s) => {
                s.1 = s.1.min(d);
                s.2 = s.2.max(d);
            }
            None => spans.push((table, d, d)),
        };
        for c in &self.customers {
            for s in &c.subscriptions {
                see("subscriptions", s.start);
                if let Some(e) = s.end {
                    see("subscriptions", e - 1);
                }
            }
            for p in &c.payments {
                see("payments", p.due);
                if let Some(t) = p.paid {
                    see("payments", day_of(t));
                }
            }
            for t in &c.tickets {
                see("tickets", day_of(t.opened));
            }
            for s in &c.surveys {
                see("surveys", day_of(s.answered));
            }
        }
        if let Some((a, b)) = self.event_span {
            spans.push(("events", day_of(a), day_of(b)));
        }
        spans
    }

    /// The span the data covers: the first day with activity (events, payments, tickets
    /// or surveys; the first signup when there are none) and the day after the latest
    /// date in any table.
    pub fn date_range(&self) -> (Day, Day) {
        range_of(&self.table_spans())
    }

    /// The index of customer `id`.
    pub fn customer(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    fn load_subscriptions(&mut self, file: &TableFile) -> Result<()> {
        file.for_each_batch(&column_names(file.spec), |b| {
            let id = b.required("customer_id")?;
            let start = b.required("start_date")?;
            let end = b.required("end_date")?;
            let mrr = b.required("mrr")?;
            let plan = b.required("plan")?;
            let reason = b.column("cancel_reason")?;
            for i in 0..b.len() {
                let cid = id.filled(i, id.text(i), ColumnType::Text)?;
                let s = start.filled(i, start.date(i)?, ColumnType::Date)?;
                let e = end.date(i)?;
                if let Some(e) = e {
                    if e < s {
                        return Err(end.bad(
                            i,
                            "an end_date on or after start_date",
                            crate::time::format_date(e),
                        ));
                    }
                }
                let m = mrr.filled(i, mrr.number(i)?, ColumnType::Number)?;
                if m < 0.0 {
                    return Err(mrr.bad(i, "a non-negative number", m));
                }
                let p = plan.filled(i, plan.text(i), ColumnType::Text)?;
                let next = self.customers.len() as u32;
                let idx = *self.index.entry(cid.clone()).or_insert(next);
                if idx == next {
                    self.customers.push(Customer {
                        id: cid,
                        ..Default::default()
                    });
                }
                self.customers[idx as usize]
                    .subscriptions
                    .push(Subscription {
                        start: s,
                        end: e,
                        mrr: m,
                        plan: p,
                        cancel_reason: reason
                            .as_ref()
                            .and_then(|r| r.text(i))
                            .filter(|t| !t.is_empty()),
                    });
            }
            Ok(())
        })
    }

    /// Reads a per-customer table batch by batch: `rows` resolves the batch's columns
    /// once and returns a parser of one row; ids are resolved here and rows of unknown
    /// customers are collected as orphans.
    fn read_rows<T>(
        &self,
        file: &TableFile,
        rows: impl for<'b> Fn(&'b Batch<'b>) -> Result<RowParser<'b, T>>,
    ) -> Result<Rows<T>> {
        let mut orphans = Orphans::new(file.spec.name);
        let mut found = Vec::new();
        file.for_each_batch(&column_names(file.spec), |b| {
            let id = b.required("customer_id")?;
            let parse = rows(b)?;
            for i in 0..b.len() {
                let cid = id.filled(i, id.text_ref(i), ColumnType::Text)?;
                let row = parse(i)?;
                match self.index.get(cid.as_ref()) {
                    Some(&idx) => found.push((idx, row)),
                    None => orphans.add(&cid),
                }
            }
            Ok(())
        })?;
        Ok((found, orphans))
    }

    /// Adds rows read by [`read_rows`](Dataset::read_rows) to their customers.
    fn attach<T>(&mut self, (rows, orphans): Rows<T>, push: impl Fn(&mut Customer, T)) {
        for (idx, row) in rows {
            push(&mut self.customers[idx as usize], row);
        }
        self.add_orphans(orphans);
    }

    fn add_orphans(&mut self, orphans: Orphans) {
        if orphans.rows > 0 {
            self.orphans.push(orphans);
        }
    }

    fn read_tickets(&self, file: &TableFile) -> Result<Rows<Ticket>> {
        self.read_rows(file, |b| {
            let opened = b.required("opened_at")?;
            let closed = b.column("closed_at")?;
            let first_response = b.column("first_response_at")?;
            let priority = b.column("priority")?;
            let satisfaction = b.column("satisfaction")?;
            Ok(Box::new(move |i| {
                let o = opened.filled(i, opened.timestamp(i)?, ColumnType::Timestamp)?;
                Ok(Ticket {
                    opened: o,
                    closed: not_before(closed.as_ref(), i, o)?,
                    first_response: not_before(first_response.as_ref(), i, o)?,
                    priority: priority.as_ref().and_then(|c| c.text(i)),
                    satisfaction: in_range(satisfaction.as_ref(), i, 1.0, 5.0)?,
                })
            }))
        })
    }

    fn read_payments(&self, file: &TableFile) -> Result<Rows<Payment>> {
        self.read_rows(file, |b| {
            let due = b.required("due_date")?;
            let status = b.required("status")?;
            let paid = b.column("paid_at")?;
            let amount = b.column("amount")?;
            Ok(Box::new(move |i| {
                let s = status.filled(i, status.text(i), ColumnType::Text)?;
                let status_value = PaymentStatus::parse(&s)
                    .ok_or_else(|| status.bad(i, "one of paid, late, failed, refunded", &s))?;
                Ok(Payment {
                    due: due.filled(i, due.date(i)?, ColumnType::Date)?,
                    paid: match &paid {
                        Some(c) => c.timestamp(i)?,
                        None => None,
                    },
                    amount: match &amount {
                        Some(c) => c.number(i)?,
                        None => None,
                    },
                    status: status_value,
                })
            }))
        })
    }

    fn read_surveys(&self, file: &TableFile) -> Result<Rows<Survey>> {
        self.read_rows(file, |b| {
            let at = b.required("answered_at")?;
            let nps = b.column("nps")?;
            let csat = b.column("csat")?;
            Ok(Box::new(move |i| {
                Ok(Survey {
                    answered: at.filled(i, at.timestamp(i)?, ColumnType::Timestamp)?,
                    nps: in_range(nps.as_ref(), i, 0.0, 10.0)?,
                    csat: in_range(csat.as_ref(), i, 1.0, 10.0)?,
                })
            }))
        })
    }

    fn read_attributes(
        &self,
        file: &TableFile,
        numeric_text_attributes: &BTreeMap<String, bool>,
    ) -> Result<(Vec<Attribute>, Orphans)> {
        let names = file.check_columns()?;
        let attr_names: Vec<String> = names.into_iter().filter(|n| n != "customer_id").collect();
        let wanted: Vec<&str> = std::iter::once("customer_id")
            .chain(attr_names.iter().map(String::as_str))
            .collect();
        let n = self.customers.len();
        // Collect raw cells first: whether a CSV column is numeric is only known once
        // every value has been seen.
        let mut raw: Vec<Vec<Option<String>>> = vec![vec![None; n]; attr_names.len()];
        let mut numeric_typed: Vec<Option<Vec<Option<f64>>>> = vec![None; attr_names.len()];
        let mut seen = vec![false; n];
        let mut orphans = Orphans::new("customers");
        file.for_each_batch(&wanted, |b| {
            let id = b.required("customer_id")?;
            let columns: Vec<_> = attr_names
                .iter()
                .map(|a| b.required(a))
                .collect::<Result<_>>()?;
            for i in 0..b.len() {
                let cid = id.filled(i, id.text(i), ColumnType::Text)?;
                let Some(&idx) = self.index.get(&cid) else {
                    orphans.add(&cid);
                    continue;
                };
                let idx = idx as usize;
                if std::mem::replace(&mut seen[idx], true) {
                    return Err(id.bad(
                        i,
                        "one row per customer",
                        format!("a second row for {cid}"),
                    ));
                }
                for (k, c) in columns.iter().enumerate() {
                    if c.is_text() {
                        raw[k][idx] = c.text(i);
                    } else {
                        numeric_typed[k].get_or_insert_with(|| vec![None; n])[idx] = c.number(i)?;
                    }
                }
            }
            Ok(())
        })?;
        let attributes = attr_names
            .into_iter()
            .enumerate()
            .map(|(k, name)| {
                let (values, text) = match numeric_typed[k].take() {
                    Some(v) => (Values::Numeric(v), false),
                    None => {
                        let forced = numeric_text_attributes.get(&name).copied();
                        (infer_attribute(std::mem::take(&mut raw[k]), forced), true)
                    }
                };
                Attribute { name, values, text }
            })
            .collect();
        Ok((attributes, orphans))
    }

    /// Streams the events table in batches with ids resolved through `vocab`. Rows of
    /// unknown customers are counted in the returned [`Orphans`], never silently dropped.
    ///
    /// Decoding (Parquet or CSV, parsing, id look-ups) runs on decoder threads (one per
    /// core for a Parquet file, sharing its row groups; one for CSV) while `visit` runs on
    /// the caller's, a few batches apart through a bounded channel, so memory stays
    /// bounded. Batches arrive in no particular order; consumers must not depend on it
    /// (the feature scan does not).
    pub fn for_each_event_batch(
        &self,
        vocab: &mut Vocabulary,
        visit: impl FnMut(&EventBatch) -> Result<()>,
    ) -> Result<Orphans> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.for_each_event_batch_with(threads, vocab, visit)
    }

    /// [`for_each_event_batch`](Dataset::for_each_event_batch) with `decoders` decoder
    /// threads (at most one per Parquet row group).
    pub fn for_each_event_batch_with(
        &self,
        decoders: usize,
        vocab: &mut Vocabulary,
        mut visit: impl FnMut(&EventBatch) -> Result<()>,
    ) -> Result<Orphans> {
        let Some(file) = &self.events else {
            return Ok(Orphans::new("events"));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Decoded>(4 * decoders.max(1));
        let (decoded, visited) = std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                file.for_each_batch_parallel(
                    &column_names(file.spec),
                    &["customer_id", "event_type", "feature"],
                    decoders,
                    |thread| EventDecoder::new(thread, tx.clone()),
                    |decoder, part, b| {
                        let decoded = self.decode_events(b, decoder, part)?;
                        decoder.tx.send(decoded).map_err(|_| DataError::Malformed {
                            file: file.path.clone(),
                            message: "reading stopped".into(),
                        })
                    },
                )
                // Dropping the decoders' senders (and `tx`) ends the receiving loop.
                .map(|decoders| {
                    decoders
                        .into_iter()
                        .flat_map(|d| d.orphans)
                        .collect::<Vec<_>>()
                })
            });
            // Each decoder interns names on its own; map its ids onto `vocab`'s here.
            let mut type_ids: Vec<Vec<u32>> = Vec::new();
            let mut feature_ids: Vec<Vec<u32>> = Vec::new();
            let mut visited = Ok(());
            for mut d in rx.iter() {
                if type_ids.len() <= d.decoder {
                    type_ids.resize(d.decoder + 1, Vec::new());
                    feature_ids.resize(d.decoder + 1, Vec::new());
                }
                let types = &mut type_ids[d.decoder];
                types.extend(
                    d.new_event_types
                        .iter()
                        .map(|n| vocab.event_types.intern(n)),
                );
                let features = &mut feature_ids[d.decoder];
                features.extend(d.new_features.iter().map(|n| vocab.features.intern(n)));
                for k in &mut d.events.kind {
                    *k = types[*k as usize];
                }
                for f in &mut d.events.feature {
                    if *f != NO_FEATURE {
                        *f = features[*f as usize];
                    }
                }
                if let Err(e) = visit(&d.events) {
                    visited = Err(e);
                    break;
                }
            }
            drop(rx);
            let decoded = producer.join().expect("the event decoders do not panic");
            (decoded, visited)
        });
        visited?;
        let mut parts = decoded?;
        parts.sort_by_key(|(part, _)| *part);
        let mut orphans = Orphans::new("events");
        for (_, o) in parts {
            orphans.rows += o.rows;
            for id in o.first_ids {
                if orphans.first_ids.len() < 5 && !orphans.first_ids.contains(&id) {
                    orphans.first_ids.push(id);
                }
            }
        }
        Ok(orphans)
    }

    /// Converts one batch of the events table.
    fn decode_events(&self, b: &Batch, d: &mut EventDecoder, part: usize) -> Result<Decoded> {
        let id = b.required("customer_id")?;
        let ts = b.required("timestamp")?;
        let kind = b.required("event_type")?;
        let value = b.column("value")?;
        let feature = b.column("feature")?;
        let (sent_types, sent_features) = (d.vocab.event_types.len(), d.vocab.features.len());
        if d.orphans.last().is_none_or(|(p, _)| *p != part) {
            d.orphans.push((part, Orphans::new("events")));
        }
        let orphans = &mut d.orphans.last_mut().expect("pushed above").1;
        let index = &self.index;
        let customers = d.customers.of(&id, |s| index.get(s).copied());
        let vocab = &mut d.vocab;
        let types = d.types.of(&kind, |s| vocab.event_types.intern(s));
        let features = match &feature {
            Some(c) => d.features.of(c, |s| vocab.features.intern(s)),
            None => None,
        };
        let n = b.len();
        let mut out = EventBatch::with_capacity(n);
        for i in 0..n {
            if id.is_null(i) {
                return Err(id.bad(i, "a customer id (the column is required)", ""));
            }
            let customer = match customers {
                Some((keys, found)) => found[keys[i]],
                None => d.last.find(index, &id, i),
            };
            let t = ts.filled(i, ts.timestamp(i)?, ColumnType::Timestamp)?;
            if kind.is_null(i) {
                return Err(kind.bad(i, "an event type (the column is required)", ""));
            }
            let k = match types {
                Some((keys, ids)) => ids[keys[i]],
                None => vocab
                    .event_types
                    .intern(&kind.text_ref(i).unwrap_or_default()),
            };
            let v = match &value {
                Some(c) => c.number(i)?,
                None => None,
            };
            let Some(c) = customer else {
                orphans.add(&id.text_ref(i).unwrap_or_default());
                continue;
            };
            let f = match (&feature, features) {
                (Some(col), _) if col.is_null(i) => NO_FEATURE,
                (Some(_), Some((keys, ids))) => ids[keys[i]],
                (Some(col), None) => vocab.features.intern(&col.text_ref(i).unwrap_or_default()),
                (None, _) => NO_FEATURE,
            };
            out.customer.push(c);
            out.ts.push(t);
            out.kind.push(k);
            out.value.push(v.unwrap_or(f64::NAN));
            out.feature.push(f);
        }
        let names = |interner: &Interner, from: usize| -> Vec<String> {
            (from..interner.len())
                .map(|k| interner.name(k as u32).to_string())
                .collect()
        };
        Ok(Decoded {
            decoder: d.thread,
            new_event_types: names(&vocab.event_types, sent_types),
            new_features: names(&vocab.features, sent_features),
            events: out,
        })
    }
}

/// One decoder thread's state while streaming the events table.
struct EventDecoder {
    thread: usize,
    tx: std::sync::mpsc::SyncSender<Decoded>,
    /// Names interned by this decoder; its ids are mapped onto the caller's on receipt.
    vocab: Vocabulary,
    customers: read::PerValue<Option<u32>>,
    types: read::PerValue<u32>,
    features: read::PerValue<u32>,
    /// The customer of the previous row, for text columns without a dictionary (events
    /// usually come grouped by customer).
    last: LastCustomer,
    /// Orphans by part (row group), merged in file order at the end.
    orphans: Vec<(usize, Orphans)>,
}

impl EventDecoder {
    fn new(thread: usize, tx: std::sync::mpsc::SyncSender<Decoded>) -> Self {
        EventDecoder {
            thread,
            tx,
            vocab: Vocabulary::default(),
            customers: Default::default(),
            types: Default::default(),
            features: Default::default(),
            last: LastCustomer::default(),
            orphans: Vec::new(),
        }
    }
}

/// A one-entry cache of customer look-ups by id.
#[derive(Default)]
struct LastCustomer {
    id: Option<String>,
    index: Option<u32>,
}

impl LastCustomer {
    fn find(&mut self, index: &HashMap<String, u32>, id: &read::Column, i: usize) -> Option<u32> {
        let text = id.text_ref(i).unwrap_or_default();
        let text = text.as_ref();
        if self.id.as_deref() != Some(text) {
            let last = self.id.get_or_insert_with(String::new);
            last.clear();
            last.push_str(text);
            self.index = index.get(text).copied();
        }
        self.index
    }
}

/// A decoded batch of events with the names its decoder interned since its last batch.
struct Decoded {
    decoder: usize,
    new_event_types: Vec<String>,
    new_features: Vec<String>,
    events: EventBatch,
}

/// The span of [`Dataset::table_spans`]: see [`Dataset::date_range`].
pub(crate) fn range_of<S: AsRef<str>>(spans: &[(S, Day, Day)]) -> (Day, Day) {
    let activity = spans
        .iter()
        .filter(|s| s.0.as_ref() != "subscriptions")
        .map(|s| s.1)
        .min();
    let first = activity.unwrap_or_else(|| {
        spans
            .iter()
            .find(|s| s.0.as_ref() == "subscriptions")
            .map_or(0, |s| s.1)
    });
    let last = spans.iter().map(|s| s.2).max().unwrap_or(first);
    (first, last.max(first) + 1)
}

fn cmp_opt(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (x, y) => x.is_some().cmp(&y.is_some()),
    }
}

/// An optional timestamp column's cell, which may not be before `not_before`.
fn not_before(c: Option<&read::Column>, i: usize, not_before: Ts) -> Result<Option<Ts>> {
    let Some(c) = c else {
        return Ok(None);
    };
    match c.timestamp(i)? {
        Some(t) if t < not_before => Err(c.bad(
            i,
            "a time on or after opened_at",
            crate::time::format_timestamp(t),
        )),
        v => Ok(v),
    }
}

/// An optional numeric column's cell, which must lie in `lo..=hi`.
fn in_range(c: Option<&read::Column>, i: usize, lo: f64, hi: f64) -> Result<Option<f64>> {
    let Some(c) = c else {
        return Ok(None);
    };
    match c.number(i)? {
        Some(v) if !(lo..=hi).contains(&v) => {
            Err(c.bad(i, &format!("a number from {lo} to {hi}"), v))
        }
        v => Ok(v),
    }
}

/// A text attribute value as a number, when it is one (true/yes and false/no are 1 and 0).
pub fn attribute_number(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(1.0),
        "false" | "no" => Some(0.0),
        other => other.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// A text attribute's values: numeric when there are values and all are numbers, unless
/// `forced` says which.
fn infer_attribute(raw: Vec<Option<String>>, forced: Option<bool>) -> Values {
    let as_number = attribute_number;
    let numeric = forced.unwrap_or_else(|| {
        raw.iter().any(Option::is_some) && raw.iter().flatten().all(|s| as_number(s).is_some())
    });
    if numeric {
        Values::Numeric(
            raw.iter()
                .map(|v| v.as_deref().and_then(as_number))
                .collect(),
        )
    } else {
        Values::Categorical(raw)
    }
}

fn load_catalog(file: &TableFile) -> Result<Catalog> {
    let mut catalog = Catalog::default();
    file.for_each_batch(&["feature", "group"], |b| {
        let f = b.required("feature")?;
        let g = b.required("group")?;
        for i in 0..b.len() {
            let name = f.filled(i, f.text(i), ColumnType::Text)?;
            if catalog.features.iter().any(|(n, _)| *n == name) {
                return Err(f.bad(i, "each feature once", name));
            }
            catalog
                .features
                .push((name, g.filled(i, g.text(i), ColumnType::Text)?));
        }
        Ok(())
    })?;
    Ok(catalog)
}

/// Rows of a per-customer table with their customers' indices, and the orphans.
type Rows<T> = (Vec<(u32, T)>, Orphans);

/// Parses row `i` of a batch whose columns were resolved once.
type RowParser<'b, T> = Box<dyn Fn(usize) -> Result<T> + 'b>;

/// Marks an event without a product feature.
pub const NO_FEATURE: u32 = u32::MAX;

/// Dense ids for strings seen while streaming (event types, feature names).
#[derive(Debug, Clone, Default)]
pub struct Interner {
    map: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.map.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.map.insert(name.to_string(), id);
        self.names.push(name.to_string());
        id
    }

    /// The id of `name`, if seen.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.map.get(name).copied()
    }

    /// The name of `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing has been interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Interned event types and feature names of one scan.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub event_types: Interner,
    pub features: Interner,
}

/// A batch of events in columns, ids resolved.
#[derive(Debug, Clone, Default)]
pub struct EventBatch {
    pub customer: Vec<u32>,
    pub ts: Vec<Ts>,
    pub kind: Vec<u32>,
    /// `NaN` when the event has no value.
    pub value: Vec<f64>,
    /// [`NO_FEATURE`] when the event names no feature.
    pub feature: Vec<u32>,
}

impl EventBatch {
    fn with_capacity(n: usize) -> Self {
        EventBatch {
            customer: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            value: Vec::with_capacity(n),
            feature: Vec::with_capacity(n),
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }
}
