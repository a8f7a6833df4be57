//! `churn._native`: the engine's Python bindings. Every call goes to the libraries the
//! command-line tools use (`churn-features`, `churn-model`, `churn-score`,
//! `churn-serve`, `churn-kpis`); this crate only converts arguments, Arrow tables and
//! errors. Tables cross the boundary through the Arrow C stream interface
//! (`arrow-pyarrow`): what comes in is read where it lies, never copied; what goes out
//! is a `pyarrow.Table` built on the engine's buffers. Work runs with the GIL released.

mod errors;

use anyhow::Context;
use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::{PyArrowType, Table};
use arrow_schema::{ArrowError, SchemaRef};
use churn_features::contract::CUSTOMERS;
use churn_features::dataset::MemoryTable;
use churn_features::features::{self, FeatureConfig};
use churn_features::labels;
use churn_features::read::TableFile;
use churn_features::rules::RulesConfig;
use churn_features::time::{self, Day};
use churn_model::model::ModelKind;
use churn_model::{artifact, publish, train};
use churn_scoring::{Options, Scorer};
use errors::{config_error, to_py, ChurnError, ConfigError, DataError, ModelError, TrainError};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

type PyTable = PyArrowType<Table>;

/// A `pyarrow.Table` of `batches`.
fn table_out(schema: SchemaRef, batches: Vec<RecordBatch>) -> PyResult<PyTable> {
    Table::try_new(batches, schema)
        .map(PyArrowType)
        .map_err(|e| ChurnError::new_err(format!("internal error: {e}")))
}

/// A date argument: `YYYY-MM-DD`.
fn parse_day(name: &str, text: &str) -> PyResult<Day> {
    time::parse_date(text)
        .ok_or_else(|| PyValueError::new_err(format!("{name} `{text}` is not a date (YYYY-MM-DD)")))
}

/// The feature windows: a TOML file's, or the defaults.
fn windows(path: Option<PathBuf>) -> PyResult<FeatureConfig> {
    match path {
        Some(p) => {
            FeatureConfig::load(&p).map_err(|e| config_error("reading the feature windows", e))
        }
        None => Ok(FeatureConfig::default()),
    }
}

/// The playbook's rules: a TOML file's, or the built-in ones.
fn rules(path: Option<PathBuf>) -> PyResult<RulesConfig> {
    match path {
        Some(p) => RulesConfig::load(&p).map_err(|e| config_error("reading the rules file", e)),
        None => Ok(RulesConfig::default()),
    }
}

/// A table handed over by Python (any object with `__arrow_c_stream__`), read like a
/// file of feature rows; errors call it `label`.
fn feature_rows(label: &str, table: Table) -> PyResult<TableFile> {
    let (batches, schema) = table.into_inner();
    TableFile::in_memory(label, &CUSTOMERS, schema, batches).map_err(|e| to_py(e.into()))
}

/// Where a dataset's tables came from: what its model card's fingerprint covers.
enum Origin {
    Dir(PathBuf),
    Memory(Vec<MemoryTable>),
}

/// Customer data loaded and checked: the tables of the data contract (a data directory,
/// or Arrow tables held in memory).
#[pyclass(module = "churn._native", frozen)]
struct Dataset {
    inner: Arc<churn_features::Dataset>,
    origin: Arc<Origin>,
}

