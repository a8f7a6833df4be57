//! Prometheus metrics through `prometheus-client`, rendered as OpenMetrics text.

use churn_scoring::RiskBand;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Latency bucket bounds in seconds: 10 us to 2.5 s.
const BUCKETS: [f64; 16] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0, 2.5,
];

/// The phases of a prediction request, timed separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Parse,
    Validate,
    Predict,
    Rules,
    Serialise,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Parse,
        Phase::Validate,
        Phase::Predict,
        Phase::Rules,
        Phase::Serialise,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Phase::Parse => "parse",
            Phase::Validate => "validate",
            Phase::Predict => "predict",
            Phase::Rules => "rules",
            Phase::Serialise => "serialise",
        }
    }
}

/// `route` and `status` of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BandLabel {
    risk_band: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabel {
    result: &'static str,
}

/// How a feature-store look-up ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreLookup {
    /// Answered from the file in memory or the database store's cache.
    Memory = 0,
    /// Answered by a query to the database.
    Database = 1,
    /// The database could not answer (answered 503).
    Unavailable = 2,
}

impl StoreLookup {
    const ALL: [StoreLookup; 3] = [
        StoreLookup::Memory,
        StoreLookup::Database,
        StoreLookup::Unavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            StoreLookup::Memory => "memory",
            StoreLookup::Database => "database",
            StoreLookup::Unavailable => "unavailable",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelVersion {
    model: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Everything the server counts, in a `prometheus-client` registry. Series whose labels
/// are known up front (phases, risk bands, refusal reasons) are held as handles, so the
/// request path indexes an array instead of hashing a label set per customer.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    /// One per [`Phase`], in its order.
    phases: [Histogram; Phase::ALL.len()],
    errors: Family<CodeLabel, Counter>,
    /// One per [`RiskBand`], in its order.
    predictions: [Counter; RiskBand::ALL.len()],
    reloads: Counter,
    reload_failures: Counter,
    in_flight: Gauge,
    /// One per [`Refusal`], in its order.
    refusals: [Counter; Refusal::ALL.len()],
    /// One per [`StoreLookup`], in its order.
    store_lookups: [Counter; StoreLookup::ALL.len()],
    connections: Gauge,
    panics: Counter,
    memory_reserved: Gauge,
    memory_budget: Gauge,
    model_info: Family<ModelVersion, Gauge>,
    model_loaded: Family<ModelLabel, Gauge<f64, AtomicU64>>,
    drift_rows: Family<ModelLabel, Gauge>,
    drift_inputs: Family<ModelInput, Gauge<f64, AtomicU64>>,
    drift_scores: Family<ModelLabel, Gauge<f64, AtomicU64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let phases = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let errors = Family::default();
        let predictions = Family::<BandLabel, Counter>::default();
        let refusals = Family::<ReasonLabel, Counter>::default();
        let store_lookups = Family::<LookupLabel, Counter>::default();
        let m = Metrics {
            store_lookups: StoreLookup::ALL.map(|l| {
                store_lookups
                    .get_or_create(&LookupLabel { result: l.as_str() })
                    .clone()
            }),
            // Every label value known up front is created now, so that a dashboard sees
            // zeros rather than missing series; the handles share the families' state.
            phases: Phase::ALL.map(|p| {
                phases
                    .get_or_create(&PhaseLabel { phase: p.as_str() })
                    .clone()
            }),
            predictions: RiskBand::ALL.map(|b| {
                predictions
                    .get_or_create(&BandLabel {
                        risk_band: b.as_str(),
                    })
                    .clone()
            }),
            refusals: Refusal::ALL.map(|r| {
                refusals
                    .get_or_create(&ReasonLabel { reason: r.as_str() })
                    .clone()
            }),
            requests,
            latency,
            errors,
            reloads: Counter::default(),
            reload_failures: Counter::default(),
            in_flight: Gauge::default(),
            connections: Gauge::default(),
            panics: Counter::default(),
            memory_reserved: Gauge::default(),
            memory_budget: Gauge::default(),
            model_info: Family::default(),
            model_loaded: Family::default(),
            drift_rows: Family::default(),
            drift_inputs: Family::default(),
            drift_scores: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "churn_http_requests",
            "HTTP requests by route and status",
            m.requests.clone(),
        );
        registry.register_with_unit(
            "churn_http_request_duration",
            "Time from request to response, by route",
            Unit::Seconds,
            m.latency.clone(),
        );
        registry.register_with_unit(
            "churn_predict_phase_duration",
            "Time per prediction request spent in each phase",
            Unit::Seconds,
            phases,
        );
        registry.register(
            "churn_http_errors",
            "Error responses by error code",
            m.errors.clone(),
        );
        registry.register(
            "churn_predictions",
            "Customers scored, by risk band",
            predictions,
        );
        registry.register(
            "churn_model_reloads",
            "Model versions loaded after start",
            m.reloads.clone(),
        );
        registry.register(
            "churn_model_reload_failures",
            "Model versions that failed to load (the old version kept serving)",
            m.reload_failures.clone(),
        );
        registry.register(
            "churn_http_requests_in_flight",
            "Requests being handled",
            m.in_flight.clone(),
        );
        registry.register(
            "churn_http_refusals",
            "Connections and requests refused or cut off, by reason",
            refusals,
        );
        registry.register(
            "churn_store_lookups",
            "Feature-store look-ups of GET /v1/customers/{id}/prediction, by how they ended",
            store_lookups,
        );
        registry.register(
            "churn_http_connections_open",
            "Client connections open",
            m.connections.clone(),
        );
        registry.register_with_unit(
            "churn_memory_reserved",
            "Bytes of the memory budget held by requests in flight",
            Unit::Bytes,
            m.memory_reserved.clone(),
        );
        registry.register_with_unit(
            "churn_memory_budget",
            "The memory budget for request bodies and their parsed form (--memory-budget-mb)",
            Unit::Bytes,
            m.memory_budget.clone(),
        );
        registry.register(
            "churn_panics",
            "Panics caught while handling requests (each answered 500)",
            m.panics.clone(),
        );
        registry.register(
            "churn_model_info",
            "The model version serving, by name (always 1)",
            m.model_info.clone(),
        );
        registry.register_with_unit(
            "churn_model_loaded_timestamp",
            "When the serving version was loaded (Unix time)",
            Unit::Seconds,
            m.model_loaded.clone(),
        );
        registry.register(
            "churn_drift_window_predictions",
            "Predictions in the live drift window (--drift-window-mins); PSI over fewer than a few hundred is noise",
            m.drift_rows.clone(),
        );
        registry.register(
            "churn_drift_input_psi",
            "Population stability index of each model input over the live drift window, against the training data's profile",
            m.drift_inputs.clone(),
        );
        registry.register(
            "churn_drift_score_psi",
            "Population stability index of the predicted probabilities over the live drift window, against the model's on its latest training date",
            m.drift_scores.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// The memory budget's state, read from it when rendering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Bytes held by requests in flight.
    pub reserved_bytes: u64,
    /// The budget.
    pub budget_bytes: u64,
}

/// Why the server refused or cut off a connection or a request before answering it
/// normally: each kind is counted in `churn_http_refusals_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More connections open than `--max-connections`: closed at once.
    ConnectionLimit,
    /// The request head (or the next one on an idle keep-alive connection) did not
    /// arrive within `--header-timeout-ms`.
    HeaderTimeout,
    /// The body did not arrive within `--body-timeout-ms`.
    BodyTimeout,
    /// The memory budget was spent by requests in flight: 503 with Retry-After.
    MemoryBudget,
    /// A malformed request head, or one too large (hyper's own refusals).
    BadRequestHead,
}

impl Refusal {
    /// Every kind, in the order of the counters.
    pub const ALL: [Refusal; 5] = [
        Refusal::ConnectionLimit,
        Refusal::HeaderTimeout,
        Refusal::BodyTimeout,
        Refusal::MemoryBudget,
        Refusal::BadRequestHead,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::MemoryBudget => "memory_budget",
            Refusal::BadRequestHead => "bad_request_head",
        }
    }
}

/// A model version being served, for the info metric.
pub struct ServedModel {
    pub name: String,
    pub version: String,
    pub loaded_at_unix: f64,
    /// Its live drift now (none without a reference profile).
    pub drift: Option<crate::drift::DriftSnapshot>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelInput {
    model: String,
    input: String,
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Times one phase of a prediction request.
    pub fn phase(&self, phase: Phase, elapsed: Duration) {
        self.phases[phase as usize].observe(elapsed.as_secs_f64());
    }

    /// Counts an error response by its code.
    pub fn error(&self, code: &'static str) {
        self.errors.get_or_create(&CodeLabel { code }).inc();
    }

    /// Counts predictions by risk band.
    pub fn predicted(&self, band: RiskBand) {
        self.predictions[band as usize].inc();
    }

    /// Counts a reload attempt of one model version.
    pub fn reload(&self, ok: bool) {
        self.reloads.inc();
        if !ok {
            self.reload_failures.inc();
        }
    }

    /// Tracks requests in flight.
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// Counts a refusal.
    pub fn refused(&self, why: Refusal) {
        self.refusals[why as usize].inc();
    }

    /// Counts a feature-store look-up.
    pub fn store_lookup(&self, how: StoreLookup) {
        self.store_lookups[how as usize].inc();
    }

    /// Tracks open connections.
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections.inc();
        } else {
            self.connections.dec();
        }
    }

