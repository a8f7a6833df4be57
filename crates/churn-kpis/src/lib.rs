//! Retention KPIs computed from a loaded data directory, with their definitions written
//! next to the code that computes them (and in `docs/kpis.md`).
//!
//! The measurement window runs from the first month with activity data (payments,
//! tickets, surveys; subscriptions alone when there are none) to `as_of` (default: the
//! first day of the month after the latest date in the data). Signup cohorts that
//! started before the window are left out of cohort retention: customers who signed up
//! and left before the data began are not in it, so those cohorts would look better
//! than they were (survivorship bias).

pub mod clv;
pub mod goals;
pub mod html;
pub mod report;

use churn_features::dataset::{Dataset, Values};
use churn_features::periods::{self, Period};
use churn_features::time::{self, Day};
use serde::Serialize;

/// Churn over one calendar month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthChurn {
    /// `YYYY-MM`.
    pub month: String,
    /// The month's first day (the same month as a day, for computing).
    #[serde(skip)]
    pub start: Day,
    /// Customers active on the first day of the month.
    pub active_at_start: u64,
    /// Of those, customers whose active period ended during the month.
    pub churned: u64,
    /// `churned / active_at_start`, in percent.
    pub churn_pct: f64,
    /// MRR on the first day of the month.
    pub mrr_at_start: f64,
    /// MRR on the first day of the month of the customers who churned.
    pub churned_mrr: f64,
    /// `churned_mrr / mrr_at_start`, in percent (gross revenue churn).
    pub revenue_churn_pct: f64,
}

/// The headline figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub window_start: String,
    pub as_of: String,
    /// Mean monthly churn over the trailing 12 full months (fewer if the data is shorter).
    pub monthly_churn_pct: f64,
    /// Months averaged in `monthly_churn_pct`.
    pub churn_months: usize,
    pub retention_m1_pct: Option<f64>,
    pub retention_m3_pct: Option<f64>,
    pub retention_m6_pct: Option<f64>,
    /// MRR on the last day before `as_of`.
    pub mrr: f64,
    /// Customers active on the last day before `as_of`.
    pub active_customers: u64,
    /// MRR / active customers.
    pub arpa: f64,
    /// Share of active customers whose `has_csm` attribute is 1 (None without it).
    pub csm_coverage_pct: Option<f64>,
}

/// Options of the KPI computation.
#[derive(Debug, Clone, Copy)]
pub struct KpiOptions {
    pub grace_days: i32,
    pub as_of: Option<Day>,
}

impl Default for KpiOptions {
    fn default() -> Self {
        KpiOptions {
            grace_days: periods::DEFAULT_GRACE_DAYS,
            as_of: None,
        }
    }
}

/// The measurement window of a data set: (first day of the first month with activity,
/// as-of day: the given one, or the first day of the month after the latest data).
pub fn window(ds: &Dataset, as_of: Option<Day>) -> (Day, Day) {
    let (first, end) = ds.date_range();
    let as_of = as_of.unwrap_or_else(|| time::add_months(time::month_start(end - 1), 1));
    (time::month_start(first), as_of)
}

/// Monthly churn for every full month of the window.
pub fn monthly_churn(ds: &Dataset, opts: KpiOptions) -> Vec<MonthChurn> {
    let (start, as_of) = window(ds, opts.as_of);
    let all: Vec<Vec<Period>> = ds
        .customers
        .iter()
        .map(|c| periods::active_periods(&c.subscriptions, opts.grace_days))
        .collect();
    let mut out = Vec::new();
    let mut m0 = start;
    loop {
        let m1 = time::add_months(m0, 1);
        if m1 > as_of {
            break;
        }
        let (active, churned, mrr, churned_mrr) = churn_over(ds, &all, m0, m1);
        out.push(MonthChurn {
            month: time::month_key(m0),
            start: m0,
            active_at_start: active,
            churned,
            churn_pct: pct(churned as f64, active as f64),
            mrr_at_start: mrr,
            churned_mrr,
            revenue_churn_pct: pct(churned_mrr, mrr),
        });
        m0 = m1;
    }
    out
}

/// Of the customers active on `from` (periods in `all`, one list per customer): how many,
/// how many churned (their period ended) before `to`, their MRR on `from`, and the MRR on
/// `from` of those who churned.
pub(crate) fn churn_over(
    ds: &Dataset,
    all: &[Vec<Period>],
    from: Day,
    to: Day,
) -> (u64, u64, f64, f64) {
    churn_over_where(ds, all, from, to, |_| true)
}

