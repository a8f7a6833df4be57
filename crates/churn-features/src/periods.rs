//! Active periods: a customer's subscriptions merged, joining gaps of at most a grace
//! period. A churn is the end of an active period.

use crate::dataset::Subscription;
use crate::time::Day;

/// Default grace period in days: a gap this short is a lapse, not a churn.
pub const DEFAULT_GRACE_DAYS: i32 = 7;

/// A span during which the customer was continuously subscribed (up to grace gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Day,
    /// First day no longer covered; `None` while ongoing.
    pub end: Option<Day>,
}

impl Period {
    /// Whether `day` is covered (start inclusive, end exclusive).
    pub fn covers(&self, day: Day) -> bool {
        self.start <= day && self.end.is_none_or(|e| day < e)
    }
}

/// Merges subscriptions (sorted by start) into active periods.
pub fn active_periods(subs: &[Subscription], grace_days: i32) -> Vec<Period> {
    merge(subs.iter().map(|s| (s.start, s.end)), grace_days)
}

/// Active periods as they were known strictly before `as_of`: subscriptions that start
/// on or after `as_of` are unknown, and an end on or after `as_of` has not happened yet.
pub fn periods_known_before(subs: &[Subscription], as_of: Day, grace_days: i32) -> Vec<Period> {
    merge(
        subs.iter()
            .filter(|s| s.start < as_of)
            .map(|s| (s.start, s.end.filter(|&e| e < as_of))),
        grace_days,
    )
}

fn merge(spans: impl Iterator<Item = (Day, Option<Day>)>, grace_days: i32) -> Vec<Period> {
    let mut out: Vec<Period> = Vec::new();
    let mut spans: Vec<(Day, Option<Day>)> = spans.collect();
    spans.sort_by_key(|&(s, e)| (s, e.unwrap_or(Day::MAX)));
    for (start, end) in spans {
        match out.last_mut() {
            Some(cur) => match cur.end {
                None => {}
                Some(cur_end) if start <= cur_end + grace_days => {
                    cur.end = end.map(|e| e.max(cur_end));
                }
                Some(_) => out.push(Period { start, end }),
            },
            None => out.push(Period { start, end }),
        }
    }
    out
}

/// Whether a customer with subscriptions `subs` (sorted by start, as [`Dataset`] keeps
/// them) is a customer at `as_of`, judged from what is known strictly before it (the
/// subscriptions of [`periods_known_before`]): its latest active period started before
/// `as_of` and has not ended, or ended at most `grace_days` before it. A renewal (a row
/// ending on `as_of`, the next starting on it) is therefore active on the day itself, and
/// so is a customer inside a lapse not yet longer than the grace period: it may still
/// come back without churning, and whether it will is what the model predicts.
///
/// Allocation-free: it runs for every customer and observation date.
///
/// [`Dataset`]: crate::Dataset
pub fn active_at(subs: &[Subscription], as_of: Day, grace_days: i32) -> bool {
    debug_assert!(subs.windows(2).all(|w| w[0].start <= w[1].start));
    // The end of the latest merged period: None before any, Some(None) while ongoing.
    let mut latest: Option<Option<Day>> = None;
    for s in subs.iter().take_while(|s| s.start < as_of) {
        // An end on or after `as_of` is not known yet: the subscription looks ongoing.
        let end = s.end.filter(|&e| e < as_of);
        latest = match latest {
            Some(None) => Some(None),
            Some(Some(cur)) if s.start <= cur + grace_days => Some(end.map(|e| e.max(cur))),
            _ => Some(end),
        };
    }
    match latest {
        None => false,
        Some(None) => true,
        Some(Some(end)) => as_of <= end + grace_days,
    }
}

/// The customer's signup date: the start of its first subscription.
pub fn signup(subs: &[Subscription]) -> Option<Day> {
    subs.iter().map(|s| s.start).min()
}

/// MRR on `day`: the sum over subscriptions covering it (0 when none does, as for a
/// customer inside a lapse).
pub fn mrr_on(subs: &[Subscription], day: Day) -> f64 {
    // `+ 0.0`: an empty f64 sum is -0.0, which would print as "-0".
    subs.iter()
        .filter(|s| s.start <= day && s.end.is_none_or(|e| day < e))
        .map(|s| s.mrr)
        .sum::<f64>()
        + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(start: Day, end: Option<Day>) -> Subscription {
        Subscription {
            start,
            end,
            mrr: 10.0,
            plan: "p".into(),
            cancel_reason: None,
        }
    }

    #[test]
    fn gaps_within_grace_are_joined() {
        let subs = [sub(0, Some(30)), sub(37, Some(60)), sub(68, None)];
        assert_eq!(
            active_periods(&subs, 7),
            vec![
                Period {
                    start: 0,
                    end: Some(60)
                },
                Period {
                    start: 68,
                    end: None
                }
            ]
        );
    }

    #[test]
    fn ongoing_subscription_absorbs_later_ones() {
        let subs = [sub(0, None), sub(10, Some(20))];
        assert_eq!(
            active_periods(&subs, 7),
            vec![Period {
                start: 0,
                end: None
            }]
        );
    }

    #[test]
    fn knowledge_before_as_of_hides_future_ends_and_starts() {
        let subs = [sub(0, Some(50)), sub(80, None)];
        assert_eq!(
            periods_known_before(&subs, 40, 7),
            vec![Period {
                start: 0,
                end: None
            }]
        );
        assert_eq!(
            periods_known_before(&subs, 60, 7),
            vec![Period {
                start: 0,
                end: Some(50)
            }]
        );
    }

    #[test]
    fn activity_is_judged_from_what_is_known_before_the_day() {
        let renewals = [sub(0, Some(30)), sub(30, Some(60)), sub(60, None)];
        for d in [1, 29, 30, 31, 59, 60, 61, 500] {
            assert!(active_at(&renewals, d, 7), "day {d}");
        }
        assert!(!active_at(&renewals, 0, 7), "not before the first start");
        // Ends on day 30, nothing after: a customer until the grace period is over.
        let ended = [sub(0, Some(30))];
        assert!(active_at(&ended, 30, 7) && active_at(&ended, 37, 7));
        assert!(!active_at(&ended, 38, 7));
        assert!(active_at(&ended, 30, 0) && !active_at(&ended, 31, 0));
        // Comes back on day 50 after a 20-day gap: a new period from day 51 on.
        let back = [sub(0, Some(30)), sub(50, None)];
        assert!(!active_at(&back, 45, 7) && !active_at(&back, 50, 7));
        assert!(active_at(&back, 51, 7));
        // Overlapping rows and rows that end inside an ongoing one.
        let overlap = [sub(0, None), sub(10, Some(20))];
        assert!(active_at(&overlap, 100, 0));
    }
}
