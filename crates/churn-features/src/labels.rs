//! Labels and observation dates: the training examples the trainer fits and backtests on.
//!
//! For an observation date `d`, every customer active at `d` (see
//! [`features::is_active`]: judged from what is known before `d`, renewals on `d` and
//! lapses within the grace period included) gets one example: label 1 if its latest
//! active period starting before `d` (subscriptions merged with the grace period, over
//! the full history) ends by `d + horizon`, else 0. For a customer inside a lapse at `d`
//! that never comes back within the grace period, that period ended before `d`: label 1,
//! a churn not yet known at `d`. Features come from before `d`, labels from after it:
//! the two never share data.

use crate::dataset::{Customer, Dataset};
use crate::error::{DataError, Result};
use crate::features::{self, FeatureConfig, FeatureTable};
use crate::periods;
use crate::time::{self, Day};

/// Default prediction horizon in days.
pub const DEFAULT_HORIZON_DAYS: i32 = 30;

/// Labelled examples: feature rows with a 0/1 label each.
#[derive(Debug, Clone, PartialEq)]
pub struct Examples {
    pub features: FeatureTable,
    pub labels: Vec<u8>,
    pub horizon_days: i32,
    /// The observation dates, ascending.
    pub dates: Vec<Day>,
}

/// The label of customer `c` at `as_of`, or `None` when it is not active then.
pub fn label(c: &Customer, as_of: Day, horizon_days: i32, grace_days: i32) -> Option<u8> {
    let end = period_end(c, as_of, grace_days)?;
    Some(u8::from(end.is_some_and(|e| e <= as_of + horizon_days)))
}

/// When the active period of customer `c` that is current at `as_of` ends: `None` when
/// it is not active then, `Some(None)` while the period is still open at the end of the
/// data. The same period [`label`] judges: the latest one starting before `as_of`.
pub fn period_end(c: &Customer, as_of: Day, grace_days: i32) -> Option<Option<Day>> {
    if !features::is_active(c, as_of, grace_days) {
        return None;
    }
    let period = periods::active_periods(&c.subscriptions, grace_days)
        .into_iter()
        .take_while(|p| p.start < as_of)
        .last()?;
    Some(period.end)
}

/// The default observation dates: the first of every month after the data's first
/// month that leaves a full horizon before the data ends.
pub fn observation_dates(ds: &Dataset, horizon_days: i32) -> Vec<Day> {
    observation_dates_in(ds.date_range(), horizon_days)
}

/// [`observation_dates`] of data spanning `(first, end)` (end exclusive).
pub fn observation_dates_in((first, end): (Day, Day), horizon_days: i32) -> Vec<Day> {
    let mut out = Vec::new();
    let mut d = time::add_months(time::month_start(first), 1);
    while d + horizon_days <= end {
        out.push(d);
        d = time::add_months(d, 1);
    }
    out
}

/// Features and labels for every customer active at each of `dates`, in one pass.
pub fn examples(
    ds: &Dataset,
    dates: &[Day],
    horizon_days: i32,
    cfg: &FeatureConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Examples> {
    check_horizon(horizon_days)?;
    let table = features::build_with_progress(ds, dates, cfg, progress)?;
    labelled(ds, table, dates, horizon_days, cfg)
}

/// [`examples`] of a part of a data set split by customer, its features built with the
/// whole's summary ([`features::build_summarised`]).
pub fn examples_summarised(
    ds: &Dataset,
    dates: &[Day],
    horizon_days: i32,
    cfg: &FeatureConfig,
    whole: &features::DataSummary,
) -> Result<Examples> {
    check_horizon(horizon_days)?;
    let table = features::build_summarised(ds, dates, cfg, whole)?;
    labelled(ds, table, dates, horizon_days, cfg)
}

fn check_horizon(horizon_days: i32) -> Result<()> {
    if !(1..=3660).contains(&horizon_days) {
        return Err(DataError::InvalidParameter {
            name: "horizon_days".into(),
            message: format!("must be from 1 to 3660, got {horizon_days}"),
        });
    }
    Ok(())
}

/// Feature rows with their labels.
fn labelled(
    ds: &Dataset,
    table: features::FeatureTable,
    dates: &[Day],
    horizon_days: i32,
    cfg: &FeatureConfig,
) -> Result<Examples> {
    let labels = table
        .customers
        .iter()
        .zip(&table.as_of)
        .map(|(&c, &d)| {
            let d = d.expect("feature rows built from a data directory have dates");
            label(&ds.customers[c as usize], d, horizon_days, cfg.grace_days)
                .expect("feature rows are active customers")
        })
        .collect();
    let mut dates = dates.to_vec();
    dates.sort_unstable();
    dates.dedup();
    Ok(Examples {
        features: table,
        labels,
        horizon_days,
        dates,
    })
}
