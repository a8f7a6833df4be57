//! A saved and reloaded model predicts bit-identically.

use churn_features::features::FeatureConfig;
use churn_features::labels;
use churn_features::rules::RulesConfig;
use churn_features::Dataset;
use churn_model::artifact::{self, Artifact};
use churn_model::model::ModelKind;
use churn_model::train::{train_over_time, TrainConfig};

/// The 30-day examples of every observation date of a simulated base.
fn simulated_examples(customers: u64, months: u32, seed: u64) -> labels::Examples {
    let dir = tempfile::tempdir().unwrap();
    let cfg = churn_sim::SimConfig {
        customers,
        months,
        seed,
        ..Default::default()
    };
    churn_sim::generate(&cfg, dir.path(), |_, _| {}).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let dates = labels::observation_dates(&ds, 30);
    labels::examples(&ds, &dates, 30, &FeatureConfig::default(), &|_| {}).unwrap()
}

/// A small model trained through the product's code, with its examples.
fn trained(kind: ModelKind) -> (Artifact, labels::Examples) {
    let ex = simulated_examples(200, 6, 5);
    let n = ex.features.len();
    let fit: Vec<usize> = (0..n).step_by(2).collect();
    let calib: Vec<usize> = (1..n).step_by(2).collect();
    let model = churn_model::train::fit_candidate(kind, &ex.features, &ex.labels, &fit, &calib, 3)
        .unwrap()
        .model;
    let mut a = Artifact {
        name: "m".into(),
        version: "v".into(),
        model,
        features: ex.features.info.clone(),
        rules: RulesConfig::default(),
        horizon_days: 30,
        rules_apply: true,
        probes: Vec::new(),
        feature_config: Default::default(),
        profile: None,
        survival: None,
    };
    a.record_probes(&ex.features).unwrap();
    (a, ex)
}

/// Rewrites the SHA-256 of a `model.bin` after its payload was changed: what a struct
/// change without a format bump or a trainer bug would produce.
fn rechecksum(bytes: &mut [u8]) {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&bytes[52..]);
    bytes[20..52].copy_from_slice(&digest);
}

#[test]
fn a_model_with_a_valid_checksum_but_flipped_bits_never_scores_garbage() {
    // Flip one bit at a time across the whole payload, fix the checksum, decode: the
    // model is refused, or it loads and scores every row of its data finitely, the same
    // way twice, without panicking.
    for kind in [ModelKind::Logistic, ModelKind::Gbm, ModelKind::Forest] {
        let (a, ex) = trained(kind);
        let good = artifact::encode(&a);
        let rows: Vec<usize> = (0..ex.features.len()).step_by(7).collect();
        let mut refused = 0;
        let mut loaded = 0;
        let step = (good.len() - 52) / 300 + 1;
        for (k, at) in (52..good.len()).step_by(step).enumerate() {
            let mut bytes = good.clone();
            bytes[at] ^= 1 << (k % 8);
            rechecksum(&mut bytes);
            let decoded = std::panic::catch_unwind(|| {
                artifact::decode(&bytes, std::path::Path::new("model.bin"))
            })
            .unwrap_or_else(|_| {
                panic!("decoding panicked with bit {} of byte {at} flipped", k % 8)
            });
            match decoded {
                Err(_) => refused += 1,
                Ok(m) => {
                    loaded += 1;
                    let scored =
                        std::panic::catch_unwind(|| m.model.predict_table(&ex.features, &rows))
                            .unwrap_or_else(|_| panic!("a loaded model panicked (byte {at})"));
                    if let Ok(p) = scored {
                        assert!(
                            p.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p)),
                            "byte {at}: {p:?}"
                        );
                    }
                }
            }
        }
        assert!(
            refused > 0 && refused + loaded > 250,
            "{kind:?}: {refused} refused, {loaded} loaded"
        );
    }
}

