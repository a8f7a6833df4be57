//! Every retention KPI of the brief, per month over the data's range and for the latest
//! month, next to the 90-day goals. Definitions: `docs/kpis.md` (each function below
//! says which one it implements).

use crate::goals::{goal_status, GoalStatus, Goals};
use crate::{
    churn_over, churn_over_where, monthly_churn, pct, summary_of, window, KpiOptions, MonthChurn,
    Summary,
};
use churn_features::dataset::{Attribute, Dataset, EventBatch, Values, Vocabulary};
use churn_features::features::{self, FeatureConfig, FeatureTable};
use churn_features::periods::{self, Period};
use churn_features::rules::{self, HealthBand, RuleInputs, RulesConfig};
use churn_features::time::{self, Day, Ts};
use serde::Serialize;
use std::collections::BTreeMap;

/// Days of answers and tickets the latest support and survey figures cover.
pub const RECENT_DAYS: i32 = 90;

/// Shares of customers per health band (percent; `no_data` when no component had data).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HealthShares {
    pub healthy: f64,
    pub at_risk: f64,
    pub critical: f64,
    pub churning: f64,
    pub no_data: f64,
}

/// Usage, adoption and onboarding of the customers active on one date, from their
/// point-in-time features (the 28/30 days before the date).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Engagement {
    /// Customers active on the date.
    pub customers: u64,
    /// Mean share of days with any activity (active days over 28 / 28): the average
    /// daily active share.
    pub dau_share_pct: Option<f64>,
    /// Share of customers with at least one active day in the 28 days.
    pub mau_share_pct: Option<f64>,
    /// Sessions per week per active (paying) customer.
    pub sessions_per_week: Option<f64>,
    /// Mean session length, weighted by sessions.
    pub minutes_per_session: Option<f64>,
    /// Mean share of the feature catalog used in 30 days, over customers with any
    /// activity in the 28 days (a quiet customer's breadth of use is unknown, and the
    /// MAU share already counts them).
    pub feature_adoption_pct: Option<f64>,
    /// The same per catalog group.
    pub adoption_by_group: BTreeMap<String, f64>,
    /// Mean days from signup to first value, over customers who reached it.
    pub ttv_days: Option<f64>,
    /// Of customers 30 to 119 days past signup, the share who reached first value.
    pub onboarding_completion_pct: Option<f64>,
    pub health: HealthShares,
}

/// Support and survey figures over a span of days.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Voice {
    /// Tickets opened in the span.
    pub tickets: u64,
    /// Tickets per 100 customers active at the span's start.
    pub tickets_per_100_customers: Option<f64>,
    /// Mean hours from opening to first response, over tickets opened in the span that
    /// got one.
    pub first_response_hours: Option<f64>,
    /// Promoters (9-10) minus detractors (0-6), percent of NPS answers in the span.
    pub nps: Option<f64>,
    pub nps_answers: u64,
    /// Mean CSAT answer in the span (of 10).
    pub csat: Option<f64>,
    pub csat_answers: u64,
}

/// One month's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthKpis {
    #[serde(flatten)]
    pub churn: MonthChurn,
    /// Churn over the 3 months ending with this one (customers active at their start).
    pub quarterly_churn_pct: Option<f64>,
    pub quarterly_revenue_churn_pct: Option<f64>,
    /// Churn over the 12 months ending with this one.
    pub annual_churn_pct: Option<f64>,
    pub annual_revenue_churn_pct: Option<f64>,
    /// MRR at month start / customers active at month start.
    pub arpa: Option<f64>,
    /// As of the first day of the next month (so describing this month).
    pub engagement: Engagement,
    /// Tickets and answers dated in the month.
    pub voice: Voice,
}

/// A signup cohort's retention by months since signup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// Signup month, `YYYY-MM`.
    pub cohort: String,
    pub customers: u64,
    /// Percent still active k months after signup, for k = 0, 1, ... while measurable.
    pub retention_pct: Vec<f64>,
}

/// Net revenue retention over a window, with the MRR bridge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nrr {
    pub start: String,
    pub end: String,
    /// Months the window spans (12, or fewer when the data is shorter).
    pub months: i32,
    /// Of customers paying at the start: (start MRR + expansion - contraction -
    /// churned) / start MRR.
    pub nrr_pct: Option<f64>,
    pub start_mrr: f64,
    /// MRR at the end of customers not paying at the start (new and reactivated).
    pub new_mrr: f64,
    pub expansion_mrr: f64,
    pub contraction_mrr: f64,
    pub churned_mrr: f64,
    pub end_mrr: f64,
}

