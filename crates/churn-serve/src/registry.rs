//! The models being served: the `LATEST` version of every model under the models
//! directory, each behind an atomic pointer. A new version is loaded and checked off the
//! request path, then swapped in; requests holding the old one finish on it. Every load,
//! swap and failure is kept in a history with its time.

use arc_swap::ArcSwap;
use chrono::{DateTime, SecondsFormat, Utc};
use churn_model::artifact;
use churn_scoring::Scorer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many history entries are kept.
const HISTORY: usize = 1000;

/// One loaded model version.
#[derive(Debug)]
pub struct Loaded {
    pub scorer: Scorer,
    /// The version directory it came from.
    pub dir: PathBuf,
    pub loaded_at: DateTime<Utc>,
    /// The `overall` metrics and validation scheme of its `report.json`, when present.
    pub metrics: Option<serde_json::Value>,
}

impl Loaded {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.scorer.artifact().name
    }

    /// The model's version.
    pub fn version(&self) -> &str {
        &self.scorer.artifact().version
    }
}

/// A model name with the version it serves.
#[derive(Debug)]
pub struct Slot {
    current: ArcSwap<Loaded>,
    /// The last `LATEST` content tried, so the watcher does not retry a broken version
    /// on every tick (an explicit reload does).
    last_tried: Mutex<String>,
}

impl Slot {
    /// The version serving now.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }
}

/// What happened to a model, for `GET /v1/models` and the logs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// RFC 3339 time.
    pub time: String,
    pub model: String,
    pub version: String,
    /// `loaded` (at start), `swapped` (replaced the serving version) or `failed`.
    pub event: String,
    pub message: String,
}

/// The outcome of reloading one model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    pub model: String,
    /// The version on disk (`LATEST`).
    pub version: String,
    /// `swapped`, `added`, `unchanged` or `failed`.
    pub outcome: String,
    /// The version serving after the reload (`null` when none).
    pub serving: Option<String>,
    pub message: String,
}

/// Every model being served.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    slots: ArcSwap<BTreeMap<String, Arc<Slot>>>,
    history: Mutex<Vec<HistoryEntry>>,
    /// Serialises reloads (the watcher and `POST /v1/models/reload`).
    reloading: Mutex<()>,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Loads the version `LATEST` names in `model_dir`.
fn load_version(model_dir: &Path) -> Result<Loaded, String> {
    let (a, dir) = artifact::load(model_dir).map_err(|e| e.to_string())?;
    let metrics = std::fs::read(dir.join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|r| {
            serde_json::json!({
                "chosen": r.get("chosen"),
                "validation": r.get("validation"),
                "overall": r.get("overall"),
            })
        });
    Ok(Loaded {
        scorer: Scorer::new(a),
        dir,
        loaded_at: now(),
        metrics,
    })
}