#[test]
fn an_inconsistent_model_is_refused_by_name() {
    let (a, _) = trained(ModelKind::Logistic);
    let path = std::path::Path::new("model.bin");
    let refuse = |b: &Artifact| -> String {
        let mut bytes = artifact::encode(b);
        rechecksum(&mut bytes);
        artifact::decode(&bytes, path).unwrap_err().to_string()
    };
    let mut b = a.clone();
    if let churn_model::model::Estimator::Logistic(m) = &mut b.model.estimator {
        m.weights.pop();
    }
    let e = refuse(&b);
    assert!(e.contains("inconsistent") && e.contains("weights"), "{e}");
    let mut b = a.clone();
    b.probes[3].probability += 0.01;
    let e = refuse(&b);
    assert!(e.contains("probe row 3"), "{e}");
    let mut b = a.clone();
    b.model.threshold = f64::NAN;
    assert!(refuse(&b).contains("threshold"));
    // Saving refuses what loading would.
    let models = tempfile::tempdir().unwrap();
    let e = artifact::save(models.path(), &b, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("threshold"), "{e}");
    assert!(!models.path().join("m").join("LATEST").exists());
}

#[test]
fn format_1_files_still_load_without_ranges_or_probes() {
    #[derive(serde::Serialize)]
    struct PreprocessorV1<'a> {
        transforms: &'a [churn_model::preprocess::Transform],
        output_names: &'a [String],
        output_source: &'a [usize],
    }
    #[derive(serde::Serialize)]
    struct ModelV1<'a> {
        preprocessor: PreprocessorV1<'a>,
        estimator: &'a churn_model::model::Estimator,
        calibrator: &'a churn_model::calibrate::Calibrator,
        threshold: f64,
    }
    #[derive(serde::Serialize)]
    struct ArtifactV1<'a> {
        name: &'a str,
        version: &'a str,
        model: ModelV1<'a>,
        features: &'a [churn_features::features::FeatureInfo],
        rules: &'a RulesConfig,
        horizon_days: i32,
        rules_apply: bool,
    }
    let (a, ex) = trained(ModelKind::Gbm);
    let old = ArtifactV1 {
        name: &a.name,
        version: &a.version,
        model: ModelV1 {
            preprocessor: PreprocessorV1 {
                transforms: &a.model.preprocessor.transforms,
                output_names: &a.model.preprocessor.output_names,
                output_source: &a.model.preprocessor.output_source,
            },
            estimator: &a.model.estimator,
            calibrator: &a.model.calibrator,
            threshold: a.model.threshold,
        },
        features: &a.features,
        rules: &a.rules,
        horizon_days: a.horizon_days,
        rules_apply: a.rules_apply,
    };
    let payload = bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap();
    let mut bytes = b"CHURNMDL".to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&[0; 32]);
    bytes.extend_from_slice(&payload);
    rechecksum(&mut bytes);
    let loaded = artifact::decode(&bytes, std::path::Path::new("model.bin")).unwrap();
    assert!(loaded.probes.is_empty() && loaded.model.input_ranges.is_empty());
    // Rows inside the training range score exactly as before.
    let rows: Vec<usize> = (0..ex.features.len()).collect();
    assert_eq!(
        loaded.model.predict_table(&ex.features, &rows).unwrap(),
        a.model.predict_table(&ex.features, &rows).unwrap()
    );
}

