//! How well predicted survival curves came true, with right-censoring handled: Harrell's
//! concordance, the integrated Brier score with inverse-probability-of-censoring
//! weights (Graf et al. 1999), and calibration of `S(t)` against Kaplan-Meier per risk
//! decile.
//!
//! Time is in whole intervals. A row's [`Target`] says the interval it churned in, or
//! how many complete intervals it was seen through without churning (censored after
//! them). At tied times a churn counts as happening before a censoring (a customer
//! censored after interval `k` did survive `k`).

use crate::survival::Target;
use serde::Serialize;

/// A row's time (churn interval or intervals observed) and whether it churned, with
/// churns after `tau` censored at `tau`.
fn truncated(t: &Target, tau: u32) -> (u32, bool) {
    match t.event_interval {
        Some(k) if k <= tau => (k, true),
        Some(_) => (tau, false),
        None => (t.observed_intervals.min(tau), false),
    }
}

/// Harrell's concordance of `risk` (higher = churns sooner) with the outcomes up to
/// interval `tau`: over the pairs where one row churned strictly before the other was
/// last seen (or in the interval the other was censored after), the share where the
/// one that churned has the higher risk, ties counting one half. `None` without a
/// comparable pair.
pub fn concordance(risk: &[f64], targets: &[Target], tau: u32) -> Option<f64> {
    // Risks as ranks, for a Fenwick tree counting rows by rank.
    let mut sorted: Vec<f64> = risk.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let rank = |r: f64| sorted.partition_point(|&s| s < r);
    let mut tree = vec![0u64; sorted.len() + 1];
    let add = |tree: &mut Vec<u64>, i: usize| {
        let mut i = i + 1;
        while i < tree.len() {
            tree[i] += 1;
            i += i & i.wrapping_neg();
        }
    };
    // Rows with rank below `i`.
    let below = |tree: &Vec<u64>, i: usize| {
        let (mut i, mut n) = (i, 0);
        while i > 0 {
            n += tree[i];
            i -= i & i.wrapping_neg();
        }
        n
    };
    let mut by_time: Vec<Vec<(usize, bool)>> = vec![Vec::new(); tau as usize + 1];
    for (i, t) in targets.iter().enumerate() {
        let (time, event) = truncated(t, tau);
        by_time[time as usize].push((i, event));
    }
    let (mut concordant, mut comparable) = (0.0, 0u64);
    let mut inserted = 0u64;
    for rows in by_time.iter().rev() {
        // Censored at this time: they outlived the churns of this interval.
        for &(i, _) in rows.iter().filter(|(_, e)| !e) {
            add(&mut tree, rank(risk[i]));
            inserted += 1;
        }
        for &(i, _) in rows.iter().filter(|(_, e)| *e) {
            let r = rank(risk[i]);
            let lower = below(&tree, r);
            let tied = below(&tree, r + 1) - lower;
            concordant += lower as f64 + 0.5 * tied as f64;
            comparable += inserted;
        }
        for &(i, _) in rows.iter().filter(|(_, e)| *e) {
            add(&mut tree, rank(risk[i]));
            inserted += 1;
        }
    }
    (comparable > 0).then(|| concordant / comparable as f64)
}

/// Kaplan-Meier survival `S(1..=tau)` of the rows; an interval nobody was observed in
/// keeps the previous value.
pub fn kaplan_meier(targets: &[&Target], tau: u32) -> Vec<f64> {
    let tau_len = tau as usize;
    let mut events = vec![0usize; tau_len + 2];
    let mut exits = vec![0usize; tau_len + 2];
    for t in targets {
        let (time, event) = truncated(t, tau);
        if event {
            events[time as usize] += 1;
        }
        exits[time as usize] += 1;
    }
    // At risk in interval k: rows whose time is at least k.
    let mut at_risk = targets.len();
    let mut s = 1.0;
    let mut out = Vec::with_capacity(tau_len);
    for k in 1..=tau_len {
        at_risk -= exits[k - 1];
        if at_risk > 0 {
            s *= 1.0 - events[k] as f64 / at_risk as f64;
        }
        out.push(s);
    }
    out
}

/// The censoring survival `G(k) = P(observed through at least k intervals)`, k = 0..=tau,
/// by Kaplan-Meier with censoring as the event (churns first at tied times).
pub fn censoring_survival(targets: &[Target], tau: u32) -> Vec<f64> {
    let tau_len = tau as usize;
    let mut censored = vec![0usize; tau_len + 1];
    let mut churned = vec![0usize; tau_len + 1];
    for t in targets {
        match t.event_interval {
            Some(k) if k <= tau => churned[k as usize] += 1,
            Some(_) => {}
            None if t.observed_intervals < tau => censored[t.observed_intervals as usize] += 1,
            None => {}
        }
    }
    let mut g = vec![1.0; tau_len + 1];
    // Rows still observed and not churned at the end of interval j.
    let mut at_risk = targets.len();
    for j in 0..tau_len {
        at_risk -= churned[j];
        if at_risk > 0 {
            g[j + 1] = g[j] * (1.0 - censored[j] as f64 / at_risk as f64);
        } else {
            g[j + 1] = g[j];
        }
        at_risk -= censored[j];
    }
    g
}

