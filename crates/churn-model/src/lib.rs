//! Churn models. So far: [`metrics`], the evaluation measures shared by the trainer's
//! backtest and the rules baseline.

pub mod baseline;
pub mod metrics;
