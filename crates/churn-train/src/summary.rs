//! `churn-train summary`: what a data directory holds and how its business is doing.

use anyhow::{Context, Result};
use churn_cli::data::{DataSource, TablesArg};
use churn_features::dataset::Vocabulary;
use churn_kpis::{summary, KpiOptions};

pub fn run(
    data: &DataSource,
    tables: &TablesArg,
    as_of: Option<churn_features::time::Day>,
    json: bool,
) -> Result<()> {
    let ds = data.open(tables.tables.as_deref())?.dataset;
    let mut vocab = Vocabulary::default();
    let mut events = 0u64;
    let event_orphans = ds
        .for_each_event_batch(&mut vocab, |b| {
            events += b.len() as u64;
            Ok(())
        })
        .context("reading events")?;
    let kpis = summary(
        &ds,
        KpiOptions {
            as_of,
            ..Default::default()
        },
    );
    let count = |f: fn(&churn_features::dataset::Customer) -> usize| {
        ds.customers.iter().map(f).sum::<usize>()
    };
    let mut orphans = ds.orphans.clone();
    let event_orphans_seen = event_orphans.rows > 0;
    if event_orphans_seen {
        orphans.push(event_orphans);
    }
    // Sorted: ids follow the order decoders met the names, which is not the file's.
    let mut event_types: Vec<&str> = (0..vocab.event_types.len() as u32)
        .map(|i| vocab.event_types.name(i))
        .collect();
    event_types.sort_unstable();
    if json {
        let out = serde_json::json!({
            "customers": ds.customers.len(),
            "subscriptions": count(|c| c.subscriptions.len()),
            "events": events,
            "event_types": event_types,
            "tickets": count(|c| c.tickets.len()),
            "payments": count(|c| c.payments.len()),
            "surveys": count(|c| c.surveys.len()),
            "attributes": ds.attributes.iter().map(|a| &a.name).collect::<Vec<_>>(),
            "orphans": orphans.iter().map(|o| serde_json::json!({"table": o.table, "rows": o.rows, "first_ids": o.first_ids})).collect::<Vec<_>>(),
            "kpis": kpis,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    // The small tables' orphans were reported when the data was opened.
    if event_orphans_seen {
        tracing::warn!("{}", orphans.last().expect("pushed above"));
    }
    match data {
        DataSource::Dir(dir) => println!("data directory {}", dir.display()),
        DataSource::Postgres(location) => println!("database {location}"),
    }
    println!("  customers      {:>10}", ds.customers.len());
    println!("  subscriptions  {:>10}", count(|c| c.subscriptions.len()));
    println!(
        "  events         {:>10}  ({} types)",
        events,
        vocab.event_types.len()
    );
    println!("  tickets        {:>10}", count(|c| c.tickets.len()));
    println!("  payments       {:>10}", count(|c| c.payments.len()));
    println!("  surveys        {:>10}", count(|c| c.surveys.len()));
    println!(
        "  attributes     {}",
        ds.attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("window {} to {}", kpis.window_start, kpis.as_of);
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1} %"));
    println!(
        "  monthly churn      {:.2} % (mean of {} months)",
        kpis.monthly_churn_pct, kpis.churn_months
    );
    println!(
        "  retention m1/m3/m6 {} / {} / {}",
        opt(kpis.retention_m1_pct),
        opt(kpis.retention_m3_pct),
        opt(kpis.retention_m6_pct)
    );
    println!("  active customers   {}", kpis.active_customers);
    println!("  MRR                ${:.0}", kpis.mrr);
    println!("  ARPA               ${:.2}", kpis.arpa);
    println!("  CSM coverage       {}", opt(kpis.csm_coverage_pct));
    Ok(())
}
