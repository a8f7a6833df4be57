//! The training report says so when the rule-based health score ranks churners as well
//! as the model; the files a training run writes read back into their types.

use churn_features::features::FeatureConfig;
use churn_features::labels;
use churn_features::rules::RulesConfig;
use churn_features::Dataset;
use churn_model::artifact::Artifact;
use churn_model::card::{ModelCard, TrainingData};
use churn_model::report::{self, ReportContext};
use churn_model::train::{train_over_time, ReportHeadline, Search, TrainConfig};

#[test]
fn the_report_notes_when_the_rules_rank_as_well_as_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = churn_sim::SimConfig {
        customers: 200,
        months: 6,
        seed: 11,
        ..Default::default()
    };
    churn_sim::generate(&cfg, dir.path(), |_, _| {}).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let dates = labels::observation_dates(&ds, 30);
    let ex = labels::examples(&ds, &dates, 30, &FeatureConfig::default(), &|_| {}).unwrap();
    let mut outcome = train_over_time(
        &ex,
        &TrainConfig {
            search: Search::None,
            folds: Some(2),
            ..Default::default()
        },
        &RulesConfig::default(),
        &|_, _| {},
    )
    .unwrap();
    let ctx = ReportContext {
        name: "m",
        version: "v",
        source: "simulated",
        rows: ex.labels.len(),
        positives: ex.labels.iter().filter(|&&l| l == 1).count(),
        features: ex.features.info.len(),
        horizon_days: 30,
        created: "2026-01-01T00:00:00Z",
    };
    // The files the trainer writes read back into the types the server and `evaluate`
    // use: the report's headline and the card's training data.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("report.json"),
        serde_json::to_vec_pretty(&outcome).unwrap(),
    )
    .unwrap();
    let headline = ReportHeadline::read(dir.path()).unwrap();
    assert_eq!(headline.chosen, outcome.chosen);
    assert_eq!(headline.validation, outcome.validation);
    assert_eq!(headline.overall, outcome.overall);
    let artifact = Artifact {
        name: "m".into(),
        version: "v".into(),
        model: outcome.model.clone(),
        features: ex.features.info.clone(),
        rules: RulesConfig::default(),
        horizon_days: 30,
        rules_apply: true,
        probes: Vec::new(),
        feature_config: Default::default(),
        profile: None,
        survival: None,
    };
    let data = TrainingData {
        last_as_of: Some("2024-06-01".into()),
        labels_until: Some("2024-07-01".into()),
        source: "simulated".into(),
        sha256: "0".repeat(64),
        rows: ex.labels.len(),
        positives: ctx.positives,
        final_fit_rows: outcome.final_fit_rows,
        final_calibration_rows: outcome.final_calibration_rows,
    };
    let card = ModelCard::new(
        &artifact,
        &outcome,
        "2026-01-01T00:00:00Z",
        42,
        data.clone(),
    );
    std::fs::write(
        dir.path().join(churn_model::card::FILE),
        serde_json::to_vec_pretty(&card).unwrap(),
    )
    .unwrap();
    assert_eq!(churn_model::card::training_data(dir.path()), Some(data));
    let json: serde_json::Value = serde_json::to_value(&card).unwrap();
    assert_eq!(
        json["model_kind"],
        serde_json::to_value(outcome.chosen).unwrap()
    );
    assert_eq!(
        json["format_version"],
        churn_model::artifact::FORMAT_VERSION
    );

    let model_auc = outcome.overall.roc_auc.unwrap();
    let note = "The rule-based health score ranks churners as well as or better than the model";
    // The health score just below the model: no note.
    outcome.rules_health.as_mut().unwrap().roc_auc = Some(model_auc - 0.001);
    assert_eq!(outcome.rules_rank_as_well(), None);
    assert!(!report::html(&outcome, None, &ctx).contains(note));
    // Level with it: the note, with the figures and how many churners decided it.
    outcome.rules_health.as_mut().unwrap().roc_auc = Some(model_auc);
    assert_eq!(outcome.rules_rank_as_well(), Some((model_auc, model_auc)));
    let html = report::html(&outcome, None, &ctx);
    assert!(html.contains(note), "no note");
    // Every chart labelled and titled, every figure formatted, nothing fetched; and the
    // page shows every section, whatever a run left empty.
    assert_eq!(churn_report::audit(&html), Vec::<String>::new());
    for heading in [
        "Curves (held-out rows)",
        "Model vs rules",
        "Backtest per fold",
        "Predicted vs actual churn by signup cohort",
        "Feature importance",
        "Data",
    ] {
        assert!(html.contains(&format!("<h2>{heading}")), "no {heading}");
    }
    assert_eq!(
        html.matches("<svg").count(),
        7,
        "4 curves, histogram, cohorts, importance"
    );
    assert!(html.contains(&format!(
        "{} churners decided it",
        outcome.overall.positives
    )));
}
