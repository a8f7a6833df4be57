//! Binary classification metrics over scores (higher = more likely to churn) and 0/1
//! labels. Ties are handled exactly: tied scores share their rank (ROC AUC) and are
//! taken as one threshold step (PR AUC), so results do not depend on row order.

use serde::Serialize;

/// Area under the ROC curve (the probability that a random churner scores above a
/// random non-churner, ties counting half). `None` without both classes.
pub fn roc_auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let order = sorted_desc(scores);
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Walk groups of tied scores from the top: each negative in a group is beaten by
    // every positive above the group and ties with the group's positives.
    let mut pos_above = 0.0;
    let mut wins = 0.0;
    for group in tie_groups(&order, scores) {
        let p = group.iter().filter(|&&i| labels[i] == 1).count() as f64;
        let n = group.len() as f64 - p;
        wins += n * (pos_above + 0.5 * p);
        pos_above += p;
    }
    Some(wins / (positives * negatives))
}

/// Average precision (area under the precision-recall curve, step-wise as in
/// scikit-learn's `average_precision_score`). `None` without positives.
pub fn pr_auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let order = sorted_desc(scores);
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let (mut tp, mut seen, mut ap) = (0.0, 0.0, 0.0);
    for group in tie_groups(&order, scores) {
        let p = group.iter().filter(|&&i| labels[i] == 1).count() as f64;
        tp += p;
        seen += group.len() as f64;
        ap += (p / positives) * (tp / seen);
    }
    Some(ap)
}

/// Churn rate among the top `share` of scores over the overall churn rate. Rows tied at
/// the cut are included pro rata. `None` without positives.
pub fn lift(scores: &[f64], labels: &[u8], share: f64) -> Option<f64> {
    let n = labels.len();
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    if positives == 0.0 || n == 0 {
        return None;
    }
    let k = (share * n as f64).ceil().max(1.0);
    let order = sorted_desc(scores);
    let (mut taken, mut tp) = (0.0, 0.0);
    for group in tie_groups(&order, scores) {
        let g = group.len() as f64;
        let p = group.iter().filter(|&&i| labels[i] == 1).count() as f64;
        let room = k - taken;
        if room <= 0.0 {
            break;
        }
        let frac = (room / g).min(1.0);
        taken += g * frac;
        tp += p * frac;
    }
    Some((tp / taken) / (positives / n as f64))
}

/// Precision and recall when rows scoring at or above `threshold` are flagged.
pub fn precision_recall_at(scores: &[f64], labels: &[u8], threshold: f64) -> (f64, f64) {
    let (mut tp, mut flagged, mut positives) = (0.0, 0.0, 0.0);
    for (s, &l) in scores.iter().zip(labels) {
        let hit = *s >= threshold;
        flagged += f64::from(u8::from(hit));
        positives += f64::from(l);
        if hit && l == 1 {
            tp += 1.0;
        }
    }
    (
        if flagged > 0.0 { tp / flagged } else { 0.0 },
        if positives > 0.0 { tp / positives } else { 0.0 },
    )
}

/// Mean log loss of probabilities (clamped to [1e-15, 1 - 1e-15]).
pub fn log_loss(p: &[f64], y: &[u8]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let sum: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    sum / y.len() as f64
}

/// Mean squared error of probabilities.
pub fn brier(p: &[f64], y: &[u8]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    p.iter()
        .zip(y)
        .map(|(&p, &y)| (p - f64::from(y)).powi(2))
        .sum::<f64>()
        / y.len() as f64
}

/// Calibration over `bins` equal-width probability bins: (mean predicted, observed
/// rate, rows) for each non-empty bin.
pub fn calibration_bins(p: &[f64], y: &[u8], bins: usize) -> Vec<(f64, f64, usize)> {
    let mut acc = vec![(0.0, 0.0, 0usize); bins];
    for (&p, &y) in p.iter().zip(y) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        acc[b].0 += p;
        acc[b].1 += f64::from(y);
        acc[b].2 += 1;
    }
    acc.into_iter()
        .filter(|b| b.2 > 0)
        .map(|(sp, sy, n)| (sp / n as f64, sy / n as f64, n))
        .collect()
}

