//! The retention playbook as pure functions over one feature row: a 0-100 health score
//! with its five components and band, early-warning signals, the intervention level,
//! re-engagement triggers and campaign step, behavioural segment, loyalty tier and
//! time-to-value bucket. Scoring allocates nothing and reads the clock never.
//!
//! Component formulas (each 0-100, monotone in its inputs, left out when its inputs are
//! all missing, the remaining weights renormalised):
//! - usage: mean of `100 * min(1, logins_per_week / full)` and
//!   `100 * min(1, active_days_28d / full)` over the inputs present;
//! - adoption: `100 * min(1, feature_adoption_30d / full)`;
//! - support: `100 - per_ticket * tickets_30d - per_open * open_tickets`, clamped to
//!   0-100, blended with `100 * (satisfaction - 1) / 4` at `satisfaction_share` when a
//!   satisfaction is known;
//! - payment: `100 - per_late * late - per_failed * failed - per_day * days_past_due`,
//!   clamped to 0-100;
//! - engagement: mean of recency `100 * max(0, 1 - days_since_last_activity / days)`,
//!   `10 * last_nps` and `100 * (last_csat - 1) / 9` over the inputs present.

mod config;

pub use config::{RulesConfig, RulesError, DEFAULT_TOML};

use crate::dataset::Values;
use crate::features::{self, FeatureConfig, FeatureTable};
use serde::Serialize;

/// The feature values the rules read; `None` is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RuleInputs {
    pub tenure_days: Option<f64>,
    pub logins_per_week: Option<f64>,
    pub active_days_28d: Option<f64>,
    pub avg_session_minutes: Option<f64>,
    pub feature_adoption: Option<f64>,
    pub features_used: Option<f64>,
    pub ttv_days: Option<f64>,
    pub value_reached: Option<f64>,
    pub tickets_30d: Option<f64>,
    pub open_tickets: Option<f64>,
    pub avg_satisfaction: Option<f64>,
    pub late_payments: Option<f64>,
    pub failed_payments: Option<f64>,
    pub days_past_due: Option<f64>,
    pub days_since_last_activity: Option<f64>,
    pub last_nps: Option<f64>,
    pub last_csat: Option<f64>,
    pub referrals: Option<f64>,
    pub reviews: Option<f64>,
}

