//! Customer lifetime value from the survival model, next to the formula's (ARPA /
//! monthly churn), for the base and per signup cohort, playbook segment and plan.
//!
//! The two answer different questions. The formula's is the whole lifetime of a
//! customer at today's churn: what an average customer is worth when they sign up. The
//! model's is the value still to come from each customer active on the as-of day,
//! given their features (`churn-score`'s `clv`, the same numbers): what the base is
//! worth from today. A young cohort's remaining value is close to its whole lifetime;
//! an old cohort's is what its survivors will still pay.

use crate::{churned_over, pct, window, KpiOptions};
use churn_features::features;
use churn_features::periods::{self, Period};
use churn_features::time::{self, Day};
use churn_features::Dataset;
use churn_scoring::{table_cell, Cell, Options, Scorer};
use serde::Serialize;
use std::collections::BTreeMap;

/// Months of churn the formula averages (the headline's trailing 12).
const TRAILING_MONTHS: i32 = 12;

/// The lifetime value of one group of the customers active on the as-of day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvGroup {
    /// The cohort (signup year), segment or plan.
    pub group: String,
    /// Customers valued by the model.
    pub customers: u64,
    /// Their mean MRR: the features' `mrr`, which the model values (the last known MRR
    /// of a customer in a payment lapse).
    pub arpa: f64,
    /// The group's monthly churn: the mean over the trailing 12 full months of the
    /// share of its customers active at a month's start who churned in the month (the
    /// headline's definition); `None` for groups defined only today (segments).
    pub monthly_churn_pct: Option<f64>,
    /// `arpa / monthly churn`: the formula's lifetime value; `None` without churn.
    pub formula_clv: Option<f64>,
    /// The survival model's remaining lifetime value: mean and median per customer.
    pub mean_clv: f64,
    pub median_clv: f64,
    /// Mean expected remaining lifetime in months.
    pub mean_lifetime_months: f64,
    /// The group's share of the base's remaining value, in percent.
    pub share_of_value_pct: f64,
}

/// The survival model's lifetime value of the active customers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelClv {
    /// `name version` of the model.
    pub model: String,
    /// The day the features are built as of (the report's as-of).
    pub as_of: String,
    /// Annual discount rate and gross margin the model values with.
    pub annual_discount: f64,
    pub gross_margin: f64,
    /// The base: every valued customer as one group.
    pub base: ClvGroup,
    /// Active customers the model could not value (no known MRR, or a row it could not
    /// score).
    pub not_valued: u64,
    /// The goals file's CLV target (the brief's $4,000), when it has one.
    pub goal: Option<f64>,
    /// By signup year (the first subscription's start).
    pub by_cohort: Vec<ClvGroup>,
    /// By the playbook's segment (new, power, casual, at risk) today.
    pub by_segment: Vec<ClvGroup>,
    /// By the plan of the latest subscription.
    pub by_plan: Vec<ClvGroup>,
}

/// Why the model-based CLV could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ClvError {
    #[error("model {0} has no survival model (train it on a data directory, format 5 or later) to value customers with")]
    NoSurvivalModel(String),
    #[error(transparent)]
    Data(#[from] churn_features::DataError),
}

/// One valued customer.
struct Valued {
    customer: usize,
    mrr: f64,
    clv: f64,
    lifetime: f64,
    segment: Option<&'static str>,
}

