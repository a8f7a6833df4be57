//! The model artifact: `models/NAME/VERSION/` with `model.bin` (the fitted model,
//! bincode 2), `model.json` (what a person or another tool needs to know about it),
//! `report.json` and `report.html`; `models/NAME/LATEST` names the current version.
//!
//! `model.bin` is `CHURNMDL` + format version (u32 LE) + payload length (u64 LE) +
//! SHA-256 of the payload + payload. Loading checks each, so a truncated, corrupted or
//! foreign file is refused with a clear message. A version directory is written under a
//! temporary name and renamed into place, and `LATEST` is replaced atomically after it:
//! a crash leaves no half model and never moves `LATEST`.

use crate::model::ChurnModel;
use crate::preprocess::{Cell, PrepError};
use crate::profile::Profile;
use crate::survival::SurvivalModel;
use churn_features::dataset::Values;
use churn_features::features::{FeatureConfig, FeatureInfo, FeatureKind, FeatureTable};
use churn_features::rules::RulesConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CHURNMDL";
/// Bumped whenever the serialised structs change. Version 2 added the input ranges and
/// the probe rows, version 3 the feature settings, version 4 the reference profile,
/// version 5 the survival model, version 6 its features' effect changing with the months
/// ahead, version 7 its rule past the fitted data's follow-up; older files still load
/// (without them, with the default feature settings they were trained with, without a
/// profile to monitor against or a survival curve, with a constant effect, with the
/// features counting in full at every month).
pub const FORMAT_VERSION: u32 = 7;
/// Training rows kept as probes at most.
const PROBES: usize = 8;
/// How far a probe's recomputed probability may stray from the recorded one.
const PROBE_TOLERANCE: f64 = 1e-9;
const HEADER: usize = 8 + 4 + 8 + 32;

/// What `model.bin` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub version: String,
    pub model: ChurnModel,
    /// Every feature of the training table (name, description, kind).
    pub features: Vec<FeatureInfo>,
    /// The rules the model was evaluated with; the server scores with these.
    pub rules: RulesConfig,
    /// Prediction horizon in days (0 for a plain table).
    pub horizon_days: i32,
    /// Whether the model's features can feed the rules (false for a plain table).
    pub rules_apply: bool,
    /// Training rows with the probability the model gave them when it was saved (see
    /// [`Artifact::record_probes`]); empty for format 1 files.
    pub probes: Vec<Probe>,
    /// The windows the features were computed with: scoring raw data builds them the
    /// same way, and the rules find their inputs by the names these give.
    pub feature_config: FeatureConfig,
    /// What the training data and the backtest's predictions looked like, for drift
    /// monitoring (`None` for files before format 4, and for hand-built artifacts).
    pub profile: Option<Profile>,
    /// Time to churn and CLV (`None` before format 5 and for a model trained on a
    /// plain table).
    pub survival: Option<SurvivalModel>,
}

/// A model version as outputs name it (`--json` summaries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    /// The version directory it was loaded from.
    pub path: String,
}

impl Artifact {
    /// Every feature the artifact's models read: the classifier's inputs, then the
    /// survival model's.
    pub fn input_transforms(&self) -> impl Iterator<Item = &crate::preprocess::Transform> {
        let survival = self
            .survival
            .iter()
            .flat_map(|s| s.preprocessor.transforms.iter());
        self.model.preprocessor.transforms.iter().chain(survival)
    }

    /// How outputs name this model, loaded from `dir`.
    pub fn reference(&self, dir: &Path) -> ModelRef {
        ModelRef {
            name: self.name.clone(),
            version: self.version.clone(),
            path: dir.display().to_string(),
        }
    }
}

/// A training row kept with the model and the probability the model gave it: loading
/// recomputes it, so a model that decodes but no longer computes what it computed when
/// it was saved (a flipped bit behind a recomputed checksum, a struct change without a
/// format bump, a trainer bug) is refused before it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// One cell per feature of [`Artifact::features`], in that order.
    pub cells: Vec<ProbeCell>,
    pub probability: f64,
}