#[pymethods]
impl Dataset {
    /// Loads and checks a data directory (CSV, CSV.gz or Parquet tables), as every
    /// `churn-train` command does. The events are streamed when features are built.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Dataset> {
        let ds = py
            .detach(|| churn_features::Dataset::open(&path))
            .map_err(|e| {
                to_py(
                    anyhow::Error::from(e)
                        .context(format!("reading the data directory {}", path.display())),
                )
            })?;
        Ok(Dataset {
            inner: Arc::new(ds),
            origin: Arc::new(Origin::Dir(path)),
        })
    }

    /// Loads tables given as Arrow tables, by name (`subscriptions`, `customers`,
    /// `events`, `tickets`, `payments`, `surveys`, `catalog`), with the file readers'
    /// checks.
    #[staticmethod]
    #[pyo3(signature = (tables, summary=None))]
    fn from_tables(
        py: Python<'_>,
        tables: Vec<(String, PyTable)>,
        summary: Option<&str>,
    ) -> PyResult<Dataset> {
        let kinds = match summary {
            Some(json) => parse_summary(json)?.numeric_text_attributes(),
            None => Default::default(),
        };
        let tables: Vec<MemoryTable> = tables
            .into_iter()
            .map(|(name, t)| {
                let (batches, schema) = t.0.into_inner();
                MemoryTable {
                    name,
                    schema,
                    batches,
                }
            })
            .collect();
        let ds = py
            .detach(|| churn_features::Dataset::from_tables_with(&tables, &kinds))
            .map_err(|e| to_py(e.into()))?;
        Ok(Dataset {
            inner: Arc::new(ds),
            origin: Arc::new(Origin::Memory(tables)),
        })
    }

    /// Customers (with at least one subscription).
    #[getter]
    fn customers(&self) -> usize {
        self.inner.customers.len()
    }

    /// The data directory, or `tables in memory`.
    #[getter]
    fn source(&self) -> String {
        self.inner.dir.display().to_string()
    }

    /// The first day with data and the last, as `YYYY-MM-DD`.
    fn date_range(&self) -> (String, String) {
        let (first, end) = self.inner.date_range();
        (time::format_date(first), time::format_date(end - 1))
    }

    /// Point-in-time features of every customer active at each date of `as_of` (from
    /// what happened strictly before it): the rows of `churn-train features`. With
    /// `summary` (the merged summary of every part of a data set split by customer),
    /// this part's rows of the whole's table.
    #[pyo3(signature = (as_of, windows=None, summary=None))]
    fn features(
        &self,
        py: Python<'_>,
        as_of: Vec<String>,
        windows: Option<PathBuf>,
        summary: Option<&str>,
    ) -> PyResult<PyTable> {
        let dates = as_of
            .iter()
            .map(|d| parse_day("as_of", d))
            .collect::<PyResult<Vec<_>>>()?;
        let cfg = self::windows(windows)?;
        let summary = summary.map(parse_summary).transpose()?;
        let ds = self.inner.clone();
        let (schema, batches) = py
            .detach(|| -> anyhow::Result<_> {
                let table = match &summary {
                    Some(s) => features::build_summarised(&ds, &dates, &cfg, s)?,
                    None => features::build(&ds, &dates, &cfg)?,
                };
                Ok((
                    features::arrow_schema(&table, false),
                    features::arrow_batches(&table, None).collect::<Vec<_>>(),
                ))
            })
            .map_err(to_py)?;
        table_out(schema, batches)
    }

    /// Labelled examples of every monthly observation date with a full horizon: the
    /// rows of `churn-train examples`. With `summary` (the merged summary of every part
    /// of a data set split by customer), this part's rows of the whole's examples, on
    /// the whole's observation dates.
    #[pyo3(signature = (horizon_days=30, windows=None, summary=None))]
    fn examples(
        &self,
        py: Python<'_>,
        horizon_days: i32,
        windows: Option<PathBuf>,
        summary: Option<&str>,
    ) -> PyResult<PyTable> {
        let cfg = self::windows(windows)?;
        let summary = summary.map(parse_summary).transpose()?;
        let ds = self.inner.clone();
        let (schema, batches) = py
            .detach(|| -> anyhow::Result<_> {
                let range = match &summary {
                    Some(s) => s.date_range(),
                    None => ds.date_range(),
                };
                let dates = labels::observation_dates_in(range, horizon_days);
                anyhow::ensure!(
                    !dates.is_empty(),
                    "the data is too short for one observation date with a {horizon_days}-day horizon"
                );
                let ex = match &summary {
                    Some(s) => labels::examples_summarised(&ds, &dates, horizon_days, &cfg, s)?,
                    None => labels::examples(&ds, &dates, horizon_days, &cfg, &|_| {})?,
                };
                Ok((
                    features::arrow_schema(&ex.features, true),
                    features::arrow_batches(&ex.features, Some(&ex.labels)).collect::<Vec<_>>(),
                ))
            })
            .map_err(to_py)?;
        table_out(schema, batches)
    }

    /// What features and observation dates depend on beyond each customer's rows
    /// (JSON): merge the summaries of every part of a data set split by customer with
    /// `merge_summaries`.
    fn summary(&self, py: Python<'_>) -> PyResult<String> {
        let ds = self.inner.clone();
        let summary = py
            .detach(|| features::summarise(&ds))
            .map_err(|e| to_py(e.into()))?;
        serde_json::to_string(&summary).map_err(|e| ChurnError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        let (first, last) = self.date_range();
        format!(
            "Dataset({}: {} customers, {first} to {last})",
            self.source(),
            self.customers()
        )
    }
}

/// A summary made by `Dataset.summary`.
fn parse_summary(json: &str) -> PyResult<features::DataSummary> {
    serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("summary: not a data summary: {e}")))
}

