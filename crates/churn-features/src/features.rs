//! Point-in-time features: one row per customer active at an as-of time, computed only
//! from what happened strictly before it.
//!
//! [`build`] computes features for any number of as-of dates in one streaming pass over
//! the events, in memory bounded by customers x dates, never by events. Each event
//! updates the windows of the (at most a few) dates whose windows contain it, plus one
//! "latest before" bucket per customer and date interval, from which "days since the
//! last login" is read off at the end.
//!
//! What "known before `as_of`" means for each table:
//! - subscriptions: those that started before `as_of`; an end on or after `as_of` has
//!   not happened yet (the subscription counts as ongoing);
//! - events and surveys: timestamp before `as_of`;
//! - tickets: opened before `as_of`; a ticket closed on or after `as_of` is still open;
//!   a first response or satisfaction rating counts once given (closing time, or the
//!   opening time when the table has no `closed_at`) before `as_of`;
//! - payments: due before `as_of`; a payment is paid if `paid_at` is before `as_of`,
//!   failed if its status is `failed` (known on the due date), otherwise outstanding.

use crate::dataset::{Customer, Dataset, PaymentStatus, Survey, Values, Vocabulary, NO_FEATURE};
use crate::error::{DataError, Result};
use crate::periods;
use crate::time::{self, day_start, Day, Ts, SECONDS_PER_DAY};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Window lengths, in days.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// Logins, sessions, active days and event counts (and the window before it for
    /// percent changes).
    pub usage_window_days: i32,
    /// Share of the feature catalog used.
    pub adoption_window_days: i32,
    /// Tickets opened.
    pub support_window_days: i32,
    /// First-response time and satisfaction.
    pub support_quality_window_days: i32,
    /// Late and failed payments.
    pub payment_window_days: i32,
    /// MRR change.
    pub mrr_change_days: i32,
    /// Gaps between subscriptions up to this long are not churns.
    pub grace_days: i32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            usage_window_days: 28,
            adoption_window_days: 30,
            support_window_days: 30,
            support_quality_window_days: 90,
            payment_window_days: 90,
            mrr_change_days: 90,
            grace_days: periods::DEFAULT_GRACE_DAYS,
        }
    }
}

impl FeatureConfig {
    /// Reads window settings from a TOML file (the fields of this struct; a missing key
    /// keeps its default) and validates them.
    pub fn load(path: &std::path::Path) -> Result<FeatureConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let cfg: FeatureConfig = toml::from_str(&text).map_err(|e| DataError::Malformed {
            file: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate().map_err(|e| DataError::Malformed {
            file: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// Refuses windows that are not positive and a negative grace period.
    pub fn validate(&self) -> Result<()> {
        let windows = [
            ("usage_window_days", self.usage_window_days),
            ("adoption_window_days", self.adoption_window_days),
            ("support_window_days", self.support_window_days),
            (
                "support_quality_window_days",
                self.support_quality_window_days,
            ),
            ("payment_window_days", self.payment_window_days),
            ("mrr_change_days", self.mrr_change_days),
        ];
        for (name, v) in windows {
            if !(1..=3660).contains(&v) {
                return Err(DataError::InvalidParameter {
                    name: name.into(),
                    message: format!("must be from 1 to 3660 days, got {v}"),
                });
            }
        }
        if !(0..=365).contains(&self.grace_days) {
            return Err(DataError::InvalidParameter {
                name: "grace_days".into(),
                message: format!("must be from 0 to 365 days, got {}", self.grace_days),
            });
        }
        Ok(())
    }

    /// The longest look-back any event window needs.
    fn event_lookback(&self) -> i64 {
        i64::from((2 * self.usage_window_days).max(self.adoption_window_days)) * SECONDS_PER_DAY
    }
}

/// Whether a feature holds numbers or categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Categorical,
}

/// A feature's stable name, meaning and kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeatureInfo {
    pub name: String,
    pub description: String,
    pub kind: FeatureKind,
}

/// Feature rows: one per (customer, as-of date).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    pub customer_ids: Vec<String>,
    /// Index of each row's customer in the dataset.
    pub customers: Vec<u32>,
    /// Each row's as-of date; `None` in a table without dates (a plain table read from
    /// a file without an `as_of` column, or a row whose `as_of` is empty).
    pub as_of: Vec<Option<Day>>,
    pub info: Vec<FeatureInfo>,
    /// One column per entry of `info`.
    pub columns: Vec<Values>,
    /// The settings the fixed features were computed with (their names follow them);
    /// the defaults for a table read from a file.
    pub config: FeatureConfig,
}

impl FeatureTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.customer_ids.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.customer_ids.is_empty()
    }

    /// The column of feature `name`.
    pub fn column(&self, name: &str) -> Option<&Values> {
        self.info
            .iter()
            .position(|i| i.name == name)
            .map(|i| &self.columns[i])
    }

    /// The numeric value of feature `name` in row `row` (`None` when missing, absent or
    /// categorical).
    pub fn number(&self, name: &str, row: usize) -> Option<f64> {
        match self.column(name)? {
            Values::Numeric(v) => v[row],
            Values::Categorical(_) => None,
        }
    }

    /// The category of feature `name` in row `row`.
    pub fn category(&self, name: &str, row: usize) -> Option<&str> {
        match self.column(name)? {
            Values::Categorical(v) => v[row].as_deref(),
            Values::Numeric(_) => None,
        }
    }
}

/// What part of a customer's life a feature describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureGroup {
    /// Subscription, plan, revenue and tenure.
    Account,
    /// Logins, sessions and activity.
    Usage,
    /// Product features used and time to value.
    Adoption,
    /// Tickets, response times and satisfaction.
    Support,
    /// Invoices paid late, failed or outstanding.
    Payments,
    /// NPS and CSAT answers.
    Surveys,
}