/// A cell of a probe row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProbeCell {
    Missing,
    Number(f64),
    Text(String),
}

impl ProbeCell {
    fn cell(&self) -> Cell<'_> {
        match self {
            ProbeCell::Missing => Cell::Missing,
            ProbeCell::Number(x) => Cell::Number(*x),
            ProbeCell::Text(s) => Cell::Text(s),
        }
    }
}

/// The survival model of format version 5: the features' effect constant.
#[derive(Deserialize)]
struct SurvivalModelV5 {
    preprocessor: crate::preprocess::Preprocessor,
    weights: Vec<f64>,
    intercept: f64,
    baseline: Vec<f64>,
    observed_groups: usize,
    tenure_weight: f64,
    median_tenure_months: f64,
    months: u32,
    clv: crate::survival::ClvSettings,
    person_periods: usize,
    events: usize,
}

impl From<SurvivalModelV5> for SurvivalModel {
    fn from(m: SurvivalModelV5) -> SurvivalModel {
        SurvivalModel::from(SurvivalModelV6 {
            preprocessor: m.preprocessor,
            weights: m.weights,
            intercept: m.intercept,
            baseline: m.baseline,
            observed_groups: m.observed_groups,
            tenure_weight: m.tenure_weight,
            median_tenure_months: m.median_tenure_months,
            months: m.months,
            clv: m.clv,
            person_periods: m.person_periods,
            events: m.events,
            score_scale: 1.0,
            score_decay: 0.0,
        })
    }
}

/// The survival model of format version 6: no extrapolation rule (the features count
/// in full at every month).
#[derive(Deserialize)]
struct SurvivalModelV6 {
    preprocessor: crate::preprocess::Preprocessor,
    weights: Vec<f64>,
    intercept: f64,
    baseline: Vec<f64>,
    observed_groups: usize,
    tenure_weight: f64,
    median_tenure_months: f64,
    months: u32,
    clv: crate::survival::ClvSettings,
    person_periods: usize,
    events: usize,
    score_scale: f64,
    score_decay: f64,
}

impl From<SurvivalModelV6> for SurvivalModel {
    fn from(m: SurvivalModelV6) -> SurvivalModel {
        SurvivalModel {
            preprocessor: m.preprocessor,
            weights: m.weights,
            intercept: m.intercept,
            baseline: m.baseline,
            observed_groups: m.observed_groups,
            tenure_weight: m.tenure_weight,
            median_tenure_months: m.median_tenure_months,
            months: m.months,
            clv: m.clv,
            person_periods: m.person_periods,
            events: m.events,
            score_scale: m.score_scale,
            score_decay: m.score_decay,
            follow_up: 0,
            beyond_score: 0.0,
        }
    }
}

/// `model.bin` of format versions 5 and 6, whose survival model was `S`.
#[derive(Deserialize)]
struct ArtifactWith<S> {
    name: String,
    version: String,
    model: ChurnModel,
    features: Vec<FeatureInfo>,
    rules: RulesConfig,
    horizon_days: i32,
    rules_apply: bool,
    probes: Vec<Probe>,
    feature_config: FeatureConfig,
    profile: Option<Profile>,
    survival: Option<S>,
}

/// `model.bin` of format version 6.
type ArtifactV6 = ArtifactWith<SurvivalModelV6>;
/// `model.bin` of format version 5.
type ArtifactV5 = ArtifactWith<SurvivalModelV5>;

impl<S: Into<SurvivalModel>> From<ArtifactWith<S>> for Artifact {
    fn from(a: ArtifactWith<S>) -> Artifact {
        Artifact {
            name: a.name,
            version: a.version,
            model: a.model,
            features: a.features,
            rules: a.rules,
            horizon_days: a.horizon_days,
            rules_apply: a.rules_apply,
            probes: a.probes,
            feature_config: a.feature_config,
            profile: a.profile,
            survival: a.survival.map(Into::into),
        }
    }
}

