//! The models being served: the `LATEST` version of every model under the models
//! directory, each behind an atomic pointer. A new version is loaded and checked off the
//! request path, then swapped in; requests holding the old one finish on it. Every load,
//! swap and failure is kept in a history with its time.

use arc_swap::ArcSwap;
use chrono::{DateTime, SecondsFormat, Utc};
use churn_model::artifact;
use churn_model::train::ReportHeadline;
use churn_scoring::Scorer;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    pub metrics: Option<ReportHeadline>,
    /// The drift of the traffic it served (none without a profile or a window).
    pub drift: Option<crate::drift::LiveDrift>,
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

/// What happened to a model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelEvent {
    /// Loaded when the server started.
    Loaded,
    /// A new model directory appeared and its version is serving.
    Added,
    /// Replaced the serving version.
    Swapped,
    /// `LATEST` names the serving version already.
    Unchanged,
    /// Could not be loaded or checked; the previous version (if any) keeps serving.
    Failed,
}

impl ModelEvent {
    /// The word in the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelEvent::Loaded => "loaded",
            ModelEvent::Added => "added",
            ModelEvent::Swapped => "swapped",
            ModelEvent::Unchanged => "unchanged",
            ModelEvent::Failed => "failed",
        }
    }
}

/// A lock whose holder may have panicked: the data behind the registry's and the
/// metrics' locks (lists and counters) stays usable, so a panic must not make every
/// later request panic too.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What happened to a model, for `GET /v1/models` and the logs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// RFC 3339 time.
    pub time: String,
    pub model: String,
    pub version: String,
    /// `loaded` (at start), `added`, `swapped` (replaced the serving version) or `failed`.
    pub event: ModelEvent,
    pub message: String,
}

/// The outcome of reloading one model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    pub model: String,
    /// The version on disk (`LATEST`).
    pub version: String,
    /// `swapped`, `added`, `unchanged` or `failed`.
    pub outcome: ModelEvent,
    /// The version serving after the reload (`null` when none).
    pub serving: Option<String>,
    pub message: String,
}

/// Limits on loading a model version.
#[derive(Debug, Clone)]
pub struct LoadLimits {
    /// The largest `model.bin` read.
    pub max_model_bytes: u64,
    /// How long a load (or a listing of the models directory) may take before it is
    /// given up; the read goes on in the background, and the same version is not tried
    /// again until it ends.
    pub timeout: Duration,
    /// The sliding window live drift is measured over (zero: not measured).
    pub drift_window: Duration,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_model_bytes: 1 << 30,
            timeout: Duration::from_secs(60),
            drift_window: Duration::from_secs(3600),
        }
    }
}

/// Why a request's model could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelChoiceError {
    /// The request named a model that is not served (404).
    #[error("unknown model `{name}`; serving: {serving}")]
    Unknown { name: String, serving: String },
    /// Several models are served and the request named none (a client mistake, 400).
    #[error("several models are served ({serving}); name one in `model`")]
    Unnamed { serving: String },
}

/// Every model being served.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    limits: LoadLimits,
    slots: ArcSwap<BTreeMap<String, Arc<Slot>>>,
    history: Mutex<Vec<HistoryEntry>>,
    /// Loads running now, by model and version, with their start: a load that hangs (a
    /// stuck network mount) is not started a second time, and holds no lock.
    loading: Arc<Mutex<HashMap<(String, String), Instant>>>,
    /// A listing of the models directory is running.
    scanning: Arc<AtomicBool>,
    /// Serialises the rare change of the set of models (a new model directory).
    adding: Mutex<()>,
}

