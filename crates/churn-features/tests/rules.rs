//! The playbook's thresholds at their edges, the configuration's errors, and the
//! monotonicity of the health score.

use churn_features::rules::{
    self, band, score, HealthBand, Intervention, RuleInputs, RulesConfig, Segment, SignalKind, Tier,
};
use proptest::prelude::*;

/// A customer with no warning signs: every signal input comfortably on the good side.
fn healthy() -> RuleInputs {
    RuleInputs {
        tenure_days: Some(400.0),
        logins_per_week: Some(6.0),
        active_days_28d: Some(15.0),
        avg_session_minutes: Some(9.0),
        feature_adoption: Some(0.7),
        features_used: Some(12.0),
        ttv_days: Some(5.0),
        value_reached: Some(1.0),
        tickets_30d: Some(0.0),
        open_tickets: Some(0.0),
        avg_satisfaction: Some(5.0),
        late_payments: Some(0.0),
        failed_payments: Some(0.0),
        days_past_due: Some(0.0),
        days_since_last_activity: Some(1.0),
        last_nps: Some(9.0),
        last_csat: Some(9.0),
        referrals: None,
        reviews: None,
    }
}

fn fired(x: &RuleInputs) -> Vec<SignalKind> {
    score(x, &RulesConfig::default())
        .fired()
        .map(|s| s.kind)
        .collect()
}