    /// Counts a panic caught on the request path.
    pub fn panicked(&self) {
        self.panics.inc();
    }

    /// The OpenMetrics text exposition of every metric (Prometheus scrapes it).
    pub fn render(&self, models: &[ServedModel], memory: Memory) -> String {
        self.memory_reserved
            .set(i64::try_from(memory.reserved_bytes).unwrap_or(i64::MAX));
        self.memory_budget
            .set(i64::try_from(memory.budget_bytes).unwrap_or(i64::MAX));
        // The versions serving now: a replaced version's series disappears.
        self.model_info.clear();
        self.model_loaded.clear();
        self.drift_rows.clear();
        self.drift_inputs.clear();
        self.drift_scores.clear();
        for m in models {
            self.model_info
                .get_or_create(&ModelVersion {
                    model: m.name.clone(),
                    version: m.version.clone(),
                })
                .set(1);
            self.model_loaded
                .get_or_create(&ModelLabel {
                    model: m.name.clone(),
                })
                .set(m.loaded_at_unix);
            if let Some(d) = &m.drift {
                let model = ModelLabel {
                    model: m.name.clone(),
                };
                self.drift_rows
                    .get_or_create(&model)
                    .set(i64::try_from(d.rows).unwrap_or(i64::MAX));
                self.drift_scores.get_or_create(&model).set(d.scores);
                for (input, psi) in &d.inputs {
                    self.drift_inputs
                        .get_or_create(&ModelInput {
                            model: m.name.clone(),
                            input: input.clone(),
                        })
                        .set(*psi);
                }
            }
        }
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
