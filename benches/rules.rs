//! Scoring one customer with the playbook rules (criterion).

use churn_features::rules::{score, RuleInputs, RulesConfig};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn customer(i: usize) -> RuleInputs {
    let f = i as f64;
    RuleInputs {
        tenure_days: Some(30.0 + (f * 37.0) % 900.0),
        logins_per_week: Some((f * 0.37) % 7.0),
        active_days_28d: Some((f * 1.3) % 28.0),
        avg_session_minutes: Some(2.0 + (f * 0.7) % 12.0),
        feature_adoption: Some((f * 0.013) % 1.0),
        features_used: Some((f * 0.3) % 20.0),
        ttv_days: if i.is_multiple_of(3) {
            None
        } else {
            Some((f * 3.1) % 90.0)
        },
        value_reached: Some(1.0),
        tickets_30d: Some((f * 0.11) % 6.0),
        open_tickets: Some((f * 0.07) % 3.0),
        avg_satisfaction: if i.is_multiple_of(2) {
            Some(1.0 + (f * 0.3) % 4.0)
        } else {
            None
        },
        late_payments: Some(f64::from(u8::from(i.is_multiple_of(17)))),
        failed_payments: Some(f64::from(u8::from(i.is_multiple_of(41)))),
        days_past_due: Some(0.0),
        days_since_last_activity: Some((f * 0.9) % 40.0),
        last_nps: Some((f * 0.7) % 10.0),
        last_csat: None,
        referrals: None,
        reviews: None,
    }
}

fn bench(c: &mut Criterion) {
    let cfg = RulesConfig::default();
    let customers: Vec<RuleInputs> = (0..1024).map(customer).collect();
    let mut i = 0;
    c.bench_function("rules: score one customer", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(score(black_box(&customers[i]), &cfg))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
