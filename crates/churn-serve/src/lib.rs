//! `churn-serve`: the HTTP inference server. Routes, limits, auth and metrics around the
//! shared scoring core ([`churn_scoring`]); models hot-reloaded through [`registry`].

pub(crate) mod api;
pub(crate) mod body;
pub mod conn;
pub mod drift;
pub(crate) mod metrics;
pub mod registry;
pub mod store;

pub use api::{predict_in_process, ApiError, ErrorCode};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::FutureExt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Request, connection and memory limits. The defaults hold on a 2-core container with
/// 1 GB of memory (docs/serving.md explains each).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Most customers in one `POST /v1/predict` (enforced while parsing).
    pub max_batch: usize,
    /// Longest a `/v1` request may take (queueing included) before a 503; the work of
    /// a request that timed out stops.
    pub timeout: Duration,
    /// Most `/v1` requests scoring at once; more wait for a slot (within the timeout).
    /// Taken after the body has arrived, so slow senders hold no slot.
    pub concurrency: usize,
    /// Time for a request head to arrive, from the connection's opening or the end of
    /// its previous response (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time for a whole request body to arrive.
    pub body_timeout: Duration,
    /// Most client connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Bytes that request bodies and their parsed and scored forms may hold in all,
    /// across requests (each request is charged its body times 1 + `body::PARSE_FACTOR`).
    pub memory_budget_bytes: u64,
    /// Panics in a row after which `/readyz` turns 503 (any success resets the count).
    pub max_panics_in_a_row: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_batch: 10_000,
            timeout: Duration::from_secs(30),
            concurrency: default_concurrency(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            memory_budget_bytes: 256 * 1024 * 1024,
            max_panics_in_a_row: 5,
        }
    }
}

/// Two scoring slots per core: scoring is CPU-bound, so more in parallel only adds
/// latency, and memory is bounded by the budget whatever the count.
pub fn default_concurrency() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The server's shared state.
pub struct App {
    pub registry: registry::Registry,
    pub store: Option<store::FeatureStore>,
    pub(crate) metrics: metrics::Metrics,
    pub limits: Limits,
    /// The bearer token `/v1` routes require, when set.
    pub token: Option<Vec<u8>>,
    /// False once shutdown begins (readiness goes 503).
    pub ready: AtomicBool,
    /// Memory held by request bodies and their parsed forms.
    pub(crate) budget: body::Budget,
    slots: Semaphore,
    panics_in_a_row: AtomicU32,
    requests: AtomicU64,
}

impl App {
    /// Builds the state.
    pub fn new(
        registry: registry::Registry,
        store: Option<store::FeatureStore>,
        limits: Limits,
        token: Option<Vec<u8>>,
    ) -> App {
        let slots = Semaphore::new(limits.concurrency.max(1));
        let budget = body::Budget::new(limits.memory_budget_bytes);
        App {
            registry,
            store,
            metrics: metrics::Metrics::default(),
            limits,
            token,
            ready: AtomicBool::new(true),
            budget,
            slots,
            panics_in_a_row: AtomicU32::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Waits for a scoring slot (see [`Limits::concurrency`]).
    pub async fn scoring_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.slots.acquire().await.expect("semaphore never closed")
    }

    /// Runs `work` within the request time limit; when it passes, `work` is dropped
    /// (which stops a prediction's scoring, see `api::predict`) and a 503 answers.
    pub async fn within_timeout<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, ApiError> {
        let timeout = self.limits.timeout;
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            ApiError::new(
                api::ErrorCode::Timeout,
                format!(
                    "the request took longer than {} ms (--timeout-ms)",
                    timeout.as_millis()
                ),
            )
        })
    }

    /// Whether requests keep panicking (readiness turns red).
    pub fn failing(&self) -> bool {
        self.panics_in_a_row.load(Ordering::Relaxed) >= self.limits.max_panics_in_a_row.max(1)
    }

    /// Records a panic on the request path; returns the 500 to answer.
    pub fn panicked(&self, request: &RequestId, what: &str) -> ApiError {
        self.metrics.panicked();
        self.panics_in_a_row.fetch_add(1, Ordering::Relaxed);
        tracing::error!(request_id = %request.0, detail = what, "panic while handling a request");
        ApiError::new(
            api::ErrorCode::Internal,
            format!(
                "an internal error stopped this request (request id {}); it is logged and counted",
                request.0
            ),
        )
    }
}

/// The text of a panic's payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The id of a request: the client's `x-request-id` when it is a short token, or one
/// made here; echoed in the `x-request-id` header and named in 500 answers and logs.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The router with every route and layer.
pub fn router(app: Arc<App>) -> Router {
    // `/v1/predict` applies the time limit itself, once its body has arrived (the body
    // has a deadline of its own): a timed-out request must not leave a body half read.
    let v1 = Router::new()
        .route(
            "/v1/customers/{id}/prediction",
            get(api::customer_prediction),
        )
        .route("/v1/models", get(api::models))
        .route("/v1/models/reload", post(api::reload))
        .route_layer(middleware::from_fn_with_state(app.clone(), limit))
        .route("/v1/predict", post(api::predict))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth));
    Router::new()
        .merge(v1)
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(api::openapi))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(app.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// Counts every request by route and status, with its latency and error code.
async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let start = Instant::now();
    app.metrics.in_flight(1);
    // Decremented however the request ends, even if its future is dropped.
    struct InFlight<'a>(&'a metrics::Metrics);
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.in_flight(-1);
        }
    }
    let in_flight = InFlight(&app.metrics);
    let response = next.run(req).await;
    drop(in_flight);
    app.metrics
        .request(&route, response.status().as_u16(), start.elapsed());
    if let Some(code) = response.extensions().get::<api::ErrorCode>() {
        app.metrics.error(code.as_str());
    }
    response
}