/// The setting of [`FeatureConfig`] a feature's window comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSetting {
    Usage,
    Adoption,
    Support,
    SupportQuality,
    Payment,
    MrrChange,
}

impl WindowSetting {
    /// The window's length in days under `cfg`.
    pub fn days(self, cfg: &FeatureConfig) -> i32 {
        match self {
            WindowSetting::Usage => cfg.usage_window_days,
            WindowSetting::Adoption => cfg.adoption_window_days,
            WindowSetting::Support => cfg.support_window_days,
            WindowSetting::SupportQuality => cfg.support_quality_window_days,
            WindowSetting::Payment => cfg.payment_window_days,
            WindowSetting::MrrChange => cfg.mrr_change_days,
        }
    }
}

/// One feature whose name does not depend on the data: everything about it in one
/// entry of [`FIXED_FEATURES`], from which rows, names, descriptions and the rules'
/// inputs are derived.
pub struct FeatureDef {
    /// The name without its window (`logins_per_week`); a windowed feature's name ends
    /// with the window's length (`logins_per_week_28d`).
    pub stem: &'static str,
    pub kind: FeatureKind,
    pub group: FeatureGroup,
    /// The window the feature looks back over, if any.
    pub window: Option<WindowSetting>,
    /// What it measures; `{window}` stands for the window's length (`28 days`).
    pub description: &'static str,
    /// Its value in one row, from what the row's customer had done before as-of (each
    /// entry is evaluated once per row, so a value may be moved out of the facts).
    value: fn(&mut RowFacts<'_>) -> Cell,
}

impl FeatureDef {
    /// The feature's name under `cfg` (`logins_per_week_28d` with the default windows).
    pub fn name(&self, cfg: &FeatureConfig) -> String {
        match self.window {
            Some(w) => format!("{}_{}d", self.stem, w.days(cfg)),
            None => self.stem.to_string(),
        }
    }

    /// The feature's name, meaning and kind under `cfg`.
    pub fn info(&self, cfg: &FeatureConfig) -> FeatureInfo {
        let description = match self.window {
            Some(w) => self
                .description
                .replace("{window}", &format!("{} days", w.days(cfg))),
            None => self.description.to_string(),
        };
        FeatureInfo {
            name: self.name(cfg),
            description,
            kind: self.kind,
        }
    }
}

/// The name that the fixed feature `stem` has under `cfg` (`None` for an unknown stem).
pub fn fixed_name(stem: &str, cfg: &FeatureConfig) -> Option<String> {
    FIXED_FEATURES
        .iter()
        .find(|d| d.stem == stem)
        .map(|d| d.name(cfg))
}

const fn def(
    stem: &'static str,
    kind: FeatureKind,
    group: FeatureGroup,
    window: Option<WindowSetting>,
    description: &'static str,
    value: fn(&mut RowFacts<'_>) -> Cell,
) -> FeatureDef {
    FeatureDef {
        stem,
        kind,
        group,
        window,
        description,
        value,
    }
}

use FeatureGroup as G;
use FeatureKind::{Categorical, Numeric};
use WindowSetting as W;

/// The features whose names do not depend on the data, in column order.
#[rustfmt::skip]
pub const FIXED_FEATURES: &[FeatureDef] = &[
    def("tenure_days", Numeric, G::Account, None, "days since the customer's first subscription started",
        |f| Cell::Num(Some(f64::from(f.as_of - f.signup)))),
    def("plan", Categorical, G::Account, None, "plan of the latest subscription in force",
        |f| Cell::Cat(f.plan.take())),
    def("mrr", Numeric, G::Account, None, "monthly recurring revenue on the day before as-of",
        |f| Cell::Num(Some(f.mrr_now))),
    def("mrr_change", Numeric, G::Account, Some(W::MrrChange), "MRR now minus MRR at the start of the MRR-change window ({window})",
        |f| Cell::Num(Some(f.mrr_now - f.mrr_window_start))),
    def("signup_cohort", Categorical, G::Account, None, "month of the first subscription (YYYY-MM)",
        |f| Cell::Cat(Some(time::month_key(f.signup)))),
    def("previous_churns", Numeric, G::Account, None, "active periods that ended before the current one (churned and came back)",
        |f| Cell::Num(Some(f.previous_churns as f64))),
    def("logins_per_week", Numeric, G::Usage, Some(W::Usage), "login events per week over the usage window ({window})",
        |f| f.event_count(f64::from(f.window.logins) * 7.0 / f64::from(f.usage_days))),
    def("active_days", Numeric, G::Usage, Some(W::Usage), "days with any event over the usage window ({window})",
        |f| f.event_count(f64::from(f.window.active_days.count_ones()))),
    def("sessions", Numeric, G::Usage, Some(W::Usage), "session events over the usage window ({window})",
        |f| f.event_count(f64::from(f.window.sessions))),
    def("avg_session_minutes", Numeric, G::Usage, Some(W::Usage), "mean session length in minutes over the usage window; empty without sessions",
        |f| Cell::Num((f.window.minutes_n > 0).then(|| f.window.micro_minutes as f64 / 1e6 / f64::from(f.window.minutes_n)))),
    def("days_since_last_login", Numeric, G::Usage, None, "days since the latest login; empty if none was ever seen",
        |f| Cell::Num(f.last_login.map(|x| days_between(f.t, x)))),
    def("days_since_last_activity", Numeric, G::Usage, None, "days since the latest event of any type; empty if none",
        |f| Cell::Num(f.last_activity.map(|x| days_between(f.t, x)))),
    def("feature_adoption", Numeric, G::Adoption, Some(W::Adoption), "share (0-1) of the feature catalog used over the adoption window ({window})",
        |f| Cell::Num(if f.has_events { f.adoption } else { None })),
    def("features_used", Numeric, G::Adoption, Some(W::Adoption), "distinct product features used over the adoption window",
        |f| f.event_count(f.window.features.len() as f64)),
    def("ttv_days", Numeric, G::Adoption, None, "days from signup to the first feature_use; empty if not reached or if signup precedes the event history",
        |f| Cell::Num((f.history_known && f.reached).then(|| days_between(f.first_feature_use, day_start(f.signup))))),
    def("value_reached", Numeric, G::Adoption, None, "1 if a feature_use happened since signup, 0 if not; empty if signup precedes the event history",
        |f| Cell::Num(f.history_known.then_some(if f.reached { 1.0 } else { 0.0 }))),
    def("tickets", Numeric, G::Support, Some(W::Support), "support tickets opened over the support window ({window})",
        |f| Cell::Num(f.has_tickets.then_some(f64::from(f.tickets_opened)))),
    def("open_tickets", Numeric, G::Support, None, "tickets opened and not yet closed",
        |f| Cell::Num(f.has_tickets.then_some(f64::from(f.tickets_open)))),
    def("avg_first_response_hours", Numeric, G::Support, Some(W::SupportQuality), "mean hours to first response of tickets opened over the quality window ({window}) and answered",
        |f| Cell::Num(f.response_hours.mean())),
    def("avg_satisfaction", Numeric, G::Support, Some(W::SupportQuality), "mean ticket satisfaction (1-5) rated over the quality window ({window})",
        |f| Cell::Num(f.satisfaction.mean())),
    def("late_payments", Numeric, G::Payments, Some(W::Payment), "invoices due over the payment window ({window}) paid after their due date or still outstanding",
        |f| Cell::Num(f.has_payments.then_some(f64::from(f.late_payments)))),
    def("failed_payments", Numeric, G::Payments, Some(W::Payment), "invoices due over the payment window ({window}) whose payment failed",
        |f| Cell::Num(f.has_payments.then_some(f64::from(f.failed_payments)))),
    def("days_past_due", Numeric, G::Payments, None, "days the oldest unpaid, past-due invoice is overdue; 0 if none",
        |f| Cell::Num(f.has_payments.then_some(f64::from(f.days_past_due)))),
    def("last_nps", Numeric, G::Surveys, None, "latest NPS answer (0-10)",
        |f| Cell::Num(f.last_nps.and_then(|s| s.nps))),
    def("nps_age_days", Numeric, G::Surveys, None, "days since the latest NPS answer",
        |f| Cell::Num(f.last_nps.map(|s| days_between(f.t, s.answered)))),
    def("last_csat", Numeric, G::Surveys, None, "latest CSAT answer (1-10)",
        |f| Cell::Num(f.last_csat.and_then(|s| s.csat))),
    def("csat_age_days", Numeric, G::Surveys, None, "days since the latest CSAT answer",
        |f| Cell::Num(f.last_csat.map(|s| days_between(f.t, s.answered)))),
];

/// A name made of lowercase ASCII letters, digits and underscores.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_underscore = true;
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("unnamed");
    }
    out
}