fn latest_of(model_dir: &Path) -> Option<String> {
    std::fs::read_to_string(model_dir.join("LATEST"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Model directories (those with a `LATEST` file) under `root`, by name.
fn model_dirs(root: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let path = entry.path();
        if path.join("LATEST").is_file() {
            out.insert(entry.file_name().to_string_lossy().into_owned(), path);
        }
    }
    Ok(out)
}

impl Registry {
    /// Loads every model under `root`; fails, naming each problem, when none loads.
    pub fn open(root: &Path) -> Result<Registry, String> {
        let dirs = model_dirs(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let registry = Registry {
            root: root.to_path_buf(),
            slots: ArcSwap::from_pointee(BTreeMap::new()),
            history: Mutex::new(Vec::new()),
            reloading: Mutex::new(()),
        };
        let mut slots = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, dir) in dirs {
            let latest = latest_of(&dir).unwrap_or_default();
            match load_version(&dir) {
                Ok(loaded) => {
                    registry.record(
                        &name,
                        loaded.version(),
                        "loaded",
                        &loaded.dir.display().to_string(),
                    );
                    slots.insert(
                        name,
                        Arc::new(Slot {
                            current: ArcSwap::from_pointee(loaded),
                            last_tried: Mutex::new(latest),
                        }),
                    );
                }
                Err(e) => {
                    registry.record(&name, &latest, "failed", &e);
                    problems.push(e);
                }
            }
        }
        if slots.is_empty() {
            let why = if problems.is_empty() {
                "no model directory (a folder with a LATEST file, as `churn-train train --out` writes) found".to_string()
            } else {
                problems.join("; ")
            };
            return Err(format!("no valid model under {}: {why}", root.display()));
        }
        registry.slots.store(Arc::new(slots));
        Ok(registry)
    }

    fn record(&self, model: &str, version: &str, event: &str, message: &str) {
        match event {
            "failed" => tracing::error!(
                model,
                version,
                detail = message,
                "model version failed to load"
            ),
            _ => tracing::info!(
                model,
                version,
                event,
                detail = message,
                "model version serving"
            ),
        }
        let mut h = self.history.lock().expect("history lock");
        if h.len() == HISTORY {
            h.remove(0);
        }
        h.push(HistoryEntry {
            time: rfc3339(now()),
            model: model.into(),
            version: version.into(),
            event: event.into(),
            message: message.into(),
        });
    }

    /// The models being served, by name.
    pub fn slots(&self) -> Arc<BTreeMap<String, Arc<Slot>>> {
        self.slots.load_full()
    }

    /// The model `name` serves now, or the only model when `name` is `None`.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<Loaded>, String> {
        let slots = self.slots.load();
        match name {
            Some(n) => slots.get(n).map(|s| s.current()).ok_or_else(|| {
                format!(
                    "unknown model `{n}`; serving: {}",
                    slots.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }),
            None if slots.len() == 1 => Ok(slots.values().next().expect("one").current()),
            None => Err(format!(
                "several models are served ({}); name one in `model`",
                slots.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The load and swap history, oldest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history.lock().expect("history lock").clone()
    }

    /// Loads every model whose `LATEST` differs from what it serves. With `retry_failed`
    /// a version that failed before is tried again (explicit reloads); the watcher does
    /// not. Blocking: call off the async runtime.
    pub fn reload(&self, retry_failed: bool, on_attempt: impl Fn(bool)) -> Vec<ReloadOutcome> {
        let _guard = self.reloading.lock().expect("reload lock");
        let dirs = match model_dirs(&self.root) {
            Ok(d) => d,
            Err(e) => {
                return vec![ReloadOutcome {
                    model: String::new(),
                    version: String::new(),
                    outcome: "failed".into(),
                    serving: None,
                    message: format!("{}: {e}", self.root.display()),
                }]
            }
        };
        let current = self.slots.load_full();
        let mut next = (*current).clone();
        let mut out = Vec::new();
        let mut added = false;
        for (name, dir) in dirs {
            let latest = latest_of(&dir).unwrap_or_default();
            let slot = current.get(&name);
            if let Some(slot) = slot {
                let serving = slot.current();
                let mut tried = slot.last_tried.lock().expect("slot lock");
                if serving.version() == latest || (!retry_failed && *tried == latest) {
                    out.push(ReloadOutcome {
                        model: name,
                        version: latest,
                        outcome: "unchanged".into(),
                        serving: Some(serving.version().to_string()),
                        message: String::new(),
                    });
                    continue;
                }
                *tried = latest.clone();
            }
            let result = load_version(&dir);
            on_attempt(result.is_ok());
            match (result, slot) {
                (Ok(loaded), Some(slot)) => {
                    let old = slot.current();
                    let message = format!("replaced {} ({})", old.version(), loaded.dir.display());
                    let version = loaded.version().to_string();
                    slot.current.store(Arc::new(loaded));
                    self.record(&name, &version, "swapped", &message);
                    out.push(ReloadOutcome {
                        model: name,
                        version: version.clone(),
                        outcome: "swapped".into(),
                        serving: Some(version),
                        message,
                    });
                }
                (Ok(loaded), None) => {
                    let version = loaded.version().to_string();
                    let message = loaded.dir.display().to_string();
                    self.record(&name, &version, "loaded", &message);
                    next.insert(
                        name.clone(),
                        Arc::new(Slot {
                            current: ArcSwap::from_pointee(loaded),
                            last_tried: Mutex::new(latest),
                        }),
                    );
                    added = true;
                    out.push(ReloadOutcome {
                        model: name,
                        version: version.clone(),
                        outcome: "added".into(),
                        serving: Some(version),
                        message,
                    });
                }
                (Err(e), slot) => {
                    self.record(&name, &latest, "failed", &e);
                    let serving = slot.map(|s| s.current().version().to_string());
                    let message = match &serving {
                        Some(v) => format!("{e}; version {v} keeps serving"),
                        None => e,
                    };
                    out.push(ReloadOutcome {
                        model: name,
                        version: latest,
                        outcome: "failed".into(),
                        serving,
                        message,
                    });
                }
            }
        }
        if added {
            self.slots.store(Arc::new(next));
        }
        out
    }
}
