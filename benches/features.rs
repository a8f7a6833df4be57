//! Feature building at scale (a bench binary): features as of one date, and the training
//! examples of every monthly observation date in one pass.
//!
//! Data: `CHURN_BENCH_DATA=DIR` (a data directory), or else a simulated one generated
//! once into `target/bench-data/` with `CHURN_BENCH_CUSTOMERS` (default 1,000,000) and
//! `CHURN_BENCH_MONTHS` (default 5, about 100 million events at 1M customers).
//! `CHURN_BENCH_RUNS` (default 3) runs are timed; the median is printed.

mod common;

use common::{env, peak_rss_mb};

use churn_features::features::{self, FeatureConfig};
use churn_features::labels;
use churn_features::time;
use churn_features::Dataset;
use std::path::PathBuf;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = match std::env::var("CHURN_BENCH_DATA") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            let customers = env("CHURN_BENCH_CUSTOMERS", 1_000_000);
            let months = env("CHURN_BENCH_MONTHS", 5) as u32;
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("target/bench-data/sim-{customers}-{months}"));
            if !dir.join("subscriptions.csv").is_file() {
                eprintln!(
                    "generating {customers} customers x {months} months into {}",
                    dir.display()
                );
                let cfg = churn_sim::SimConfig {
                    customers,
                    months,
                    ..Default::default()
                };
                churn_sim::generate(&cfg, &dir, |_, _| {}).expect("generate bench data");
            }
            dir
        }
    };
    let runs = env("CHURN_BENCH_RUNS", 3).max(1);
    let started = Instant::now();
    let ds = Dataset::open(&dir).expect("open data");
    let load = started.elapsed().as_secs_f64();
    let dates = labels::observation_dates(&ds, 30);
    // The latest observation date, or the end of the data when it is too short for one.
    let as_of = dates.last().copied().unwrap_or_else(|| ds.date_range().1);
    let cfg = FeatureConfig::default();
    let events = std::sync::atomic::AtomicU64::new(0);
    let mut one = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let table = features::build_with_progress(&ds, &[as_of], &cfg, &|n| {
            events.store(n, std::sync::atomic::Ordering::Relaxed)
        })
        .expect("features");
        one.push(t.elapsed().as_secs_f64());
        rows = table.len();
    }
    let one = median(one);
    let events = events.into_inner();
    println!(
        "features as of {}: {} customers ({rows} active), {events} events: median {one:.2}s over {runs} runs ({:.1} M events/s); loading the small tables {load:.2}s",
        time::format_date(as_of),
        ds.customers.len(),
        events as f64 / one / 1e6
    );
    if dates.is_empty() {
        println!("no observation date leaves a full horizon: training examples not measured");
        println!("peak memory {:.0} MB", peak_rss_mb());
        return;
    }
    let t = Instant::now();
    let ex = labels::examples(&ds, &dates, 30, &cfg, &|_| {}).expect("examples");
    let all = t.elapsed().as_secs_f64();
    println!(
        "training examples for {} observation dates: {} rows in {all:.2}s ({:.2}x one date)",
        dates.len(),
        ex.labels.len(),
        all / one
    );
    println!("peak memory {:.0} MB", peak_rss_mb());
}
