//! Monthly churn, cohort retention, MRR and ARPA on a hand-made data set, against numbers
//! worked out by hand.

use churn_features::Dataset;
use churn_kpis::{monthly_churn, retention_after, summary, KpiOptions};

/// Payments start Jan 2024 (the window); as-of defaults to the month after the last date.
/// - A: active all along, 100.
/// - B: ends Feb 10, back Feb 14 (4-day lapse, within the 7-day grace): never churns.
/// - C: ends Feb 20, back May 1 (a churn in February, a new period from May).
/// - D: signs up Jan 15, ends Mar 15 (churns in March); upgrades from 50 to 80 on Feb 15.
/// - E: signed up in 2023 (before the window), ends Jan 31: churns in January.
const SUBSCRIPTIONS: &str = "customer_id,start_date,end_date,mrr,plan
A,2023-06-01,,100,pro
B,2023-06-01,2024-02-10,100,pro
B,2024-02-14,,100,pro
C,2023-06-01,2024-02-20,50,basic
C,2024-05-01,,50,basic
D,2024-01-15,2024-02-15,50,basic
D,2024-02-15,2024-03-15,80,pro
E,2023-09-01,2024-01-31,40,basic
";

const PAYMENTS: &str = "customer_id,due_date,paid_at,amount,status
A,2024-01-01,2024-01-01T10:00:00Z,100,paid
A,2024-05-31,2024-05-31T10:00:00Z,100,paid
";

fn dataset() -> (tempfile::TempDir, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("subscriptions.csv"), SUBSCRIPTIONS).unwrap();
    std::fs::write(dir.path().join("payments.csv"), PAYMENTS).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    (dir, ds)
}

#[test]
fn monthly_churn_counts_period_ends_not_lapses() {
    let (_dir, ds) = dataset();
    let months = monthly_churn(&ds, KpiOptions::default());
    let view: Vec<(&str, u64, u64)> = months
        .iter()
        .map(|m| (m.month.as_str(), m.active_at_start, m.churned))
        .collect();
    // Jan 1: A B C E active (D signs up Jan 15); E ends Jan 31 -> 1 of 4.
    // Feb 1: A B C D; C ends Feb 20 (B's lapse is within grace) -> 1 of 4.
    // Mar 1: A B D; D ends Mar 15 -> 1 of 3.  Apr 1: A B -> 0 of 2.
    // May 1: A B C (C is back) -> 0 of 3.
    assert_eq!(
        view,
        [
            ("2024-01", 4, 1),
            ("2024-02", 4, 1),
            ("2024-03", 3, 1),
            ("2024-04", 2, 0),
            ("2024-05", 3, 0)
        ]
    );
    assert!((months[0].churn_pct - 25.0).abs() < 1e-9);
    assert!((months[2].churn_pct - 100.0 / 3.0).abs() < 1e-9);
    // Revenue churn in March: D's 80 (after its upgrade) of 100 + 100 + 80.
    assert!((months[2].revenue_churn_pct - 100.0 * 80.0 / 280.0).abs() < 1e-9);
}

#[test]
fn retention_counts_only_cohorts_inside_the_window() {
    let (_dir, ds) = dataset();
    let opts = KpiOptions::default();
    // Only D signed up inside the window (Jan 15): active Feb 15 (month 1), gone by
    // Apr 15 (month 3). A, B, C, E signed up before the data and are left out.
    assert_eq!(retention_after(&ds, 1, opts), Some(100.0));
    assert_eq!(retention_after(&ds, 3, opts), Some(0.0));
    // Month 6 (Jul 15) lies beyond the data: not measurable.
    assert_eq!(retention_after(&ds, 6, opts), None);
}

#[test]
fn mrr_and_arpa_on_the_last_day() {
    let (_dir, ds) = dataset();
    let s = summary(&ds, KpiOptions::default());
    // As of Jun 1 (the month after the last date, May 31): A, B, C active on May 31.
    assert_eq!(s.as_of, "2024-06-01");
    assert_eq!(s.active_customers, 3);
    assert!((s.mrr - 250.0).abs() < 1e-9);
    assert!((s.arpa - 250.0 / 3.0).abs() < 1e-9);
    assert_eq!(s.churn_months, 5);
    assert!((s.monthly_churn_pct - (25.0 + 25.0 + 100.0 / 3.0) / 5.0).abs() < 1e-9);
    assert_eq!(s.csm_coverage_pct, None); // no has_csm attribute
}
