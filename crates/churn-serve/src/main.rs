//! `churn-serve`: serves churn probabilities and the playbook's rule results over HTTP.

use anyhow::{bail, Context, Result};
use churn_serve::registry::{LoadLimits, Registry};
use churn_serve::store::{FeatureStore, FileStore, PgStore, PgStoreSettings};
use churn_serve::{App, Limits};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Serves the LATEST version of every model under a models directory.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The models directory (as `churn-train train --out` writes it).
    #[arg(long)]
    models: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Where `GET /v1/customers/{id}/prediction` reads a customer's features: a feature
    /// file (`churn-train features` output, read at start), or a PostgreSQL table of the
    /// same columns (postgres://USER@HOST:PORT/DB?schema=NAME&table=NAME, read per
    /// customer through a connection pool and a cache).
    #[arg(long, value_name = "FILE|URL")]
    features: Option<String>,
    /// Database connections of a postgres:// --features store, at most.
    #[arg(long, default_value_t = 4)]
    store_connections: usize,
    /// Seconds a customer's row (or its absence) read from a postgres:// store is served
    /// from the cache before it is read again.
    #[arg(long, default_value_t = 60)]
    store_ttl_secs: u64,
    /// Customers a postgres:// store's cache holds at most.
    #[arg(long, default_value_t = 100_000)]
    store_cache: usize,
    /// Longest a look-up in a postgres:// store may take (connection and query), in
    /// milliseconds; past it the request gets a 503 `store_unavailable`.
    #[arg(long, default_value_t = 2_000)]
    store_timeout_ms: u64,
    /// A file holding the bearer token every /v1 route then requires.
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    log: churn_cli::LogArgs,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most customers in one prediction request (refused while parsing).
    #[arg(long, default_value_t = 10_000)]
    max_batch: usize,
    /// Longest a /v1 request may take, in milliseconds; its work stops then.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Most requests scoring at once, more wait (default: two per core).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Time for a request head to arrive, in milliseconds, counted from the
    /// connection's opening or the end of its last response (so also the keep-alive
    /// idle timeout).
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Time for a whole request body to arrive, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// Most client connections open at once; more are closed at once (default: the
    /// descriptor limit less 64, at most 4096).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Largest request head (request line and headers) in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_header_bytes: usize,
    /// Memory for request bodies and their parsed and scored forms across all requests
    /// in flight, in MiB; a request that would overdraw it is answered 503.
    #[arg(long, default_value_t = 256)]
    memory_budget_mb: u64,
    /// Panics in a row after which /readyz answers 503.
    #[arg(long, default_value_t = 5)]
    max_panics_in_a_row: u32,
    /// Largest model.bin loaded, in MiB.
    #[arg(long, default_value_t = 1024)]
    max_model_mb: u64,
    /// How long loading a model version may take, in milliseconds, before it is given
    /// up (the old version keeps serving).
    #[arg(long, default_value_t = 60_000)]
    model_load_timeout_ms: u64,
    /// Minutes of traffic live drift is measured over (PSI per input and of the scores
    /// against the model's training profile, on /metrics); 0 turns it off.
    #[arg(long, default_value_t = 60)]
    drift_window_mins: u64,
    /// How often to check the models' LATEST files for new versions, in milliseconds
    /// (0: only on POST /v1/models/reload).
    #[arg(long, default_value_t = 2000)]
    watch_ms: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// glibc's malloc raises its mmap threshold after large blocks are freed, so request