/// Window state of one (customer, date) slot.
#[derive(Debug, Clone, Default)]
struct Window {
    logins: u32,
    /// Bit `k` set: an event on day `k` of the usage window.
    active_days: u64,
    sessions: u32,
    /// Session minutes in millionths: an integer sum is the same in any event order.
    micro_minutes: i64,
    minutes_n: u32,
    /// (event type, count in the usage window, count in the window before it).
    kinds: Vec<(u32, u32, u32)>,
    /// Distinct feature ids used over the adoption window.
    features: Vec<u32>,
}

const NONE_SLOT: u32 = u32::MAX;
/// Rows whose fixed features are computed at once.
const FILL_CHUNK: usize = 16 * 1024;

/// Per-customer, per-interval latest login / activity and earliest feature use, where
/// interval `k` holds events in `[dates[k-1], dates[k])`.
struct Latest {
    dates: usize,
    login: Vec<Ts>,
    activity: Vec<Ts>,
}

struct Scan {
    dates: Vec<Day>,
    /// `slot[c * dates + j]`: the row of customer `c` at date `j`, or NONE_SLOT.
    slot: Vec<u32>,
    windows: Vec<Window>,
    latest: Latest,
    first_feature_use: Vec<Ts>,
    /// First time each event type / feature was seen, by id.
    kind_first_seen: Vec<Ts>,
    feature_first_seen: Vec<Ts>,
    history_start: Ts,
    vocab: Vocabulary,
    login: Option<u32>,
    session: Option<u32>,
    feature_use: Option<u32>,
}