/// Gives each request an id, catches a panic anywhere below (answered 500 with the id,
/// logged and counted; readiness turns red after too many in a row, green again after a
/// `/v1` success) and echoes the id.
async fn guard(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string);
    let id = RequestId(given.unwrap_or_else(|| {
        format!(
            "{:x}-{}",
            std::process::id(),
            app.requests.fetch_add(1, Ordering::Relaxed)
        )
    }));
    req.extensions_mut().insert(id.clone());
    // Only work that could panic the same way proves the path healthy again: health
    // checks and metrics answer whatever happens.
    let scoring = req.uri().path().starts_with("/v1/");
    let mut response = match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(payload) => app.panicked(&id, &panic_message(&*payload)).into_response(),
    };
    if scoring && response.status().is_success() {
        app.panics_in_a_row.store(0, Ordering::Relaxed);
    }
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Bearer-token check (constant time) for `/v1` routes.
async fn auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.token {
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::as_bytes);
        let ok = given.is_some_and(|g| bool::from(g.ct_eq(token)));
        if !ok {
            let message = if given.is_none() {
                "this route needs `Authorization: Bearer TOKEN`"
            } else {
                "the bearer token is not valid"
            };
            return ApiError::new(api::ErrorCode::Unauthorized, message).into_response();
        }
    }
    next.run(req).await
}

/// The time limit of `/v1` routes other than `/v1/predict` (which applies it after
/// reading its body).
async fn limit(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match app.within_timeout(next.run(req)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Polls every model's `LATEST` and swaps in new versions, until the process ends.
pub fn spawn_watcher(app: Arc<App>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let a = app.clone();
            let reload = tokio::task::spawn_blocking(move || {
                a.registry.reload(false, |ok| a.metrics.reload(ok))
            })
            .await;
            if let Err(e) = reload {
                // Counted like a failed load, and the watcher keeps watching.
                app.metrics.reload(false);
                tracing::error!(error = %e, "a model reload panicked");
            }
        }
    });
}

/// Serves until `shutdown` resolves, then stops accepting and drains requests in flight
/// (see [`conn::serve`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    conn::serve(listener, app, shutdown).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    fn app() -> (tempfile::TempDir, tempfile::TempDir, Arc<App>) {
        let data = tempfile::tempdir().unwrap();
        let fx = churn_testkit::simulate(data.path(), 150, 2);
        let models = tempfile::tempdir().unwrap();
        let a = churn_testkit::train(&fx, churn_model::model::ModelKind::Logistic, "churn", "v1");
        churn_testkit::save(models.path(), &a);
        let registry = registry::Registry::open(models.path(), Default::default()).unwrap();
        let limits = Limits {
            max_panics_in_a_row: 3,
            ..Limits::default()
        };
        (
            data,
            models,
            Arc::new(App::new(registry, None, limits, None)),
        )
    }

    #[tokio::test]
    async fn a_panic_is_a_500_with_a_request_id_and_readiness_follows() {
        let (_d, _m, app) = app();
        let routes = Router::new()
            .route(
                "/boom",
                get(|| async {
                    panic!("scoring bug");
                    #[allow(unreachable_code)]
                    "never"
                }),
            )
            .route("/v1/fine", get(|| async { "ok" }))
            .route("/readyz", get(api::readyz))
            .layer(middleware::from_fn_with_state(app.clone(), guard))
            .layer(middleware::from_fn_with_state(app.clone(), observe))
            .with_state(app.clone());
        let call = |path: &str| {
            let routes = routes.clone();
            let req = HttpRequest::get(path).body(Body::empty()).unwrap();
            async move { routes.oneshot(req).await.unwrap() }
        };
        for k in 1..=3u32 {
            let r = call("/boom").await;
            assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(
                text.contains("\"internal\"") && text.contains(&id),
                "{text}"
            );
            let ready = call("/readyz").await.status();
            let expected = if k < 3 {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            assert_eq!(ready, expected, "after {k} panics");
        }
        let metrics = app.metrics.render(&[], Default::default());
        assert!(metrics.contains("churn_panics_total 3"), "{metrics}");
        assert!(
            metrics.contains("churn_http_requests_in_flight 0"),
            "{metrics}"
        );
        assert!(
            metrics.contains("route=\"/boom\",status=\"500\"} 3"),
            "{metrics}"
        );
        // A success turns readiness green again.
        assert_eq!(call("/v1/fine").await.status(), StatusCode::OK);
        assert_eq!(call("/readyz").await.status(), StatusCode::OK);
    }
}