/// Where a rule input is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A fixed feature, by its stem: its name follows the feature settings
    /// (`logins_per_week` is `logins_per_week_28d` with the default usage window).
    Fixed(&'static str),
    /// A column the data names (a customer attribute such as `referrals`).
    Named(&'static str),
}

/// One input of the rules: the feature it is read from and the field it fills.
pub struct RuleInput {
    pub source: Source,
    set: fn(&mut RuleInputs, Option<f64>),
}

impl RuleInput {
    /// The feature's name under the feature settings `cfg`.
    pub fn feature(&self, cfg: &FeatureConfig) -> String {
        match self.source {
            Source::Fixed(stem) => features::fixed_name(stem, cfg)
                .unwrap_or_else(|| panic!("`{stem}` is not a fixed feature")),
            Source::Named(name) => name.to_string(),
        }
    }
}

const fn input(source: Source, set: fn(&mut RuleInputs, Option<f64>)) -> RuleInput {
    RuleInput { source, set }
}

use Source::{Fixed, Named};

/// Every input of the rules: adding one is an entry here and a field of [`RuleInputs`].
#[rustfmt::skip]
pub const INPUTS: [RuleInput; 19] = [
    input(Fixed("tenure_days"), |r, v| r.tenure_days = v),
    input(Fixed("logins_per_week"), |r, v| r.logins_per_week = v),
    input(Fixed("active_days"), |r, v| r.active_days_28d = v),
    input(Fixed("avg_session_minutes"), |r, v| r.avg_session_minutes = v),
    input(Fixed("feature_adoption"), |r, v| r.feature_adoption = v),
    input(Fixed("features_used"), |r, v| r.features_used = v),
    input(Fixed("ttv_days"), |r, v| r.ttv_days = v),
    input(Fixed("value_reached"), |r, v| r.value_reached = v),
    input(Fixed("tickets"), |r, v| r.tickets_30d = v),
    input(Fixed("open_tickets"), |r, v| r.open_tickets = v),
    input(Fixed("avg_satisfaction"), |r, v| r.avg_satisfaction = v),
    input(Fixed("late_payments"), |r, v| r.late_payments = v),
    input(Fixed("failed_payments"), |r, v| r.failed_payments = v),
    input(Fixed("days_past_due"), |r, v| r.days_past_due = v),
    input(Fixed("days_since_last_activity"), |r, v| r.days_since_last_activity = v),
    input(Fixed("last_nps"), |r, v| r.last_nps = v),
    input(Fixed("last_csat"), |r, v| r.last_csat = v),
    input(Named("referrals"), |r, v| r.referrals = v),
    input(Named("reviews"), |r, v| r.reviews = v),
];

/// The fixed features (by stem) without which the rules say nothing useful: a model
/// whose features lack all of them (a plain table) gets no rule results.
pub const CORE_INPUTS: [&str; 4] = [
    "logins_per_week",
    "feature_adoption",
    "tickets",
    "late_payments",
];

impl RuleInputs {
    /// Builds inputs from the value of each entry of [`INPUTS`] (given with its index).
    pub fn build(mut value: impl FnMut(usize, &RuleInput) -> Option<f64>) -> RuleInputs {
        let mut inputs = RuleInputs::default();
        for (k, input) in INPUTS.iter().enumerate() {
            (input.set)(&mut inputs, value(k, input));
        }
        inputs
    }

    /// Inputs of any row of a feature table, the columns found once (names follow the
    /// table's settings): for scoring many rows.
    pub fn of_table(table: &FeatureTable) -> impl Fn(usize) -> RuleInputs + '_ {
        let columns: Vec<Option<&[Option<f64>]>> = INPUTS
            .iter()
            .map(|input| match table.column(&input.feature(&table.config)) {
                Some(Values::Numeric(v)) => Some(v.as_slice()),
                _ => None,
            })
            .collect();
        move |row| RuleInputs::build(|k, _| columns[k].and_then(|v| v[row]))
    }

    /// Inputs of row `row` of a feature table.
    pub fn from_table(table: &FeatureTable, row: usize) -> RuleInputs {
        RuleInputs::of_table(table)(row)
    }
}

/// Health score bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthBand {
    Healthy,
    AtRisk,
    Critical,
    Churning,
}

impl HealthBand {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthBand::Healthy => "healthy",
            HealthBand::AtRisk => "at_risk",
            HealthBand::Critical => "critical",
            HealthBand::Churning => "churning",
        }
    }
}

/// Names of the five components, in weight order.
pub const COMPONENTS: [&str; 5] = ["usage", "adoption", "support", "payment", "engagement"];

/// The health score with its components.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Health {
    pub score: f64,
    pub band: HealthBand,
    /// Component scores in [`COMPONENTS`] order; `None` when left out for lack of data.
    pub components: [Option<f64>; 5],
    /// The weights actually used (renormalised over the components present).
    pub weights: [f64; 5],
}

/// The early-warning signals, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    LowLoginFrequency,
    ShortSessions,
    LowAdoption,
    ManyTickets,
    PaymentProblem,
}

impl SignalKind {
    pub const ALL: [SignalKind; 5] = [
        SignalKind::LowLoginFrequency,
        SignalKind::ShortSessions,
        SignalKind::LowAdoption,
        SignalKind::ManyTickets,
        SignalKind::PaymentProblem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::LowLoginFrequency => "low_login_frequency",
            SignalKind::ShortSessions => "short_sessions",
            SignalKind::LowAdoption => "low_adoption",
            SignalKind::ManyTickets => "many_tickets",
            SignalKind::PaymentProblem => "payment_problem",
        }
    }
}

/// A signal that fired, with the value that fired it and the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub value: f64,
    pub threshold: f64,
}