impl Scan {
    fn event(&mut self, c: u32, ts: Ts, kind: u32, value: f64, feature: u32, cfg: &FeatureConfig) {
        let nd = self.dates.len();
        let c = c as usize;
        // First date strictly after the event: only those dates may use it.
        let first = self.dates.partition_point(|&d| day_start(d) <= ts);
        if first == nd {
            return;
        }
        self.history_start = self.history_start.min(ts);
        grow(&mut self.kind_first_seen, kind, ts);
        if feature != NO_FEATURE {
            grow(&mut self.feature_first_seen, feature, ts);
        }
        let b = c * self.latest.dates + first;
        self.latest.activity[b] = self.latest.activity[b].max(ts);
        if Some(kind) == self.login {
            self.latest.login[b] = self.latest.login[b].max(ts);
        }
        if Some(kind) == self.feature_use && feature != NO_FEATURE {
            self.first_feature_use[c] = self.first_feature_use[c].min(ts);
        }
        let usage = i64::from(cfg.usage_window_days) * SECONDS_PER_DAY;
        let adoption = i64::from(cfg.adoption_window_days) * SECONDS_PER_DAY;
        let lookback = cfg.event_lookback();
        for j in first..nd {
            let end = day_start(self.dates[j]);
            let age = end - ts; // > 0
            if age > lookback {
                break;
            }
            let s = self.slot[c * nd + j];
            if s == NONE_SLOT {
                continue;
            }
            let w = &mut self.windows[s as usize];
            if age <= usage {
                if Some(kind) == self.login {
                    w.logins += 1;
                }
                if Some(kind) == self.session {
                    w.sessions += 1;
                    if value.is_finite() {
                        w.micro_minutes += (value * 1e6).round() as i64;
                        w.minutes_n += 1;
                    }
                }
                let day = ((ts - (end - usage)).div_euclid(SECONDS_PER_DAY)) as u32;
                w.active_days |= 1u64 << day.min(63);
            }
            if age <= 2 * usage {
                let current = age <= usage;
                match w.kinds.iter_mut().find(|k| k.0 == kind) {
                    Some(k) => {
                        if current {
                            k.1 += 1
                        } else {
                            k.2 += 1
                        }
                    }
                    None => w
                        .kinds
                        .push((kind, u32::from(current), u32::from(!current))),
                }
            }
            if age <= adoption && feature != NO_FEATURE {
                if let Err(pos) = w.features.binary_search(&feature) {
                    w.features.insert(pos, feature);
                }
            }
        }
    }
}

fn grow(first_seen: &mut Vec<Ts>, id: u32, ts: Ts) {
    let id = id as usize;
    if first_seen.len() <= id {
        first_seen.resize(id + 1, Ts::MAX);
    }
    first_seen[id] = first_seen[id].min(ts);
}

/// Whether `c` is a customer at `as_of`, from what is known strictly before it: see
/// [`periods::active_at`] (renewals on the day and lapses within the grace period are
/// active).
pub fn is_active(c: &Customer, as_of: Day, grace_days: i32) -> bool {
    periods::active_at(&c.subscriptions, as_of, grace_days)
}

/// Features as of one date for every customer active then.
pub fn features(ds: &Dataset, as_of: Day, cfg: &FeatureConfig) -> Result<FeatureTable> {
    build(ds, &[as_of], cfg)
}

/// Features as of each of `dates` (any order; rows come date by date in ascending
/// order, customers in dataset order), in one pass over the events.
pub fn build(ds: &Dataset, dates: &[Day], cfg: &FeatureConfig) -> Result<FeatureTable> {
    build_with_progress(ds, dates, cfg, &|_| {})
}

/// [`build`], calling `progress(events_so_far)` after each batch of events.
pub fn build_with_progress(
    ds: &Dataset,
    dates: &[Day],
    cfg: &FeatureConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FeatureTable> {
    let (dates, rows, scan) = scan_events(ds, dates, cfg, progress)?;
    Ok(assemble(ds, &dates, &rows, &scan, cfg, ds.events.is_some()))
}

/// What a customer's feature row depends on beyond the customer's own rows: when each
/// event type and product feature was first seen, the earliest event, and whether each
/// text attribute of the customers table holds numbers. A data set split by customer
/// (buckets on a cluster) gives the whole's features part by part when every part is
/// built with the summary of the whole: [`summarise`] each part, [`merge`] them, then
/// [`build_summarised`] (and load the parts with
/// [`Dataset::from_tables_with`] and [`numeric_text_attributes`]).
///
/// [`merge`]: DataSummary::merge
/// [`numeric_text_attributes`]: DataSummary::numeric_text_attributes
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataSummary {
    /// The earliest event of a known customer, in seconds.
    pub history_start: Option<Ts>,
    /// Each event type's first event, in seconds.
    pub event_types: BTreeMap<String, Ts>,
    /// Each product feature's first use, in seconds.
    pub features: BTreeMap<String, Ts>,
    /// Each attribute read from a text column: whether it has a value, and whether all
    /// its values are numbers.
    pub text_attributes: BTreeMap<String, TextAttribute>,
    /// Each table's first and last day (see [`Dataset::table_spans`]): the data's span,
    /// from which the observation dates of examples follow.
    pub spans: BTreeMap<String, (Day, Day)>,
}

/// What a part of the data says of a text attribute (see [`DataSummary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TextAttribute {
    pub any: bool,
    pub all_numbers: bool,
}