/// Expected calibration error over 10 equal-width bins: the row-weighted mean gap
/// between predicted and observed churn.
pub fn ece(p: &[f64], y: &[u8]) -> f64 {
    let n = y.len().max(1) as f64;
    calibration_bins(p, y, 10)
        .iter()
        .map(|(mp, obs, k)| (mp - obs).abs() * *k as f64 / n)
        .sum()
}

/// The ranking metrics of one score against labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankingMetrics {
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub lift_top10: Option<f64>,
    pub rows: usize,
    pub positives: usize,
}

impl RankingMetrics {
    /// All ranking metrics at once.
    pub fn of(scores: &[f64], labels: &[u8]) -> RankingMetrics {
        RankingMetrics {
            roc_auc: roc_auc(scores, labels),
            pr_auc: pr_auc(scores, labels),
            lift_top10: lift(scores, labels, 0.1),
            rows: labels.len(),
            positives: labels.iter().filter(|&&l| l == 1).count(),
        }
    }
}

fn sorted_desc(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

fn tie_groups<'a>(order: &'a [usize], scores: &'a [f64]) -> impl Iterator<Item = &'a [usize]> + 'a {
    order.chunk_by(move |&a, &b| scores[a] == scores[b])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Worked out by hand below, with the definitions of scikit-learn's roc_auc_score and
    // average_precision_score.
    const SCORES: [f64; 8] = [0.9, 0.8, 0.7, 0.7, 0.5, 0.4, 0.3, 0.1];
    const LABELS: [u8; 8] = [1, 0, 1, 0, 1, 0, 0, 0];

    #[test]
    fn roc_auc_matches_a_hand_count_with_ties() {
        // Positives at 0.9, 0.7, 0.5; negatives at 0.8, 0.7, 0.4, 0.3, 0.1.
        // Pairs won: 0.9 beats 5; 0.7 beats 3 and ties 1 (0.5); 0.5 beats 3. = 11.5 / 15.
        assert!((roc_auc(&SCORES, &LABELS).unwrap() - 11.5 / 15.0).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.1, 0.2], &[1, 1]), None);
        assert_eq!(roc_auc(&[0.1, 0.2, 0.3], &[0, 0, 1]), Some(1.0));
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5], &[0, 1, 0]), Some(0.5));
    }

    #[test]
    fn average_precision_steps_over_tie_groups() {
        // Thresholds: {0.9}: P=1, R=1/3; {0.8}: P=1/2, R unchanged; {0.7,0.7}: P=2/4, R=2/3;
        // {0.5}: P=3/5, R=1. AP = 1/3*1 + 1/3*1/2 + 1/3*3/5 = 0.7.
        assert!((pr_auc(&SCORES, &LABELS).unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(pr_auc(&[0.3], &[0]), None);
    }

    #[test]
    fn lift_counts_the_top_share() {
        // Top 10 % of 8 rows = 1 row (0.9, a churner): rate 1 over 3/8.
        assert!((lift(&SCORES, &LABELS, 0.1).unwrap() - 8.0 / 3.0).abs() < 1e-12);
        // Top 50 % = 4 rows with 2 churners: 0.5 / 0.375.
        assert!((lift(&SCORES, &LABELS, 0.5).unwrap() - 0.5 / 0.375).abs() < 1e-12);
        // All tied: lift 1.
        assert!(
            (lift(&[1.0; 10], &[1, 0, 0, 0, 0, 1, 0, 0, 0, 0], 0.1).unwrap() - 1.0).abs() < 1e-12
        );
    }

    #[test]
    fn probability_metrics() {
        let p = [0.9, 0.1, 0.8, 0.3];
        let y = [1, 0, 0, 1];
        let ll = -(0.9f64.ln() + 0.9f64.ln() + 0.2f64.ln() + 0.3f64.ln()) / 4.0;
        assert!((log_loss(&p, &y) - ll).abs() < 1e-12);
        assert!((brier(&p, &y) - (0.01 + 0.01 + 0.64 + 0.49) / 4.0).abs() < 1e-12);
        // Bins: [0.1] obs 0, [0.3] obs 1, [0.8] obs 0, [0.9] obs 1 -> gaps .1 .7 .8 .1.
        assert!((ece(&p, &y) - (0.1 + 0.7 + 0.8 + 0.1) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn precision_and_recall_at_a_threshold() {
        assert_eq!(precision_recall_at(&SCORES, &LABELS, 0.7), (0.5, 2.0 / 3.0));
    }
}
