//! Every declared dependency is used: the check `cargo machete` makes, run as a test so
//! that CI needs no extra tool. A dependency counts as used when its crate name appears
//! in the package's sources (`src/` for dependencies; also `tests/`, `benches/` and
//! `examples/` for dev-dependencies). Dependencies that only a macro's expansion names
//! are listed, with the reason, under `[package.metadata.cargo-machete] ignored`, which
//! `cargo machete` itself honours.

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources(package: &Path, dirs: &[&str]) -> String {
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&package.join(dir), &mut files);
    }
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names of a dependency table (the crate name when a dependency is renamed).
fn names(table: Option<&toml::Value>) -> Vec<String> {
    let Some(table) = table.and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    table
        .iter()
        .map(|(key, spec)| {
            spec.get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(key)
                .replace('-', "_")
        })
        .collect()
}

/// Unused dependencies of the package at `package`, as `package: kind dependency`.
fn unused(package: &Path) -> Vec<String> {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(package.join("Cargo.toml")).unwrap()).unwrap();
    let name = manifest["package"]["name"].as_str().unwrap().to_string();
    let ignored: Vec<String> = manifest
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("cargo-machete"))
        .and_then(|m| m.get("ignored"))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(|s| s.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default();
    let mut declared: Vec<(&str, Vec<String>)> = vec![
        ("dependency", names(manifest.get("dependencies"))),
        ("dev-dependency", names(manifest.get("dev-dependencies"))),
    ];
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            declared.push(("dependency", names(target.get("dependencies"))));
        }
    }
    let library = sources(package, &["src"]);
    let everything = sources(package, &["src", "tests", "benches", "examples"]);
    let used = |text: &str, dep: &str| {
        text.match_indices(dep).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + dep.len()..].chars().next();
            let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            boundary(before) && boundary(after)
        })
    };
    let mut found = Vec::new();
    for (kind, deps) in declared {
        let text = if kind == "dependency" {
            &library
        } else {
            &everything
        };
        for dep in deps {
            if !ignored.contains(&dep) && !used(text, &dep) {
                found.push(format!("{name}: {kind} {dep}"));
            }
        }
    }
    found
}

#[test]
fn every_declared_dependency_is_used() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut packages = vec![root.to_path_buf()];
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        // The workspace hack declares dependencies precisely so as not to use them.
        if entry.path().join("Cargo.toml").is_file() && entry.file_name() != "churn-workspace-hack"
        {
            packages.push(entry.path());
        }
    }
    let found: Vec<String> = packages.iter().flat_map(|p| unused(p)).collect();
    assert!(
        found.is_empty(),
        "declared and unused:\n{}",
        found.join("\n")
    );
    assert!(packages.len() >= 10, "{packages:?}");
}
