//! Retention goals (`goals.toml`): which figures the business wants to move, to where,
//! and from which baseline. The default file holds the domain brief's 90-day goals; the
//! baselines are measured on the user's own data unless a goal gives one.

use crate::report::ReportSummary;
use churn_features::time::{self, Day};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The default goals file (the brief's goals, documented).
pub const DEFAULT_TOML: &str = include_str!("goals.toml");

/// A figure of the KPI report's summary that a goal can be set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    MonthlyChurnPct,
    AnnualChurnPct,
    RetentionM1Pct,
    RetentionM3Pct,
    RetentionM6Pct,
    Arpa,
    Clv,
    NrrPct,
    Nps,
    Csat,
    FirstResponseHours,
    DauSharePct,
    MauSharePct,
    FeatureAdoptionPct,
    OnboardingCompletionPct,
}

impl Metric {
    /// Every metric, in the order the goals file lists them.
    pub const ALL: [Metric; 15] = [
        Metric::MonthlyChurnPct,
        Metric::AnnualChurnPct,
        Metric::RetentionM1Pct,
        Metric::RetentionM3Pct,
        Metric::RetentionM6Pct,
        Metric::Arpa,
        Metric::Clv,
        Metric::NrrPct,
        Metric::Nps,
        Metric::Csat,
        Metric::FirstResponseHours,
        Metric::DauSharePct,
        Metric::MauSharePct,
        Metric::FeatureAdoptionPct,
        Metric::OnboardingCompletionPct,
    ];

    /// The name in the goals file and in the JSON summary.
    pub fn key(self) -> &'static str {
        match self {
            Metric::MonthlyChurnPct => "monthly_churn_pct",
            Metric::AnnualChurnPct => "annual_churn_pct",
            Metric::RetentionM1Pct => "retention_m1_pct",
            Metric::RetentionM3Pct => "retention_m3_pct",
            Metric::RetentionM6Pct => "retention_m6_pct",
            Metric::Arpa => "arpa",
            Metric::Clv => "clv",
            Metric::NrrPct => "nrr_pct",
            Metric::Nps => "nps",
            Metric::Csat => "csat",
            Metric::FirstResponseHours => "first_response_hours",
            Metric::DauSharePct => "dau_share_pct",
            Metric::MauSharePct => "mau_share_pct",
            Metric::FeatureAdoptionPct => "feature_adoption_pct",
            Metric::OnboardingCompletionPct => "onboarding_completion_pct",
        }
    }

    /// How the page names the figure.
    pub fn label(self) -> &'static str {
        match self {
            Metric::MonthlyChurnPct => "Monthly churn (%)",
            Metric::AnnualChurnPct => "Annual churn (%)",
            Metric::RetentionM1Pct => "Month-1 retention (%)",
            Metric::RetentionM3Pct => "Month-3 retention (%)",
            Metric::RetentionM6Pct => "Month-6 retention (%)",
            Metric::Arpa => "ARPA ($)",
            Metric::Clv => "Customer lifetime value ($)",
            Metric::NrrPct => "Net revenue retention (%)",
            Metric::Nps => "NPS",
            Metric::Csat => "CSAT (of 10)",
            Metric::FirstResponseHours => "First response (hours)",
            Metric::DauSharePct => "DAU share (%)",
            Metric::MauSharePct => "MAU share (%)",
            Metric::FeatureAdoptionPct => "Feature adoption (%)",
            Metric::OnboardingCompletionPct => "Onboarding completion (%)",
        }
    }

    /// Whether a larger value is the better one.
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::MonthlyChurnPct | Metric::AnnualChurnPct | Metric::FirstResponseHours
        )
    }

    /// The figure in a summary; `None` when the data cannot give it (no months of churn
    /// yet, no surveys, no cohort old enough).
    pub fn value(self, s: &ReportSummary) -> Option<f64> {
        match self {
            Metric::MonthlyChurnPct => {
                (s.base.churn_months > 0).then_some(s.base.monthly_churn_pct)
            }
            Metric::AnnualChurnPct => s.annual_churn_pct,
            Metric::RetentionM1Pct => s.base.retention_m1_pct,
            Metric::RetentionM3Pct => s.base.retention_m3_pct,
            Metric::RetentionM6Pct => s.base.retention_m6_pct,
            Metric::Arpa => (s.base.active_customers > 0).then_some(s.base.arpa),
            Metric::Clv => s.clv,
            Metric::NrrPct => s.nrr_pct,
            Metric::Nps => s.voice.nps,
            Metric::Csat => s.voice.csat,
            Metric::FirstResponseHours => s.voice.first_response_hours,
            Metric::DauSharePct => s.engagement.dau_share_pct,
            Metric::MauSharePct => s.engagement.mau_share_pct,
            Metric::FeatureAdoptionPct => s.engagement.feature_adoption_pct,
            Metric::OnboardingCompletionPct => s.engagement.onboarding_completion_pct,
        }
    }
}

/// One goal of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    pub metric: Metric,
    /// The value to reach.
    pub target: f64,
    /// A fixed baseline; `None` measures it on the data at the baseline date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GoalsFile {
    #[serde(default = "default_horizon")]
    horizon_days: u32,
    #[serde(default)]
    baseline_date: Option<String>,
    #[serde(default, rename = "goal")]
    goals: Vec<Goal>,
}

fn default_horizon() -> u32 {
    90
}