/// The Brier score of `S(t)` with censoring weights: a row that churned by `t` counts
/// `S(t)^2 / G(its interval)`, one seen through `t` counts `(1 - S(t))^2 / G(t)`, one
/// censored before `t` nothing; divided by all rows. `curves[i][k - 1]` is row `i`'s
/// `S(k)`.
pub fn brier(curves: &[&[f64]], targets: &[Target], g: &[f64], t: u32) -> f64 {
    let mut total = 0.0;
    for (curve, target) in curves.iter().zip(targets) {
        let s = curve[t as usize - 1];
        match target.event_interval {
            Some(k) if k <= t => total += s * s / g[k as usize].max(1e-9),
            Some(_) => total += (1.0 - s) * (1.0 - s) / g[t as usize].max(1e-9),
            None if target.observed_intervals >= t => {
                total += (1.0 - s) * (1.0 - s) / g[t as usize].max(1e-9)
            }
            None => {}
        }
    }
    total / curves.len().max(1) as f64
}

/// The mean of the Brier scores of `S(1)` to `S(tau)`.
pub fn integrated_brier(curves: &[&[f64]], targets: &[Target], tau: u32) -> f64 {
    let g = censoring_survival(targets, tau);
    (1..=tau)
        .map(|t| brier(curves, targets, &g, t))
        .sum::<f64>()
        / f64::from(tau)
}

/// One risk decile's predicted and realised survival at a horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationRow {
    pub rows: usize,
    /// Mean predicted `S(t)`.
    pub predicted: f64,
    /// Kaplan-Meier `S(t)` of the same rows.
    pub realised: f64,
}

/// Calibration of `S(t)` at one horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub months: u32,
    /// Deciles of predicted risk `1 - S(t)`, lowest risk first.
    pub deciles: Vec<CalibrationRow>,
    /// Row-weighted mean of `|predicted - realised|` over the deciles.
    pub mean_abs_error: f64,
    /// Mean predicted `S(t)` and Kaplan-Meier over all rows.
    pub predicted: f64,
    pub realised: f64,
}

