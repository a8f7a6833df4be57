//! `churn-serve`: serves churn probabilities and the playbook's rule results over HTTP.

use anyhow::{bail, Context, Result};
use churn_serve::registry::Registry;
use churn_serve::store::FeatureStore;
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
    /// A feature table (`churn-train features` output) to serve
    /// `GET /v1/customers/{id}/prediction` from.
    #[arg(long)]
    features: Option<PathBuf>,
    /// A file holding the bearer token every /v1 route then requires.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most customers in one prediction request.
    #[arg(long, default_value_t = 10_000)]
    max_batch: usize,
    /// Longest a /v1 request may take, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Most /v1 requests handled at once (more wait).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// How often to check the models' LATEST files for new versions, in milliseconds
    /// (0: only on POST /v1/models/reload).
    #[arg(long, default_value_t = 2000)]
    watch_ms: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    rt.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let registry = Registry::open(&args.models).map_err(anyhow::Error::msg)?;
    let store = match &args.features {
        Some(p) => {
            let s = FeatureStore::open(p)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("loading the feature table {}", p.display()))?;
            tracing::info!(path = %p.display(), customers = s.customers(), "feature table loaded");
            Some(s)
        }
        None => None,
    };
    let token = match &args.token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("reading the token file {}", p.display()))?;
            let t = t.trim();
            if t.is_empty() {
                bail!("the token file {} is empty", p.display());
            }
            Some(t.as_bytes().to_vec())
        }
        None => None,
    };
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_batch: args.max_batch,
        timeout: Duration::from_millis(args.timeout_ms),
        concurrency: args.concurrency,
    };
    let app = Arc::new(App::new(registry, store, limits, token));
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr()?;
    if args.watch_ms > 0 {
        churn_serve::spawn_watcher(app.clone(), Duration::from_millis(args.watch_ms));
    }
    tracing::info!(%addr, auth = app.token.is_some(), "listening");
    // The one line on stdout: what a script (or a test) needs to reach the server.
    println!("churn-serve listening on http://{addr}");
    churn_serve::serve(listener, app, churn_serve::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