impl DataSummary {
    /// The summary of two parts together.
    pub fn merge(&mut self, other: &DataSummary) {
        self.history_start = match (self.history_start, other.history_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (name, &ts) in &other.event_types {
            let e = self.event_types.entry(name.clone()).or_insert(ts);
            *e = (*e).min(ts);
        }
        for (name, &ts) in &other.features {
            let e = self.features.entry(name.clone()).or_insert(ts);
            *e = (*e).min(ts);
        }
        for (name, a) in &other.text_attributes {
            let e = self.text_attributes.entry(name.clone()).or_insert(*a);
            e.any |= a.any;
            e.all_numbers &= a.all_numbers;
        }
        for (name, &(first, last)) in &other.spans {
            let e = self.spans.entry(name.clone()).or_insert((first, last));
            *e = (e.0.min(first), e.1.max(last));
        }
    }

    /// The span of the whole, as [`Dataset::date_range`] gives it.
    pub fn date_range(&self) -> (Day, Day) {
        let spans: Vec<(&str, Day, Day)> = self
            .spans
            .iter()
            .map(|(n, &(a, z))| (n.as_str(), a, z))
            .collect();
        crate::dataset::range_of(&spans)
    }

    /// The kind of each text attribute over the whole: numeric (`true`) when it has
    /// values and all are numbers, as [`Dataset::open`] decides for a whole table.
    pub fn numeric_text_attributes(&self) -> BTreeMap<String, bool> {
        self.text_attributes
            .iter()
            .map(|(name, a)| (name.clone(), a.any && a.all_numbers))
            .collect()
    }
}

/// The [`DataSummary`] of a dataset (one pass over its events). It holds the first
/// sighting over every event: whether one came before a date, all that features ask,
/// follows for any date.
pub fn summarise(ds: &Dataset) -> Result<DataSummary> {
    // A date after every event a reader accepts: the scan then sees them all.
    let after_all = crate::read::MAX_DAY;
    let (_, _, scan) = scan_events(ds, &[after_all], &FeatureConfig::default(), &|_| {})?;
    let seen = |first: &[Ts], names: &crate::dataset::Interner| -> BTreeMap<String, Ts> {
        first
            .iter()
            .enumerate()
            .filter(|(_, &ts)| ts != Ts::MAX)
            .map(|(id, &ts)| (names.name(id as u32).to_string(), ts))
            .collect()
    };
    let text_attributes = ds
        .attributes
        .iter()
        .filter(|a| a.text)
        .map(|a| {
            let seen = match &a.values {
                Values::Numeric(v) => TextAttribute {
                    any: v.iter().any(Option::is_some),
                    all_numbers: true,
                },
                Values::Categorical(v) => TextAttribute {
                    any: v.iter().any(Option::is_some),
                    all_numbers: v
                        .iter()
                        .flatten()
                        .all(|s| crate::dataset::attribute_number(s).is_some()),
                },
            };
            (a.name.clone(), seen)
        })
        .collect();
    Ok(DataSummary {
        history_start: (scan.history_start != Ts::MAX).then_some(scan.history_start),
        event_types: seen(&scan.kind_first_seen, &scan.vocab.event_types),
        features: seen(&scan.feature_first_seen, &scan.vocab.features),
        text_attributes,
        spans: ds
            .table_spans()
            .into_iter()
            .map(|(name, first, last)| (name.to_string(), (first, last)))
            .collect(),
    })
}

/// [`build`] on a part of a data set, with what depends on the whole taken from
/// `whole` (the merged [`DataSummary`] of every part): the part's rows of the whole's
/// feature table, with the whole's columns.
pub fn build_summarised(
    ds: &Dataset,
    dates: &[Day],
    cfg: &FeatureConfig,
    whole: &DataSummary,
) -> Result<FeatureTable> {
    let (dates, rows, mut scan) = scan_events(ds, dates, cfg, &|_| {})?;
    if let Some(h) = whole.history_start {
        scan.history_start = scan.history_start.min(h);
    }
    for (name, &ts) in &whole.event_types {
        let k = scan.vocab.event_types.intern(name);
        grow(&mut scan.kind_first_seen, k, ts);
    }
    for (name, &ts) in &whole.features {
        let f = scan.vocab.features.intern(name);
        grow(&mut scan.feature_first_seen, f, ts);
    }
    Ok(assemble(ds, &dates, &rows, &scan, cfg, ds.events.is_some()))
}

/// One pass over the events for `dates` (sorted, deduplicated, returned): the rows
/// (customer, date index) active at each date and the scan's state.
#[allow(clippy::type_complexity)]
fn scan_events(
    ds: &Dataset,
    dates: &[Day],
    cfg: &FeatureConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Vec<Day>, Vec<(u32, usize)>, Scan)> {
    cfg.validate()?;
    let mut dates = dates.to_vec();
    dates.sort_unstable();
    dates.dedup();
    let nd = dates.len();
    let nc = ds.customers.len();
    let mut slot = vec![NONE_SLOT; nc * nd];
    let mut rows: Vec<(u32, usize)> = Vec::new(); // (customer, date index)
    for (j, &d) in dates.iter().enumerate() {
        for (c, cust) in ds.customers.iter().enumerate() {
            if is_active(cust, d, cfg.grace_days) {
                slot[c * nd + j] = rows.len() as u32;
                rows.push((c as u32, j));
            }
        }
    }
    // The vocabulary is seeded so the well-known types get stable ids.
    let mut vocab = Vocabulary::default();
    let login = vocab.event_types.intern("login");
    let session = vocab.event_types.intern("session");
    let feature_use = vocab.event_types.intern("feature_use");
    if let Some(cat) = &ds.catalog {
        for (f, _) in &cat.features {
            vocab.features.intern(f);
        }
    }
    let mut scan = Scan {
        slot,
        windows: vec![Window::default(); rows.len()],
        latest: Latest {
            dates: nd + 1,
            login: vec![Ts::MIN; nc * (nd + 1)],
            activity: vec![Ts::MIN; nc * (nd + 1)],
        },
        first_feature_use: vec![Ts::MAX; nc],
        kind_first_seen: Vec::new(),
        feature_first_seen: Vec::new(),
        history_start: Ts::MAX,
        vocab: Vocabulary::default(),
        login: Some(login),
        session: Some(session),
        feature_use: Some(feature_use),
        dates: dates.clone(),
    };
    let mut seen = 0u64;
    let _orphans = ds.for_each_event_batch(&mut vocab, |b| {
        for i in 0..b.len() {
            scan.event(
                b.customer[i],
                b.ts[i],
                b.kind[i],
                b.value[i],
                b.feature[i],
                cfg,
            );
        }
        seen += b.len() as u64;
        progress(seen);
        Ok(())
    })?;
    scan.vocab = vocab;
    Ok((dates, rows, scan))
}

/// Turns the scan's state and the small tables into feature columns.
fn assemble(
    ds: &Dataset,
    dates: &[Day],
    rows: &[(u32, usize)],
    scan: &Scan,
    cfg: &FeatureConfig,
    has_events: bool,
) -> FeatureTable {
    let n = rows.len();
    let mut info: Vec<FeatureInfo> = FIXED_FEATURES.iter().map(|d| d.info(cfg)).collect();
    let nfixed = info.len();
    let mut columns: Vec<Values> = info
        .iter()
        .map(|i| match i.kind {
            FeatureKind::Numeric => Values::Numeric(vec![None; n]),
            FeatureKind::Categorical => Values::Categorical(vec![None; n]),
        })
        .collect();

    // Fixed features, in parallel over chunks of rows, so the intermediate cells take
    // memory for one chunk, not the whole table.
    for (chunk_index, chunk) in rows.chunks(FILL_CHUNK).enumerate() {
        let computed: Vec<Vec<Cell>> = chunk
            .par_iter()
            .map(|&(c, j)| fixed_row(ds, c as usize, dates[j], j, scan, cfg, has_events))
            .collect();
        for (offset, cells) in computed.into_iter().enumerate() {
            let r = chunk_index * FILL_CHUNK + offset;
            for (k, cell) in cells.into_iter().enumerate() {
                match (&mut columns[k], cell) {
                    (Values::Numeric(v), Cell::Num(x)) => v[r] = x,
                    (Values::Categorical(v), Cell::Cat(x)) => v[r] = x,
                    _ => unreachable!("a cell's kind is its FeatureDef's"),
                }
            }
        }
    }

    let last_date = dates.last().copied().map_or(Ts::MIN, day_start);
    let mut taken: Vec<String> = info.iter().map(|i| i.name.clone()).collect();

    // Per-group adoption, when the catalog names groups.
    let groups = catalog_groups(ds, scan);
    for (g, members) in &groups {
        let days = cfg.adoption_window_days;
        let name = unique(&mut taken, format!("adoption_{}_{days}d", snake_case(g)));
        info.push(FeatureInfo {
            name,
            description: format!(
                "share (0-1) of the `{g}` feature group used over the adoption window ({days} days)"
            ),
            kind: FeatureKind::Numeric,
        });
        columns.push(Values::Numeric(
            rows.iter()
                .enumerate()
                .map(|(r, _)| {
                    has_events.then(|| {
                        let used = scan.windows[r]
                            .features
                            .iter()
                            .filter(|f| members.contains(f))
                            .count();
                        used as f64 / members.len() as f64
                    })
                })
                .collect(),
        ));
    }

    // Generic event-type counts, for every type seen before the latest date (a type
    // first seen later than a row's date simply counts zero there).
    let mut kinds: Vec<(u32, &str)> = (0..scan.kind_first_seen.len() as u32)
        .filter(|&k| scan.kind_first_seen[k as usize] < last_date)
        .map(|k| (k, scan.vocab.event_types.name(k)))
        .collect();
    kinds.sort_by(|a, b| a.1.cmp(b.1));
    for (k, name) in kinds {
        let base = snake_case(name);
        let days = cfg.usage_window_days;
        let count_name = unique(&mut taken, format!("events_{base}_{days}d"));
        let change_name = unique(&mut taken, format!("events_{base}_pct_change_{days}d"));
        let mut counts = vec![None; n];
        let mut changes = vec![None; n];
        for (r, w) in scan.windows.iter().enumerate() {
            let (cur, prev) = w
                .kinds
                .iter()
                .find(|x| x.0 == k)
                .map_or((0, 0), |x| (x.1, x.2));
            counts[r] = Some(f64::from(cur));
            changes[r] =
                (prev > 0).then(|| 100.0 * (f64::from(cur) - f64::from(prev)) / f64::from(prev));
        }
        info.push(FeatureInfo {
            name: count_name,
            description: format!("`{name}` events over the usage window ({days} days)"),
            kind: FeatureKind::Numeric,
        });
        columns.push(Values::Numeric(counts));
        info.push(FeatureInfo {
            name: change_name,
            description: format!("percent change of `{name}` events against the {days} days before; empty when there were none before"),
            kind: FeatureKind::Numeric,
        });
        columns.push(Values::Numeric(changes));
    }

    // Static attributes.
    for a in &ds.attributes {
        let name = if taken.contains(&a.name) {
            unique(&mut taken, format!("customer_{}", a.name))
        } else {
            unique(&mut taken, a.name.clone())
        };
        let (kind, values) = match &a.values {
            Values::Numeric(v) => (
                FeatureKind::Numeric,
                Values::Numeric(rows.iter().map(|&(c, _)| v[c as usize]).collect()),
            ),
            Values::Categorical(v) => (
                FeatureKind::Categorical,
                Values::Categorical(rows.iter().map(|&(c, _)| v[c as usize].clone()).collect()),
            ),
        };
        info.push(FeatureInfo {
            name,
            description: format!("customer attribute `{}`", a.name),
            kind,
        });
        columns.push(values);
    }
    debug_assert!(info.len() >= nfixed);

    FeatureTable {
        customer_ids: rows
            .iter()
            .map(|&(c, _)| ds.customers[c as usize].id.clone())
            .collect(),
        customers: rows.iter().map(|&(c, _)| c).collect(),
        as_of: rows.iter().map(|&(_, j)| Some(dates[j])).collect(),
        info,
        columns,
        config: cfg.clone(),
    }
}

/// The catalog's groups with their members' feature ids (by the scan's vocabulary).
fn catalog_groups(ds: &Dataset, scan: &Scan) -> Vec<(String, Vec<u32>)> {
    let Some(cat) = &ds.catalog else {
        return Vec::new();
    };
    cat.groups()
        .into_iter()
        .map(|g| {
            let members = cat
                .features
                .iter()
                .filter(|(_, fg)| *fg == g)
                .filter_map(|(f, _)| scan.vocab.features.get(f))
                .collect();
            (g, members)
        })
        .collect()
}

/// `base`, or `base_2`, `base_3`, ... if taken; records the name as taken.
fn unique(taken: &mut Vec<String>, base: String) -> String {
    let mut name = base.clone();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    taken.push(name.clone());
    name
}

enum Cell {
    Num(Option<f64>),
    Cat(Option<String>),
}

fn days_between(later: Ts, earlier: Ts) -> f64 {
    ((later - earlier) as f64 / SECONDS_PER_DAY as f64 * 100.0).round() / 100.0
}

/// What one row's fixed features are computed from: the customer's history before
/// as-of, gathered once per row.
struct RowFacts<'a> {
    as_of: Day,
    t: Ts,
    signup: Day,
    plan: Option<String>,
    mrr_now: f64,
    mrr_window_start: f64,
    previous_churns: usize,
    has_events: bool,
    window: &'a Window,
    usage_days: i32,
    last_login: Option<Ts>,
    last_activity: Option<Ts>,
    adoption: Option<f64>,
    history_known: bool,
    reached: bool,
    first_feature_use: Ts,
    has_tickets: bool,
    tickets_opened: u32,
    tickets_open: u32,
    response_hours: Mean,
    satisfaction: Mean,
    has_payments: bool,
    late_payments: u32,
    failed_payments: u32,
    days_past_due: i32,
    last_nps: Option<&'a Survey>,
    last_csat: Option<&'a Survey>,
}