/// Intervention levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intervention {
    None,
    Monitor,
    Urgent,
    Immediate,
}

impl Intervention {
    pub fn as_str(self) -> &'static str {
        match self {
            Intervention::None => "none",
            Intervention::Monitor => "monitor",
            Intervention::Urgent => "urgent",
            Intervention::Immediate => "immediate",
        }
    }
}

/// Re-engagement triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    LowLogins,
    LowAdoption,
    Inactive,
    ManyTickets,
}

impl Trigger {
    pub const ALL: [Trigger; 4] = [
        Trigger::LowLogins,
        Trigger::LowAdoption,
        Trigger::Inactive,
        Trigger::ManyTickets,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::LowLogins => "low_logins",
            Trigger::LowAdoption => "low_adoption",
            Trigger::Inactive => "inactive",
            Trigger::ManyTickets => "many_tickets",
        }
    }
}

/// Behavioural segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    New,
    Power,
    Casual,
    AtRisk,
}

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::New => "new",
            Segment::Power => "power",
            Segment::Casual => "casual",
            Segment::AtRisk => "at_risk",
        }
    }
}

/// Loyalty tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    None,
    Bronze,
    Silver,
    Gold,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::None => "none",
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
        }
    }
}

/// Why an intervention level was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionReason {
    PaymentFailed,
    ManySignals,
    OneSignal,
    NoSignals,
}

impl InterventionReason {
    pub fn describe(self) -> &'static str {
        match self {
            InterventionReason::PaymentFailed => "a payment failed",
            InterventionReason::ManySignals => "several early-warning signals",
            InterventionReason::OneSignal => "one early-warning signal",
            InterventionReason::NoSignals => "no early-warning signal",
        }
    }
}

/// Everything the rules say about one customer. Fixed-size: no allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleResult {
    /// `None` when no component has data.
    pub health: Option<Health>,
    /// Signals in [`SignalKind::ALL`] order; `None` when not fired.
    pub signals: [Option<Signal>; 5],
    pub intervention: Intervention,
    pub intervention_reason: InterventionReason,
    /// Triggers in [`Trigger::ALL`] order.
    pub triggers: [bool; 4],
    /// Index into the configured campaign of the step that applies, when triggered.
    pub campaign_step: Option<usize>,
    pub segment: Segment,
    pub loyalty_tier: Tier,
    pub loyalty_points: f64,
    /// Index of the time-to-value bucket, `None` when unknown.
    pub ttv_bucket: Option<usize>,
}

impl RuleResult {
    /// Signals that fired.
    pub fn fired(&self) -> impl Iterator<Item = &Signal> {
        self.signals.iter().flatten()
    }

    /// Number of signals that fired.
    pub fn signal_count(&self) -> usize {
        self.signals.iter().filter(|s| s.is_some()).count()
    }
}

fn clamp100(v: f64) -> f64 {
    v.clamp(0.0, 100.0)
}

fn mean(values: &[Option<f64>]) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0);
    for v in values.iter().flatten() {
        sum += v;
        n += 1;
    }
    (n > 0).then(|| sum / f64::from(n))
}

/// The band of a score.
pub fn band(score: f64, cfg: &RulesConfig) -> HealthBand {
    let b = &cfg.health.bands;
    if score >= b.healthy {
        HealthBand::Healthy
    } else if score >= b.at_risk {
        HealthBand::AtRisk
    } else if score >= b.critical {
        HealthBand::Critical
    } else {
        HealthBand::Churning
    }
}

