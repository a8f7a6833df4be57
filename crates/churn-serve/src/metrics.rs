//! Prometheus metrics, kept in atomics and rendered as the text exposition format.

use churn_scoring::RiskBand;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
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

/// A cumulative latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// Everything the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, status) -> requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// route -> latency of whole requests.
    latency: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    phases: [Histogram; 5],
    /// error code -> responses.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    predictions: [AtomicU64; 4],
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    in_flight: AtomicU64,
    /// Refused or cut-off connections and requests, by [`Refusal`].
    refusals: [AtomicU64; Refusal::ALL.len()],
    connections: AtomicU64,
    panics: AtomicU64,
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
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        *crate::registry::lock(&self.requests)
            .entry((route.to_string(), status))
            .or_default() += 1;
        let h = crate::registry::lock(&self.latency)
            .entry(route.to_string())
            .or_default()
            .clone();
        h.observe(elapsed);
    }

    /// Times one phase of a prediction request.
    pub fn phase(&self, phase: Phase, elapsed: Duration) {
        self.phases[phase as usize].observe(elapsed);
    }

    /// Counts an error response by its code.
    pub fn error(&self, code: &'static str) {
        *crate::registry::lock(&self.errors).entry(code).or_default() += 1;
    }

    /// Counts predictions by risk band.
    pub fn predicted(&self, band: RiskBand) {
        self.predictions[band as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reload attempt of one model version.
    pub fn reload(&self, ok: bool) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.reload_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tracks requests in flight.
    pub fn in_flight(&self, delta: i64) {
        if delta >= 0 {
            self.in_flight.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            self.in_flight
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Counts a refusal.
    pub fn refused(&self, why: Refusal) {
        self.refusals[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How many refusals of a kind so far.
    pub fn refusals(&self, why: Refusal) -> u64 {
        self.refusals[why as usize].load(Ordering::Relaxed)
    }

    /// Tracks open connections.
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections.fetch_add(1, Ordering::Relaxed);
        } else {
            self.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts a panic caught on the request path.
    pub fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, models: &[ServedModel], memory: Memory) -> String {
        let mut out = String::with_capacity(8192);
        family(
            &mut out,
            "churn_http_requests_total",
            "HTTP requests by route and status.",
            "counter",
        );
        for ((route, status), n) in crate::registry::lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "churn_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        family(
            &mut out,
            "churn_http_request_duration_seconds",
            "Time from request to response, by route.",
            "histogram",
        );
        for (route, h) in crate::registry::lock(&self.latency).iter() {
            h.render(
                &mut out,
                "churn_http_request_duration_seconds",
                &format!("route=\"{}\"", escape(route)),
            );
        }
        family(
            &mut out,
            "churn_predict_phase_duration_seconds",
            "Time per prediction request spent in each phase.",
            "histogram",
        );
        for p in Phase::ALL {
            self.phases[p as usize].render(
                &mut out,
                "churn_predict_phase_duration_seconds",
                &format!("phase=\"{}\"", p.as_str()),
            );
        }
        family(
            &mut out,
            "churn_http_errors_total",
            "Error responses by error code.",
            "counter",
        );
        for (code, n) in crate::registry::lock(&self.errors).iter() {
            let _ = writeln!(out, "churn_http_errors_total{{code=\"{code}\"}} {n}");
        }
        family(
            &mut out,
            "churn_predictions_total",
            "Customers scored, by risk band.",
            "counter",
        );
        for b in RiskBand::ALL {
            let _ = writeln!(
                out,
                "churn_predictions_total{{risk_band=\"{}\"}} {}",
                b.as_str(),
                self.predictions[b as usize].load(Ordering::Relaxed)
            );
        }
        family(
            &mut out,
            "churn_model_reloads_total",
            "Model versions loaded after start.",
            "counter",
        );
        let _ = writeln!(
            out,
            "churn_model_reloads_total {}",
            self.reloads.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "churn_model_reload_failures_total",
            "Model versions that failed to load (the old version kept serving).",
            "counter",
        );
        let _ = writeln!(
            out,
            "churn_model_reload_failures_total {}",
            self.reload_failures.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "churn_http_requests_in_flight",
            "Requests being handled.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "churn_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "churn_http_refusals_total",
            "Connections and requests refused or cut off, by reason.",
            "counter",
        );
        for r in Refusal::ALL {
            let _ = writeln!(
                out,
                "churn_http_refusals_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.refusals(r)
            );
        }
        let gauges = [
            (
                "churn_http_connections_open",
                "Client connections open.",
                self.connections.load(Ordering::Relaxed),
            ),
            (
                "churn_memory_reserved_bytes",
                "Bytes of the memory budget held by requests in flight.",
                memory.reserved_bytes,
            ),
            (
                "churn_memory_budget_bytes",
                "The memory budget for request bodies and their parsed form (--memory-budget-mb).",
                memory.budget_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            family(&mut out, name, help, "gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            &mut out,
            "churn_panics_total",
            "Panics caught while handling requests (each answered 500).",
            "counter",
        );
        let _ = writeln!(
            out,
            "churn_panics_total {}",
            self.panics.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "churn_model_info",
            "The model version serving, by name (always 1).",
            "gauge",
        );
        for m in models {
            let _ = writeln!(
                out,
                "churn_model_info{{model=\"{}\",version=\"{}\"}} 1",
                escape(&m.name),
                escape(&m.version)
            );
        }
        family(
            &mut out,
            "churn_model_loaded_timestamp_seconds",
            "When the serving version was loaded (Unix time).",
            "gauge",
        );
        for m in models {
            let _ = writeln!(
                out,
                "churn_model_loaded_timestamp_seconds{{model=\"{}\"}} {}",
                escape(&m.name),
                m.loaded_at_unix
            );
        }
        out
    }
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