#[test]
fn signal_thresholds_at_their_edges() {
    type Case = (&'static str, fn(&mut RuleInputs), Vec<SignalKind>);
    let cases: Vec<Case> = vec![
        (
            "1.99 logins a week",
            |x| x.logins_per_week = Some(1.99),
            vec![SignalKind::LowLoginFrequency],
        ),
        (
            "2.0 logins a week",
            |x| x.logins_per_week = Some(2.0),
            vec![],
        ),
        (
            "4.99-minute sessions",
            |x| x.avg_session_minutes = Some(4.99),
            vec![SignalKind::ShortSessions],
        ),
        (
            "5-minute sessions",
            |x| x.avg_session_minutes = Some(5.0),
            vec![],
        ),
        (
            "29.9 % adoption",
            |x| x.feature_adoption = Some(0.299),
            vec![SignalKind::LowAdoption],
        ),
        ("30 % adoption", |x| x.feature_adoption = Some(0.30), vec![]),
        ("exactly 3 tickets", |x| x.tickets_30d = Some(3.0), vec![]),
        (
            "4 tickets",
            |x| x.tickets_30d = Some(4.0),
            vec![SignalKind::ManyTickets],
        ),
        (
            "one late payment",
            |x| x.late_payments = Some(1.0),
            vec![SignalKind::PaymentProblem],
        ),
        (
            "one failed payment",
            |x| x.failed_payments = Some(1.0),
            vec![SignalKind::PaymentProblem],
        ),
        (
            "no payment data",
            |x| {
                x.late_payments = None;
                x.failed_payments = None
            },
            vec![],
        ),
        ("no login data", |x| x.logins_per_week = None, vec![]),
    ];
    for (name, edit, expected) in cases {
        let mut x = healthy();
        edit(&mut x);
        assert_eq!(fired(&x), expected, "{name}");
    }
    let mut x = healthy();
    x.logins_per_week = Some(1.99);
    let s = score(&x, &RulesConfig::default());
    let sig = s.fired().next().unwrap();
    assert_eq!((sig.value, sig.threshold), (1.99, 2.0));
}

#[test]
fn intervention_levels() {
    let cfg = RulesConfig::default();
    let level = |edit: fn(&mut RuleInputs)| {
        let mut x = healthy();
        edit(&mut x);
        score(&x, &cfg).intervention
    };
    assert_eq!(level(|_| {}), Intervention::None);
    assert_eq!(
        level(|x| x.logins_per_week = Some(1.0)),
        Intervention::Monitor
    );
    assert_eq!(
        level(|x| {
            x.logins_per_week = Some(1.0);
            x.tickets_30d = Some(4.0)
        }),
        Intervention::Urgent
    );
    // A late payment is a signal, not an immediate intervention.
    assert_eq!(
        level(|x| x.late_payments = Some(2.0)),
        Intervention::Monitor
    );
    // A failed payment makes it immediate regardless of anything else.
    assert_eq!(
        level(|x| x.failed_payments = Some(1.0)),
        Intervention::Immediate
    );
    assert_eq!(
        level(|x| {
            x.failed_payments = Some(1.0);
            x.logins_per_week = Some(0.0);
            x.avg_session_minutes = Some(1.0);
            x.feature_adoption = Some(0.0);
            x.tickets_30d = Some(9.0)
        }),
        Intervention::Immediate
    );
    let mut x = healthy();
    x.failed_payments = Some(1.0);
    assert_eq!(
        score(&x, &cfg).intervention_reason.describe(),
        "a payment failed"
    );
}

#[test]
fn band_edges() {
    let cfg = RulesConfig::default();
    for (s, expected) in [
        (0.0, HealthBand::Churning),
        (39.9, HealthBand::Churning),
        (40.0, HealthBand::Critical),
        (59.9, HealthBand::Critical),
        (60.0, HealthBand::AtRisk),
        (79.9, HealthBand::AtRisk),
        (80.0, HealthBand::Healthy),
        (100.0, HealthBand::Healthy),
    ] {
        assert_eq!(band(s, &cfg), expected, "score {s}");
    }
}

#[test]
fn health_score_components_and_renormalisation() {
    let cfg = RulesConfig::default();
    let h = rules::health(&healthy(), &cfg).unwrap();
    assert_eq!(h.components.iter().filter(|c| c.is_some()).count(), 5);
    assert!((h.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(h.band, HealthBand::Healthy);
    // Only usage and adoption known: their weights 0.30 and 0.25 become 0.30/0.55 and 0.25/0.55.
    let x = RuleInputs {
        logins_per_week: Some(2.5),  // 50
        active_days_28d: Some(6.0),  // 50
        feature_adoption: Some(0.3), // 50
        ..Default::default()
    };
    let h = rules::health(&x, &cfg).unwrap();
    assert_eq!(h.components, [Some(50.0), Some(50.0), None, None, None]);
    assert!(
        (h.weights[0] - 0.30 / 0.55).abs() < 1e-12 && (h.weights[1] - 0.25 / 0.55).abs() < 1e-12
    );
    assert!((h.score - 50.0).abs() < 1e-9);
    assert_eq!(h.band, HealthBand::Critical);
    // Support: 100 - 15*2 - 10*1 = 60, blended 0.6*60 + 0.4*75 (satisfaction 4) = 66.
    let x = RuleInputs {
        tickets_30d: Some(2.0),
        open_tickets: Some(1.0),
        avg_satisfaction: Some(4.0),
        ..Default::default()
    };
    assert!((rules::components(&x, &cfg)[2].unwrap() - 66.0).abs() < 1e-9);
    // Payment: 100 - 25 - 50 - 10 = 15.
    let x = RuleInputs {
        late_payments: Some(1.0),
        failed_payments: Some(1.0),
        days_past_due: Some(10.0),
        ..Default::default()
    };
    assert!((rules::components(&x, &cfg)[3].unwrap() - 15.0).abs() < 1e-9);
    assert!(rules::health(&RuleInputs::default(), &cfg).is_none());
}

#[test]
fn segments_tiers_triggers_and_ttv() {
    let cfg = RulesConfig::default();
    let r = score(&healthy(), &cfg);
    assert_eq!(r.segment, Segment::Power);
    assert_eq!(r.loyalty_tier, Tier::Gold);
    assert_eq!(r.ttv_bucket, Some(0));
    assert_eq!(r.triggers, [false; 4]);
    assert_eq!(r.campaign_step, None);
    // 13 months, 12 features: 10 * 13 + 5 * 12 = 190 points.
    assert_eq!(r.loyalty_points, 190.0);

    let mut x = healthy();
    x.tenure_days = Some(30.0);
    assert_eq!(score(&x, &cfg).segment, Segment::New);
    assert_eq!(score(&x, &cfg).loyalty_tier, Tier::None);
    x.tenure_days = Some(200.0);
    x.logins_per_week = Some(3.0);
    assert_eq!(score(&x, &cfg).segment, Segment::Casual);
    assert_eq!(score(&x, &cfg).loyalty_tier, Tier::Bronze); // 6.6 months, usage below gold, adoption 0.7 < 0.8
    x.feature_adoption = Some(0.85);
    assert_eq!(score(&x, &cfg).loyalty_tier, Tier::Silver);

    let mut x = healthy();
    x.days_since_last_activity = Some(14.0);
    assert_eq!(score(&x, &cfg).triggers, [false; 4]);
    x.days_since_last_activity = Some(14.5);
    let r = score(&x, &cfg);
    assert_eq!(r.triggers, [false, false, true, false]);
    assert_eq!(r.campaign_step, Some(0)); // day 1: check-in email
    x.days_since_last_activity = Some(14.0 + 15.0);
    assert_eq!(
        cfg.reengagement.campaign[score(&x, &cfg).campaign_step.unwrap()].1,
        "personal phone call"
    );
    let mut x = healthy();
    x.logins_per_week = Some(1.0);
    x.tickets_30d = Some(5.0);
    let r = score(&x, &cfg);
    assert_eq!(r.triggers, [true, false, false, true]);
    assert_eq!(r.segment, Segment::AtRisk);

    for (ttv, bucket) in [
        (6.99, 0),
        (7.0, 1),
        (20.9, 1),
        (21.0, 2),
        (44.9, 2),
        (45.0, 3),
        (200.0, 3),
    ] {
        let x = RuleInputs {
            ttv_days: Some(ttv),
            ..Default::default()
        };
        assert_eq!(score(&x, &cfg).ttv_bucket, Some(bucket), "ttv {ttv}");
    }
    let not_reached = RuleInputs {
        value_reached: Some(0.0),
        ..Default::default()
    };
    assert_eq!(score(&not_reached, &cfg).ttv_bucket, Some(3));
    assert_eq!(cfg.ttv.retention_pct[3], 35.0);
    assert_eq!(score(&RuleInputs::default(), &cfg).ttv_bucket, None);
    assert_eq!(rules::ttv_bucket_label(1, &cfg), "7-21 days");
}

fn config_error(edit: impl Fn(&str) -> String) -> String {
    let text = edit(rules::DEFAULT_TOML);
    assert_ne!(text, rules::DEFAULT_TOML, "the edit changed nothing");
    RulesConfig::from_toml(&text, "rules.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_configurations_are_refused_naming_the_key() {
    type Edit = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "weights not summing to 1",
            Box::new(|t| t.replace("usage = 0.30 ", "usage = 0.35 ")),
            vec!["rules.toml", "`health.weights`", "sum to 1", "1.05"],
        ),
        (
            "band edge out of order",
            Box::new(|t| t.replace("at_risk = 60.0", "at_risk = 85.0")),
            vec!["`health.bands`", "critical < at_risk < healthy"],
        ),
        (
            "unknown key",
            Box::new(|t| {
                t.replace(
                    "min_session_minutes = 5.0",
                    "min_session_minutes = 5.0\nmin_sesion_length = 3",
                )
            }),
            vec!["rules.toml", "unknown field `min_sesion_length`"],
        ),
        (
            "missing key",
            Box::new(|t| t.replace("max_tickets_30d = 3.0\n# Payment", "# Payment")),
            vec!["missing field `max_tickets_30d`"],
        ),
        (
            "wrong type",
            Box::new(|t| t.replace("urgent_min_signals = 2", "urgent_min_signals = \"two\"")),
            vec!["urgent_min_signals"],
        ),
        (
            "negative weight",
            Box::new(|t| t.replace("engagement = 0.10 ", "engagement = -0.10 ")),
            vec!["`health.weights.engagement`"],
        ),
        (
            "ttv buckets mismatch",
            Box::new(|t| {
                t.replace(
                    "retention_pct = [95.0, 85.0, 65.0, 35.0]",
                    "retention_pct = [95.0, 85.0]",
                )
            }),
            vec!["`ttv.retention_pct`", "one value per bucket (4), got 2"],
        ),
        (
            "campaign days not rising",
            Box::new(|t| t.replace("[3, \"feature spotlight\"]", "[30, \"feature spotlight\"]")),
            vec!["`reengagement.campaign`"],
        ),
    ];
    for (name, edit, parts) in cases {
        let m = config_error(edit);
        for p in parts {
            assert!(m.contains(p), "{name}: `{m}` should contain `{p}`");
        }
    }
}

#[test]
fn the_default_file_round_trips_and_loads_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rules::DEFAULT_TOML).unwrap();
    assert_eq!(RulesConfig::load(&path).unwrap(), RulesConfig::default());
    let e = RulesConfig::load(&dir.path().join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.toml"), "{e}");
}

fn opt(range: std::ops::Range<f64>) -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(range)
}