/// `model.bin` of format version 4: no survival model.
#[derive(Deserialize)]
struct ArtifactV4 {
    name: String,
    version: String,
    model: ChurnModel,
    features: Vec<FeatureInfo>,
    rules: RulesConfig,
    horizon_days: i32,
    rules_apply: bool,
    probes: Vec<Probe>,
    feature_config: FeatureConfig,
    profile: Option<Profile>,
}

impl From<ArtifactV4> for Artifact {
    fn from(a: ArtifactV4) -> Artifact {
        Artifact {
            name: a.name,
            version: a.version,
            model: a.model,
            features: a.features,
            rules: a.rules,
            horizon_days: a.horizon_days,
            rules_apply: a.rules_apply,
            probes: a.probes,
            feature_config: a.feature_config,
            profile: a.profile,
            survival: None,
        }
    }
}

/// `model.bin` of format version 3: no reference profile.
#[derive(Deserialize)]
struct ArtifactV3 {
    name: String,
    version: String,
    model: ChurnModel,
    features: Vec<FeatureInfo>,
    rules: RulesConfig,
    horizon_days: i32,
    rules_apply: bool,
    probes: Vec<Probe>,
    feature_config: FeatureConfig,
}

impl From<ArtifactV3> for Artifact {
    fn from(a: ArtifactV3) -> Artifact {
        Artifact {
            name: a.name,
            version: a.version,
            model: a.model,
            features: a.features,
            rules: a.rules,
            horizon_days: a.horizon_days,
            rules_apply: a.rules_apply,
            probes: a.probes,
            feature_config: a.feature_config,
            profile: None,
            survival: None,
        }
    }
}

/// `model.bin` of format version 2: no feature settings (the defaults were the only ones).
#[derive(Deserialize)]
struct ArtifactV2 {
    name: String,
    version: String,
    model: ChurnModel,
    features: Vec<FeatureInfo>,
    rules: RulesConfig,
    horizon_days: i32,
    rules_apply: bool,
    probes: Vec<Probe>,
}

impl From<ArtifactV2> for Artifact {
    fn from(a: ArtifactV2) -> Artifact {
        Artifact {
            name: a.name,
            version: a.version,
            model: a.model,
            features: a.features,
            rules: a.rules,
            horizon_days: a.horizon_days,
            rules_apply: a.rules_apply,
            probes: a.probes,
            feature_config: FeatureConfig::default(),
            profile: None,
            survival: None,
        }
    }
}

#[derive(Deserialize)]
struct ArtifactV1 {
    name: String,
    version: String,
    model: ChurnModelV1,
    features: Vec<FeatureInfo>,
    rules: RulesConfig,
    horizon_days: i32,
    rules_apply: bool,
}

#[derive(Deserialize)]
struct PreprocessorV1 {
    transforms: Vec<crate::preprocess::Transform>,
    output_names: Vec<String>,
    output_source: Vec<usize>,
}

#[derive(Deserialize)]
struct ChurnModelV1 {
    preprocessor: PreprocessorV1,
    estimator: crate::model::Estimator,
    calibrator: crate::calibrate::Calibrator,
    threshold: f64,
}

impl From<ArtifactV1> for Artifact {
    fn from(a: ArtifactV1) -> Artifact {
        Artifact {
            name: a.name,
            version: a.version,
            model: ChurnModel {
                preprocessor: crate::preprocess::Preprocessor {
                    transforms: a.model.preprocessor.transforms,
                    output_names: a.model.preprocessor.output_names,
                    output_source: a.model.preprocessor.output_source,
                    log1p: Vec::new(),
                },
                estimator: a.model.estimator,
                calibrator: a.model.calibrator,
                threshold: a.model.threshold,
                input_ranges: Vec::new(),
            },
            features: a.features,
            rules: a.rules,
            horizon_days: a.horizon_days,
            rules_apply: a.rules_apply,
            probes: Vec::new(),
            feature_config: FeatureConfig::default(),
            profile: None,
            survival: None,
        }
    }
}