impl RowFacts<'_> {
    /// A count from the events table: empty when the data has none.
    fn event_count(&self, v: f64) -> Cell {
        Cell::Num(self.has_events.then_some(v))
    }
}

/// A sum and a count, whose mean is empty when nothing was counted.
#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: f64,
    n: u32,
}

impl Mean {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
    }

    fn mean(self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }
}

/// The fixed features of customer `c` as of `as_of` (date `j` of the scan), in
/// [`FIXED_FEATURES`] order.
fn fixed_row(
    ds: &Dataset,
    c: usize,
    as_of: Day,
    j: usize,
    scan: &Scan,
    cfg: &FeatureConfig,
    has_events: bool,
) -> Vec<Cell> {
    let cust = &ds.customers[c];
    let t = day_start(as_of);
    let nd = scan.dates.len();
    let slot = scan.slot[c * nd + j] as usize;
    let w = &scan.windows[slot];
    let subs = &cust.subscriptions;
    let signup = periods::signup(subs).expect("an active customer has a subscription");
    let known: Vec<_> = subs.iter().filter(|s| s.start < as_of).collect();
    // Only days before as-of are asked for: a subscription covering one started before
    // as-of, so the full list gives what was known then.
    let in_force = |day: Day| {
        debug_assert!(day < as_of);
        periods::mrr_on(subs, day)
    };
    let mrr_now = in_force(as_of - 1);
    let mrr_window_start = in_force(as_of - cfg.mrr_change_days);
    let plan = known
        .iter()
        .filter(|s| s.end.is_none_or(|e| e >= as_of))
        .max_by_key(|s| s.start)
        .map(|s| s.plan.clone());
    let before = periods::periods_known_before(subs, as_of, cfg.grace_days);
    let previous_churns = before.iter().filter(|p| p.end.is_some()).count();

    // Events.
    let latest = |v: &Vec<Ts>| -> Option<Ts> {
        let base = c * scan.latest.dates;
        (0..=j).map(|k| v[base + k]).max().filter(|&x| x != Ts::MIN)
    };
    let last_login = latest(&scan.latest.login);
    let last_activity = latest(&scan.latest.activity);
    let catalog_size = match &ds.catalog {
        Some(cat) => cat.features.len(),
        None => scan.feature_first_seen.iter().filter(|&&s| s < t).count(),
    };
    let in_catalog = |f: &u32| match &ds.catalog {
        Some(cat) => (*f as usize) < cat.features.len(),
        None => true,
    };
    let adoption = (catalog_size > 0)
        .then(|| w.features.iter().filter(|f| in_catalog(f)).count() as f64 / catalog_size as f64);
    let history_known = has_events && scan.history_start <= day_start(signup);
    let first_fu = scan.first_feature_use[c];
    let reached = first_fu < t;

    // Support.
    let has_tickets = ds.tables.tickets;
    let support_from = t - i64::from(cfg.support_window_days) * SECONDS_PER_DAY;
    let quality_from = t - i64::from(cfg.support_quality_window_days) * SECONDS_PER_DAY;
    let known_tickets = cust.tickets.iter().filter(|k| k.opened < t);
    let (mut opened_recent, mut open) = (0u32, 0u32);
    let (mut response_hours, mut satisfaction) = (Mean::default(), Mean::default());
    for k in known_tickets {
        if k.opened >= support_from {
            opened_recent += 1;
        }
        if k.closed.is_none_or(|x| x >= t) {
            open += 1;
        }
        if k.opened >= quality_from {
            if let Some(r) = k.first_response.filter(|&r| r < t) {
                response_hours.add((r - k.opened) as f64 / 3600.0);
            }
        }
        let rated_at = k.closed.unwrap_or(k.opened);
        if let Some(s) = k.satisfaction {
            if rated_at < t && rated_at >= quality_from {
                satisfaction.add(s);
            }
        }
    }

    // Payments.
    let has_payments = ds.tables.payments;
    let pay_from = as_of - cfg.payment_window_days;
    let (mut late, mut failed, mut past_due) = (0u32, 0u32, 0i32);
    for p in cust.payments.iter().filter(|p| p.due < as_of) {
        let state = payment_state(p, t, ds.tables.paid_at);
        if p.due >= pay_from {
            match state {
                PaymentState::Failed { .. } => failed += 1,
                PaymentState::Late | PaymentState::Outstanding => late += 1,
                PaymentState::OnTime => {}
            }
        }
        if matches!(
            state,
            PaymentState::Outstanding | PaymentState::Failed { outstanding: true }
        ) {
            past_due = past_due.max(as_of - p.due);
        }
    }

    // Surveys.
    let answered: Vec<_> = cust.surveys.iter().filter(|s| s.answered < t).collect();
    let last_nps = answered.iter().rev().find(|s| s.nps.is_some());
    let last_csat = answered.iter().rev().find(|s| s.csat.is_some());

    let mut facts = RowFacts {
        as_of,
        t,
        signup,
        plan,
        mrr_now,
        mrr_window_start,
        previous_churns,
        has_events,
        window: w,
        usage_days: cfg.usage_window_days,
        last_login,
        last_activity,
        adoption,
        history_known,
        reached,
        first_feature_use: first_fu,
        has_tickets,
        tickets_opened: opened_recent,
        tickets_open: open,
        response_hours,
        satisfaction,
        has_payments,
        late_payments: late,
        failed_payments: failed,
        days_past_due: past_due,
        last_nps: last_nps.copied(),
        last_csat: last_csat.copied(),
    };
    FIXED_FEATURES
        .iter()
        .map(|d| (d.value)(&mut facts))
        .collect()
}

