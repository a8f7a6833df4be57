//! Helpers shared by the bench binaries.

/// A whole-number setting from the environment, or `default`.
#[allow(dead_code)] // not every bench binary is configured by the environment
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process so far, in MB (Linux `VmHWM`).
#[allow(dead_code)] // not every bench binary reports memory
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A `POST /v1/predict` body of the first `n` rows of `table` (cycled), each customer
/// with its id and every feature of the table (null where missing).
#[allow(dead_code)] // only the serving benches send requests
pub fn request_body(table: &churn_features::features::FeatureTable, n: usize) -> Vec<u8> {
    use churn_features::dataset::Values;
    use serde_json::{json, Map, Value};
    let customers: Vec<Value> = (0..n)
        .map(|k| {
            let r = k % table.len();
            let mut features = Map::new();
            for (info, column) in table.info.iter().zip(&table.columns) {
                let v = match column {
                    Values::Numeric(v) => v[r].map_or(Value::Null, |x| json!(x)),
                    Values::Categorical(v) => v[r].as_ref().map_or(Value::Null, |s| json!(s)),
                };
                features.insert(info.name.clone(), v);
            }
            json!({"customer_id": table.customer_ids[r], "features": features})
        })
        .collect();
    serde_json::to_vec(&json!({ "customers": customers })).unwrap()
}
