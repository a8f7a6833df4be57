//! The rules configuration (`rules.toml`), validated at load.

use serde::{Deserialize, Serialize};

/// The documented default configuration, with the brief's numbers.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Everything the playbook rules depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    pub health: HealthConfig,
    pub signals: SignalConfig,
    pub interventions: InterventionConfig,
    pub reengagement: ReengagementConfig,
    pub segments: SegmentConfig,
    pub loyalty: LoyaltyConfig,
    pub ttv: TtvConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    pub weights: Weights,
    pub bands: Bands,
    pub usage: UsageConfig,
    pub adoption: AdoptionConfig,
    pub support: SupportConfig,
    pub payment: PaymentConfig,
    pub engagement: EngagementConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub usage: f64,
    pub adoption: f64,
    pub support: f64,
    pub payment: f64,
    pub engagement: f64,
}

impl Weights {
    /// In component order.
    pub fn as_array(&self) -> [f64; 5] {
        [
            self.usage,
            self.adoption,
            self.support,
            self.payment,
            self.engagement,
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub healthy: f64,
    pub at_risk: f64,
    pub critical: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    pub logins_per_week_for_full_score: f64,
    pub active_days_28d_for_full_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptionConfig {
    pub adoption_for_full_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportConfig {
    pub points_per_ticket_30d: f64,
    pub points_per_open_ticket: f64,
    pub satisfaction_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentConfig {
    pub points_per_late_payment: f64,
    pub points_per_failed_payment: f64,
    pub points_per_day_past_due: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngagementConfig {
    pub inactive_days_for_zero_recency: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    pub min_logins_per_week: f64,
    pub min_session_minutes: f64,
    pub min_adoption: f64,
    pub max_tickets_30d: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionConfig {
    pub urgent_min_signals: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReengagementConfig {
    pub min_logins_per_week: f64,
    pub min_adoption: f64,
    pub max_inactive_days: f64,
    pub max_tickets_30d: f64,
    pub campaign: Vec<(u32, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    pub new_max_tenure_days: f64,
    pub power_min_logins_per_week: f64,
    pub power_min_adoption: f64,
    pub at_risk_below_health: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoyaltyConfig {
    pub bronze_min_months: f64,
    pub silver_min_months: f64,
    pub silver_min_adoption: f64,
    pub gold_min_months: f64,
    pub gold_min_usage_score: f64,
    pub points_per_month: f64,
    pub points_per_adopted_feature: f64,
    pub points_per_referral: f64,
    pub points_per_review: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtvConfig {
    pub edges: Vec<f64>,
    pub retention_pct: Vec<f64>,
}

/// A configuration that cannot be used, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: `{key}`: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig::from_toml(DEFAULT_TOML, "default rules").expect("the default rules are valid")
    }
}

impl RulesConfig {
    /// Parses and validates a TOML text; `source_name` goes into error messages.
    pub fn from_toml(text: &str, source_name: &str) -> Result<RulesConfig, RulesError> {
        let cfg: RulesConfig = toml::from_str(text).map_err(|e| RulesError::Parse {
            source_name: source_name.into(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate(source_name)?;
        Ok(cfg)
    }

    /// Loads and validates a `rules.toml` file.
    pub fn load(path: &std::path::Path) -> Result<RulesConfig, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        RulesConfig::from_toml(&text, &path.display().to_string())
    }

    /// Checks what types cannot: weights sum to 1, band edges in order, thresholds in range.
    pub fn validate(&self, source_name: &str) -> Result<(), RulesError> {
        let bad = |key: &str, message: String| RulesError::Invalid {
            source_name: source_name.into(),
            key: key.into(),
            message,
        };
        let w = self.health.weights.as_array();
        let names = ["usage", "adoption", "support", "payment", "engagement"];
        for (v, n) in w.iter().zip(names) {
            if !(0.0..=1.0).contains(v) {
                return Err(bad(
                    &format!("health.weights.{n}"),
                    format!("must be from 0 to 1, got {v}"),
                ));
            }
        }
        let sum: f64 = w.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(bad(
                "health.weights",
                format!("weights must sum to 1, they sum to {sum}"),
            ));
        }
        let b = &self.health.bands;
        if !(0.0 < b.critical
            && b.critical < b.at_risk
            && b.at_risk < b.healthy
            && b.healthy <= 100.0)
        {
            return Err(bad(
                "health.bands",
                format!(
                    "edges must rise 0 < critical < at_risk < healthy <= 100, got critical {}, at_risk {}, healthy {}",
                    b.critical, b.at_risk, b.healthy
                ),
            ));
        }
        let positive = [
            (
                "health.usage.logins_per_week_for_full_score",
                self.health.usage.logins_per_week_for_full_score,
            ),
            (
                "health.usage.active_days_28d_for_full_score",
                self.health.usage.active_days_28d_for_full_score,
            ),
            (
                "health.adoption.adoption_for_full_score",
                self.health.adoption.adoption_for_full_score,
            ),
            (
                "health.engagement.inactive_days_for_zero_recency",
                self.health.engagement.inactive_days_for_zero_recency,
            ),
        ];
        for (k, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(bad(k, format!("must be a positive number, got {v}")));
            }
        }
        let non_negative = [
            (
                "health.support.points_per_ticket_30d",
                self.health.support.points_per_ticket_30d,
            ),
            (
                "health.support.points_per_open_ticket",
                self.health.support.points_per_open_ticket,
            ),
            (
                "health.payment.points_per_late_payment",
                self.health.payment.points_per_late_payment,
            ),
            (
                "health.payment.points_per_failed_payment",
                self.health.payment.points_per_failed_payment,
            ),
            (
                "health.payment.points_per_day_past_due",
                self.health.payment.points_per_day_past_due,
            ),
            (
                "signals.min_logins_per_week",
                self.signals.min_logins_per_week,
            ),
            (
                "signals.min_session_minutes",
                self.signals.min_session_minutes,
            ),
            ("signals.min_adoption", self.signals.min_adoption),
            ("signals.max_tickets_30d", self.signals.max_tickets_30d),
            (
                "reengagement.min_logins_per_week",
                self.reengagement.min_logins_per_week,
            ),
            ("reengagement.min_adoption", self.reengagement.min_adoption),
            (
                "reengagement.max_inactive_days",
                self.reengagement.max_inactive_days,
            ),
            (
                "reengagement.max_tickets_30d",
                self.reengagement.max_tickets_30d,
            ),
        ];
        for (k, v) in non_negative {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(bad(k, format!("must be a non-negative number, got {v}")));
            }
        }
        if !(0.0..=1.0).contains(&self.health.support.satisfaction_share) {
            return Err(bad(
                "health.support.satisfaction_share",
                "must be from 0 to 1".into(),
            ));
        }
        if self.interventions.urgent_min_signals < 1 {
            return Err(bad(
                "interventions.urgent_min_signals",
                "must be at least 1".into(),
            ));
        }
        let c = &self.reengagement.campaign;
        if c.is_empty() || c.windows(2).any(|p| p[0].0 >= p[1].0) {
            return Err(bad(
                "reengagement.campaign",
                "needs at least one step, with days rising".into(),
            ));
        }
        let l = &self.loyalty;
        if !(l.bronze_min_months <= l.silver_min_months && l.silver_min_months <= l.gold_min_months)
        {
            return Err(bad(
                "loyalty",
                "tiers must rise: bronze_min_months <= silver_min_months <= gold_min_months".into(),
            ));
        }
        let t = &self.ttv;
        if t.edges.windows(2).any(|p| p[0] >= p[1]) || t.edges.iter().any(|e| *e <= 0.0) {
            return Err(bad("ttv.edges", "edges must be positive and rising".into()));
        }
        if t.retention_pct.len() != t.edges.len() + 1 {
            return Err(bad(
                "ttv.retention_pct",
                format!(
                    "needs one value per bucket ({}), got {}",
                    t.edges.len() + 1,
                    t.retention_pct.len()
                ),
            ));
        }
        Ok(())
    }
}