/// The headline figures (the JSON `summary`): the base figures, the latest engagement
/// and the last 90 days of support and surveys, flattened into one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    #[serde(flatten)]
    pub base: Summary,
    /// Mean monthly revenue churn of the trailing 12 full months.
    pub monthly_revenue_churn_pct: f64,
    /// Churn over the last 3 / 12 full months as one window (`None` when shorter).
    pub quarterly_churn_pct: Option<f64>,
    pub annual_churn_pct: Option<f64>,
    pub quarterly_revenue_churn_pct: Option<f64>,
    pub annual_revenue_churn_pct: Option<f64>,
    pub nrr_pct: Option<f64>,
    pub nrr_months: i32,
    /// ARPA / monthly churn (as a fraction); `None` without churn.
    pub clv: Option<f64>,
    /// As of the as-of day.
    #[serde(flatten)]
    pub engagement: Engagement,
    /// Over the last 90 days.
    #[serde(flatten)]
    pub voice: Voice,
    /// Of the customers active 12 months before, the share that did not churn, with a
    /// CSM (`has_csm` attribute 1) and without; `None` without the attribute or a year
    /// of data.
    pub retention_12m_csm_pct: Option<f64>,
    pub retention_12m_no_csm_pct: Option<f64>,
    /// Month-6 retention of the window's signups by time to first value.
    pub retention_m6_by_ttv: Vec<TtvRetention>,
    /// Churns of the last 12 months by `cancel_reason`, percent of the churns with one
    /// (empty without the column).
    pub churn_reasons: BTreeMap<String, f64>,
    /// Churns of the last 12 months with a `cancel_reason`.
    pub churns_with_reason: u64,
}

/// Month-6 retention of signups whose first value came within a span of days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TtvRetention {
    /// `under 7 days`, `7-21 days`, `21-45 days`, `45+ days`, or `not by month 6`.
    pub bucket: &'static str,
    pub customers: u64,
    pub retention_pct: Option<f64>,
}

/// The time-to-value buckets: (label, first day, first day of the next bucket); the last
/// holds the signups without a first value by their sixth month.
pub const TTV_BUCKETS: [(&str, i32, i32); 5] = [
    ("under 7 days", 0, 7),
    ("7-21 days", 7, 21),
    ("21-45 days", 21, 45),
    ("45+ days", 45, i32::MAX - 1),
    ("not by month 6", i32::MAX - 1, i32::MAX),
];

/// Each customer's first `feature_use` day (first value), and the first day of the
/// event history (`None` without events).
pub fn first_value_days(ds: &Dataset) -> churn_features::Result<(Vec<Option<Day>>, Option<Day>)> {
    let mut vocab = Vocabulary::default();
    let feature_use = vocab.event_types.intern("feature_use");
    let mut first: Vec<Option<Ts>> = vec![None; ds.customers.len()];
    let mut history: Option<Ts> = None;
    ds.for_each_event_batch(&mut vocab, |b: &EventBatch| {
        for i in 0..b.len() {
            let ts = b.ts[i];
            history = Some(history.map_or(ts, |h| h.min(ts)));
            if b.kind[i] == feature_use {
                let f = &mut first[b.customer[i] as usize];
                *f = Some(f.map_or(ts, |x| x.min(ts)));
            }
        }
        Ok(())
    })?;
    Ok((
        first.into_iter().map(|t| t.map(time::day_of)).collect(),
        history.map(time::day_of),
    ))
}