fn inputs() -> impl Strategy<Value = RuleInputs> {
    (
        (
            opt(0.0..10.0),
            opt(0.0..28.0),
            opt(0.0..1.0),
            opt(0.0..10.0),
            opt(0.0..5.0),
            opt(1.0..5.0),
        ),
        (
            opt(0.0..4.0),
            opt(0.0..3.0),
            opt(0.0..60.0),
            opt(0.0..90.0),
            opt(0.0..10.0),
            opt(1.0..10.0),
        ),
    )
        .prop_map(
            |(
                (logins, days, adoption, tickets, open, sat),
                (late, failed, due, inactive, nps, csat),
            )| RuleInputs {
                logins_per_week: logins,
                active_days_28d: days,
                feature_adoption: adoption,
                tickets_30d: tickets,
                open_tickets: open,
                avg_satisfaction: sat,
                late_payments: late,
                failed_payments: failed,
                days_past_due: due,
                days_since_last_activity: inactive,
                last_nps: nps,
                last_csat: csat,
                ..Default::default()
            },
        )
}

proptest! {
    /// More of a good thing never lowers the health score; more of a bad thing never
    /// raises it (with the same inputs present, so the weights are the same).
    #[test]
    fn health_is_monotone(x in inputs(), step in 0.01..5.0f64) {
        let cfg = RulesConfig::default();
        let base = rules::health(&x, &cfg).map(|h| h.score);
        type Edit = fn(&mut RuleInputs, f64);
        let better: [Edit; 6] = [
            |x, d| x.logins_per_week = x.logins_per_week.map(|v| v + d),
            |x, d| x.active_days_28d = x.active_days_28d.map(|v| v + d),
            |x, d| x.feature_adoption = x.feature_adoption.map(|v| v + d / 10.0),
            |x, d| x.avg_satisfaction = x.avg_satisfaction.map(|v| (v + d).min(5.0)),
            |x, d| x.last_nps = x.last_nps.map(|v| (v + d).min(10.0)),
            |x, d| x.last_csat = x.last_csat.map(|v| (v + d).min(10.0)),
        ];
        let worse: [Edit; 6] = [
            |x, d| x.tickets_30d = x.tickets_30d.map(|v| v + d),
            |x, d| x.open_tickets = x.open_tickets.map(|v| v + d),
            |x, d| x.late_payments = x.late_payments.map(|v| v + d),
            |x, d| x.failed_payments = x.failed_payments.map(|v| v + d),
            |x, d| x.days_past_due = x.days_past_due.map(|v| v + d),
            |x, d| x.days_since_last_activity = x.days_since_last_activity.map(|v| v + d),
        ];
        for (i, edit) in better.iter().enumerate() {
            let mut y = x;
            edit(&mut y, step);
            let s = rules::health(&y, &cfg).map(|h| h.score);
            prop_assert!(s >= base || (s.is_some() && base.is_some() && s.unwrap() >= base.unwrap() - 1e-9), "better #{i}: {base:?} -> {s:?}");
        }
        for (i, edit) in worse.iter().enumerate() {
            let mut y = x;
            edit(&mut y, step);
            let s = rules::health(&y, &cfg).map(|h| h.score);
            prop_assert!(s.is_none() == base.is_none() && s.unwrap_or(0.0) <= base.unwrap_or(0.0) + 1e-9, "worse #{i}: {base:?} -> {s:?}");
        }
    }
}
