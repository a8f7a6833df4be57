//! The scored rows' destination (a streamed file, or the top-N worklist), the rejects
//! file and the closing summary.

use anyhow::{anyhow, Result};
use arrow_array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray, UInt8Array};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use churn_features::features::FeatureTable;
use churn_features::rules::{self, RuleInputs, RuleResult, RulesConfig, SignalKind, COMPONENTS};
use churn_features::time::Day;
use churn_features::write::TableWriter;
use churn_scoring::{Cell, RiskBand, Scored, Scorer};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The values of one output row other than its two texts (id and reasons): `Copy`, so
/// scoring a row allocates nothing.
#[derive(Debug, Clone, Copy)]
struct RowScore {
    as_of: Option<Day>,
    probability: f64,
    risk_band: RiskBand,
    revenue_at_risk: Option<f64>,
    expected_lifetime_months: Option<f64>,
    clv: Option<f64>,
    clv_at_risk: Option<f64>,
    health_score: Option<f64>,
    health_band: Option<&'static str>,
    /// The signals that fired, one bit per [`SignalKind::ALL`] entry.
    signals: Option<u8>,
    intervention: Option<&'static str>,
    segment: Option<&'static str>,
}

/// One output row, owned: what the top-N worklist keeps and sorts.
#[derive(Debug, Clone)]
pub struct OutRow {
    score: RowScore,
    customer_id: String,
    top_reasons: String,
}

/// A text column being built: every row's text back to back, and where each ends.
#[derive(Debug, Default)]
struct Texts {
    data: String,
    ends: Vec<usize>,
}