/// Month-6 retention of the signups of `[start, at)` old enough to measure and signed up
/// inside the event history, by days from signup to first value (a first value after
/// the sixth month, or none, counts as "not by month 6").
fn retention_by_ttv(
    ds: &Dataset,
    all: &[Vec<Period>],
    start: Day,
    at: Day,
    first_value: &[Option<Day>],
    history: Option<Day>,
) -> Vec<TtvRetention> {
    let Some(history) = history else {
        return Vec::new();
    };
    let mut counts = [(0u64, 0u64); TTV_BUCKETS.len()];
    for (i, c) in ds.customers.iter().enumerate() {
        let Some(signup) = periods::signup(&c.subscriptions) else {
            continue;
        };
        let check = time::add_months(signup, 6);
        if signup < start.max(history) || check >= at {
            continue;
        }
        let days = first_value[i]
            .filter(|&d| d < check)
            .map_or(i32::MAX - 1, |d| d - signup);
        let k = TTV_BUCKETS
            .iter()
            .position(|&(_, lo, hi)| (lo..hi).contains(&days))
            .unwrap_or(TTV_BUCKETS.len() - 1);
        counts[k].0 += 1;
        if all[i].iter().any(|p| p.covers(check)) {
            counts[k].1 += 1;
        }
    }
    TTV_BUCKETS
        .iter()
        .zip(counts)
        .map(|(&(bucket, _, _), (n, kept))| TtvRetention {
            bucket,
            customers: n,
            retention_pct: (n > 0).then(|| pct(kept as f64, n as f64)),
        })
        .collect()
}

/// Shares of the churns in `[from, to)` by the `cancel_reason` of the row that ended
/// them, and how many churns had one.
fn churn_reasons(
    ds: &Dataset,
    all: &[Vec<Period>],
    from: Day,
    to: Day,
) -> (BTreeMap<String, f64>, u64) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (c, ps) in ds.customers.iter().zip(all) {
        for p in ps {
            let Some(end) = p.end.filter(|&e| e >= from && e < to) else {
                continue;
            };
            let reason = c
                .subscriptions
                .iter()
                .filter(|s| s.end == Some(end))
                .find_map(|s| s.cancel_reason.as_deref());
            if let Some(r) = reason {
                *counts.entry(r.to_string()).or_default() += 1;
            }
        }
    }
    let total: u64 = counts.values().sum();
    let shares = counts
        .into_iter()
        .map(|(r, n)| (r, pct(n as f64, total as f64)))
        .collect();
    (shares, total)
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub summary: ReportSummary,
    /// The same figures at the baseline date of the goals.
    pub baseline: ReportSummary,
    /// The days the goals are set for.
    pub goals_horizon_days: u32,
    pub goals: Vec<GoalStatus>,
    pub months: Vec<MonthKpis>,
    pub cohorts: Vec<CohortRow>,
    pub nrr: Nrr,
    /// The survival model's lifetime value of the active customers, when the report was
    /// given a model ([`crate::clv::model_clv`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_clv: Option<crate::clv::ModelClv>,
}

/// Churn over `[from, to)` of the customers active on `from`: (customer %, revenue %).
fn window_churn(ds: &Dataset, all: &[Vec<Period>], from: Day, to: Day) -> (f64, f64) {
    let (active, churned, mrr, churned_mrr) = churn_over(ds, all, from, to);
    (pct(churned as f64, active as f64), pct(churned_mrr, mrr))
}

/// Net revenue retention from `start` to the last day before `end`.
pub fn nrr(ds: &Dataset, start: Day, end: Day) -> Nrr {
    let last = end - 1;
    let (mut s_mrr, mut new, mut exp, mut con, mut churned, mut e_mrr) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for c in &ds.customers {
        let a = periods::mrr_on(&c.subscriptions, start);
        let b = periods::mrr_on(&c.subscriptions, last);
        s_mrr += a;
        e_mrr += b;
        match (a > 0.0, b > 0.0) {
            (true, true) if b > a => exp += b - a,
            (true, true) => con += a - b,
            (true, false) => churned += a,
            (false, true) => new += b,
            (false, false) => {}
        }
    }
    let months = month_gap(start, end);
    Nrr {
        start: time::format_date(start),
        end: time::format_date(end),
        months,
        nrr_pct: (s_mrr > 0.0).then(|| 100.0 * (s_mrr + exp - con - churned) / s_mrr),
        start_mrr: s_mrr,
        new_mrr: new,
        expansion_mrr: exp,
        contraction_mrr: con,
        churned_mrr: churned,
        end_mrr: e_mrr,
    }
}

/// Whole months from `a` to `b` (both month starts).
fn month_gap(a: Day, b: Day) -> i32 {
    let (na, nb) = (time::to_naive(a), time::to_naive(b));
    use chrono::Datelike;
    (nb.year() - na.year()) * 12 + nb.month() as i32 - na.month() as i32
}

