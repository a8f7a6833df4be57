//! The real `churn-serve` binary on an ephemeral loopback port, with real model
//! artifacts trained by the product's code, for the end-to-end test binaries.
#![allow(dead_code)] // each test binary uses its own part

use churn_features::dataset::Values;
use churn_features::features::FeatureTable;
use churn_features::time::format_date;
use churn_model::model::ModelKind;
use churn_testkit::http::Client;
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running `churn-serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(models: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_churn-serve"))
            .arg("--models")
            .arg(models)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start churn-serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("churn-serve listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "no address line: {line:?}; stderr: {}",
                    stderr.lock().unwrap()
                )
            })
            .parse()
            .unwrap();
        Server {
            child,
            addr,
            stderr,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulated data set, a model saved as version v1 and its latest feature rows.
pub struct Setup {
    pub _data: tempfile::TempDir,
    pub models: tempfile::TempDir,
    pub fx: churn_testkit::Fixture,
    pub table: FeatureTable,
    pub features_file: PathBuf,
    pub v1: churn_model::artifact::Artifact,
}

pub fn setup() -> Setup {
    let data = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(data.path(), 300, 11);
    let models = tempfile::tempdir().unwrap();
    let v1 = churn_testkit::train(&fx, ModelKind::Logistic, "churn", "v1");
    churn_testkit::save(models.path(), &v1);
    let (_, table) = churn_testkit::latest_rows(&fx);
    let features_file = data.path().join("features.csv");
    churn_features::features::write_table(&table, None, &features_file).unwrap();
    Setup {
        _data: data,
        models,
        fx,
        table,
        features_file,
        v1,
    }
}

/// Row `r` of a feature table as the JSON object of its file row (nulls as null).
pub fn row_json(t: &FeatureTable, r: usize) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("customer_id".into(), json!(t.customer_ids[r]));
    m.insert("as_of".into(), json!(t.as_of[r].map(format_date)));
    for (info, col) in t.info.iter().zip(&t.columns) {
        let v = match col {
            Values::Numeric(v) => v[r].map_or(Value::Null, |x| json!(x)),
            Values::Categorical(v) => v[r].as_ref().map_or(Value::Null, |s| json!(s)),
        };
        m.insert(info.name.clone(), v);
    }
    m
}

pub fn predict_body(rows: &[Map<String, Value>]) -> Vec<u8> {
    let customers: Vec<Value> = rows
        .iter()
        .map(|f| json!({"customer_id": f["customer_id"], "features": f}))
        .collect();
    serde_json::to_vec(&json!({ "customers": customers })).unwrap()
}

/// A memory figure of the server's process from `/proc/PID/status`, in bytes (`VmHWM`
/// for the peak resident memory, `VmRSS` for the current one).
pub fn memory(server: &Server, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The server's peak resident memory so far, in bytes.
pub fn peak_rss(server: &Server) -> Option<u64> {
    memory(server, "VmHWM:")
}

/// The value of a sample line of the Prometheus text, e.g. `churn_panics_total`.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}