impl Texts {
    fn with_capacity(rows: usize, bytes: usize) -> Texts {
        Texts {
            data: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    /// Ends the row whose text was written into `data`.
    fn end_row(&mut self) {
        self.ends.push(self.data.len());
    }

    fn push(&mut self, text: &str) {
        self.data.push_str(text);
        self.end_row();
    }

    fn get(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.data[start..self.ends[row]]
    }

    fn append(&mut self, other: Texts) {
        let base = self.data.len();
        self.data.push_str(&other.data);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    fn into_array(self) -> Result<ArrayRef> {
        let too_long = || anyhow!("a batch's text column is over 2 GB: use smaller input batches");
        let mut offsets = Vec::with_capacity(self.ends.len() + 1);
        offsets.push(0i32);
        for &e in &self.ends {
            offsets.push(i32::try_from(e).map_err(|_| too_long())?);
        }
        let array = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from(self.data.into_bytes()),
            None,
        )?;
        Ok(Arc::new(array))
    }
}

/// The output's float columns from `revenue_at_risk` to `health_score`, in order.
const NUMBERS: usize = 5;
/// `revenue_at_risk`'s place among [`Scores::numbers`] (the summary adds it up).
const REVENUE_AT_RISK: usize = 0;

/// Scored rows as output columns under construction, one vector per column: rows are
/// added one at a time (in parallel, a chunk each) without an allocation per row,
/// chunks are appended in row order, and each column becomes its Arrow array in one
/// pass over its own values (a vector of whole rows was read once per column: 14
/// passes over some 160 bytes a row).
#[derive(Debug, Default)]
pub struct Scores {
    as_of: Vec<Option<Day>>,
    probability: Vec<f64>,
    risk_band: Vec<RiskBand>,
    /// `revenue_at_risk`, `expected_lifetime_months`, `clv`, `clv_at_risk`,
    /// `health_score`.
    numbers: [Vec<Option<f64>>; NUMBERS],
    health_band: Vec<Option<&'static str>>,
    /// The signals that fired, one bit per [`SignalKind::ALL`] entry.
    signals: Vec<Option<u8>>,
    intervention: Vec<Option<&'static str>>,
    segment: Vec<Option<&'static str>>,
    ids: Texts,
    reasons: Texts,
}

impl Scores {
    /// Room for `rows` rows with `reasons` reasons each.
    pub fn with_capacity(rows: usize, reasons: usize) -> Scores {
        Scores {
            as_of: Vec::with_capacity(rows),
            probability: Vec::with_capacity(rows),
            risk_band: Vec::with_capacity(rows),
            numbers: std::array::from_fn(|_| Vec::with_capacity(rows)),
            health_band: Vec::with_capacity(rows),
            signals: Vec::with_capacity(rows),
            intervention: Vec::with_capacity(rows),
            segment: Vec::with_capacity(rows),
            ids: Texts::with_capacity(rows, 12 * rows),
            reasons: Texts::with_capacity(rows, 40 * reasons * rows),
        }
    }

    /// How many rows these are.
    fn len(&self) -> usize {
        self.probability.len()
    }

    /// Adds a scored customer; `cell(position)` gives the values of reasons.
    pub fn push<'a>(
        &mut self,
        scorer: &Scorer,
        customer_id: &str,
        as_of: Option<Day>,
        s: &Scored,
        cell: impl Fn(usize) -> Cell<'a>,
    ) {
        let schema = scorer.schema();
        let out = &mut self.reasons.data;
        for (k, reason) in s.model.reasons.iter().enumerate() {
            if k > 0 {
                out.push_str("; ");
            }
            out.push_str(&schema[reason.feature].name);
            out.push('=');
            match cell(reason.feature) {
                Cell::Number(v) => push_number(out, v),
                Cell::Text(t) => out.push_str(t),
                Cell::Missing => out.push_str("missing"),
            }
            out.push_str(" (+");
            push_fixed3(out, reason.contribution);
            out.push(')');
        }
        self.reasons.end_row();
        self.ids.push(customer_id);
        let rules = s.rules.as_ref();
        self.push_score(RowScore {
            as_of,
            probability: s.model.probability,
            risk_band: s.model.risk_band,
            revenue_at_risk: s.model.revenue_at_risk,
            expected_lifetime_months: s.model.expected_lifetime_months(),
            clv: s.model.clv(),
            clv_at_risk: s.model.clv_at_risk(),
            health_score: rules.and_then(|r| r.health).map(|h| h.score),
            health_band: rules.and_then(|r| r.health).map(|h| h.band.as_str()),
            signals: rules.map(signal_mask),
            intervention: rules.map(|r| r.intervention.as_str()),
            segment: rules.map(|r| r.segment.as_str()),
        });
    }

    /// Adds a row's values other than its two texts, column by column.
    fn push_score(&mut self, r: RowScore) {
        self.as_of.push(r.as_of);
        self.probability.push(r.probability);
        self.risk_band.push(r.risk_band);
        let numbers = [
            r.revenue_at_risk,
            r.expected_lifetime_months,
            r.clv,
            r.clv_at_risk,
            r.health_score,
        ];
        for (column, v) in self.numbers.iter_mut().zip(numbers) {
            column.push(v);
        }
        self.health_band.push(r.health_band);
        self.signals.push(r.signals);
        self.intervention.push(r.intervention);
        self.segment.push(r.segment);
    }

    /// Row `i`'s values other than its two texts.
    fn score(&self, i: usize) -> RowScore {
        let [revenue_at_risk, expected_lifetime_months, clv, clv_at_risk, health_score] =
            self.numbers.each_ref().map(|column| column[i]);
        RowScore {
            as_of: self.as_of[i],
            probability: self.probability[i],
            risk_band: self.risk_band[i],
            revenue_at_risk,
            expected_lifetime_months,
            clv,
            clv_at_risk,
            health_score,
            health_band: self.health_band[i],
            signals: self.signals[i],
            intervention: self.intervention[i],
            segment: self.segment[i],
        }
    }

    /// Adds the rows of `other` after these.
    pub fn append(&mut self, other: Scores) {
        self.as_of.extend(other.as_of);
        self.probability.extend(other.probability);
        self.risk_band.extend(other.risk_band);
        for (column, more) in self.numbers.iter_mut().zip(other.numbers) {
            column.extend(more);
        }
        self.health_band.extend(other.health_band);
        self.signals.extend(other.signals);
        self.intervention.extend(other.intervention);
        self.segment.extend(other.segment);
        self.ids.append(other.ids);
        self.reasons.append(other.reasons);
    }

    /// The rows, owned (for the top-N worklist).
    fn into_rows(self) -> Vec<OutRow> {
        (0..self.len())
            .map(|i| OutRow {
                score: self.score(i),
                customer_id: self.ids.get(i).to_string(),
                top_reasons: self.reasons.get(i).to_string(),
            })
            .collect()
    }

    fn from_rows(rows: &[OutRow]) -> Scores {
        let mut scores = Scores::with_capacity(rows.len(), 0);
        for r in rows {
            scores.push_score(r.score);
            scores.ids.push(&r.customer_id);
            scores.reasons.push(&r.top_reasons);
        }
        scores
    }

    fn batch(self, schema: &SchemaRef, name: &str, version: &str) -> Result<RecordBatch> {
        let n = self.len();
        let strings = |column: &[Option<&str>]| -> ArrayRef {
            Arc::new(column.iter().copied().collect::<StringArray>())
        };
        let mut arrays: Vec<ArrayRef> = vec![
            self.ids.into_array()?,
            Arc::new(self.as_of.into_iter().collect::<Date32Array>()),
            Arc::new(Float64Array::from(self.probability)),
            Arc::new(StringArray::from_iter_values(
                self.risk_band.iter().map(|b| b.as_str()),
            )),
        ];
        arrays.extend(
            self.numbers
                .iter()
                .map(|column| Arc::new(column.iter().copied().collect::<Float64Array>()) as _),
        );
        let signals: Vec<Option<&str>> = self
            .signals
            .iter()
            .map(|mask| mask.map(signals_text))
            .collect();
        arrays.extend([
            strings(&self.health_band),
            strings(&signals),
            strings(&self.intervention),
            strings(&self.segment),
            self.reasons.into_array()?,
            Arc::new(StringArray::from(vec![name; n])),
            Arc::new(StringArray::from(vec![version; n])),
        ]);
        Ok(RecordBatch::try_new(schema.clone(), arrays)?)
    }
}

/// The signals that fired, one bit per [`SignalKind::ALL`] entry.
fn signal_mask(r: &RuleResult) -> u8 {
    r.signals
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_some())
        .fold(0, |mask, (k, _)| mask | 1 << k)
}