/// Whether a customer with active periods `ps` was active on `from` (`None` if not),
/// and then whether that period ended by `to` (a churn over `[from, to)`).
pub(crate) fn churned_over(ps: &[Period], from: Day, to: Day) -> Option<bool> {
    ps.iter()
        .find(|p| p.covers(from))
        .map(|p| p.end.is_some_and(|e| e <= to))
}

/// [`churn_over`] for the customers (by index) that `keep` accepts.
pub(crate) fn churn_over_where(
    ds: &Dataset,
    all: &[Vec<Period>],
    from: Day,
    to: Day,
    keep: impl Fn(usize) -> bool,
) -> (u64, u64, f64, f64) {
    let (mut active, mut churned, mut mrr, mut churned_mrr) = (0u64, 0u64, 0.0, 0.0);
    for (i, (c, ps)) in ds.customers.iter().zip(all).enumerate() {
        if !keep(i) {
            continue;
        }
        if let Some(churn) = churned_over(ps, from, to) {
            let m = periods::mrr_on(&c.subscriptions, from);
            active += 1;
            mrr += m;
            if churn {
                churned += 1;
                churned_mrr += m;
            }
        }
    }
    (active, churned, mrr, churned_mrr)
}

/// Retention `k` months after signup over all customers who signed up inside the window
/// early enough to be measured: the share still active on the day `k` months after
/// their signup. `None` when no customer is old enough.
pub fn retention_after(ds: &Dataset, k: i32, opts: KpiOptions) -> Option<f64> {
    let (start, as_of) = window(ds, opts.as_of);
    let (mut n, mut kept) = (0u64, 0u64);
    for c in &ds.customers {
        let Some(signup) = periods::signup(&c.subscriptions) else {
            continue;
        };
        let at = time::add_months(signup, k);
        if signup < start || at >= as_of {
            continue;
        }
        n += 1;
        if periods::active_periods(&c.subscriptions, opts.grace_days)
            .iter()
            .any(|p| p.covers(at))
        {
            kept += 1;
        }
    }
    (n > 0).then(|| pct(kept as f64, n as f64))
}

/// The headline KPIs.
pub fn summary(ds: &Dataset, opts: KpiOptions) -> Summary {
    summary_of(ds, opts, &monthly_churn(ds, opts))
}

/// The headline KPIs, given the window's monthly churn (computed once by callers that
/// need both).
pub(crate) fn summary_of(ds: &Dataset, opts: KpiOptions, months: &[MonthChurn]) -> Summary {
    let (start, as_of) = window(ds, opts.as_of);
    let trailing: Vec<&MonthChurn> = months.iter().rev().take(12).collect();
    let monthly_churn_pct = if trailing.is_empty() {
        0.0
    } else {
        trailing.iter().map(|m| m.churn_pct).sum::<f64>() / trailing.len() as f64
    };
    let last_day = as_of - 1;
    let csm = ds.attributes.iter().find(|a| a.name == "has_csm");
    let (mut mrr, mut active, mut with_csm) = (0.0, 0u64, 0u64);
    for (i, c) in ds.customers.iter().enumerate() {
        if periods::active_periods(&c.subscriptions, 0)
            .iter()
            .any(|p| p.covers(last_day))
        {
            active += 1;
            mrr += periods::mrr_on(&c.subscriptions, last_day);
            if let Some(Values::Numeric(v)) = csm.map(|a| &a.values) {
                if v[i] == Some(1.0) {
                    with_csm += 1;
                }
            }
        }
    }
    Summary {
        window_start: time::format_date(start),
        as_of: time::format_date(as_of),
        monthly_churn_pct,
        churn_months: trailing.len(),
        retention_m1_pct: retention_after(ds, 1, opts),
        retention_m3_pct: retention_after(ds, 3, opts),
        retention_m6_pct: retention_after(ds, 6, opts),
        mrr,
        active_customers: active,
        arpa: if active > 0 { mrr / active as f64 } else { 0.0 },
        csm_coverage_pct: csm
            .filter(|a| matches!(a.values, Values::Numeric(_)))
            .map(|_| pct(with_csm as f64, active as f64)),
    }
}

pub(crate) fn pct(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        100.0 * num / den
    } else {
        0.0
    }
}
