//! The Python package's tests (pytest, in `crates/churn-py/tests`), run by `cargo test`
//! so that the README's one test command covers them.
//!
//! On a fresh machine this creates a virtual environment under `target/python/venv` from
//! PyPI (`crates/churn-py/requirements-test.txt`: maturin, pytest, pyarrow, pandas,
//! polars, matplotlib), builds the command-line tools and the wheel in release mode into
//! `target/python/cargo` (a target directory of their own: the one `cargo test` holds is
//! locked while tests run), installs the wheel and runs pytest, whose output shows in
//! the test's output. The environment is reused while the requirements file is
//! unchanged.
//!
//! Without Python 3.9+ or PyPI, the test says loudly what it skipped and passes; with
//! `CHURN_REQUIRE_PYTHON=1` (set by `.ci/run`) it fails instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A line on the real stderr: `eprintln!` is captured by the test harness and shown
/// only when the test fails, and a skip must be seen.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

const REQUIREMENTS: &str = "crates/churn-py/requirements-test.txt";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Skips loudly, or fails when Python is required.
fn skip(why: &str) {
    let banner = "=".repeat(78);
    say(&format!(
        "\n{banner}\nSKIPPED: the Python package's tests did not run: {why}\n{banner}\n"
    ));
    assert!(
        std::env::var_os("CHURN_REQUIRE_PYTHON").is_none_or(|v| v != "1"),
        "CHURN_REQUIRE_PYTHON=1 and the Python tests cannot run: {why}"
    );
}

/// Runs a command to its end; its output goes to the test's output.
fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    say(&format!("python tests: {what}"));
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: {status}"))
    }
}

/// `pip install` of the environment whose scripts are in `bin`, quietly.
fn pip_install(bin: &Path) -> Command {
    let mut cmd = Command::new(bin.join("python"));
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    cmd
}

/// The virtual environment, created (or refreshed when the requirements changed).
fn venv(python: &str, dir: &Path) -> Result<PathBuf, String> {
    let requirements = std::fs::read_to_string(repo().join(REQUIREMENTS))
        .map_err(|e| format!("reading {REQUIREMENTS}: {e}"))?;
    let stamp = dir.join("requirements.installed");
    let bin = dir.join("bin");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str()) {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(dir);
    run(
        "creating the virtual environment",
        Command::new(python).args(["-m", "venv"]).arg(dir),
    )?;
    run(
        "installing the test requirements from PyPI",
        pip_install(&bin).arg("-r").arg(repo().join(REQUIREMENTS)),
    )?;
    std::fs::write(&stamp, requirements)
        .map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(bin)
}

#[test]
fn python_package() {
    let python = std::env::var("CHURN_PYTHON").unwrap_or_else(|_| "python3".into());
    let version = Command::new(&python)
        .args(["-c", "import sys; print(sys.version_info >= (3, 9))"])
        .output();
    match version {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "True" => {}
        Ok(_) => return skip(&format!("`{python}` is older than Python 3.9")),
        Err(e) => {
            return skip(&format!(
                "no `{python}` on this machine ({e}); set CHURN_PYTHON"
            ))
        }
    }
    let root = repo().join("target/python");
    let bin = match venv(&python, &root.join("venv")) {
        Ok(bin) => bin,
        Err(e) => return skip(&format!("the virtual environment could not be set up: {e}")),
    };
    let cargo_target = root.join("cargo");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(
        "building churn-train, churn-score and churn-serve (release)",
        Command::new(&cargo)
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "churn-train",
                "-p",
                "churn-score",
                "-p",
                "churn-serve",
            ])
            .env("CARGO_TARGET_DIR", &cargo_target)
            .current_dir(repo()),
    )
    .unwrap();
    let wheels = root.join("wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    run(
        "building the wheel (maturin, release)",
        Command::new(bin.join("maturin"))
            .args(["build", "--release", "--quiet", "--out"])
            .arg(&wheels)
            .arg("--manifest-path")
            .arg(repo().join("crates/churn-py/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &cargo_target)
            .env("CARGO", &cargo)
            .env("PATH", &path),
    )
    .unwrap();
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("maturin wrote a wheel");
    run(
        "installing the wheel",
        pip_install(&bin)
            .args(["--no-deps", "--force-reinstall"])
            .arg(&wheel),
    )
    .unwrap();
    run(
        "pytest crates/churn-py/tests",
        Command::new(bin.join("python"))
            .args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
            .arg(repo().join("crates/churn-py/tests"))
            .env("CHURN_BIN_DIR", cargo_target.join("release"))
            .env("CHURN_REPO", repo())
            .env("MPLBACKEND", "Agg")
            .env("PATH", &path)
            .current_dir(&root),
    )
    .unwrap();
}
