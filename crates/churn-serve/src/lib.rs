//! `churn-serve`: the HTTP inference server. Routes, limits, auth and metrics around the
//! shared scoring core ([`churn_scoring`]); models hot-reloaded through [`registry`].

pub mod api;
pub mod client;
pub mod metrics;
pub mod registry;
pub mod store;

use api::ApiError;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Most customers in one `POST /v1/predict`.
    pub max_batch: usize,
    /// Longest a `/v1` request may take (queueing included) before a 503.
    pub timeout: Duration,
    /// Most `/v1` requests handled at once; more wait for a slot (within the timeout).
    pub concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_batch: 10_000,
            timeout: Duration::from_secs(30),
            concurrency: 256,
        }
    }
}

/// The server's shared state.
pub struct App {
    pub registry: registry::Registry,
    pub store: Option<store::FeatureStore>,
    pub metrics: metrics::Metrics,
    pub limits: Limits,
    /// The bearer token `/v1` routes require, when set.
    pub token: Option<Vec<u8>>,
    /// False once shutdown begins (readiness goes 503).
    pub ready: AtomicBool,
    slots: Semaphore,
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
        App {
            registry,
            store,
            metrics: metrics::Metrics::default(),
            limits,
            token,
            ready: AtomicBool::new(true),
            slots,
        }
    }
}

/// The router with every route and layer.
pub fn router(app: Arc<App>) -> Router {
    let v1 = Router::new()
        .route("/v1/predict", post(api::predict))
        .route(
            "/v1/customers/{id}/prediction",
            get(api::customer_prediction),
        )
        .route("/v1/models", get(api::models))
        .route("/v1/models/reload", post(api::reload))
        .route_layer(middleware::from_fn_with_state(app.clone(), limit))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth));
    Router::new()
        .merge(v1)
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(api::openapi))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(app.limits.max_body_bytes))
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
    let response = next.run(req).await;
    app.metrics.in_flight(-1);
    app.metrics
        .request(&route, response.status().as_u16(), start.elapsed());
    if let Some(api::ErrorCode(code)) = response.extensions().get::<api::ErrorCode>() {
        app.metrics.error(code);
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
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
                .into_response();
        }
    }
    next.run(req).await
}

/// Concurrency limit and timeout for `/v1` routes.
async fn limit(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let timeout = app.limits.timeout;
    let work = async {
        let _permit = app.slots.acquire().await.expect("semaphore never closed");
        next.run(req).await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} ms (--timeout-ms)",
                timeout.as_millis()
            ),
        )
        .into_response(),
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
            let _ = tokio::task::spawn_blocking(move || {
                a.registry.reload(false, |ok| a.metrics.reload(ok))
            })
            .await;
        }
    });
}

/// Serves until `shutdown` resolves, then stops accepting and drains requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = app.clone();
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            state.ready.store(false, Ordering::Relaxed);
            tracing::info!("shutting down: draining requests in flight");
        })
        .await
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