/// What was known at `t` of an invoice due before `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PaymentState {
    OnTime,
    /// Paid after its due date.
    Late,
    /// The charge failed (known on the due date); still unpaid at `t` or not.
    Failed {
        outstanding: bool,
    },
    /// Not paid by `t`, past due.
    Outstanding,
}

fn payment_state(p: &crate::dataset::Payment, t: Ts, has_paid_at: bool) -> PaymentState {
    if !has_paid_at {
        // Without paid_at the status is all there is; a late or failed invoice is
        // counted from its due date on.
        return match p.status {
            PaymentStatus::Paid | PaymentStatus::Refunded => PaymentState::OnTime,
            PaymentStatus::Late => PaymentState::Late,
            PaymentStatus::Failed => PaymentState::Failed { outstanding: true },
        };
    }
    let paid = p.paid.filter(|&x| x < t);
    match (p.status, paid) {
        (PaymentStatus::Failed, paid) => PaymentState::Failed {
            outstanding: paid.is_none(),
        },
        (_, Some(x)) if time::day_of(x) > p.due => PaymentState::Late,
        (_, Some(_)) => PaymentState::OnTime,
        (PaymentStatus::Refunded, None) if p.paid.is_none() => PaymentState::OnTime,
        (_, None) => PaymentState::Outstanding,
    }
}

