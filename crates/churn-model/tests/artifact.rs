//! A saved and reloaded model predicts bit-identically.

use churn_features::features::FeatureConfig;
use churn_features::labels;
use churn_features::rules::RulesConfig;
use churn_features::Dataset;
use churn_model::artifact::{self, Artifact};
use churn_model::train::{train_over_time, TrainConfig};

#[test]
fn reloaded_artifact_predicts_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = churn_sim::SimConfig {
        customers: 300,
        months: 8,
        seed: 21,
        ..Default::default()
    };
    churn_sim::generate(&cfg, dir.path(), |_, _| {}).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let dates = labels::observation_dates(&ds, 30);
    let ex = labels::examples(&ds, &dates, 30, &FeatureConfig::default(), &|_| {}).unwrap();
    let outcome = train_over_time(
        &ex,
        &TrainConfig {
            folds: 2,
            ..Default::default()
        },
        &RulesConfig::default(),
        &|_, _| {},
    )
    .unwrap();
    let a = Artifact {
        name: "m".into(),
        version: "v1".into(),
        model: outcome.model.clone(),
        features: ex.features.info.clone(),
        rules: RulesConfig::default(),
        horizon_days: 30,
        rules_apply: true,
    };
    let models = tempfile::tempdir().unwrap();
    let saved = artifact::save(models.path(), &a, &[]).unwrap();
    let (loaded, at) = artifact::load(&models.path().join("m")).unwrap();
    assert_eq!(at, saved);
    assert_eq!(loaded, a);
    let rows: Vec<usize> = (0..ex.features.len()).collect();
    let before = a.model.predict_table(&ex.features, &rows).unwrap();
    let after = loaded.model.predict_table(&ex.features, &rows).unwrap();
    assert_eq!(
        before.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
        after.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    assert!(before.iter().all(|p| (0.0..=1.0).contains(p)));
    // Saving the same version again is refused and leaves LATEST alone.
    assert!(artifact::save(models.path(), &a, &[])
        .unwrap_err()
        .to_string()
        .contains("exists already"));
    // A format version from the future is refused by name.
    let mut bytes = artifact::encode(&a);
    bytes[8] = 9;
    let e = artifact::decode(&bytes, std::path::Path::new("model.bin"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("format version 9"), "{e}");
}
