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
use churn_features::features::FeatureInfo;
use churn_features::rules::RulesConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CHURNMDL";
/// Bumped whenever the serialised structs change.
pub const FORMAT_VERSION: u32 = 1;
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
    #[error("{}: model format version {found}, this build reads version {expected}; retrain or use a matching build", path.display())]
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
    if version != FORMAT_VERSION {
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
    let (a, _) =
        bincode::serde::decode_from_slice(payload, bincode::config::standard()).map_err(|e| {
            ArtifactError::Decode {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
    Ok(a)
}

/// Loads a model from a version directory, a `models/NAME` directory (its `LATEST`), or
/// a `model.bin` file.
pub fn load(path: &Path) -> Result<(Artifact, PathBuf), ArtifactError> {
    let dir = resolve(path)?;
    let file = dir.join("model.bin");
    let bytes = std::fs::read(&file).map_err(io(&file))?;
    Ok((decode(&bytes, &file)?, dir))
}

/// The version directory a path names.
pub fn resolve(path: &Path) -> Result<PathBuf, ArtifactError> {
    if path.is_file() {
        return Ok(path.parent().unwrap_or(Path::new(".")).to_path_buf());
    }
    if path.join("model.bin").is_file() {
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
    let model_dir = models_dir.join(&a.name);
    std::fs::create_dir_all(&model_dir).map_err(io(&model_dir))?;
    let dest = model_dir.join(&a.version);
    if dest.exists() {
        return Err(ArtifactError::Layout {
            path: dest,
            message: "this version exists already".into(),
        });
    }
    let temp = model_dir.join(format!(".{}.tmp-{}", a.version, std::process::id()));
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
    let latest = model_dir.join("LATEST");
    let latest_temp = model_dir.join(format!(".LATEST.tmp-{}", std::process::id()));
    std::fs::write(&latest_temp, format!("{}\n", a.version)).map_err(io(&latest_temp))?;
    std::fs::rename(&latest_temp, &latest).map_err(io(&latest))?;
    Ok(dest)
}