/// Runs `work` on a thread of its own and waits at most `timeout` for it; `None` when
/// it did not finish in time (it goes on, and its result is dropped).
fn within<T: Send + 'static>(
    timeout: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("churn-model-load".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .ok()?;
    rx.recv_timeout(timeout).ok()
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Why a model version could not be loaded (the version serving, if any, keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The artifact is missing, foreign, truncated, corrupt, too large or inconsistent.
    #[error(transparent)]
    Artifact(#[from] artifact::ArtifactError),
    #[error("a load of this version started {seconds} s ago has not finished (a hung read?); it is not started again")]
    StillLoading { seconds: u64 },
    #[error("loading took longer than {millis} ms and was given up")]
    TimedOut { millis: u128 },
}

/// Why the registry could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}: {source}", root.display())]
    Unreadable {
        root: PathBuf,
        source: std::io::Error,
    },
    #[error("no valid model under {}: no model directory (a folder with a LATEST file, as `churn-train train --out` writes) found", root.display())]
    NoModels { root: PathBuf },
    #[error("no valid model under {}: {}", root.display(), join(problems))]
    NoneLoaded {
        root: PathBuf,
        problems: Vec<LoadError>,
    },
}

fn join(problems: &[LoadError]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// Loads the version `LATEST` names in `model_dir`.
fn load_version(model_dir: &Path, limits: &LoadLimits) -> Result<Loaded, LoadError> {
    let (a, dir) = artifact::load_at_most(model_dir, limits.max_model_bytes)?;
    let metrics = ReportHeadline::read(&dir);
    let scorer = Scorer::new(a);
    let drift = crate::drift::LiveDrift::new(&scorer, limits.drift_window);
    Ok(Loaded {
        scorer,
        dir,
        loaded_at: now(),
        metrics,
        drift,
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
    pub fn open(root: &Path, limits: LoadLimits) -> Result<Registry, RegistryError> {
        let dirs = model_dirs(root).map_err(|source| RegistryError::Unreadable {
            root: root.to_path_buf(),
            source,
        })?;
        let registry = Registry {
            root: root.to_path_buf(),
            limits,
            slots: ArcSwap::from_pointee(BTreeMap::new()),
            history: Mutex::new(Vec::new()),
            loading: Arc::new(Mutex::new(HashMap::new())),
            scanning: Arc::new(AtomicBool::new(false)),
            adding: Mutex::new(()),
        };
        let mut slots = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, dir) in dirs {
            let latest = latest_of(&dir).unwrap_or_default();
            match registry.load(&name, &latest, &dir) {
                Ok(loaded) => {
                    registry.record(
                        &name,
                        loaded.version(),
                        ModelEvent::Loaded,
                        &registry.relative(&loaded.dir),
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
                    registry.record(&name, &latest, ModelEvent::Failed, &e.to_string());
                    problems.push(e);
                }
            }
        }
        if slots.is_empty() {
            let root = root.to_path_buf();
            return Err(if problems.is_empty() {
                RegistryError::NoModels { root }
            } else {
                RegistryError::NoneLoaded { root, problems }
            });
        }
        registry.slots.store(Arc::new(slots));
        Ok(registry)
    }

    /// A path inside the models directory, relative to it (answers name no server
    /// paths).
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// A message with the models directory's path taken out.
    fn without_root(&self, message: &str) -> String {
        let root = self.root.display().to_string();
        let root = root.trim_end_matches('/');
        if root.is_empty() {
            message.to_string()
        } else {
            message.replace(&format!("{root}/"), "").replace(root, ".")
        }
    }

    /// Loads `version` of model `name` from `dir` on a thread of its own, within the
    /// load timeout, unless a load of that version is still running.
    fn load(&self, name: &str, version: &str, dir: &Path) -> Result<Loaded, LoadError> {
        let key = (name.to_string(), version.to_string());
        {
            let mut loading = lock(&self.loading);
            if let Some(started) = loading.get(&key) {
                return Err(LoadError::StillLoading {
                    seconds: started.elapsed().as_secs(),
                });
            }
            loading.insert(key.clone(), Instant::now());
        }
        let (dir, limits, loading) = (dir.to_path_buf(), self.limits.clone(), self.loading.clone());
        let timeout = self.limits.timeout;
        within(timeout, move || {
            let loaded = load_version(&dir, &limits);
            lock(&loading).remove(&key);
            loaded
        })
        .unwrap_or_else(|| {
            Err(LoadError::TimedOut {
                millis: timeout.as_millis(),
            })
        })
    }

    fn record(&self, model: &str, version: &str, event: ModelEvent, message: &str) {
        match event {
            ModelEvent::Failed => tracing::error!(
                model,
                version,
                detail = message,
                "model version failed to load"
            ),
            _ => tracing::info!(
                model,
                version,
                event = event.as_str(),
                detail = message,
                "model version serving"
            ),
        }
        let mut h = lock(&self.history);
        if h.len() == HISTORY {
            h.remove(0);
        }
        h.push(HistoryEntry {
            time: rfc3339(now()),
            model: model.into(),
            version: version.into(),
            event,
            message: self.without_root(message),
        });
    }

    /// The models being served, by name.
    pub fn slots(&self) -> Arc<BTreeMap<String, Arc<Slot>>> {
        self.slots.load_full()
    }

    /// The model `name` serves now, or the only model when `name` is `None`.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<Loaded>, ModelChoiceError> {
        let slots = self.slots.load();
        let serving = || slots.keys().cloned().collect::<Vec<_>>().join(", ");
        match name {
            Some(n) => slots
                .get(n)
                .map(|s| s.current())
                .ok_or_else(|| ModelChoiceError::Unknown {
                    name: n.to_string(),
                    serving: serving(),
                }),
            None if slots.len() == 1 => Ok(slots.values().next().expect("one").current()),
            None => Err(ModelChoiceError::Unnamed { serving: serving() }),
        }
    }

    /// The load and swap history, oldest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        lock(&self.history).clone()
    }

    /// Waits (up to the load timeout) for a load of `version` started by another reload
    /// to finish and be swapped in; false when it failed or is still running.
    fn concurrent_load_swapped(&self, slot: &Slot, name: &str, version: &str) -> bool {
        let key = (name.to_string(), version.to_string());
        let deadline = Instant::now() + self.limits.timeout;
        let mut finished_at: Option<Instant> = None;
        loop {
            if slot.current().version() == version {
                return true;
            }
            let running = lock(&self.loading).contains_key(&key);
            let now = Instant::now();
            match (running, finished_at) {
                (true, _) => finished_at = None,
                // The other reload swaps right after its load ends: a moment to do so.
                (false, None) => finished_at = Some(now),
                (false, Some(t)) if now.duration_since(t) > Duration::from_millis(500) => {
                    return false
                }
                (false, Some(_)) => {}
            }
            if now > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Loads every model whose `LATEST` differs from what it serves. With `retry_failed`
    /// a version that failed before is tried again (explicit reloads); the watcher does
    /// not. A listing or a load of the same version that another reload (the watcher's)
    /// is running is waited for and shared, not reported as a failure. Blocking (call
    /// off the async runtime), but bounded by the load timeout for each of those waits
    /// and each load, and holding no lock while reading.
    pub fn reload(&self, retry_failed: bool, on_attempt: impl Fn(bool)) -> Vec<ReloadOutcome> {
        let failed = |message: String| {
            vec![ReloadOutcome {
                model: String::new(),
                version: String::new(),
                outcome: ModelEvent::Failed,
                serving: None,
                message,
            }]
        };
        // A listing already running (the watcher's, usually: it takes milliseconds) is
        // waited for, up to the load timeout, rather than reported as a failure.
        let waiting_since = Instant::now();
        while self.scanning.swap(true, Ordering::AcqRel) {
            if waiting_since.elapsed() > self.limits.timeout {
                return failed("a listing of the models directory is still running".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (root, scanning) = (self.root.clone(), self.scanning.clone());
        let scanned = within(self.limits.timeout, move || {
            let listed = model_dirs(&root).map(|dirs| {
                dirs.into_iter()
                    .map(|(name, dir)| {
                        let latest = latest_of(&dir).unwrap_or_default();
                        (name, dir, latest)
                    })
                    .collect::<Vec<_>>()
            });
            scanning.store(false, Ordering::Release);
            listed
        });
        let dirs = match scanned {
            Some(Ok(d)) => d,
            Some(Err(e)) => return failed(format!("the models directory: {e}")),
            None => {
                return failed(format!(
                    "listing the models directory took longer than {} ms",
                    self.limits.timeout.as_millis()
                ))
            }
        };
        let current = self.slots.load_full();
        let mut added = Vec::new();
        let mut out = Vec::new();
        for (name, dir, latest) in dirs {
            let slot = current.get(&name);
            if let Some(slot) = slot {
                let serving = slot.current();
                let mut tried = lock(&slot.last_tried);
                if serving.version() == latest || (!retry_failed && *tried == latest) {
                    out.push(ReloadOutcome {
                        model: name,
                        version: latest,
                        outcome: ModelEvent::Unchanged,
                        serving: Some(serving.version().to_string()),
                        message: String::new(),
                    });
                    continue;
                }
                *tried = latest.clone();
            }
            let result = match (self.load(&name, &latest, &dir), slot) {
                // Another reload (the watcher and an explicit one) is loading this very
                // version: its outcome is this one's too.
                (Err(LoadError::StillLoading { .. }), Some(slot))
                    if self.concurrent_load_swapped(slot, &name, &latest) =>
                {
                    out.push(ReloadOutcome {
                        model: name,
                        version: latest.clone(),
                        outcome: ModelEvent::Unchanged,
                        serving: Some(latest),
                        message: "loaded by a concurrent reload".into(),
                    });
                    continue;
                }
                (result, _) => result,
            };
            on_attempt(result.is_ok());
            match (result, slot) {
                (Ok(loaded), Some(slot)) => {
                    let old = slot.current();
                    let message = format!(
                        "replaced {} ({})",
                        old.version(),
                        self.relative(&loaded.dir)
                    );
                    let version = loaded.version().to_string();
                    slot.current.store(Arc::new(loaded));
                    self.record(&name, &version, ModelEvent::Swapped, &message);
                    out.push(ReloadOutcome {
                        model: name,
                        version: version.clone(),
                        outcome: ModelEvent::Swapped,
                        serving: Some(version),
                        message,
                    });
                }
                (Ok(loaded), None) => {
                    let version = loaded.version().to_string();
                    let message = self.relative(&loaded.dir);
                    self.record(&name, &version, ModelEvent::Added, &message);
                    added.push((
                        name.clone(),
                        Arc::new(Slot {
                            current: ArcSwap::from_pointee(loaded),
                            last_tried: Mutex::new(latest),
                        }),
                    ));
                    out.push(ReloadOutcome {
                        model: name,
                        version: version.clone(),
                        outcome: ModelEvent::Added,
                        serving: Some(version),
                        message,
                    });
                }
                (Err(e), slot) => {
                    let e = e.to_string();
                    self.record(&name, &latest, ModelEvent::Failed, &e);
                    let serving = slot.map(|s| s.current().version().to_string());
                    let e = self.without_root(&e);
                    let message = match &serving {
                        Some(v) => format!("{e}; version {v} keeps serving"),
                        None => e,
                    };
                    out.push(ReloadOutcome {
                        model: name,
                        version: latest,
                        outcome: ModelEvent::Failed,
                        serving,
                        message,
                    });
                }
            }
        }
        if !added.is_empty() {
            let _adding = lock(&self.adding);
            let mut next = (*self.slots.load_full()).clone();
            next.extend(added);
            self.slots.store(Arc::new(next));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_reload_racing_the_watcher_reports_the_new_version_serving() {
        let data = tempfile::tempdir().unwrap();
        let fx = churn_testkit::simulate(data.path(), 120, 5);
        let models = tempfile::tempdir().unwrap();
        let model =
            churn_testkit::train(&fx, churn_model::model::ModelKind::Logistic, "churn", "v1");
        churn_testkit::save(models.path(), &model);
        let registry = Registry::open(models.path(), LoadLimits::default()).unwrap();
        for k in 2..8 {
            let mut next = model.clone();
            next.version = format!("v{k}");
            churn_testkit::save(models.path(), &next);
            let barrier = std::sync::Barrier::new(2);
            let outcomes: Vec<Vec<ReloadOutcome>> = std::thread::scope(|scope| {
                let runs: Vec<_> = [false, true]
                    .map(|explicit| {
                        let (registry, barrier) = (&registry, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            registry.reload(explicit, |_| {})
                        })
                    })
                    .into_iter()
                    .collect();
                runs.into_iter().map(|r| r.join().unwrap()).collect()
            });
            // The explicit reload (the second) answers with the new version serving,
            // whichever of the two loaded it; the watcher's pass may report the old one
            // as unchanged while the other loads (it is only logged).
            for outcome in &outcomes[1] {
                assert_eq!(
                    outcome.serving.as_deref(),
                    Some(next.version.as_str()),
                    "{outcome:?}"
                );
                assert_ne!(outcome.outcome, ModelEvent::Failed, "{outcome:?}");
            }
            assert!(
                outcomes[0].iter().all(|o| o.outcome != ModelEvent::Failed),
                "{outcomes:?}"
            );
            assert_eq!(registry.get(None).unwrap().version(), next.version);
        }
    }

    #[test]
    fn a_lock_poisoned_by_a_panic_stays_usable() {
        let history = Arc::new(Mutex::new(vec![1]));
        let h = history.clone();
        let panicked = std::thread::spawn(move || {
            let mut g = h.lock().unwrap();
            g.push(2);
            panic!("a panic while holding the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(history.is_poisoned());
        lock(&history).push(3);
        assert_eq!(*lock(&history), [1, 2, 3]);
    }

    #[test]
    fn the_two_ways_of_not_choosing_a_model_are_told_apart() {
        let unknown = ModelChoiceError::Unknown {
            name: "nope".into(),
            serving: "churn, gbm".into(),
        };
        assert_eq!(
            unknown.to_string(),
            "unknown model `nope`; serving: churn, gbm"
        );
        let unnamed = ModelChoiceError::Unnamed {
            serving: "churn, gbm".into(),
        };
        assert!(unnamed.to_string().contains("name one in `model`"));
        assert_eq!(
            serde_json::to_value(ModelEvent::Swapped).unwrap(),
            "swapped"
        );
    }
}