/// The signals of a [`signal_mask`], comma-separated (the `signals` column), from the
/// 32 texts made once.
fn signals_text(mask: u8) -> &'static str {
    static TEXTS: std::sync::OnceLock<[String; 32]> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| {
        std::array::from_fn(|mask| {
            SignalKind::ALL
                .iter()
                .enumerate()
                .filter(|(k, _)| mask & (1 << k) != 0)
                .map(|(_, s)| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
    })[usize::from(mask)]
    .as_str()
}

/// The playbook alone on feature rows, as Arrow batches: `customer_id`, `as_of`, the
/// health score, its band and its five components, the signals that fired (as in the
/// worklist's `signals`) and their count, the intervention and why, the segment and the
/// loyalty tier. Rule inputs missing from the table read as no data.
pub fn rules_table(
    table: &FeatureTable,
    cfg: &RulesConfig,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let utf8 = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let float = |n: &str| Field::new(n, DataType::Float64, true);
    let mut fields = vec![
        utf8("customer_id", false),
        Field::new("as_of", DataType::Date32, true),
        float("health_score"),
        utf8("health_band", true),
    ];
    fields.extend(COMPONENTS.iter().map(|c| float(&format!("health_{c}"))));
    fields.extend([
        utf8("signals", false),
        Field::new("signal_count", DataType::UInt8, false),
        utf8("intervention", false),
        utf8("intervention_reason", false),
        utf8("segment", false),
        utf8("loyalty_tier", false),
    ]);
    let schema = Arc::new(Schema::new(fields));
    let inputs = RuleInputs::of_table(table);
    let results: Vec<RuleResult> = (0..table.len())
        .map(|row| rules::score(&inputs(row), cfg))
        .collect();
    let mut batches = Vec::new();
    let step = churn_features::read::BATCH_ROWS;
    for from in (0..table.len()).step_by(step) {
        let to = (from + step).min(table.len());
        let r = &results[from..to];
        let strings = |f: &dyn Fn(&RuleResult) -> Option<&str>| -> ArrayRef {
            Arc::new(r.iter().map(f).collect::<StringArray>())
        };
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&table.customer_ids[from..to])),
            Arc::new(Date32Array::from(table.as_of[from..to].to_vec())),
            Arc::new(
                r.iter()
                    .map(|x| x.health.map(|h| h.score))
                    .collect::<Float64Array>(),
            ),
            strings(&|x| x.health.map(|h| h.band.as_str())),
        ];
        for c in 0..COMPONENTS.len() {
            arrays.push(Arc::new(
                r.iter()
                    .map(|x| x.health.and_then(|h| h.components[c]))
                    .collect::<Float64Array>(),
            ));
        }
        arrays.push(Arc::new(
            r.iter()
                .map(|x| Some(signals_text(signal_mask(x))))
                .collect::<StringArray>(),
        ));
        arrays.push(Arc::new(
            r.iter()
                .map(|x| Some(x.signal_count() as u8))
                .collect::<UInt8Array>(),
        ));
        arrays.push(strings(&|x| Some(x.intervention.as_str())));
        arrays.push(strings(&|x| Some(x.intervention_reason.describe())));
        arrays.push(strings(&|x| Some(x.segment.as_str())));
        arrays.push(strings(&|x| Some(x.loyalty_tier.as_str())));
        batches.push(RecordBatch::try_new(schema.clone(), arrays)?);
    }
    Ok((schema, batches))
}