/// The signup-cohort retention matrix over cohorts that signed up inside the window.
pub fn cohorts(ds: &Dataset, opts: KpiOptions) -> Vec<CohortRow> {
    let (start, as_of) = window(ds, opts.as_of);
    let mut by_month: BTreeMap<Day, Vec<usize>> = BTreeMap::new();
    for (i, c) in ds.customers.iter().enumerate() {
        if let Some(s) = periods::signup(&c.subscriptions) {
            if s >= start && s < as_of {
                by_month.entry(time::month_start(s)).or_default().push(i);
            }
        }
    }
    by_month
        .into_iter()
        .map(|(month, members)| {
            let all: Vec<(Day, Vec<Period>)> = members
                .iter()
                .map(|&i| {
                    let c = &ds.customers[i];
                    (
                        periods::signup(&c.subscriptions).expect("has a signup"),
                        periods::active_periods(&c.subscriptions, opts.grace_days),
                    )
                })
                .collect();
            let mut retention = Vec::new();
            for k in 0.. {
                // Measurable when every member's k-month day lies before as-of.
                if all.iter().any(|(s, _)| time::add_months(*s, k) >= as_of) {
                    break;
                }
                let kept = all
                    .iter()
                    .filter(|(s, ps)| ps.iter().any(|p| p.covers(time::add_months(*s, k))))
                    .count();
                retention.push(pct(kept as f64, all.len() as f64));
            }
            CohortRow {
                cohort: time::month_key(month),
                customers: members.len() as u64,
                retention_pct: retention,
            }
        })
        .collect()
}