/// The five component scores.
pub fn components(x: &RuleInputs, cfg: &RulesConfig) -> [Option<f64>; 5] {
    let h = &cfg.health;
    let usage = mean(&[
        x.logins_per_week
            .map(|v| clamp100(100.0 * v / h.usage.logins_per_week_for_full_score)),
        x.active_days_28d
            .map(|v| clamp100(100.0 * v / h.usage.active_days_28d_for_full_score)),
    ]);
    let adoption = x
        .feature_adoption
        .map(|v| clamp100(100.0 * v / h.adoption.adoption_for_full_score));
    let volume = match (x.tickets_30d, x.open_tickets) {
        (None, None) => None,
        (t, o) => Some(clamp100(
            100.0
                - h.support.points_per_ticket_30d * t.unwrap_or(0.0)
                - h.support.points_per_open_ticket * o.unwrap_or(0.0),
        )),
    };
    let satisfaction = x
        .avg_satisfaction
        .map(|s| clamp100(100.0 * (s - 1.0) / 4.0));
    let support = match (volume, satisfaction) {
        (Some(v), Some(s)) => {
            Some((1.0 - h.support.satisfaction_share) * v + h.support.satisfaction_share * s)
        }
        (v, s) => v.or(s),
    };
    let p = &h.payment;
    let payment = match (x.late_payments, x.failed_payments, x.days_past_due) {
        (None, None, None) => None,
        (l, f, d) => Some(clamp100(
            100.0
                - p.points_per_late_payment * l.unwrap_or(0.0)
                - p.points_per_failed_payment * f.unwrap_or(0.0)
                - p.points_per_day_past_due * d.unwrap_or(0.0),
        )),
    };
    let engagement = mean(&[
        x.days_since_last_activity
            .map(|d| clamp100(100.0 * (1.0 - d / h.engagement.inactive_days_for_zero_recency))),
        x.last_nps.map(|n| clamp100(10.0 * n)),
        x.last_csat.map(|c| clamp100(100.0 * (c - 1.0) / 9.0)),
    ]);
    [usage, adoption, support, payment, engagement]
}

/// The health score: weighted components, weights renormalised over those present.
pub fn health(x: &RuleInputs, cfg: &RulesConfig) -> Option<Health> {
    let components = components(x, cfg);
    let w = cfg.health.weights.as_array();
    let total: f64 = components
        .iter()
        .zip(w)
        .filter(|(c, _)| c.is_some())
        .map(|(_, w)| w)
        .sum();
    if total <= 0.0 {
        return None;
    }
    let mut weights = [0.0; 5];
    let mut score = 0.0;
    for i in 0..5 {
        if let Some(c) = components[i] {
            weights[i] = w[i] / total;
            score += weights[i] * c;
        }
    }
    Some(Health {
        score,
        band: band(score, cfg),
        components,
        weights,
    })
}

/// The early-warning signals that fire.
pub fn signals(x: &RuleInputs, cfg: &RulesConfig) -> [Option<Signal>; 5] {
    let s = &cfg.signals;
    let below = |kind, v: Option<f64>, t: f64| {
        v.filter(|v| *v < t).map(|value| Signal {
            kind,
            value,
            threshold: t,
        })
    };
    let above = |kind, v: Option<f64>, t: f64| {
        v.filter(|v| *v > t).map(|value| Signal {
            kind,
            value,
            threshold: t,
        })
    };
    let payment_problems = match (x.late_payments, x.failed_payments) {
        (None, None) => None,
        (l, f) => Some(l.unwrap_or(0.0) + f.unwrap_or(0.0)),
    };
    [
        below(
            SignalKind::LowLoginFrequency,
            x.logins_per_week,
            s.min_logins_per_week,
        ),
        below(
            SignalKind::ShortSessions,
            x.avg_session_minutes,
            s.min_session_minutes,
        ),
        below(SignalKind::LowAdoption, x.feature_adoption, s.min_adoption),
        above(SignalKind::ManyTickets, x.tickets_30d, s.max_tickets_30d),
        above(SignalKind::PaymentProblem, payment_problems, 0.0),
    ]
}