/// A validated goals file.
#[derive(Debug, Clone, PartialEq)]
pub struct Goals {
    /// The days the goals are set for (shown on the page).
    pub horizon_days: u32,
    /// Where the baselines are measured; `None`: a year before the as-of day, or the
    /// data's first month when the data is shorter.
    pub baseline_date: Option<Day>,
    pub goals: Vec<Goal>,
}

/// A goals file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GoalsError {
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

impl Default for Goals {
    fn default() -> Self {
        Goals::from_toml(DEFAULT_TOML, "default goals").expect("the default goals are valid")
    }
}

impl Goals {
    /// The target set for `metric`, if the file has a goal for it.
    pub fn target(&self, metric: Metric) -> Option<f64> {
        self.goals
            .iter()
            .find(|g| g.metric == metric)
            .map(|g| g.target)
    }

    /// Parses and validates a TOML text; `source_name` goes into error messages.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Goals, GoalsError> {
        let file: GoalsFile = toml::from_str(text).map_err(|e| GoalsError::Parse {
            source_name: source_name.into(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |message: String| GoalsError::Invalid {
            source_name: source_name.into(),
            message,
        };
        if file.goals.is_empty() {
            return Err(invalid(
                "no goals: add at least one [[goal]] with `metric` and `target`".into(),
            ));
        }
        if file.horizon_days == 0 {
            return Err(invalid("`horizon_days` must be at least 1".into()));
        }
        for (i, g) in file.goals.iter().enumerate() {
            if !g.target.is_finite() || g.baseline.is_some_and(|b| !b.is_finite()) {
                return Err(invalid(format!(
                    "goal {} (`{}`): target and baseline must be finite numbers",
                    i + 1,
                    g.metric
                )));
            }
            if file.goals[..i].iter().any(|o| o.metric == g.metric) {
                return Err(invalid(format!(
                    "goal {} (`{}`): the metric has a goal already; keep one",
                    i + 1,
                    g.metric
                )));
            }
        }
        let baseline_date = match &file.baseline_date {
            None => None,
            Some(t) => Some(time::parse_date(t).ok_or_else(|| {
                invalid(format!("`baseline_date`: expected YYYY-MM-DD, found `{t}`"))
            })?),
        };
        Ok(Goals {
            horizon_days: file.horizon_days,
            baseline_date,
            goals: file.goals,
        })
    }

    /// Loads and validates a goals file.
    pub fn load(path: &Path) -> Result<Goals, GoalsError> {
        let text = std::fs::read_to_string(path).map_err(|cause| GoalsError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Goals::from_toml(&text, &path.display().to_string())
    }

    /// The baseline date for a report window: the configured one, else a year before
    /// `as_of`, never before the window's start.
    pub fn baseline_day(&self, window_start: Day, as_of: Day) -> Day {
        self.baseline_date
            .unwrap_or_else(|| time::add_months(as_of, -12))
            .clamp(window_start, as_of)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The share of the way from the baseline to the target a figure must have come to count
/// as improving.
pub const IMPROVING_SHARE: f64 = 0.25;

/// How a goal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// The current value reaches the target.
    #[serde(rename = "met")]
    Met,
    /// Short of the target, and at least [`IMPROVING_SHARE`] of the way there from the
    /// baseline.
    #[serde(rename = "improving")]
    Improving,
    /// Short of the target and not improving (or no baseline to compare with).
    #[serde(rename = "behind")]
    Behind,
    /// The data cannot give the current value.
    #[serde(rename = "no data")]
    NoData,
}

impl Status {
    /// The word the page and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Improving => "improving",
            Status::Behind => "behind",
            Status::NoData => "no data",
        }
    }
}

/// A goal with its baseline and where the data stands now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalStatus {
    pub metric: Metric,
    pub label: &'static str,
    pub higher_is_better: bool,
    pub target: f64,
    /// The value at the baseline date (or the goal's fixed baseline).
    pub baseline: Option<f64>,
    /// `true` when the baseline came from the goals file rather than the data.
    pub baseline_given: bool,
    pub current: Option<f64>,
    pub status: Status,
}

/// Each goal with its baseline (from `baseline`, the summary at the baseline date, unless
/// the goal fixes one) and its current value (from `now`).
pub fn goal_status(
    goals: &Goals,
    baseline: &ReportSummary,
    now: &ReportSummary,
) -> Vec<GoalStatus> {
    goals
        .goals
        .iter()
        .map(|g| {
            let m = g.metric;
            let base = g.baseline.or_else(|| m.value(baseline));
            let current = m.value(now);
            let better = |a: f64, b: f64| {
                if m.higher_is_better() {
                    a > b
                } else {
                    a < b
                }
            };
            // Improving: at least a quarter of the way from the baseline to the target, so
            // that the noise of a business standing still (an NPS of 1,500 answers moves
            // by 2 points) reads "behind".
            let closed = |v: f64, b: f64| (v - b) / (g.target - b) >= IMPROVING_SHARE;
            let status = match current {
                None => Status::NoData,
                Some(v) if v == g.target || better(v, g.target) => Status::Met,
                Some(v) if base.is_some_and(|b| better(g.target, b) && closed(v, b)) => {
                    Status::Improving
                }
                Some(_) => Status::Behind,
            };
            GoalStatus {
                metric: m,
                label: m.label(),
                higher_is_better: m.higher_is_better(),
                target: g.target,
                baseline: base,
                baseline_given: g.baseline.is_some(),
                current,
                status,
            }
        })
        .collect()
}