/// The Arrow schema of a feature table's rows: `customer_id`, `as_of`, then every
/// feature (numbers as Float64, categories as Utf8), then `label` when `with_labels`.
pub fn arrow_schema(table: &FeatureTable, with_labels: bool) -> arrow_schema::SchemaRef {
    use arrow_schema::{DataType, Field, Schema};
    let mut fields = vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
    ];
    for i in &table.info {
        let ty = match i.kind {
            FeatureKind::Numeric => DataType::Float64,
            FeatureKind::Categorical => DataType::Utf8,
        };
        fields.push(Field::new(&i.name, ty, true));
    }
    if with_labels {
        fields.push(Field::new("label", DataType::UInt8, false));
    }
    std::sync::Arc::new(Schema::new(fields))
}

/// Feature rows (with `label` when given) as Arrow batches of at most
/// [`BATCH_ROWS`](crate::read::BATCH_ROWS) rows, of [`arrow_schema()`]'s schema: what
/// [`write_table`] writes.
pub fn arrow_batches<'a>(
    table: &'a FeatureTable,
    labels: Option<&'a [u8]>,
) -> impl Iterator<Item = arrow_array::RecordBatch> + 'a {
    use arrow_array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray, UInt8Array};
    use std::sync::Arc;
    let schema = arrow_schema(table, labels.is_some());
    let step = crate::read::BATCH_ROWS;
    (0..table.len()).step_by(step).map(move |from| {
        let to = (from + step).min(table.len());
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                table.customer_ids[from..to].iter(),
            )),
            Arc::new(Date32Array::from(table.as_of[from..to].to_vec())),
        ];
        for col in &table.columns {
            arrays.push(match col {
                Values::Numeric(v) => {
                    Arc::new(Float64Array::from(v[from..to].to_vec())) as ArrayRef
                }
                Values::Categorical(v) => Arc::new(StringArray::from_iter(
                    v[from..to].iter().map(|x| x.as_deref()),
                )),
            });
        }
        if let Some(l) = labels {
            arrays.push(Arc::new(UInt8Array::from(l[from..to].to_vec())));
        }
        RecordBatch::try_new(schema.clone(), arrays)
            .expect("the columns of a feature table have its length and the schema's types")
    })
}

/// Writes feature rows (with `label` when given) as CSV or Parquet by extension,
/// atomically. Columns: `customer_id`, `as_of`, then every feature, then `label`.
pub fn write_table(
    table: &FeatureTable,
    labels: Option<&[u8]>,
    path: &std::path::Path,
) -> Result<u64> {
    let schema = arrow_schema(table, labels.is_some());
    let mut writer = crate::write::TableWriter::create(path, schema)?;
    for batch in arrow_batches(table, labels) {
        writer.write(&batch)?;
    }
    writer.finish()
}