/// bodies of a few MB end up in per-thread arenas that keep their peak: 50 concurrent
/// 3 MB batches under a 24 MB budget grew the peak RSS by 65-69 MB, against 22-24 MB with
/// the threshold fixed at 128 KiB (docs/serving.md). The server therefore runs with
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072` unless the operator set
/// `GLIBC_TUNABLES` already: it re-executes itself once with it (same process id).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    use std::os::unix::process::CommandExt;
    const TUNABLES: &str = "GLIBC_TUNABLES";
    if std::env::var_os(TUNABLES).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(TUNABLES, "glibc.malloc.mmap_threshold=131072")
        .exec();
    // `exec` returns only when it failed: carry on with malloc's defaults.
    eprintln!("warning: could not re-execute with {TUNABLES} set ({error}); memory may stay above the budget after bursts");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() {
    tune_malloc();
    let args = Args::parse();
    let format = args.log.log_format;
    if let Err(e) = start(args) {
        // The cause chain, without a backtrace: these are operator mistakes (a wrong
        // path, a port in use), not bugs.
        churn_cli::exit_with(format, &e);
    }
}

fn start(args: Args) -> Result<()> {
    churn_cli::init(args.log.log_format, "info", true);
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    rt.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let load_limits = LoadLimits {
        max_model_bytes: args.max_model_mb.saturating_mul(1024 * 1024),
        timeout: Duration::from_millis(args.model_load_timeout_ms.max(1)),
        drift_window: Duration::from_secs(args.drift_window_mins.saturating_mul(60)),
    };
    let registry =
        Registry::open(&args.models, load_limits).context("loading the models (--models)")?;
    let store = match &args.features {
        Some(url) if churn_postgres::is_postgres_url(url) => {
            let location = churn_postgres::PgLocation::parse(url)?;
            let settings = PgStoreSettings {
                connections: args.store_connections,
                ttl: Duration::from_secs(args.store_ttl_secs),
                capacity: args.store_cache,
                timeout: Duration::from_millis(args.store_timeout_ms.max(1)),
            };
            let s = PgStore::new(&location, settings)
                .map_err(|e| anyhow::anyhow!("--features {location}: {e}"))?;
            tracing::info!(store = %location, "feature store: PostgreSQL, read per customer");
            Some(FeatureStore::Postgres(Box::new(s)))
        }
        Some(p) => {
            let path = PathBuf::from(p);
            let s = FileStore::open(&path).context("loading the feature table (--features)")?;
            tracing::info!(path = %path.display(), customers = s.customers(), "feature table loaded");
            Some(FeatureStore::File(s))
        }
        None => None,
    };
    let token = match &args.token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p).with_context(|| {
                format!("reading the token file (--token-file) {}", p.display())
            })?;
            let t = t.trim();
            if t.is_empty() {
                bail!("the token file {} is empty", p.display());
            }
            Some(t.as_bytes().to_vec())
        }
        None => None,
    };
    if args.memory_budget_mb.saturating_mul(1024 * 1024) < args.max_body_bytes as u64 {
        bail!(
            "--memory-budget-mb {} cannot hold one request of --max-body-bytes {}",
            args.memory_budget_mb,
            args.max_body_bytes
        );
    }
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_batch: args.max_batch,
        timeout: Duration::from_millis(args.timeout_ms),
        concurrency: args
            .concurrency
            .unwrap_or_else(churn_serve::default_concurrency),
        header_timeout: Duration::from_millis(args.header_timeout_ms.max(1)),
        body_timeout: Duration::from_millis(args.body_timeout_ms.max(1)),
        max_connections: args
            .max_connections
            .unwrap_or_else(churn_serve::conn::default_max_connections),
        max_header_bytes: args.max_header_bytes,
        memory_budget_bytes: args.memory_budget_mb.saturating_mul(1024 * 1024),
        max_panics_in_a_row: args.max_panics_in_a_row,
    };
    let app = Arc::new(App::new(registry, store, limits, token));
    let listener = churn_serve::conn::bind(&args.addr)
        .await
        .with_context(|| format!("listening on --addr {}", args.addr))?;
    let addr = listener.local_addr()?;
    if args.watch_ms > 0 {
        churn_serve::spawn_watcher(app.clone(), Duration::from_millis(args.watch_ms));
    }
    tracing::info!(
        %addr,
        auth = app.token.is_some(),
        max_connections = app.limits.max_connections,
        concurrency = app.limits.concurrency,
        memory_budget_mb = args.memory_budget_mb,
        "listening"
    );
    // The one line on stdout: what a script (or a test) needs to reach the server.
    println!("churn-serve listening on http://{addr}");
    churn_serve::serve(listener, app, churn_serve::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