/// A value as it reads: whole numbers without a fraction (most counts), the rest in
/// Rust's shortest round-trip form. Formatting is a quarter of the batch's CPU time
/// otherwise.
fn push_number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `v` (>= 0) with three decimals, by integer arithmetic.
fn push_fixed3(out: &mut String, v: f64) {
    let m = (v * 1000.0).round() as i64;
    if m < 0 {
        // Not a reason's contribution (those are positive): the general form.
        let _ = write!(out, "{}.{:03}", m / 1000, m % 1000);
        return;
    }
    out.push_str(itoa::Buffer::new().format(m / 1000));
    let thousandths = (m % 1000) as u16;
    out.push('.');
    for digit in [thousandths / 100, thousandths / 10 % 10, thousandths % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
}

/// The output columns.
pub fn schema() -> SchemaRef {
    let utf8 = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        utf8("customer_id", false),
        Field::new("as_of", DataType::Date32, true),
        Field::new("churn_probability", DataType::Float64, false),
        utf8("risk_band", false),
        Field::new("revenue_at_risk", DataType::Float64, true),
        Field::new("expected_lifetime_months", DataType::Float64, true),
        Field::new("clv", DataType::Float64, true),
        Field::new("clv_at_risk", DataType::Float64, true),
        Field::new("health_score", DataType::Float64, true),
        utf8("health_band", true),
        utf8("signals", true),
        utf8("intervention", true),
        utf8("segment", true),
        utf8("top_reasons", false),
        utf8("model_name", false),
        utf8("model_version", false),
    ]))
}

/// Where the scored rows' batches end up.
enum Dest {
    /// A file, written to a temporary file and renamed at the end.
    File {
        path: PathBuf,
        writer: Box<TableWriter>,
    },
    /// Batches kept in memory, for a caller in the same process.
    Memory(Vec<RecordBatch>),
    /// A PostgreSQL table, replaced or appended to at commit.
    Postgres(Box<churn_postgres::TableWriter>),
}

impl Dest {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        match self {
            Dest::File { writer, .. } => writer.write(&batch)?,
            Dest::Memory(batches) => batches.push(batch),
            Dest::Postgres(writer) => writer.write(&batch)?,
        }
        Ok(())
    }
}

/// A finished worklist: the rows written, and the batches when kept in memory.
pub struct Written {
    pub rows: u64,
    pub batches: Vec<RecordBatch>,
}

/// What a worklist (`--top N`) ranks customers by, highest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// 30-day churn probability x MRR: the revenue of the coming month at risk.
    #[default]
    RevenueAtRisk,
    /// Churn probability x lifetime value (survival model): the revenue lost for good if
    /// the customer leaves now.
    ClvAtRisk,
    /// The 30-day churn probability alone.
    Probability,
}

impl Order {
    /// The order named `name` (`clv_at_risk` or `clv-at-risk`, any case): the names
    /// `--order` takes.
    pub fn from_name(name: &str) -> Option<Order> {
        clap::ValueEnum::from_str(&name.replace('_', "-"), true).ok()
    }
}