/// The summary of the parts together.
#[pyfunction]
fn merge_summaries(summaries: Vec<String>) -> PyResult<String> {
    let mut whole = features::DataSummary::default();
    for s in &summaries {
        whole.merge(&parse_summary(s)?);
    }
    serde_json::to_string(&whole).map_err(|e| ChurnError::new_err(e.to_string()))
}

/// A trained model version, loaded and checked against itself.
#[pyclass(module = "churn._native", frozen)]
struct Model {
    scorer: Arc<Scorer>,
    dir: PathBuf,
}

#[pymethods]
impl Model {
    /// Loads a model: a version directory, a model directory (its `LATEST`) or a
    /// `model.bin`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
        let (a, dir) = py.detach(|| artifact::load(&path)).map_err(|e| {
            to_py(anyhow::Error::from(e).context(format!("loading the model {}", path.display())))
        })?;
        Ok(Model {
            scorer: Arc::new(Scorer::new(a)),
            dir,
        })
    }

    #[getter]
    fn name(&self) -> String {
        self.scorer.artifact().name.clone()
    }

    #[getter]
    fn version(&self) -> String {
        self.scorer.artifact().version.clone()
    }

    /// The version directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Days ahead the probability is about.
    #[getter]
    fn horizon_days(&self) -> i32 {
        self.scorer.artifact().horizon_days
    }

    /// The feature columns the model reads, in schema order.
    #[getter]
    fn features(&self) -> Vec<String> {
        self.scorer
            .schema()
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }

    /// Scores feature rows (columns `customer_id`, optional `as_of`, features): the
    /// columns and values of `churn-score`, in input order (or the `top` customers
    /// ranked by `order`, as `--top N --order ORDER`).
    #[pyo3(signature = (table, reasons=3, top=None, order="revenue_at_risk", survival=true))]
    fn score(
        &self,
        py: Python<'_>,
        table: PyTable,
        reasons: usize,
        top: Option<usize>,
        order: &str,
        survival: bool,
    ) -> PyResult<PyTable> {
        let order = churn_score::Order::from_name(order).ok_or_else(|| {
            PyValueError::new_err(format!(
                "order `{order}`: expected revenue_at_risk, clv_at_risk or probability"
            ))
        })?;
        if order == churn_score::Order::ClvAtRisk && !survival {
            return Err(PyValueError::new_err(
                "order clv_at_risk ranks by the survival model's lifetime value: it needs survival=True",
            ));
        }
        if order == churn_score::Order::ClvAtRisk && self.scorer.artifact().survival.is_none() {
            return Err(PyValueError::new_err(
                "order clv_at_risk needs a model with a survival curve (trained on a data directory, format 5 or later)",
            ));
        }
        let top = top.map(|n| churn_score::Top { n, order });
        let file = feature_rows("input table", table.0)?;
        let scorer = self.scorer.clone();
        let options = Options {
            explain: reasons > 0,
            top: reasons,
            warnings: false,
            survival,
        };
        let (schema, batches) = py
            .detach(|| churn_score::score_table(&scorer, &file, options, top))
            .map_err(to_py)?;
        table_out(schema, batches)
    }

    /// The columns `score` returns (a `pyarrow.Schema`).
    fn score_schema(&self) -> PyArrowType<arrow_schema::Schema> {
        PyArrowType(churn_score::output_schema().as_ref().clone())
    }

    /// Scores a stream of feature rows batch by batch, as the returned
    /// `pyarrow.RecordBatchReader` is read: memory stays within a few batches whatever
    /// the stream's length. Rows are numbered across the stream in errors.
    #[pyo3(signature = (stream, reasons=3, survival=true))]
    fn score_stream(
        &self,
        stream: PyArrowType<RecordBatchStreamReader>,
        reasons: usize,
        survival: bool,
    ) -> PyArrowType<Box<dyn RecordBatchReader + Send>> {
        let input = stream.0;
        let scorer = self.scorer.clone();
        let schema = churn_score::output_schema();
        let options = Options {
            explain: reasons > 0,
            top: reasons,
            warnings: false,
            survival,
        };
        PyArrowType(Box::new(ScoreStream {
            scorer,
            input,
            options,
            schema,
            rows_before: 0,
            pending: std::collections::VecDeque::new(),
        }))
    }

    /// Answers a `POST /v1/predict` body (JSON) as `churn-serve` would; returns the
    /// answer's JSON.
    fn predict_json(&self, py: Python<'_>, body: &str) -> PyResult<String> {
        let scorer = self.scorer.clone();
        let out = py
            .detach(|| churn_serve::predict_in_process(&scorer, body.as_bytes()))
            .map_err(|e| {
                let at = e.field.map(|f| format!(" (at {f})")).unwrap_or_default();
                DataError::new_err(format!("{}{at}", e.message))
            })?;
        String::from_utf8(out).map_err(|e| ChurnError::new_err(format!("internal error: {e}")))
    }

    fn __repr__(&self) -> String {
        format!(
            "Model({} version {}, {})",
            self.name(),
            self.version(),
            self.dir.display()
        )
    }
}

