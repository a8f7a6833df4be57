//! The model-based CLV of the KPI page against the closed form: a survival model with
//! one constant hazard `h` for everyone values each customer at exactly `MRR / h`.

use churn_features::Dataset;
use churn_kpis::clv::{model_clv, ClvError};
use churn_kpis::{summary, KpiOptions};
use churn_scoring::Scorer;

#[test]
fn a_constant_hazard_values_every_group_at_its_arpa_over_the_hazard() {
    let st = churn_testkit::SavedModel::new();
    let (mut artifact, _) = churn_model::artifact::load(&st.model).unwrap();
    let ds = Dataset::open(&st.fx.data).unwrap();
    let opts = KpiOptions::default();
    let h: f64 = 0.04;
    let survival = artifact
        .survival
        .as_mut()
        .expect("trained on a data directory");
    // No feature, baseline or tenure effect, in the data's months or past them (where
    // every customer counts as an average survivor, whose score is then 0 too).
    survival.weights.iter_mut().for_each(|w| *w = 0.0);
    survival.baseline.iter_mut().for_each(|b| *b = 0.0);
    survival.tenure_weight = 0.0;
    survival.beyond_score = 0.0;
    survival.intercept = (h / (1.0 - h)).ln();
    let v = model_clv(&ds, opts, &Scorer::new(artifact.clone()), Some(4000.0)).unwrap();
    let close =
        |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-9 * b.abs(), "{what}: {a} vs {b}");
    assert!(v.base.customers > 100 && v.not_valued == 0, "{v:?}");
    for g in v
        .by_cohort
        .iter()
        .chain(&v.by_segment)
        .chain(&v.by_plan)
        .chain([&v.base])
    {
        close(g.mean_clv, g.arpa / h, &g.group);
        // sum_{k>=0} (1 - h)^k - 1/2.
        close(g.mean_lifetime_months, 1.0 / h - 0.5, &g.group);
        if let (Some(churn), Some(formula)) = (g.monthly_churn_pct, g.formula_clv) {
            close(formula, g.arpa / (churn / 100.0), &g.group);
        }
    }
    // Each grouping covers every valued customer once, and shares add up.
    for groups in [&v.by_cohort, &v.by_segment, &v.by_plan] {
        let n: u64 = groups.iter().map(|g| g.customers).sum();
        assert_eq!(n, v.base.customers);
        let share: f64 = groups.iter().map(|g| g.share_of_value_pct).sum();
        close(share, 100.0, "shares");
    }
    // The base's churn is the headline's; segments have no history of their own.
    close(
        v.base.monthly_churn_pct.unwrap(),
        summary(&ds, opts).monthly_churn_pct,
        "monthly churn",
    );
    assert!(v.by_segment.iter().all(|g| g.formula_clv.is_none()));
    assert_eq!(v.goal, Some(4000.0));

    // A model without a survival curve is named, not valued at zero.
    artifact.survival = None;
    let e = model_clv(&ds, opts, &Scorer::new(artifact), None).unwrap_err();
    assert!(matches!(e, ClvError::NoSurvivalModel(_)));
    assert!(e.to_string().contains("has no survival model"), "{e}");
}