/// The `n` customers a worklist keeps, and what it ranks them by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Top {
    pub n: usize,
    pub order: Order,
}

impl Top {
    /// The `n` customers with the most revenue at risk (the default worklist).
    pub fn by_revenue_at_risk(n: usize) -> Top {
        Top {
            n,
            order: Order::RevenueAtRisk,
        }
    }
}

/// Where scored rows go: straight to the destination in input order, or into the top-N
/// list.
pub struct Worklist {
    schema: SchemaRef,
    dest: Option<Dest>,
    top: Option<Top>,
    kept: Vec<OutRow>,
    name: String,
    version: String,
}

/// Highest `order` key first (unknown last), then highest probability, then most
/// revenue at risk, then id: a total order, so the worklist does not depend on the
/// input's order or batching.
fn worklist_order(order: Order, a: &OutRow, b: &OutRow) -> std::cmp::Ordering {
    let known = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
    let key = |r: &OutRow| match order {
        Order::RevenueAtRisk => known(r.score.revenue_at_risk),
        Order::ClvAtRisk => known(r.score.clv_at_risk),
        Order::Probability => r.score.probability,
    };
    let (sa, sb) = (&a.score, &b.score);
    key(b)
        .total_cmp(&key(a))
        .then(sb.probability.total_cmp(&sa.probability))
        .then(known(sb.revenue_at_risk).total_cmp(&known(sa.revenue_at_risk)))
        .then_with(|| a.customer_id.cmp(&b.customer_id))
}

impl Worklist {
    /// Opens the destination (written to a temporary file, renamed by `finish`).
    pub fn new(scorer: &Scorer, dest: &Path, top: Option<Top>) -> Result<Worklist> {
        let schema = schema();
        let writer = TableWriter::create(dest, schema.clone())?;
        let dest = Dest::File {
            path: dest.to_path_buf(),
            writer: Box::new(writer),
        };
        Ok(Worklist::with(scorer, dest, top))
    }

    /// A worklist written into PostgreSQL table `table` of `location`: replaced whole at
    /// `finish` (or appended to with a `scored_at` time); nothing is visible before.
    pub fn to_postgres(
        scorer: &Scorer,
        location: &churn_postgres::PgLocation,
        table: &str,
        mode: churn_postgres::WriteMode,
        top: Option<Top>,
    ) -> Result<Worklist> {
        let writer = churn_postgres::TableWriter::create(location, table, &schema(), mode)?;
        Ok(Worklist::with(
            scorer,
            Dest::Postgres(Box::new(writer)),
            top,
        ))
    }

    /// A worklist kept in memory as Arrow batches (returned by `finish`).
    pub fn in_memory(scorer: &Scorer, top: Option<Top>) -> Worklist {
        Worklist::with(scorer, Dest::Memory(Vec::new()), top)
    }

    fn with(scorer: &Scorer, dest: Dest, top: Option<Top>) -> Worklist {
        Worklist {
            schema: schema(),
            dest: Some(dest),
            top,
            kept: Vec::new(),
            name: scorer.artifact().name.clone(),
            version: scorer.artifact().version.clone(),
        }
    }

    /// The columns of the scored rows.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Adds a batch of scored rows.
    pub fn add(&mut self, out: Scores) -> Result<()> {
        match self.top {
            None => {
                let b = out.batch(&self.schema, &self.name, &self.version)?;
                self.dest.as_mut().expect("open until finish").write(b)?;
            }
            Some(Top { n, order }) => {
                // Memory stays within 2N rows whatever the input size.
                self.kept.extend(out.into_rows());
                if self.kept.len() > 2 * n.max(1024) {
                    self.kept.sort_by(|a, b| worklist_order(order, a, b));
                    self.kept.truncate(n);
                }
            }
        }
        Ok(())
    }

