//! Every feature and label on a tiny hand-made data set, against answers worked out by
//! hand (the comments show the arithmetic). As of 2024-04-01.

use churn_features::features::{self, FeatureConfig, FeatureTable};
use churn_features::labels;
use churn_features::time::{format_date, parse_date};
use churn_features::Dataset;

const SUBSCRIPTIONS: &str = "customer_id,start_date,end_date,mrr,plan
A,2024-01-01,2024-02-15,100,basic
A,2024-02-15,,150,pro
B,2023-12-01,,50,basic
C,2024-01-01,2024-03-01,80,basic
D,2024-04-01,,80,basic
E,2024-01-01,2024-04-01,80,basic
F,2024-01-01,2024-04-20,80,basic
G,2024-01-01,2024-04-10,80,basic
G,2024-04-15,,90,pro
H,2024-01-01,2024-05-01,80,basic
I,2024-01-01,2024-05-02,80,basic
";

const EVENTS: &str = "customer_id,timestamp,event_type,value,feature
B,2023-12-15T12:00:00Z,login,,
A,2024-01-10T09:00:00Z,feature_use,,dashboard
A,2024-03-03T10:00:00Z,login,,
A,2024-03-05T10:00:00Z,login,,
A,2024-03-15T10:00:00Z,feature_use,,reports
A,2024-03-16T10:00:00Z,feature_use,,dashboard
A,2024-03-20T10:00:00Z,session,10,
A,2024-03-22T10:00:00Z,login,,
A,2024-03-25T10:00:00Z,session,20,
A,2024-03-30T10:00:00Z,login,,
A,2024-03-31T10:00:00Z,login,,
A,2024-04-01T00:00:00Z,session,1000,
A,2024-04-02T10:00:00Z,login,,
";

const TICKETS: &str = "customer_id,opened_at,closed_at,first_response_at,priority,satisfaction
A,2023-12-01T00:00:00Z,2023-12-02T00:00:00Z,2023-12-01T10:00:00Z,low,1
A,2024-03-10T00:00:00Z,2024-03-12T00:00:00Z,2024-03-10T06:00:00Z,high,4
A,2024-03-30T00:00:00Z,,2024-04-02T00:00:00Z,normal,
A,2024-03-31T00:00:00Z,2024-04-05T00:00:00Z,,normal,1
";

const PAYMENTS: &str = "customer_id,due_date,paid_at,amount,status
A,2024-01-15,2024-01-15T10:00:00Z,100,paid
A,2024-02-15,2024-02-20T10:00:00Z,150,late
A,2024-03-15,,150,failed
A,2024-03-25,2024-04-03T00:00:00Z,150,late
";

const SURVEYS: &str = "customer_id,answered_at,nps,csat
A,2024-02-01T00:00:00Z,9,8
A,2024-03-01T00:00:00Z,7,
A,2024-04-02T00:00:00Z,0,1
";

const CUSTOMERS: &str = "customer_id,country,has_csm
A,US,true
B,DE,false
";

const CATALOG: &str = "feature,group
dashboard,core
projects,core
reports,reporting
api,advanced
";

fn dataset() -> (tempfile::TempDir, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("subscriptions.csv", SUBSCRIPTIONS),
        ("events.csv", EVENTS),
        ("tickets.csv", TICKETS),
        ("payments.csv", PAYMENTS),
        ("surveys.csv", SURVEYS),
        ("customers.csv", CUSTOMERS),
        ("catalog.csv", CATALOG),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let ds = Dataset::open(dir.path()).unwrap();
    (dir, ds)
}

fn as_of() -> i32 {
    parse_date("2024-04-01").unwrap()
}

fn table() -> FeatureTable {
    let (_dir, ds) = dataset();
    features::features(&ds, as_of(), &FeatureConfig::default()).unwrap()
}

fn row(t: &FeatureTable, id: &str) -> usize {
    t.customer_ids
        .iter()
        .position(|c| c == id)
        .unwrap_or_else(|| panic!("{id} has no row"))
}