/// Tickets and survey answers dated in `[from, to)`.
pub fn voice(ds: &Dataset, all: &[Vec<Period>], from: Day, to: Day) -> Voice {
    let (lo, hi) = (time::day_start(from), time::day_start(to));
    let mut v = Voice::default();
    let (mut hours, mut responded) = (0.0, 0u64);
    let (mut promoters, mut detractors) = (0u64, 0u64);
    let mut csat_sum = 0.0;
    for c in &ds.customers {
        for t in c.tickets.iter().filter(|t| t.opened >= lo && t.opened < hi) {
            v.tickets += 1;
            if let Some(r) = t.first_response {
                hours += (r - t.opened) as f64 / 3600.0;
                responded += 1;
            }
        }
        for s in c
            .surveys
            .iter()
            .filter(|s| s.answered >= lo && s.answered < hi)
        {
            if let Some(n) = s.nps {
                v.nps_answers += 1;
                if n >= 9.0 {
                    promoters += 1;
                } else if n <= 6.0 {
                    detractors += 1;
                }
            }
            if let Some(x) = s.csat {
                v.csat_answers += 1;
                csat_sum += x;
            }
        }
    }
    let active = all
        .iter()
        .filter(|ps| ps.iter().any(|p| p.covers(from)))
        .count();
    v.tickets_per_100_customers = (active > 0).then(|| 100.0 * v.tickets as f64 / active as f64);
    v.first_response_hours = (responded > 0).then(|| hours / responded as f64);
    v.nps = (v.nps_answers > 0)
        .then(|| 100.0 * (promoters as f64 - detractors as f64) / v.nps_answers as f64);
    v.csat = (v.csat_answers > 0).then(|| csat_sum / v.csat_answers as f64);
    v
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0u64);
    for v in values {
        s += v;
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

/// Engagement of the rows of `table` dated `date`.
pub fn engagement(table: &FeatureTable, rows: &[usize], rules_cfg: &RulesConfig) -> Engagement {
    let num = |name: &str| -> Vec<Option<f64>> {
        match table.column(name) {
            Some(Values::Numeric(v)) => rows.iter().map(|&r| v[r]).collect(),
            _ => vec![None; rows.len()],
        }
    };
    let n = rows.len();
    let active_days = num("active_days_28d");
    let sessions = num("sessions_28d");
    let minutes = num("avg_session_minutes_28d");
    let adoption = num("feature_adoption_30d");
    let ttv = num("ttv_days");
    let reached = num("value_reached");
    let tenure = num("tenure_days");
    let with_activity: Vec<usize> = (0..n)
        .filter(|&i| active_days[i].is_some_and(|d| d >= 1.0))
        .collect();
    let (mut total_minutes, mut total_sessions) = (0.0, 0.0);
    for i in 0..n {
        if let (Some(s), Some(m)) = (sessions[i], minutes[i]) {
            total_minutes += s * m;
            total_sessions += s;
        }
    }
    let mut groups = BTreeMap::new();
    for info in &table.info {
        if let Some(g) = info
            .name
            .strip_prefix("adoption_")
            .and_then(|g| g.strip_suffix("_30d"))
        {
            let shares = num(&info.name);
            if let Some(m) = mean(with_activity.iter().filter_map(|&i| shares[i])) {
                groups.insert(g.to_string(), 100.0 * m);
            }
        }
    }
    let onboarding: Vec<f64> = (0..n)
        .filter(|&i| tenure[i].is_some_and(|t| (30.0..120.0).contains(&t)))
        .filter_map(|i| reached[i])
        .collect();
    let mut bands = [0u64; 5];
    let inputs = RuleInputs::of_table(table);
    for &r in rows {
        let result = rules::score(&inputs(r), rules_cfg);
        let k = match result.health.map(|h| h.band) {
            Some(HealthBand::Healthy) => 0,
            Some(HealthBand::AtRisk) => 1,
            Some(HealthBand::Critical) => 2,
            Some(HealthBand::Churning) => 3,
            None => 4,
        };
        bands[k] += 1;
    }
    let share = |k: usize| pct(bands[k] as f64, n as f64);
    Engagement {
        customers: n as u64,
        dau_share_pct: mean(active_days.iter().map(|d| d.unwrap_or(0.0) / 28.0)).map(|m| 100.0 * m),
        mau_share_pct: (n > 0).then(|| pct(with_activity.len() as f64, n as f64)),
        // Per paying customer, as the brief counts it ("sessions per active customer"),
        // so that it agrees with the DAU share; unknown without any session data.
        sessions_per_week: sessions
            .iter()
            .any(Option::is_some)
            .then(|| mean(sessions.iter().map(|s| s.unwrap_or(0.0) / 4.0)))
            .flatten(),
        minutes_per_session: (total_sessions > 0.0).then(|| total_minutes / total_sessions),
        feature_adoption_pct: mean(with_activity.iter().filter_map(|&i| adoption[i]))
            .map(|m| 100.0 * m),
        adoption_by_group: groups,
        ttv_days: mean(ttv.iter().flatten().copied()),
        onboarding_completion_pct: mean(onboarding.into_iter()).map(|m| 100.0 * m),
        health: HealthShares {
            healthy: share(0),
            at_risk: share(1),
            critical: share(2),
            churning: share(3),
            no_data: share(4),
        },
    }
}

/// The summary figures as of `at` and the NRR window ending there, from the window's
/// monthly churn (`churn`, only the months ending by `at` are used), the active periods
/// and the engagement on `at`.
fn summary_at(
    ds: &Dataset,
    opts: KpiOptions,
    at: Day,
    churn: &[MonthChurn],
    all: &[Vec<Period>],
    engagement: Engagement,
    first_value: &(Vec<Option<Day>>, Option<Day>),
) -> (ReportSummary, Nrr) {
    let (start, _) = window(ds, opts.as_of);
    let opts = KpiOptions {
        as_of: Some(at),
        ..opts
    };
    let ended: Vec<MonthChurn> = churn
        .iter()
        .filter(|m| time::add_months(m.start, 1) <= at)
        .cloned()
        .collect();
    let base = summary_of(ds, opts, &ended);
    let trailing = |k: i32| {
        let from = time::add_months(at, -k);
        (from >= start).then(|| window_churn(ds, all, from, at))
    };
    let (q, y) = (trailing(3), trailing(12));
    let nrr = nrr(ds, time::add_months(at, -12).max(start), at);
    let year_before = time::add_months(at, -12);
    let csm = match ds.attributes.iter().find(|a| a.name == "has_csm") {
        Some(Attribute {
            values: Values::Numeric(v),
            ..
        }) if year_before >= start => Some(v),
        _ => None,
    };
    let retained = |with: bool| {
        csm.and_then(|v| {
            let (active, churned, _, _) =
                churn_over_where(ds, all, year_before, at, |i| (v[i] == Some(1.0)) == with);
            (active > 0).then(|| 100.0 - pct(churned as f64, active as f64))
        })
    };
    let (churn_reasons, churns_with_reason) = churn_reasons(ds, all, year_before.max(start), at);
    let revenue_churn =
        mean(ended.iter().rev().take(12).map(|m| m.revenue_churn_pct)).unwrap_or(0.0);
    let summary = ReportSummary {
        monthly_revenue_churn_pct: revenue_churn,
        quarterly_churn_pct: q.map(|v| v.0),
        annual_churn_pct: y.map(|v| v.0),
        quarterly_revenue_churn_pct: q.map(|v| v.1),
        annual_revenue_churn_pct: y.map(|v| v.1),
        nrr_pct: nrr.nrr_pct,
        nrr_months: nrr.months,
        clv: (base.monthly_churn_pct > 0.0).then(|| base.arpa / (base.monthly_churn_pct / 100.0)),
        engagement,
        voice: voice(ds, all, at - RECENT_DAYS, at),
        retention_12m_csm_pct: retained(true),
        retention_12m_no_csm_pct: retained(false),
        retention_m6_by_ttv: retention_by_ttv(ds, all, start, at, &first_value.0, first_value.1),
        churn_reasons,
        churns_with_reason,
        base,
    };
    (summary, nrr)
}

/// Computes the whole report, with the goals measured against their baselines. Features
/// are built once for every month end and the baseline date (one pass over the events).
pub fn report(
    ds: &Dataset,
    opts: KpiOptions,
    rules_cfg: &RulesConfig,
    goals: &Goals,
) -> churn_features::Result<Report> {
    let (start, as_of) = window(ds, opts.as_of);
    let baseline_day = goals.baseline_day(start, as_of);
    let churn = monthly_churn(ds, opts);
    let all: Vec<Vec<Period>> = ds
        .customers
        .iter()
        .map(|c| periods::active_periods(&c.subscriptions, opts.grace_days))
        .collect();
    // Month ends (first days of the next months), as-of itself and the baseline date.
    let mut dates: Vec<Day> = churn
        .iter()
        .map(|m| time::add_months(m.start, 1))
        .chain([as_of, baseline_day])
        .collect();
    dates.sort_unstable();
    dates.dedup();
    let table = features::build(ds, &dates, &FeatureConfig::default())?;
    let mut rows_by_date: BTreeMap<Day, Vec<usize>> =
        dates.iter().map(|&d| (d, Vec::new())).collect();
    // Built from the data directory, every row has its date.
    for (r, d) in table.as_of.iter().enumerate() {
        if let Some(d) = d {
            rows_by_date.entry(*d).or_default().push(r);
        }
    }
    let engagement_by_date: BTreeMap<Day, Engagement> = rows_by_date
        .iter()
        .map(|(&d, rows)| (d, engagement(&table, rows, rules_cfg)))
        .collect();
    let first_value = first_value_days(ds)?;
    let (summary, nrr) = summary_at(
        ds,
        opts,
        as_of,
        &churn,
        &all,
        engagement_by_date[&as_of].clone(),
        &first_value,
    );
    let (baseline, _) = summary_at(
        ds,
        opts,
        baseline_day,
        &churn,
        &all,
        engagement_by_date[&baseline_day].clone(),
        &first_value,
    );
    let months: Vec<MonthKpis> = churn
        .into_iter()
        .map(|m| {
            let m0 = m.start;
            let m1 = time::add_months(m0, 1);
            let trailing = |k: i32| {
                let from = time::add_months(m1, -k);
                (from >= start).then(|| window_churn(ds, &all, from, m1))
            };
            let (q, y) = (trailing(3), trailing(12));
            MonthKpis {
                arpa: (m.active_at_start > 0).then(|| m.mrr_at_start / m.active_at_start as f64),
                quarterly_churn_pct: q.map(|v| v.0),
                quarterly_revenue_churn_pct: q.map(|v| v.1),
                annual_churn_pct: y.map(|v| v.0),
                annual_revenue_churn_pct: y.map(|v| v.1),
                engagement: engagement_by_date[&m1].clone(),
                voice: voice(ds, &all, m0, m1),
                churn: m,
            }
        })
        .collect();
    Ok(Report {
        goals: goal_status(goals, &baseline, &summary),
        goals_horizon_days: goals.horizon_days,
        summary,
        baseline,
        months,
        cohorts: cohorts(ds, opts),
        nrr,
        model_clv: None,
    })
}