/// Scores one customer.
pub fn score(x: &RuleInputs, cfg: &RulesConfig) -> RuleResult {
    let health = health(x, cfg);
    let signals = signals(x, cfg);
    let n = signals.iter().filter(|s| s.is_some()).count() as u32;
    let (intervention, intervention_reason) = if x.failed_payments.is_some_and(|f| f > 0.0) {
        (Intervention::Immediate, InterventionReason::PaymentFailed)
    } else if n >= cfg.interventions.urgent_min_signals {
        (Intervention::Urgent, InterventionReason::ManySignals)
    } else if n >= 1 {
        (Intervention::Monitor, InterventionReason::OneSignal)
    } else {
        (Intervention::None, InterventionReason::NoSignals)
    };
    let r = &cfg.reengagement;
    let triggers = [
        x.logins_per_week.is_some_and(|v| v < r.min_logins_per_week),
        x.feature_adoption.is_some_and(|v| v < r.min_adoption),
        x.days_since_last_activity
            .is_some_and(|v| v > r.max_inactive_days),
        x.tickets_30d.is_some_and(|v| v > r.max_tickets_30d),
    ];
    // Stateless scoring cannot know when a customer entered the campaign; inactivity is
    // the one trigger whose start is known (the last activity + max_inactive_days), so
    // it places the customer in the sequence; any other trigger starts at step one.
    let campaign_step = triggers.iter().any(|t| *t).then(|| {
        let days_in = if triggers[2] {
            x.days_since_last_activity.unwrap_or(0.0) - r.max_inactive_days
        } else {
            0.0
        };
        r.campaign
            .iter()
            .rposition(|(day, _)| f64::from(*day) <= days_in.max(1.0))
            .unwrap_or(0)
    });
    let sg = &cfg.segments;
    let segment = if intervention >= Intervention::Urgent
        || health.is_some_and(|h| h.score < sg.at_risk_below_health)
    {
        Segment::AtRisk
    } else if x.tenure_days.is_some_and(|t| t < sg.new_max_tenure_days) {
        Segment::New
    } else if x
        .logins_per_week
        .is_some_and(|v| v >= sg.power_min_logins_per_week)
        && x.feature_adoption
            .is_some_and(|v| v >= sg.power_min_adoption)
    {
        Segment::Power
    } else {
        Segment::Casual
    };
    let l = &cfg.loyalty;
    let months = x.tenure_days.unwrap_or(0.0) / (365.25 / 12.0);
    let adoption = x.feature_adoption.unwrap_or(0.0);
    let usage_score = health.and_then(|h| h.components[0]).unwrap_or(0.0);
    let loyalty_tier = if months >= l.gold_min_months && usage_score >= l.gold_min_usage_score {
        Tier::Gold
    } else if months >= l.silver_min_months && adoption >= l.silver_min_adoption {
        Tier::Silver
    } else if months >= l.bronze_min_months {
        Tier::Bronze
    } else {
        Tier::None
    };
    let loyalty_points = l.points_per_month * months.floor()
        + l.points_per_adopted_feature * x.features_used.unwrap_or(0.0)
        + l.points_per_referral * x.referrals.unwrap_or(0.0)
        + l.points_per_review * x.reviews.unwrap_or(0.0);
    let ttv_bucket = match (x.ttv_days, x.value_reached) {
        (Some(d), _) => Some(
            cfg.ttv
                .edges
                .iter()
                .position(|e| d < *e)
                .unwrap_or(cfg.ttv.edges.len()),
        ),
        (None, Some(0.0)) => Some(cfg.ttv.edges.len()),
        _ => None,
    };
    RuleResult {
        health,
        signals,
        intervention,
        intervention_reason,
        triggers,
        campaign_step,
        segment,
        loyalty_tier,
        loyalty_points,
        ttv_bucket,
    }
}

/// A time-to-value bucket's label (`"under 7 days"`, `"7-21 days"`, `"over 45 days"`).
pub fn ttv_bucket_label(bucket: usize, cfg: &RulesConfig) -> String {
    let e = &cfg.ttv.edges;
    if bucket == 0 {
        format!("under {} days", e[0])
    } else if bucket >= e.len() {
        format!("over {} days or not reached", e[e.len() - 1])
    } else {
        format!("{}-{} days", e[bucket - 1], e[bucket])
    }
}