fn check(t: &FeatureTable, id: &str, name: &str, expected: Option<f64>) {
    assert!(t.column(name).is_some(), "no feature `{name}`");
    let got = t.number(name, row(t, id));
    match (got, expected) {
        (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{id}.{name} = {g}, expected {e}"),
        (g, e) => assert_eq!(g, e, "{id}.{name}"),
    }
}

#[test]
fn population_is_customers_active_at_as_of() {
    let t = table();
    let mut ids = t.customer_ids.clone();
    ids.sort();
    // C ended a month before and D starts on the date: not active. E's subscription
    // ends on the date: on its first day without one it is within the grace period,
    // like a renewal due today, so it is scored.
    assert_eq!(ids, ["A", "B", "E", "F", "G", "H", "I"]);
    assert!(t.as_of.iter().all(|&d| d == Some(as_of())));
}

#[test]
fn account_features() {
    let t = table();
    check(&t, "A", "tenure_days", Some(91.0)); // Jan 1 -> Apr 1
    check(&t, "A", "mrr", Some(150.0));
    check(&t, "A", "mrr_change_90d", Some(50.0)); // 150 now, 100 on Jan 2
    check(&t, "A", "previous_churns", Some(0.0));
    assert_eq!(t.category("plan", row(&t, "A")), Some("pro"));
    assert_eq!(t.category("signup_cohort", row(&t, "A")), Some("2024-01"));
    assert_eq!(t.category("signup_cohort", row(&t, "B")), Some("2023-12"));
    // G's renewal on Apr 15 is in the future: the plan is still basic.
    assert_eq!(t.category("plan", row(&t, "G")), Some("basic"));
    assert_eq!(t.category("country", row(&t, "A")), Some("US"));
    check(&t, "A", "has_csm", Some(1.0));
    check(&t, "B", "has_csm", Some(0.0));
    check(&t, "F", "has_csm", None);
}

#[test]
fn usage_features() {
    let t = table();
    // Logins in [Mar 4, Apr 1): Mar 5, 22, 30, 31 -> 4 in 4 weeks.
    check(&t, "A", "logins_per_week_28d", Some(1.0));
    // Days with events: Mar 5, 15, 16, 20, 22, 25, 30, 31.
    check(&t, "A", "active_days_28d", Some(8.0));
    // The session at exactly Apr 1 00:00 is not strictly before as-of.
    check(&t, "A", "sessions_28d", Some(2.0));
    check(&t, "A", "avg_session_minutes_28d", Some(15.0));
    // Mar 31 10:00 -> Apr 1 00:00 = 14 h = 0.58 days.
    check(&t, "A", "days_since_last_login", Some(0.58));
    check(&t, "A", "days_since_last_activity", Some(0.58));
    // 4 logins now, 1 (Mar 3) in the 28 days before: +300 %.
    check(&t, "A", "events_login_28d", Some(4.0));
    check(&t, "A", "events_login_pct_change_28d", Some(300.0));
    check(&t, "A", "events_session_28d", Some(2.0));
    check(&t, "A", "events_session_pct_change_28d", None); // none before
    check(&t, "B", "logins_per_week_28d", Some(0.0));
    check(&t, "B", "avg_session_minutes_28d", None);
    // Dec 15 12:00 -> Apr 1 = 107.5 days.
    check(&t, "B", "days_since_last_login", Some(107.5));
    check(&t, "F", "days_since_last_login", None);
}

#[test]
fn adoption_features() {
    let t = table();
    // dashboard and reports used in [Mar 2, Apr 1): 2 of a 4-feature catalog.
    check(&t, "A", "feature_adoption_30d", Some(0.5));
    check(&t, "A", "features_used_30d", Some(2.0));
    check(&t, "A", "adoption_core_30d", Some(0.5));
    check(&t, "A", "adoption_reporting_30d", Some(1.0));
    check(&t, "A", "adoption_advanced_30d", Some(0.0));
    // First feature_use Jan 10 09:00, signup Jan 1: 9.375 days.
    check(&t, "A", "ttv_days", Some(9.38));
    check(&t, "A", "value_reached", Some(1.0));
    // F signed up Jan 1, after the event history began (Dec 15), and never used a feature.
    check(&t, "F", "value_reached", Some(0.0));
    check(&t, "F", "ttv_days", None);
    // B signed up Dec 1, before the event history began: unknown, not "never".
    check(&t, "B", "value_reached", None);
}

#[test]
fn support_features() {
    let t = table();
    // Opened since Mar 2: Mar 10, Mar 30, Mar 31.
    check(&t, "A", "tickets_30d", Some(3.0));
    // Mar 30 (never closed) and Mar 31 (closed Apr 5, after as-of) are open.
    check(&t, "A", "open_tickets", Some(2.0));
    // Only the Mar 10 ticket was answered before as-of within 90 days: 6 h.
    check(&t, "A", "avg_first_response_hours_90d", Some(6.0));
    // The rating given on Apr 5 is not known yet; Dec's is outside the window.
    check(&t, "A", "avg_satisfaction_90d", Some(4.0));
    check(&t, "B", "tickets_30d", Some(0.0));
    check(&t, "B", "avg_first_response_hours_90d", None);
}

#[test]
fn payment_features() {
    let t = table();
    // Feb 15 paid late; Mar 25 still unpaid on Apr 1 (paid Apr 3): 2 late.
    check(&t, "A", "late_payments_90d", Some(2.0));
    check(&t, "A", "failed_payments_90d", Some(1.0));
    // The failed Mar 15 invoice is 17 days past due.
    check(&t, "A", "days_past_due", Some(17.0));
    check(&t, "B", "late_payments_90d", Some(0.0));
    check(&t, "B", "days_past_due", Some(0.0));
}

#[test]
fn survey_features() {
    let t = table();
    check(&t, "A", "last_nps", Some(7.0));
    check(&t, "A", "nps_age_days", Some(31.0));
    check(&t, "A", "last_csat", Some(8.0));
    check(&t, "A", "csat_age_days", Some(60.0)); // Feb 1 -> Apr 1 in a leap year
    check(&t, "B", "last_nps", None);
}

#[test]
fn absent_tables_give_missing_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("subscriptions.csv"), SUBSCRIPTIONS).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let t = features::features(&ds, as_of(), &FeatureConfig::default()).unwrap();
    for name in [
        "logins_per_week_28d",
        "tickets_30d",
        "late_payments_90d",
        "days_past_due",
        "feature_adoption_30d",
    ] {
        check(&t, "A", name, None);
    }
    check(&t, "A", "mrr", Some(150.0));
}

