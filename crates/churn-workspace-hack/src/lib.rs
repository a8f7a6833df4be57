//! Empty on purpose: this crate exists for its `Cargo.toml`, which asks for one feature
//! set of the dependencies the `churn-train`, `churn-score` and `churn-serve` binaries
//! share (see the comment there).
