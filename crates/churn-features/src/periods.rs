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

/// The customer's signup date: the start of its first subscription.
pub fn signup(subs: &[Subscription]) -> Option<Day> {
    subs.iter().map(|s| s.start).min()
}

/// MRR on `day`: the sum over subscriptions covering it.
pub fn mrr_on(subs: &[Subscription], day: Day) -> f64 {
    subs.iter()
        .filter(|s| s.start <= day && s.end.is_none_or(|e| day < e))
        .map(|s| s.mrr)
        .sum()
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
}