/// Calibration of `S(t)` per decile of predicted risk; `None` when no row was observed
/// through `t`.
pub fn calibration(curves: &[&[f64]], targets: &[Target], t: u32) -> Option<Calibration> {
    let reached = targets.iter().any(|x| match x.event_interval {
        Some(k) => k > t,
        None => x.observed_intervals >= t,
    });
    if !reached || curves.is_empty() {
        return None;
    }
    let s_at = |i: usize| curves[i][t as usize - 1];
    let mut order: Vec<usize> = (0..curves.len()).collect();
    order.sort_by(|&a, &b| s_at(b).total_cmp(&s_at(a)));
    let n = order.len();
    let groups = 10.min(n);
    let mut deciles = Vec::with_capacity(groups);
    for g in 0..groups {
        let rows = &order[g * n / groups..(g + 1) * n / groups];
        let group_targets: Vec<&Target> = rows.iter().map(|&i| &targets[i]).collect();
        let realised = *kaplan_meier(&group_targets, t).last().expect("t >= 1");
        deciles.push(CalibrationRow {
            rows: rows.len(),
            predicted: rows.iter().map(|&i| s_at(i)).sum::<f64>() / rows.len() as f64,
            realised,
        });
    }
    let mean_abs_error = deciles
        .iter()
        .map(|d| d.rows as f64 * (d.predicted - d.realised).abs())
        .sum::<f64>()
        / n as f64;
    let all: Vec<&Target> = targets.iter().collect();
    Some(Calibration {
        months: t,
        deciles,
        mean_abs_error,
        predicted: (0..n).map(s_at).sum::<f64>() / n as f64,
        realised: *kaplan_meier(&all, t).last().expect("t >= 1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn churned(k: u32) -> Target {
        Target {
            event_interval: Some(k),
            observed_intervals: 36,
        }
    }

    fn censored(m: u32) -> Target {
        Target {
            event_interval: None,
            observed_intervals: m,
        }
    }

    /// Harrell's C by its definition, pair by pair.
    fn concordance_by_pairs(risk: &[f64], targets: &[Target], tau: u32) -> Option<f64> {
        let (mut c, mut n) = (0.0, 0);
        for i in 0..targets.len() {
            let (ti, ei) = truncated(&targets[i], tau);
            if !ei {
                continue;
            }
            for j in 0..targets.len() {
                let (tj, ej) = truncated(&targets[j], tau);
                if tj > ti || (tj == ti && !ej) {
                    n += 1;
                    c += if risk[i] > risk[j] {
                        1.0
                    } else if risk[i] == risk[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        (n > 0).then(|| c / f64::from(n))
    }

    #[test]
    fn concordance_counts_comparable_pairs_as_the_definition_does() {
        // Row 0 churns first and has the highest risk; row 2 is censored after 1 interval
        // (comparable only with churns in interval 1); row 3 outlives everyone.
        let targets = [
            churned(1),
            churned(3),
            censored(1),
            censored(12),
            churned(3),
        ];
        let risk = [0.9, 0.5, 0.7, 0.1, 0.5];
        // Pairs: (0,1) (0,2) (0,3) (0,4): concordant 4; (1,3) concordant; (4,3)
        // concordant; (1,4) and (4,1) not comparable (same churn interval).
        assert_eq!(concordance(&risk, &targets, 12), Some(1.0));
        let flipped: Vec<f64> = risk.iter().map(|r| 1.0 - r).collect();
        assert_eq!(concordance(&flipped, &targets, 12), Some(0.0));
        // Ties in risk count a half, and agree with the pair-by-pair definition on
        // a larger set with every kind of tie.
        let mut targets = Vec::new();
        let mut risk = Vec::new();
        for i in 0..200u32 {
            let k = 1 + (i * 7919) % 15;
            targets.push(if i % 3 == 0 { censored(k) } else { churned(k) });
            risk.push(f64::from((i * 104_729) % 13));
        }
        let fast = concordance(&risk, &targets, 12).unwrap();
        let slow = concordance_by_pairs(&risk, &targets, 12).unwrap();
        assert!((fast - slow).abs() < 1e-12, "{fast} vs {slow}");
        assert_eq!(concordance(&[0.5], &[censored(3)], 12), None);
    }

    #[test]
    fn kaplan_meier_and_censoring_weights_match_hand_computation() {
        // Ten rows: churns at 1, 1, 2; censored after 1, 2, 2; four seen through 5.
        let targets = [
            churned(1),
            churned(1),
            churned(2),
            censored(1),
            censored(2),
            censored(2),
            censored(5),
            censored(5),
            censored(5),
            censored(5),
        ];
        let refs: Vec<&Target> = targets.iter().collect();
        let km = kaplan_meier(&refs, 3);
        // Interval 1: 10 at risk, 2 churn -> 0.8. Interval 2: 7 at risk (the one
        // censored after 1 left), 1 churn -> 0.8 * 6/7. Interval 3: 4 at risk, none.
        assert!((km[0] - 0.8).abs() < 1e-12);
        assert!((km[1] - 0.8 * 6.0 / 7.0).abs() < 1e-12);
        assert!((km[2] - km[1]).abs() < 1e-12);
        let g = censoring_survival(&targets, 3);
        // After interval 0 nobody is censored; after 1: 8 still there (2 churned), one
        // censored; after 2: 6 there (one churned), two censored.
        assert_eq!(g[0], 1.0);
        assert_eq!(g[1], 1.0);
        assert!((g[2] - 7.0 / 8.0).abs() < 1e-12);
        assert!((g[3] - 7.0 / 8.0 * 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn brier_is_zero_for_a_perfect_forecast_and_weights_censoring() {
        let targets = [churned(1), censored(3), censored(1)];
        let dead = [0.0, 0.0, 0.0];
        let alive = [1.0, 1.0, 1.0];
        let curves: Vec<&[f64]> = vec![&dead, &alive, &alive];
        let g = censoring_survival(&targets, 3);
        assert_eq!(brier(&curves, &targets, &g, 1), 0.0);
        // At t = 2 the row censored after 1 is unknown: it counts nothing, and the one
        // seen through 2 is weighted up by 1 / G(2) = 2 (one of the two still observed
        // after interval 1 was censored).
        let half = [0.5, 0.5, 0.5];
        let curves: Vec<&[f64]> = vec![&dead, &half, &alive];
        assert!((g[2] - 0.5).abs() < 1e-12);
        assert!((brier(&curves, &targets, &g, 2) - 0.25 * 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn calibration_compares_each_decile_with_its_kaplan_meier() {
        // Two groups of 50: one churns in interval 1 half the time, the other never.
        let mut targets = Vec::new();
        let mut curves = Vec::new();
        for i in 0..100 {
            if i < 50 {
                targets.push(if i % 2 == 0 { churned(1) } else { censored(6) });
                curves.push(vec![0.5; 6]);
            } else {
                targets.push(censored(6));
                curves.push(vec![1.0; 6]);
            }
        }
        let refs: Vec<&[f64]> = curves.iter().map(|c| c.as_slice()).collect();
        let c = calibration(&refs, &targets, 3).unwrap();
        assert_eq!(c.deciles.len(), 10);
        assert!(c.mean_abs_error < 1e-12, "{c:?}");
        assert!((c.realised - 0.75).abs() < 1e-12);
        // Nobody observed through 7 intervals: nothing to compare.
        let refs7: Vec<Vec<f64>> = curves.iter().map(|_| vec![1.0; 7]).collect();
        let refs7: Vec<&[f64]> = refs7.iter().map(|c| c.as_slice()).collect();
        assert!(calibration(&refs7, &targets, 7).is_none());
    }
}