/// Values every customer active on the report's as-of day with `scorer`'s survival
/// model (features built as the model was trained), and sums it up per group.
pub fn model_clv(
    ds: &Dataset,
    opts: KpiOptions,
    scorer: &Scorer,
    goal: Option<f64>,
) -> Result<ModelClv, ClvError> {
    let artifact = scorer.artifact();
    let name = format!("{} {}", artifact.name, artifact.version);
    let Some(survival) = &artifact.survival else {
        return Err(ClvError::NoSurvivalModel(name));
    };
    let (start, as_of) = window(ds, opts.as_of);
    let table = features::features(ds, as_of, &artifact.feature_config)?;
    let columns = scorer.table_columns(&table);
    let options = Options {
        explain: false,
        top: 0,
        warnings: false,
        survival: true,
    };
    let scored = scorer.score_batch(table.len(), |r, p| table_cell(columns[p], r), options);
    let mrr = table.column("mrr");
    let mut valued = Vec::with_capacity(table.len());
    let mut not_valued = 0u64;
    for (r, s) in scored.into_iter().enumerate() {
        let value = s.ok().and_then(|s| {
            let v = s.model.survival?;
            Some((
                v.clv?,
                v.expected_lifetime_months,
                s.rules.map(|r| r.segment.as_str()),
            ))
        });
        match value {
            Some((clv, lifetime, segment)) => valued.push(Valued {
                customer: table.customers[r] as usize,
                mrr: match table_cell(mrr, r) {
                    Cell::Number(m) => m,
                    _ => 0.0,
                },
                clv,
                lifetime,
                segment,
            }),
            None => not_valued += 1,
        }
    }
    let all: Vec<Vec<Period>> = ds
        .customers
        .iter()
        .map(|c| periods::active_periods(&c.subscriptions, opts.grace_days))
        .collect();
    // The headline's months: whole months from the window's start, the last 12.
    let mut months_from = start;
    while time::add_months(months_from, TRAILING_MONTHS + 1) <= as_of {
        months_from = time::add_months(months_from, 1);
    }
    let churn_window = (months_from, as_of);
    let groups = |key: &dyn Fn(usize) -> Option<String>, with_churn: bool| {
        group_values(ds, &all, &valued, key, with_churn.then_some(churn_window))
    };
    let signup_year = |c: usize| {
        periods::signup(&ds.customers[c].subscriptions)
            .map(|d| time::format_date(d)[..4].to_string())
    };
    let plan = |c: usize| {
        ds.customers[c]
            .subscriptions
            .iter()
            .max_by_key(|s| s.start)
            .map(|s| s.plan.clone())
    };
    let segment_of: BTreeMap<usize, &'static str> = valued
        .iter()
        .filter_map(|v| v.segment.map(|s| (v.customer, s)))
        .collect();
    let segment = |c: usize| segment_of.get(&c).map(|s| s.to_string());
    let base = groups(&|_| Some("all".to_string()), true)
        .pop()
        .unwrap_or_else(|| empty_group("all"));
    Ok(ModelClv {
        model: name,
        as_of: time::format_date(as_of),
        annual_discount: survival.clv.annual_discount,
        gross_margin: survival.clv.gross_margin,
        base,
        not_valued,
        goal,
        by_cohort: groups(&signup_year, true),
        by_segment: groups(&segment, false),
        by_plan: groups(&plan, true),
    })
}

fn empty_group(name: &str) -> ClvGroup {
    ClvGroup {
        group: name.to_string(),
        customers: 0,
        arpa: 0.0,
        monthly_churn_pct: None,
        formula_clv: None,
        mean_clv: 0.0,
        median_clv: 0.0,
        mean_lifetime_months: 0.0,
        share_of_value_pct: 0.0,
    }
}

/// The valued customers grouped by `key` (customers without one are left out), each
/// group with its ARPA and, over the months of `churn_window`, its mean monthly churn
/// and the formula's CLV.
fn group_values(
    ds: &Dataset,
    all: &[Vec<Period>],
    valued: &[Valued],
    key: &dyn Fn(usize) -> Option<String>,
    churn_window: Option<(Day, Day)>,
) -> Vec<ClvGroup> {
    let total: f64 = valued.iter().map(|v| v.clv).sum();
    let mut members: BTreeMap<String, Vec<&Valued>> = BTreeMap::new();
    for v in valued {
        if let Some(k) = key(v.customer) {
            members.entry(k).or_default().push(v);
        }
    }
    // Every customer's group, for the churn of the months before (churned customers
    // count in their group too).
    let mut churn_by_group: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    if let Some((from, to)) = churn_window {
        let group_of: Vec<Option<String>> = (0..ds.customers.len()).map(key).collect();
        let mut m0 = from;
        while time::add_months(m0, 1) <= to {
            let m1 = time::add_months(m0, 1);
            let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            for (g, ps) in group_of.iter().zip(all) {
                let (Some(g), Some(churn)) = (g, churned_over(ps, m0, m1)) else {
                    continue;
                };
                let Some((name, _)) = members.get_key_value(g) else {
                    continue;
                };
                let c = counts.entry(name.as_str()).or_default();
                c.0 += 1;
                c.1 += u64::from(churn);
            }
            for (name, (active, churned)) in counts {
                churn_by_group
                    .entry(name)
                    .or_default()
                    .push(pct(churned as f64, active as f64));
            }
            m0 = m1;
        }
    }
    members
        .iter()
        .map(|(name, vs)| {
            let n = vs.len() as f64;
            let arpa = vs.iter().map(|v| v.mrr).sum::<f64>() / n;
            let churn = churn_by_group
                .get(name.as_str())
                .filter(|months| !months.is_empty())
                .map(|months| months.iter().sum::<f64>() / months.len() as f64);
            let mut clv: Vec<f64> = vs.iter().map(|v| v.clv).collect();
            clv.sort_by(f64::total_cmp);
            let sum: f64 = clv.iter().sum();
            ClvGroup {
                group: name.clone(),
                customers: vs.len() as u64,
                arpa,
                monthly_churn_pct: churn,
                formula_clv: churn.filter(|&c| c > 0.0).map(|c| arpa / (c / 100.0)),
                mean_clv: sum / n,
                median_clv: median(&clv),
                mean_lifetime_months: vs.iter().map(|v| v.lifetime).sum::<f64>() / n,
                share_of_value_pct: pct(sum, total),
            }
        })
        .collect()
}

/// The median of sorted values (0 when empty).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}
