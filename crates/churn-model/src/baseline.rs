//! The rules as a baseline: how well the playbook's scores rank churners on labelled
//! examples, next to the model's figures in the trainer's report.

use crate::metrics::RankingMetrics;
use churn_features::labels::Examples;
use churn_features::rules::{self, RuleInputs, RulesConfig};
use serde::Serialize;

/// Churn among the examples in one group (a health band, an intervention level).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRate {
    pub group: String,
    pub rows: usize,
    pub churned: usize,
    pub churn_pct: f64,
}

/// How the rules rank churners.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesBaseline {
    /// Ranking by `100 - health_score` (rows without a score rank lowest).
    pub health: RankingMetrics,
    /// Ranking by the number of early-warning signals.
    pub signal_count: RankingMetrics,
    pub by_band: Vec<GroupRate>,
    pub by_intervention: Vec<GroupRate>,
}

/// Scores every example with the rules and measures them against the labels.
pub fn rules_baseline(ex: &Examples, cfg: &RulesConfig) -> RulesBaseline {
    let inputs = RuleInputs::of_table(&ex.features);
    let results: Vec<rules::RuleResult> = (0..ex.labels.len())
        .map(|r| rules::score(&inputs(r), cfg))
        .collect();
    let risk: Vec<f64> = results
        .iter()
        .map(|r| r.health.map_or(-1.0, |h| 100.0 - h.score))
        .collect();
    let signals: Vec<f64> = results.iter().map(|r| r.signal_count() as f64).collect();
    let group = |key: &dyn Fn(&rules::RuleResult) -> &'static str, order: &[&'static str]| {
        order
            .iter()
            .map(|g| {
                let rows: Vec<usize> = (0..results.len())
                    .filter(|&i| key(&results[i]) == *g)
                    .collect();
                let churned = rows.iter().filter(|&&i| ex.labels[i] == 1).count();
                GroupRate {
                    group: g.to_string(),
                    rows: rows.len(),
                    churned,
                    churn_pct: if rows.is_empty() {
                        0.0
                    } else {
                        100.0 * churned as f64 / rows.len() as f64
                    },
                }
            })
            .collect()
    };
    RulesBaseline {
        health: RankingMetrics::of(&risk, &ex.labels),
        signal_count: RankingMetrics::of(&signals, &ex.labels),
        by_band: group(
            &|r| r.health.map_or("unknown", |h| h.band.as_str()),
            &["healthy", "at_risk", "critical", "churning", "unknown"],
        ),
        by_intervention: group(
            &|r| r.intervention.as_str(),
            &["none", "monitor", "urgent", "immediate"],
        ),
    }
}