#[test]
fn labels_follow_the_active_period_and_grace() {
    let (_dir, ds) = dataset();
    let d = as_of();
    let label =
        |id: &str| labels::label(&ds.customers[ds.customer(id).unwrap() as usize], d, 30, 7);
    assert_eq!(label("A"), Some(0)); // ongoing
    assert_eq!(label("F"), Some(1)); // ends Apr 20
    assert_eq!(label("G"), Some(0)); // Apr 10 to Apr 15 is a 5-day lapse, within grace
    assert_eq!(label("H"), Some(1)); // ends May 1 = as-of + 30
    assert_eq!(label("I"), Some(0)); // ends May 2, beyond the horizon
    assert_eq!(label("C"), None);
    assert_eq!(label("D"), None);
    assert_eq!(label("E"), Some(1)); // ends on the date and never comes back
    assert_eq!(
        labels::label(&ds.customers[ds.customer("G").unwrap() as usize], d, 30, 3),
        Some(1)
    );
}

#[test]
fn observation_dates_leave_a_full_horizon() {
    let (_dir, ds) = dataset();
    // Activity starts Dec 2023; the latest date is I's last day, May 1, 2024.
    let dates: Vec<String> = labels::observation_dates(&ds, 30)
        .into_iter()
        .map(format_date)
        .collect();
    assert_eq!(
        dates,
        ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    );
    let ex = labels::examples(
        &ds,
        &labels::observation_dates(&ds, 30),
        30,
        &FeatureConfig::default(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(ex.labels.len(), ex.features.len());
    let at_april: Vec<(String, u8)> = (0..ex.labels.len())
        .filter(|&r| ex.features.as_of[r] == Some(as_of()))
        .map(|r| (ex.features.customer_ids[r].clone(), ex.labels[r]))
        .collect();
    assert_eq!(at_april.len(), 7);
    assert!(at_april.contains(&("E".into(), 1)));
    assert!(at_april.contains(&("F".into(), 1)) && at_april.contains(&("A".into(), 0)));
    // Multi-date features equal single-date ones.
    let single = features::features(&ds, as_of(), &FeatureConfig::default()).unwrap();
    for (r, id) in single.customer_ids.iter().enumerate() {
        let m = (0..ex.features.len())
            .find(|&k| ex.features.as_of[k] == Some(as_of()) && &ex.features.customer_ids[k] == id)
            .unwrap();
        for (k, info) in single.info.iter().enumerate() {
            let multi = ex.features.column(&info.name).unwrap();
            match (&single.columns[k], multi) {
                (
                    churn_features::dataset::Values::Numeric(a),
                    churn_features::dataset::Values::Numeric(b),
                ) => {
                    assert_eq!(
                        a[r].map(f64::to_bits),
                        b[m].map(f64::to_bits),
                        "{id}.{}",
                        info.name
                    )
                }
                (
                    churn_features::dataset::Values::Categorical(a),
                    churn_features::dataset::Values::Categorical(b),
                ) => {
                    assert_eq!(a[r], b[m], "{id}.{}", info.name)
                }
                _ => panic!("kind of {} differs", info.name),
            }
        }
    }
}

#[test]
fn bad_windows_are_refused() {
    let (_dir, ds) = dataset();
    let cfg = FeatureConfig {
        usage_window_days: 0,
        ..Default::default()
    };
    let e = features::features(&ds, as_of(), &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("usage_window_days"), "{e}");
    let e = labels::examples(&ds, &[as_of()], 0, &FeatureConfig::default(), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("horizon_days"), "{e}");
}

#[test]
fn the_windows_name_the_features_and_the_rules_follow_the_names() {
    let (_dir, ds) = dataset();
    let cfg = FeatureConfig {
        usage_window_days: 14,
        support_window_days: 60,
        ..Default::default()
    };
    let t = features::features(&ds, as_of(), &cfg).unwrap();
    let default = table();
    // The fixed features come first, in the table's order, named and typed by their
    // entries under these settings.
    for (def, info) in features::FIXED_FEATURES.iter().zip(&t.info) {
        assert_eq!(info.name, def.name(&cfg));
        assert_eq!(info.kind, def.kind);
    }
    let names: Vec<&str> = t.info.iter().map(|i| i.name.as_str()).collect();
    for renamed in ["logins_per_week_14d", "active_days_14d", "tickets_60d"] {
        assert!(names.contains(&renamed), "{renamed} missing: {names:?}");
    }
    assert!(!names.contains(&"logins_per_week_28d") && !names.contains(&"tickets_30d"));
    let logins = t
        .info
        .iter()
        .find(|i| i.name == "logins_per_week_14d")
        .unwrap();
    assert!(
        logins.description.contains("(14 days)"),
        "{}",
        logins.description
    );
    // Event-type counts follow the usage window too.
    assert!(names
        .iter()
        .any(|n| n.starts_with("events_") && n.ends_with("_14d")));
    // The rules read the renamed columns: nothing is lost to a window setting.
    for r in 0..t.len() {
        let inputs = churn_features::rules::RuleInputs::from_table(&t, r);
        assert_eq!(inputs.logins_per_week, t.number("logins_per_week_14d", r));
        assert_eq!(inputs.active_days_28d, t.number("active_days_14d", r));
        assert_eq!(inputs.tickets_30d, t.number("tickets_60d", r));
        assert_eq!(inputs.late_payments, t.number("late_payments_90d", r));
    }
    // Windows that did not change give the same values as the defaults.
    let r = row(&t, "A");
    assert_eq!(
        t.number("late_payments_90d", r),
        default.number("late_payments_90d", row(&default, "A"))
    );
    assert_eq!(
        features::fixed_name("logins_per_week", &cfg).as_deref(),
        Some("logins_per_week_14d")
    );
    assert_eq!(features::fixed_name("no_such_feature", &cfg), None);
}

/// A data set of monthly billing rows (one subscription row per invoice, as Stripe or
/// Chargebee exports give them): `rows` are (customer, start, end) with ends exclusive.
fn billing(rows: &[(&str, &str, &str)]) -> (tempfile::TempDir, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("customer_id,start_date,end_date,mrr,plan\n");
    for (c, start, end) in rows {
        text.push_str(&format!("{c},{start},{end},10,monthly\n"));
    }
    std::fs::write(dir.path().join("subscriptions.csv"), text).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    (dir, ds)
}

#[test]
fn a_customer_is_active_across_a_renewal_boundary() {
    // R renews on the first of every month; S's last invoice ends on 2024-04-01.
    let (_dir, ds) = billing(&[
        ("R", "2024-01-01", "2024-02-01"),
        ("R", "2024-02-01", "2024-03-01"),
        ("R", "2024-03-01", "2024-04-01"),
        ("R", "2024-04-01", "2024-05-01"),
        ("R", "2024-05-01", ""),
        ("S", "2024-01-01", "2024-02-01"),
        ("S", "2024-02-01", "2024-03-01"),
        ("S", "2024-03-01", "2024-04-01"),
    ]);
    let cfg = FeatureConfig::default();
    for day in [
        "2024-03-31",
        "2024-04-01",
        "2024-04-02",
        "2024-03-01",
        "2024-02-01",
    ] {
        let d = parse_date(day).unwrap();
        let t = features::features(&ds, d, &cfg).unwrap();
        assert!(
            t.customer_ids.contains(&"R".to_string()),
            "R missing at {day}"
        );
        let r = &ds.customers[ds.customer("R").unwrap() as usize];
        assert_eq!(labels::label(r, d, 30, 7), Some(0), "R at {day}");
        assert_eq!(
            t.number("mrr", t.customer_ids.iter().position(|c| c == "R").unwrap()),
            Some(10.0)
        );
    }
    // S is a customer until its grace period is over, and its label says it churns.
    let s = &ds.customers[ds.customer("S").unwrap() as usize];
    for (day, active) in [
        ("2024-03-31", true),
        ("2024-04-01", true),
        ("2024-04-08", true),
        ("2024-04-09", false),
    ] {
        let d = parse_date(day).unwrap();
        assert_eq!(
            labels::label(s, d, 30, 7),
            active.then_some(1),
            "S at {day}"
        );
        let t = features::features(&ds, d, &cfg).unwrap();
        assert_eq!(
            t.customer_ids.contains(&"S".to_string()),
            active,
            "S at {day}"
        );
    }
    // Observation dates on the first of the month keep every renewing customer.
    let dates = labels::observation_dates(&ds, 30);
    let ex = labels::examples(&ds, &dates, 30, &cfg, &|_| {}).unwrap();
    for &d in &dates {
        let here: Vec<&str> = (0..ex.labels.len())
            .filter(|&i| ex.features.as_of[i] == Some(d))
            .map(|i| ex.features.customer_ids[i].as_str())
            .collect();
        assert!(here.contains(&"R"), "R missing on {}", format_date(d));
    }
}

#[test]
fn a_lapse_shorter_than_the_grace_period_is_no_churn_and_a_longer_one_is() {
    // T lapses 5 days (Apr 1 to Apr 6) and comes back; U lapses 20 days.
    let (_dir, ds) = billing(&[
        ("T", "2024-01-01", "2024-04-01"),
        ("T", "2024-04-06", ""),
        ("U", "2024-01-01", "2024-04-01"),
        ("U", "2024-04-21", ""),
    ]);
    let t = &ds.customers[ds.customer("T").unwrap() as usize];
    let u = &ds.customers[ds.customer("U").unwrap() as usize];
    let at = |day: &str| parse_date(day).unwrap();
    // Inside T's lapse: a customer, not churning (it comes back within grace).
    assert_eq!(labels::label(t, at("2024-04-03"), 30, 7), Some(0));
    // U in the first week of its lapse: a customer whose period has ended: label 1.
    assert_eq!(labels::label(u, at("2024-04-03"), 30, 7), Some(1));
    // Past the grace period U is gone until it comes back, as a new period.
    assert_eq!(labels::label(u, at("2024-04-15"), 30, 7), None);
    assert_eq!(labels::label(u, at("2024-05-01"), 30, 7), Some(0));
    // The same dates, by the population of the feature table.
    let cfg = FeatureConfig::default();
    let ids = |day: &str| features::features(&ds, at(day), &cfg).unwrap().customer_ids;
    assert_eq!(ids("2024-04-03"), ["T", "U"]);
    assert_eq!(ids("2024-04-15"), ["T"]);
    // With no grace at all, a lapse is over at once.
    assert_eq!(labels::label(t, at("2024-04-03"), 30, 0), None);
}
