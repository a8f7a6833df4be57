//! The connection layer: accepting TCP connections under a cap and serving each with
//! hyper's HTTP/1.1 under a header timeout, so that no client (with or without a token)
//! can hold the server's connections or descriptors by sending slowly or not at all.
//!
//! `axum::serve` exposes none of these settings, so the accept loop is ours: it is the
//! loop of `axum::serve` with a connection cap, hyper's `header_read_timeout` (which
//! also closes keep-alive connections idle for that long, since hyper waits for the
//! next request head with the same timer) and a bounded header buffer. Body timeouts and
//! memory budgets are per request, in the `body` module.

use crate::metrics::Refusal;
use crate::App;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// The most connections [`default_max_connections`] ever suggests.
const MAX_CONNECTIONS_CEILING: u64 = 4096;
/// Descriptors kept for everything but client connections (model files, logs, the
/// listener, the runtime).
const RESERVED_DESCRIPTORS: u64 = 64;

/// The accept queue [`bind`] asks the kernel for (it caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (`host:port`) with a deep accept queue. `std` and tokio's own
/// `bind` listen with a queue of 128: measured with the load bench, a burst of 200
/// connections opened at once (a slowloris attack's first second) filled it, the kernel
/// dropped the SYNs beyond it, legitimate clients' included, and those clients retried
/// only after a second (p99 730-840 ms in 3 of 4 runs).
pub async fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last_error = None;
    for address in tokio::net::lookup_host(addr).await? {
        let socket = if address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As std does on Unix: a restarted server can bind while old connections linger.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket
            .bind(address)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{addr}` names no address"),
        )
    }))
}

/// A default connection cap that always leaves descriptors free: the process's
/// descriptor limit (raised to its hard limit first, as servers do) less a reserve,
/// at most 4,096.
pub fn default_max_connections() -> usize {
    let limit = raise_descriptor_limit().unwrap_or(1024);
    limit
        .saturating_sub(RESERVED_DESCRIPTORS)
        .clamp(16, MAX_CONNECTIONS_CEILING) as usize
}

/// Raises the soft descriptor limit to the hard one; returns the soft limit in force.
#[cfg(unix)]
fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    limit.current
}

#[cfg(not(unix))]
fn raise_descriptor_limit() -> Option<u64> {
    None
}

/// Logs at most once a second per kind of event, so an attack cannot flood the log.
#[derive(Default)]
struct Throttle(AtomicU64);

impl Throttle {
    fn ready(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.0.swap(now, Ordering::Relaxed) != now
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, asks
/// every connection to finish its request in flight, and waits for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = crate::router(app.clone());
    let slots = Arc::new(Semaphore::new(app.limits.max_connections.max(1)));
    // Every connection task holds a receiver: `closing` tells them to wind down, and
    // `closed()` on the sender resolves once the last one has gone.
    let (closing, closing_rx) = watch::channel(false);
    let refused_log = Throttle::default();
    let accept_log = Throttle::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or memory: wait instead of spinning on the error.
                if accept_log.ready() {
                    tracing::warn!(error = %e, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            app.metrics.refused(Refusal::ConnectionLimit);
            if refused_log.ready() {
                tracing::warn!(
                    %peer,
                    limit = app.limits.max_connections,
                    "connection refused: too many connections open (--max-connections)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let app = app.clone();
        let mut closing_rx = closing_rx.clone();
        tokio::spawn(async move {
            app.metrics.connection(true);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(app.limits.header_timeout)
                .max_buf_size(app.limits.max_header_bytes.max(8192))
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let result = loop {
                tokio::select! {
                    r = conn.as_mut() => break r,
                    changed = closing_rx.changed() => {
                        if changed.is_err() || *closing_rx.borrow() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    app.metrics.refused(Refusal::HeaderTimeout);
                    tracing::debug!(%peer, "connection closed: no request head within the header timeout");
                } else if e.is_parse() || e.is_parse_too_large() {
                    app.metrics.refused(Refusal::BadRequestHead);
                    tracing::debug!(%peer, error = %e, "connection closed: bad request head");
                } else {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            }
            app.metrics.connection(false);
            drop(permit);
            drop(closing_rx);
        });
    }
    app.ready.store(false, Ordering::Relaxed);
    tracing::info!("shutting down: draining requests in flight");
    drop(listener);
    let _ = closing.send(true);
    drop(closing_rx);
    closing.closed().await;
    Ok(())
}