impl Artifact {
    /// Keeps up to eight rows of `table` (spread over it) as probes, with the
    /// probabilities the model gives them now.
    pub fn record_probes(&mut self, table: &FeatureTable) -> Result<(), PrepError> {
        let n = table.len();
        let columns: Vec<Option<&Values>> = self
            .features
            .iter()
            .map(|f| table.column(&f.name))
            .collect();
        let mut rows: Vec<usize> = (0..PROBES.min(n)).map(|k| k * n / PROBES.min(n)).collect();
        rows.dedup();
        let mut probes = Vec::with_capacity(rows.len());
        for r in rows {
            let cells: Vec<ProbeCell> = columns
                .iter()
                .map(|c| match c {
                    Some(Values::Numeric(v)) => v[r].map_or(ProbeCell::Missing, ProbeCell::Number),
                    Some(Values::Categorical(v)) => {
                        v[r].clone().map_or(ProbeCell::Missing, ProbeCell::Text)
                    }
                    None => ProbeCell::Missing,
                })
                .collect();
            let probability = self.probe_probability(&cells)?;
            probes.push(Probe { cells, probability });
        }
        self.probes = probes;
        Ok(())
    }

    /// The model's probability for a probe row, through the same per-row path serving
    /// uses.
    fn probe_probability(&self, cells: &[ProbeCell]) -> Result<f64, PrepError> {
        let position: std::collections::HashMap<&str, usize> = self
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        let mut scratch = crate::model::PredictBuffers::default();
        self.model
            .predict(
                |_, name| {
                    position
                        .get(name)
                        .and_then(|&p| cells.get(p))
                        .map_or(Cell::Missing, ProbeCell::cell)
                },
                &mut scratch,
                true,
                5,
                true,
            )
            .map(|p| p.probability)
    }

    /// Checks a decoded artifact before it may serve: the model's parts fit together
    /// ([`ChurnModel::check`]), every model input is a feature of the schema with the
    /// same kind, and each probe row still gets the probability recorded at training.
    /// A panic while doing so (a model broken in a way the checks cannot see) is caught
    /// and reported as a refusal.
    pub fn check(&self) -> Result<(), String> {
        self.model.check()?;
        if let Some(s) = &self.survival {
            s.check()?;
        }
        self.feature_config
            .validate()
            .map_err(|e| format!("feature settings: {e}"))?;
        let mut names = std::collections::HashSet::new();
        for f in &self.features {
            if !names.insert(f.name.as_str()) {
                return Err(format!("feature `{}` is listed twice", f.name));
            }
        }
        for t in self.input_transforms() {
            let kind = match t {
                crate::preprocess::Transform::Numeric { .. } => FeatureKind::Numeric,
                crate::preprocess::Transform::Categorical { .. } => FeatureKind::Categorical,
            };
            match self.features.iter().find(|f| f.name == t.name()) {
                Some(f) if f.kind == kind => {}
                Some(_) => {
                    return Err(format!(
                        "model input `{}` has another kind in the feature schema",
                        t.name()
                    ))
                }
                None => {
                    return Err(format!(
                        "model input `{}` is not in the feature schema",
                        t.name()
                    ))
                }
            }
        }
        let probes = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for (k, probe) in self.probes.iter().enumerate() {
                if probe.cells.len() != self.features.len() {
                    return Err(format!(
                        "probe row {k} has {} cells for {} features",
                        probe.cells.len(),
                        self.features.len()
                    ));
                }
                let p = self
                    .probe_probability(&probe.cells)
                    .map_err(|e| format!("probe row {k} cannot be scored: {e}"))?;
                let close = (p - probe.probability).abs() <= PROBE_TOLERANCE;
                if !close {
                    return Err(format!(
                        "probe row {k} scores {p}, but the model gave it {} when it was saved",
                        probe.probability
                    ));
                }
            }
            Ok(())
        }));
        match probes {
            Ok(result) => result,
            Err(_) => Err("the model panicked while scoring its probe rows".into()),
        }
    }
}

