//! Simulator throughput (a bench binary): `CHURN_BENCH_CUSTOMERS` (default 1,000,000)
//! customers over `CHURN_BENCH_MONTHS` (default 24) months into a temp dir, which is
//! removed afterwards. Prints time, rows and peak memory.

mod common;

use common::{env, peak_rss_mb};

use std::time::Instant;

fn main() {
    let customers = env("CHURN_BENCH_CUSTOMERS", 1_000_000);
    let months = env("CHURN_BENCH_MONTHS", 24) as u32;
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = churn_sim::SimConfig {
        customers,
        months,
        ..Default::default()
    };
    let t = Instant::now();
    let stats = churn_sim::generate(&cfg, dir.path(), |_, _| {}).expect("generate");
    let secs = t.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "simulated {customers} customers x {months} months in {secs:.1}s: {} customers written, {} events ({:.1} M events/s), {:.2} GB on disk; peak memory {:.0} MB",
        stats.customers,
        stats.events,
        stats.events as f64 / secs / 1e6,
        bytes as f64 / 1e9,
        peak_rss_mb()
    );
}