/// Scored batches of a stream of feature rows, scored as they are asked for.
struct ScoreStream {
    scorer: Arc<Scorer>,
    input: RecordBatchStreamReader,
    options: Options,
    schema: SchemaRef,
    rows_before: u64,
    /// Scored batches of an input batch longer than one output batch.
    pending: std::collections::VecDeque<RecordBatch>,
}

impl ScoreStream {
    fn score(&mut self, batch: RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        let rows = batch.num_rows() as u64;
        let file = TableFile::in_memory("input stream", &CUSTOMERS, batch.schema(), vec![batch])?
            .after_rows(self.rows_before);
        self.rows_before += rows;
        let (_, scored) = churn_score::score_table(&self.scorer, &file, self.options, None)?;
        Ok(scored)
    }
}

impl Iterator for ScoreStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(Ok(b));
            }
            let batch = match self.input.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            match self.score(batch) {
                Ok(scored) => self.pending.extend(scored),
                // pyarrow raises it with this message.
                Err(e) => return Some(Err(ArrowError::ExternalError(format!("{e:#}").into()))),
            }
        }
    }
}

impl RecordBatchReader for ScoreStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// A finished training run: the version it saved and its figures.
#[pyclass(module = "churn._native", frozen)]
struct TrainRun {
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    version: String,
    /// The version directory.
    #[pyo3(get)]
    path: PathBuf,
    /// The HTML report.
    #[pyo3(get)]
    report: PathBuf,
    /// What `churn-train train --json` prints, as JSON.
    #[pyo3(get)]
    summary_json: String,
}