    /// Writes the worklist (with --top), closes and renames the file; returns the rows
    /// written (and the batches of a worklist in memory).
    pub fn finish(mut self) -> Result<Written> {
        let mut dest = self.dest.take().expect("finish once");
        if let Some(Top { n, order }) = self.top {
            self.kept.sort_by(|a, b| worklist_order(order, a, b));
            self.kept.truncate(n);
            for chunk in self.kept.chunks(64 * 1024) {
                dest.write(Scores::from_rows(chunk).batch(
                    &self.schema,
                    &self.name,
                    &self.version,
                )?)?;
            }
        }
        match dest {
            Dest::File { path, writer } => Ok(Written {
                rows: writer
                    .finish()
                    .map_err(|e| anyhow!("writing {}: {e}", path.display()))?,
                batches: Vec::new(),
            }),
            Dest::Memory(batches) => Ok(Written {
                rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
                batches,
            }),
            Dest::Postgres(writer) => Ok(Written {
                rows: writer.finish()?,
                batches: Vec::new(),
            }),
        }
    }
}

/// A feature row that cannot be scored (a bad value in it), when rows are not skipped.
#[derive(Debug, thiserror::Error)]
#[error("{location}, customer `{customer_id}`: {message}{hint}")]
pub struct RejectedRow {
    /// The row or line.
    pub location: String,
    pub customer_id: String,
    pub message: String,
    /// What the caller can do instead.
    hint: &'static str,
}

/// Rows that could not be scored: an error at the first (default) or a rejects file.
pub struct Rejects {
    skip: bool,
    /// What the error at the first bad row says the caller can do instead.
    hint: &'static str,
    path: PathBuf,
    writer: Option<TableWriter>,
    rows: Vec<[String; 3]>,
    count: u64,
}

impl Rejects {
    /// With `skip`, rejects are listed in `path` (CSV, or Parquet by extension).
    pub fn new(skip: bool, path: PathBuf) -> Rejects {
        Rejects {
            skip,
            hint: " (--skip-invalid writes the other rows and lists the rejected ones)",
            path,
            writer: None,
            rows: Vec::new(),
            count: 0,
        }
    }

    /// No rejects: the first row that cannot be scored is the error.
    pub fn none() -> Rejects {
        Rejects {
            hint: "",
            ..Rejects::new(false, PathBuf::new())
        }
    }

    /// Records a row that cannot be scored; an error unless rejects are kept.
    pub fn add(&mut self, customer_id: &str, location: &str, message: &str) -> Result<()> {
        if !self.skip {
            return Err(RejectedRow {
                location: location.into(),
                customer_id: customer_id.into(),
                message: message.into(),
                hint: self.hint,
            }
            .into());
        }
        self.count += 1;
        self.rows
            .push([customer_id.into(), location.into(), message.into()]);
        if self.rows.len() >= 4096 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("location", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, false),
        ]));
        if self.writer.is_none() {
            self.writer = Some(TableWriter::create(&self.path, schema.clone())?);
        }
        let col = |k: usize| -> ArrayRef {
            Arc::new(
                self.rows
                    .iter()
                    .map(|r| Some(r[k].as_str()))
                    .collect::<StringArray>(),
            )
        };
        let b = RecordBatch::try_new(schema, vec![col(0), col(1), col(2)])?;
        self.writer.as_mut().expect("created above").write(&b)?;
        self.rows.clear();
        Ok(())
    }

    /// Closes the rejects file (written only when a row was rejected); returns the count.
    pub fn finish(&mut self) -> Result<u64> {
        self.flush()?;
        if let Some(w) = self.writer.take() {
            w.finish()?;
        }
        Ok(self.count)
    }

    /// The rejects file, when one was written.
    pub fn path(&self) -> Option<&Path> {
        (self.count > 0).then_some(self.path.as_path())
    }
}

/// Counts for the closing summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub scored: u64,
    bands: [u64; 4],
    interventions: BTreeMap<&'static str, u64>,
    revenue_at_risk: f64,
    revenue_unknown: u64,
}

impl Summary {
    /// Counts scored rows.
    pub fn add(&mut self, scores: &Scores) {
        self.scored += scores.len() as u64;
        for band in &scores.risk_band {
            self.bands[*band as usize] += 1;
        }
        for v in &scores.numbers[REVENUE_AT_RISK] {
            match v {
                Some(v) => self.revenue_at_risk += v,
                None => self.revenue_unknown += 1,
            }
        }
        for level in scores.intervention.iter().flatten() {
            *self.interventions.entry(level).or_default() += 1;
        }
    }

