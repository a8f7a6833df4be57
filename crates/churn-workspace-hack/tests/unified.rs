//! The three binaries must ask for the same features of every dependency they share, or
//! building one after another rebuilds the shared part (minutes on 2 cores).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const BINARIES: [&str; 3] = ["churn-train", "churn-score", "churn-serve"];

/// `name version` -> features, for the normal and build dependencies of one package.
fn features_of(package: &str) -> BTreeMap<String, BTreeSet<String>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["-f", "{p} [{f}]", "-p", package])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (Some(open), Some(close)) = (line.find('['), line.rfind(']')) else {
            continue;
        };
        let mut words = line[..open].split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        let features = line[open + 1..close]
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        map.insert(format!("{name} {version}"), features);
    }
    map
}

#[test]
fn binaries_share_one_build_of_their_dependencies() {
    let trees: Vec<_> = BINARIES.iter().map(|b| features_of(b)).collect();
    // Sanity: the trees were read, and they share the heavy part.
    for (b, t) in BINARIES.iter().zip(&trees) {
        assert!(
            t.keys().any(|k| k.starts_with("parquet ")),
            "{b}: no parquet in {} packages",
            t.len()
        );
    }
    let mut differing = Vec::new();
    for (i, a) in trees.iter().enumerate() {
        for (j, b) in trees.iter().enumerate().skip(i + 1) {
            for (package, fa) in a {
                if let Some(fb) = b.get(package) {
                    if fa != fb {
                        differing.push(format!(
                            "{package}: {} asks for {fa:?}, {} for {fb:?}",
                            BINARIES[i], BINARIES[j]
                        ));
                    }
                }
            }
        }
    }
    assert!(
        differing.is_empty(),
        "add the union of these features to crates/churn-workspace-hack/Cargo.toml:\n{}",
        differing.join("\n")
    );
}