/// Trains, backtests and saves a model as `churn-train train --data` does.
#[pyfunction]
#[pyo3(name = "train", signature = (dataset, out, name, horizon_days, models, folds, search, seed, rules, windows, gross_margin=1.0, annual_discount=0.0))]
#[allow(clippy::too_many_arguments)]
fn train_model(
    py: Python<'_>,
    dataset: &Dataset,
    out: PathBuf,
    name: String,
    horizon_days: i32,
    models: Vec<String>,
    folds: Option<usize>,
    search: &str,
    seed: u64,
    rules: Option<PathBuf>,
    windows: Option<PathBuf>,
    gross_margin: f64,
    annual_discount: f64,
) -> PyResult<TrainRun> {
    let clv = churn_model::survival::ClvSettings::new(gross_margin, annual_discount)
        .map_err(PyValueError::new_err)?;
    let kinds = models
        .iter()
        .map(|m| {
            ModelKind::parse(m).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "unknown model `{m}` in models: expected logistic, forest, gbm or blend"
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let search = match search {
        "none" => train::Search::None,
        "quick" => train::Search::Quick,
        "full" => train::Search::Full,
        other => {
            return Err(PyValueError::new_err(format!(
                "search `{other}`: expected none, quick or full"
            )))
        }
    };
    let cfg = train::TrainConfig {
        search,
        kinds,
        folds,
        seed,
        clv,
    };
    let rules = self::rules(rules)?;
    let windows = self::windows(windows)?;
    let ds = dataset.inner.clone();
    let origin = dataset.origin.clone();
    py.detach(|| -> anyhow::Result<TrainRun> {
        let started = std::time::Instant::now();
        let trained = train::train_dataset(
            &ds,
            horizon_days,
            &windows,
            &cfg,
            &rules,
            &|_| {},
            &|_, _| {},
        )?;
        let sha256 = match origin.as_ref() {
            Origin::Dir(dir) => publish::fingerprint(&publish::data_files(dir)?)?,
            Origin::Memory(tables) => fingerprint_tables(tables),
        };
        let source = ds.dir.display().to_string();
        let run = publish::Run::of(&trained, &rules, seed, &source, sha256);
        let saved = publish::save(&out, &name, &run)?;
        let summary = publish::RunSummary::new(
            &name,
            &trained,
            &saved,
            None,
            started.elapsed().as_secs_f64(),
        );
        Ok(TrainRun {
            name: name.clone(),
            version: saved.version.clone(),
            path: saved.dir.clone(),
            report: saved.dir.join("report.html"),
            summary_json: serde_json::to_string(&summary)?,
        })
    })
    .map_err(to_py)
}

/// The retention KPIs of a dataset: what `churn-train kpis` computes.
#[pyclass(module = "churn._native", frozen)]
struct KpiReport {
    report: churn_kpis::report::Report,
    source: String,
}

#[pymethods]
impl KpiReport {
    /// The figures as JSON: what `churn-train kpis --json FILE` writes.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.report).map_err(|e| ChurnError::new_err(e.to_string()))
    }

    /// Writes the KPI page (HTML) to `path`, atomically.
    fn html(&self, py: Python<'_>, path: PathBuf) -> PyResult<PathBuf> {
        let page = churn_kpis::html::page(&self.report, &self.source);
        py.detach(|| churn_features::write::write_file_atomic(&path, page.as_bytes()))
            .map_err(|e| to_py(e.into()))?;
        Ok(path)
    }
}

/// Computes the retention KPIs as of a date (default: the end of the data).
#[pyfunction]
#[pyo3(signature = (dataset, as_of=None, rules=None, goals=None, model=None))]
fn kpis(
    py: Python<'_>,
    dataset: &Dataset,
    as_of: Option<&str>,
    rules: Option<PathBuf>,
    goals: Option<PathBuf>,
    model: Option<&Model>,
) -> PyResult<KpiReport> {
    let as_of = as_of.map(|d| parse_day("as_of", d)).transpose()?;
    let rules = self::rules(rules)?;
    let goals = match goals {
        Some(p) => churn_kpis::goals::Goals::load(&p)
            .map_err(|e| config_error("reading the goals file", e))?,
        None => churn_kpis::goals::Goals::default(),
    };
    let ds = dataset.inner.clone();
    let opts = churn_kpis::KpiOptions {
        as_of,
        ..Default::default()
    };
    let scorer = model.map(|m| m.scorer.clone());
    let report = py
        .detach(|| -> anyhow::Result<churn_kpis::report::Report> {
            let mut report = churn_kpis::report::report(&ds, opts, &rules, &goals)
                .context("computing the KPIs")?;
            if let Some(scorer) = &scorer {
                let goal = goals.target(churn_kpis::goals::Metric::Clv);
                report.model_clv = Some(
                    churn_kpis::clv::model_clv(&ds, opts, scorer, goal)
                        .context("valuing the customers with the model")?,
                );
            }
            Ok(report)
        })
        .map_err(to_py)?;
    Ok(KpiReport {
        report,
        source: ds.dir.display().to_string(),
    })
}

/// The playbook alone on feature rows: health score and components, signals,
/// intervention, segment and loyalty tier per customer.
#[pyfunction]
#[pyo3(signature = (table, rules=None, windows=None))]
fn rules_score(
    py: Python<'_>,
    table: PyTable,
    rules: Option<PathBuf>,
    windows: Option<PathBuf>,
) -> PyResult<PyTable> {
    let file = feature_rows("input table", table.0)?;
    let cfg = self::rules(rules)?;
    let windows = self::windows(windows)?;
    let (schema, batches) = py
        .detach(|| -> anyhow::Result<_> {
            let mut loaded =
                churn_features::table::read_table_from(&file, Some("customer_id"), None)?;
            loaded.table.config = windows;
            churn_score::rules_table(&loaded.table, &cfg)
        })
        .map_err(to_py)?;
    table_out(schema, batches)
}

/// The engine's Python module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ChurnError", py.get_type::<ChurnError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("TrainError", py.get_type::<TrainError>())?;
    m.add_class::<Dataset>()?;
    m.add_class::<Model>()?;
    m.add_class::<TrainRun>()?;
    m.add_class::<KpiReport>()?;
    m.add_function(wrap_pyfunction!(train_model, m)?)?;
    m.add_function(wrap_pyfunction!(kpis, m)?)?;
    m.add_function(wrap_pyfunction!(rules_score, m)?)?;
    m.add_function(wrap_pyfunction!(merge_summaries, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// SHA-256 over tables held in memory (names, schemas and the bytes of their Arrow
/// buffers): what a model card records of data that came as tables, not files.
fn fingerprint_tables(tables: &[MemoryTable]) -> String {
    use sha2::{Digest, Sha256};
    fn buffers(data: &arrow_data::ArrayData, h: &mut Sha256) {
        for b in data.buffers() {
            h.update(b.as_slice());
        }
        if let Some(n) = data.nulls() {
            h.update(n.validity());
        }
        for child in data.child_data() {
            buffers(child, h);
        }
    }
    let mut sorted: Vec<&MemoryTable> = tables.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for t in sorted {
        h.update(t.name.as_bytes());
        h.update(t.schema.to_string().as_bytes());
        for batch in &t.batches {
            for column in batch.columns() {
                buffers(&column.to_data(), &mut h);
            }
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