    /// The closing figures of a run.
    pub fn totals(
        &self,
        output: &str,
        rows_read: u64,
        written: u64,
        rejected: u64,
        rejects: Option<&Path>,
        took: Duration,
    ) -> Totals {
        let seconds = took.as_secs_f64();
        Totals {
            output: output.to_string(),
            rows_read,
            scored: self.scored,
            written,
            rejected,
            rejects_file: rejects.map(|p| p.display().to_string()),
            seconds,
            rows_per_second: rows_read as f64 / seconds.max(1e-9),
            risk_bands: RiskBand::ALL
                .iter()
                .map(|b| (b.as_str(), self.bands[*b as usize]))
                .collect(),
            interventions: self.interventions.clone(),
            revenue_at_risk: self.revenue_at_risk,
            customers_without_mrr: self.revenue_unknown,
        }
    }
}

/// What a run did, printed as text on stderr or as one JSON object (`--json`).
#[derive(Debug, serde::Serialize)]
pub struct Totals {
    pub output: String,
    pub rows_read: u64,
    pub scored: u64,
    /// Rows written (fewer than scored with `--top`).
    pub written: u64,
    pub rejected: u64,
    /// Where `--skip-invalid` listed the rejected rows (none when nothing was rejected).
    pub rejects_file: Option<String>,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// Scored rows per risk band, every band present.
    pub risk_bands: BTreeMap<&'static str, u64>,
    /// Scored rows per intervention level (only when the model applies the rules).
    pub interventions: BTreeMap<&'static str, u64>,
    /// Sum of probability x MRR over rows with a known MRR, per month.
    pub revenue_at_risk: f64,
    pub customers_without_mrr: u64,
}

impl Totals {
    /// Prints the figures to stderr.
    pub fn print(&self) {
        eprintln!(
            "scored {} of {} rows in {:.2}s ({:.0} rows/s); wrote {} rows to {}",
            self.scored,
            self.rows_read,
            self.seconds,
            self.rows_per_second,
            self.written,
            self.output
        );
        if self.rejected > 0 {
            eprintln!(
                "rejected {} rows, listed in {}",
                self.rejected,
                self.rejects_file.as_deref().unwrap_or_default()
            );
        }
        let share = |n: u64| 100.0 * n as f64 / self.scored.max(1) as f64;
        let bands: Vec<String> = RiskBand::ALL
            .iter()
            .map(|b| {
                let n = self.risk_bands[b.as_str()];
                format!("{} {n} ({:.1} %)", b.as_str(), share(n))
            })
            .collect();
        eprintln!("risk bands: {}", bands.join(", "));
        if !self.interventions.is_empty() {
            let order = ["immediate", "urgent", "monitor", "none"];
            let levels: Vec<String> = order
                .iter()
                .filter_map(|l| self.interventions.get(l).map(|n| format!("{l} {n}")))
                .collect();
            eprintln!("interventions: {}", levels.join(", "));
        }
        let unknown = if self.customers_without_mrr > 0 {
            format!(
                " ({} customers without a known MRR left out)",
                self.customers_without_mrr
            )
        } else {
            String::new()
        };
        eprintln!(
            "total revenue at risk: {:.2} per month{unknown}",
            self.revenue_at_risk
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_contributions_read_as_rust_formats_them() {
        let mut values = vec![
            0.0, -0.0, 1.0, -7.0, 19.0, 1e14, -1e14, 1e15, 0.5, 19.017461,
        ];
        values.extend((0..2000).map(|i| f64::from(i) * 0.0137 - 5.0));
        values.extend((0..2000).map(|i| f64::from(i) * 1.7));
        for v in values {
            let mut got = String::new();
            push_number(&mut got, v);
            let expected = if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v}")
            };
            assert_eq!(got, expected, "number {v:e}");
            let mut got = String::new();
            push_fixed3(&mut got, v);
            let m = (v * 1000.0).round() as i64;
            assert_eq!(
                got,
                format!("{}.{:03}", m / 1000, m % 1000),
                "contribution {v:e}"
            );
        }
    }
}