#[test]
fn format_5_and_6_files_load_with_a_constant_effect_and_no_extrapolation_rule() {
    use churn_model::survival::{ClvSettings, SurvivalModel, Target};
    let (mut a, ex) = trained(ModelKind::Logistic);
    let rows: Vec<usize> = (0..ex.features.len()).collect();
    let targets: Vec<Target> = ex
        .labels
        .iter()
        .map(|&y| Target {
            event_interval: (y == 1).then_some(1),
            observed_intervals: 4,
        })
        .collect();
    let mut survival = SurvivalModel::fit(
        &ex.features,
        &rows,
        &targets,
        24,
        ClvSettings::default(),
        1e-3,
        true,
    )
    .unwrap();
    assert_eq!(survival.follow_up, 4);
    survival.score_scale = 0.75;
    survival.score_decay = -0.25;
    survival.beyond_score = 0.5;
    a.survival = Some(survival);
    let models = tempfile::tempdir().unwrap();
    let version = artifact::save(models.path(), &a, &[]).unwrap();
    let (now, _) = artifact::load(&version).unwrap();
    assert_eq!(now.survival, a.survival);
    let bytes = std::fs::read(version.join("model.bin")).unwrap();
    // An older file is this one without the survival model's last fields, with its
    // format version and length.
    let older = |mut bytes: Vec<u8>, cut: usize, format: u32| -> Vec<u8> {
        bytes.truncate(bytes.len() - cut);
        bytes[8..12].copy_from_slice(&format.to_le_bytes());
        let len = (bytes.len() - 52) as u64;
        bytes[12..20].copy_from_slice(&len.to_le_bytes());
        rechecksum(&mut bytes);
        bytes
    };
    // Format 6: without the follow-up (a one-byte varint, 4) and the survivors' score.
    assert_eq!(bytes[bytes.len() - 9], 4);
    assert_eq!(bytes[bytes.len() - 8..], 0.5f64.to_le_bytes());
    let v6 = artifact::decode(
        &older(bytes.clone(), 9, 6),
        std::path::Path::new("model.bin"),
    )
    .unwrap();
    let mut expected = a.survival.clone().unwrap();
    (expected.follow_up, expected.beyond_score) = (0, 0.0);
    assert_eq!(v6.survival, Some(expected.clone()));
    // Format 5: also without the effect's scale and change (two f64s).
    assert_eq!(
        bytes[bytes.len() - 25..bytes.len() - 17],
        0.75f64.to_le_bytes()
    );
    let v5 = artifact::decode(&older(bytes, 25, 5), std::path::Path::new("model.bin")).unwrap();
    (expected.score_scale, expected.score_decay) = (1.0, 0.0);
    assert_eq!(v5.survival, Some(expected));
    assert_eq!(v5.model, a.model);
    assert_eq!(v5.features, a.features);
}

#[test]
fn a_fifo_or_an_oversized_model_file_is_refused_without_blocking() {
    let (a, _) = trained(ModelKind::Logistic);
    let models = tempfile::tempdir().unwrap();
    let version = artifact::save(models.path(), &a, &[]).unwrap();
    let bin = version.join("model.bin");
    let size = std::fs::metadata(&bin).unwrap().len();
    let e = artifact::load_at_most(&version, size - 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than the"), "{e}");
    assert!(artifact::load_at_most(&version, size).is_ok());
    #[cfg(unix)]
    {
        std::fs::remove_file(&bin).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&bin).status();
        if made.is_ok_and(|s| s.success()) {
            // No writer ever opens the FIFO: a blocking open would hang this test.
            let e = artifact::load(&version).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        } else {
            eprintln!("SKIPPED: mkfifo is not available; the FIFO case is not checked");
        }
    }
}

#[test]
fn reloaded_artifact_predicts_bit_identically() {
    let ex = simulated_examples(300, 8, 21);
    let outcome = train_over_time(
        &ex,
        &TrainConfig {
            folds: Some(2),
            ..Default::default()
        },
        &RulesConfig::default(),
        &|_, _| {},
    )
    .unwrap();
    let mut a = Artifact {
        name: "m".into(),
        version: "v1".into(),
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
    a.record_probes(&ex.features).unwrap();
    assert_eq!(a.probes.len(), 8);
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

#[test]
fn the_feature_settings_travel_with_the_model_and_bad_ones_are_refused() {
    let (mut a, _) = trained(ModelKind::Logistic);
    a.feature_config.usage_window_days = 14;
    let bytes = artifact::encode(&a);
    let back = artifact::decode(&bytes, std::path::Path::new("model.bin")).unwrap();
    assert_eq!(back.feature_config, a.feature_config);
    a.feature_config.usage_window_days = 0;
    let e = artifact::decode(&artifact::encode(&a), std::path::Path::new("model.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("feature settings") && e.contains("usage_window_days"),
        "{e}"
    );
}
