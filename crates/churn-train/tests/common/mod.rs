//! Running the `churn-train` binary from tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `churn-train` with `args`.
pub fn churn_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churn-train"))
        .args(args)
        .output()
        .expect("run churn-train")
}

/// Runs `churn-train`, asserts success and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = churn_train(args);
    assert!(
        out.status.success(),
        "churn-train {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `churn-train`, asserts failure and returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = churn_train(args);
    assert!(!out.status.success(), "churn-train {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// A path as `&str` for arguments.
#[allow(dead_code)] // not every test binary passes paths
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Simulates `customers` over `months` with `seed` into `out` (`churn-train generate`).
#[allow(dead_code)] // not every test binary generates data
pub fn generate(out: &Path, customers: u32, months: u32, seed: u64) -> String {
    ok(&[
        "generate",
        "--out",
        s(out),
        "--customers",
        &customers.to_string(),
        "--months",
        &months.to_string(),
        "--seed",
        &seed.to_string(),
    ])
}
