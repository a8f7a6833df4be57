//! The same customer base stored as Parquet and as CSV (a bench binary): loading the
//! small tables and building every feature as of one date, format against format, in one
//! run, alternating so that both see the same machine.
//!
//! Data: simulated once into `target/bench-data/formats-{customers}-{months}-{format}`
//! with `CHURN_BENCH_CUSTOMERS` (default 1,000,000) and `CHURN_BENCH_MONTHS` (default 2,
//! about 93 million events at 1 M customers), or `CHURN_BENCH_DIRS=DIR_A,DIR_B,...` for
//! existing directories. `CHURN_BENCH_RUNS` (default 3) runs per directory; medians are
//! printed. The peer is `benches/peer_features.py` (DuckDB) on the Parquet directory.

mod common;

use common::{env, peak_rss_mb};

use churn_features::features::{self, FeatureConfig};
use churn_features::time;
use churn_features::Dataset;
use churn_sim::{OutputFormat, SimConfig};
use std::path::PathBuf;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn simulated(customers: u64, months: u32, format: OutputFormat, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/bench-data/formats-{customers}-{months}-{name}"
    ));
    if !dir.join(".complete").is_file() {
        eprintln!(
            "generating {customers} customers x {months} months as {name} into {}",
            dir.display()
        );
        let cfg = SimConfig {
            customers,
            months,
            format,
            ..Default::default()
        };
        churn_sim::generate(&cfg, &dir, |_, _| {}).expect("generate bench data");
        std::fs::write(dir.join(".complete"), "").expect("mark complete");
    }
    dir
}

fn main() {
    let dirs: Vec<PathBuf> = match std::env::var("CHURN_BENCH_DIRS") {
        Ok(list) => list.split(',').map(PathBuf::from).collect(),
        Err(_) => {
            let customers = env("CHURN_BENCH_CUSTOMERS", 1_000_000);
            let months = env("CHURN_BENCH_MONTHS", 2) as u32;
            vec![
                simulated(customers, months, OutputFormat::Parquet, "parquet"),
                simulated(customers, months, OutputFormat::Csv, "csv"),
            ]
        }
    };
    let runs = env("CHURN_BENCH_RUNS", 3).max(1);
    let cfg = FeatureConfig::default();
    let mut load = vec![Vec::new(); dirs.len()];
    let mut build = vec![Vec::new(); dirs.len()];
    let mut as_of = None;
    let mut shape = vec![String::new(); dirs.len()];
    for _ in 0..runs {
        for (k, dir) in dirs.iter().enumerate() {
            let t = Instant::now();
            let ds = Dataset::open(dir).expect("open data");
            load[k].push(t.elapsed().as_secs_f64());
            // The end of the data: the date a nightly scoring job would use.
            let date = *as_of.get_or_insert_with(|| ds.date_range().1);
            let events = std::sync::atomic::AtomicU64::new(0);
            let table = features::build_with_progress(&ds, &[date], &cfg, &|n| {
                events.store(n, std::sync::atomic::Ordering::Relaxed)
            })
            .expect("features");
            build[k].push(t.elapsed().as_secs_f64());
            shape[k] = format!(
                "{} customers ({} active), {} events",
                ds.customers.len(),
                table.len(),
                events.into_inner()
            );
        }
    }
    let as_of = as_of.expect("at least one run");
    println!(
        "features as of {}, medians of {runs} runs:",
        time::format_date(as_of)
    );
    for (k, dir) in dirs.iter().enumerate() {
        let files: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default();
        println!(
            "  {}: load small tables {:.2}s, load + every feature {:.2}s  [{}; {}]",
            dir.display(),
            median(load[k].clone()),
            median(build[k].clone()),
            shape[k],
            files.join(" ")
        );
    }
    println!("peak memory {:.0} MB", peak_rss_mb());
}