/// A model that cannot be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a churn model file (bad magic bytes)", path.display())]
    Foreign { path: PathBuf },
    #[error("{}: model format version {found}, this build reads versions 1 to {expected}; retrain or use a matching build", path.display())]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: truncated: expected {expected} bytes of model, found {found}", path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{}: checksum mismatch: the file is corrupted", path.display())]
    Checksum { path: PathBuf },
    #[error("{}: cannot decode the model: {message}", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Layout { path: PathBuf, message: String },
    #[error("{}: the model is inconsistent, refused: {message}", path.display())]
    Inconsistent { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    NotAModelFile { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Encodes an artifact as the bytes of `model.bin`.
pub fn encode(a: &Artifact) -> Vec<u8> {
    let payload = bincode::serde::encode_to_vec(a, bincode::config::standard())
        .expect("artifact types serialise");
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

/// Decodes `model.bin` bytes, checking magic, version, length and checksum.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Artifact, ArtifactError> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(ArtifactError::Foreign {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() < HEADER {
        return Err(ArtifactError::Truncated {
            path: path.to_path_buf(),
            expected: HEADER as u64,
            found: bytes.len() as u64,
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(ArtifactError::Version {
            path: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(ArtifactError::Truncated {
            path: path.to_path_buf(),
            expected: HEADER as u64 + len,
            found: bytes.len() as u64,
        });
    }
    if Sha256::digest(payload).as_slice() != &bytes[20..52] {
        return Err(ArtifactError::Checksum {
            path: path.to_path_buf(),
        });
    }
    let decode_error = |e: bincode::error::DecodeError| ArtifactError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let config = bincode::config::standard();
    // Decoding runs third-party parsers (forust, smartcore) on the bytes: a panic there
    // is a refusal, not a crash.
    let decoded = std::panic::catch_unwind(|| {
        if version == 1 {
            bincode::serde::decode_from_slice::<ArtifactV1, _>(payload, config)
                .map(|(old, used)| (Artifact::from(old), used))
        } else if version == 2 {
            bincode::serde::decode_from_slice::<ArtifactV2, _>(payload, config)
                .map(|(old, used)| (Artifact::from(old), used))
        } else if version == 3 {
            bincode::serde::decode_from_slice::<ArtifactV3, _>(payload, config)
                .map(|(old, used)| (Artifact::from(old), used))
        } else if version == 4 {
            bincode::serde::decode_from_slice::<ArtifactV4, _>(payload, config)
                .map(|(old, used)| (Artifact::from(old), used))
        } else if version == 5 {
            bincode::serde::decode_from_slice::<ArtifactV5, _>(payload, config)
                .map(|(old, used)| (Artifact::from(old), used))
        } else if version == 6 {
            bincode::serde::decode_from_slice::<ArtifactV6, _>(payload, config)
                .map(|(old, used)| (Artifact::from(old), used))
        } else {
            bincode::serde::decode_from_slice(payload, config)
        }
    })
    .map_err(|_| ArtifactError::Decode {
        path: path.to_path_buf(),
        message: "the model's parts panicked while being decoded".into(),
    })?;
    let (a, used) = decoded.map_err(decode_error)?;
    if used != payload.len() {
        return Err(ArtifactError::Decode {
            path: path.to_path_buf(),
            message: format!(
                "{} bytes left over after the model: the file does not match its format version",
                payload.len() - used
            ),
        });
    }
    a.check().map_err(|message| ArtifactError::Inconsistent {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(a)
}

/// The largest `model.bin` [`load`] reads.
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// Loads a model from a version directory, a `models/NAME` directory (its `LATEST`), or
/// a `model.bin` file.
pub fn load(path: &Path) -> Result<(Artifact, PathBuf), ArtifactError> {
    load_at_most(path, MAX_MODEL_BYTES)
}

/// [`load`], refusing a `model.bin` larger than `max_bytes` or that is not a regular
/// file (a FIFO or a device would block the reader or never end).
pub fn load_at_most(path: &Path, max_bytes: u64) -> Result<(Artifact, PathBuf), ArtifactError> {
    let dir = resolve(path)?;
    let file = dir.join("model.bin");
    let bytes = read_model_file(&file, max_bytes)?;
    Ok((decode(&bytes, &file)?, dir))
}

fn read_model_file(file: &Path, max_bytes: u64) -> Result<Vec<u8>, ArtifactError> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes: open without blocking,
    // then look at what was opened.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let mut f = options.open(file).map_err(io(file))?;
    let meta = f.metadata().map_err(io(file))?;
    if !meta.is_file() {
        return Err(ArtifactError::NotAModelFile {
            path: file.to_path_buf(),
            message: "not a regular file (a FIFO, a device or a directory); refused".into(),
        });
    }
    if meta.len() > max_bytes {
        return Err(ArtifactError::NotAModelFile {
            path: file.to_path_buf(),
            message: format!(
                "{} bytes, more than the {max_bytes} bytes a model may have; refused",
                meta.len()
            ),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take`: a file that grows while being read still stops at the limit.
    f.by_ref()
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io(file))?;
    if bytes.len() as u64 > max_bytes {
        return Err(ArtifactError::NotAModelFile {
            path: file.to_path_buf(),
            message: format!(
                "grew past the {max_bytes} bytes a model may have while being read; refused"
            ),
        });
    }
    Ok(bytes)
}

/// The version directory a path names.
pub fn resolve(path: &Path) -> Result<PathBuf, ArtifactError> {
    if path.is_file() {
        return Ok(path.parent().unwrap_or(Path::new(".")).to_path_buf());
    }
    if path.join("model.bin").exists() {
        return Ok(path.to_path_buf());
    }
    let latest = path.join("LATEST");
    if latest.is_file() {
        let v = std::fs::read_to_string(&latest).map_err(io(&latest))?;
        let v = v.trim();
        if v.is_empty() || v.contains('/') || v.contains("..") {
            return Err(ArtifactError::Layout {
                path: latest,
                message: format!("`{v}` is not a version name"),
            });
        }
        return Ok(path.join(v));
    }
    Err(ArtifactError::Layout {
        path: path.to_path_buf(),
        message: "not a model: expected a version directory with model.bin, or a model directory with LATEST".into(),
    })
}

/// Writes a new version `models_dir/name/version/` with `files` (name, bytes) besides
/// `model.bin`, then points `LATEST` at it. Returns the version directory.
pub fn save(
    models_dir: &Path,
    a: &Artifact,
    files: &[(&str, Vec<u8>)],
) -> Result<PathBuf, ArtifactError> {
    save_with(models_dir, a, files, true)
}

/// [`save`], moving `LATEST` to the new version only when `promote` is set (otherwise
/// the version is written beside the serving one, for a person or a later run to
/// promote).
pub fn save_with(
    models_dir: &Path,
    a: &Artifact,
    files: &[(&str, Vec<u8>)],
    promote: bool,
) -> Result<PathBuf, ArtifactError> {
    let model_dir = models_dir.join(&a.name);
    // Never write what could not be loaded back.
    a.check().map_err(|message| ArtifactError::Inconsistent {
        path: model_dir.clone(),
        message,
    })?;
    std::fs::create_dir_all(&model_dir).map_err(io(&model_dir))?;
    churn_features::write::remove_stale_temps(&model_dir);
    let dest = model_dir.join(&a.version);
    if dest.exists() {
        return Err(ArtifactError::Layout {
            path: dest,
            message: "this version exists already".into(),
        });
    }
    // Named as every writer names its temp files, so a killed save is cleaned up.
    let temp = churn_features::write::temp_path(&dest);
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).map_err(io(&temp))?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), ArtifactError> {
        let p = temp.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))
    };
    let result = (|| {
        write("model.bin", &encode(a))?;
        for (name, bytes) in files {
            write(name, bytes)?;
        }
        std::fs::rename(&temp, &dest).map_err(io(&dest))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e);
    }
    if !promote {
        return Ok(dest);
    }
    let latest = model_dir.join("LATEST");
    let latest_temp = churn_features::write::temp_path(&latest);
    std::fs::write(&latest_temp, format!("{}\n", a.version)).map_err(io(&latest_temp))?;
    std::fs::rename(&latest_temp, &latest).map_err(io(&latest))?;
    Ok(dest)
}
