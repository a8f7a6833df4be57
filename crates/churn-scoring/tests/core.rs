//! The scoring core agrees with the model and the rules it wraps, row by row.

use churn_features::rules::{self, RuleInputs};
use churn_model::model::ModelKind;
use churn_model::preprocess::{Note, Transform};
use churn_scoring::{table_cell, Cell, Options, RiskBand, ScoreError, Scored, Scorer, Scratch};

#[test]
fn scores_equal_the_model_and_the_rules_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 300, 5);
    for kind in [ModelKind::Logistic, ModelKind::Gbm] {
        let scorer = Scorer::new(churn_testkit::train(&fx, kind, "m", "v1"));
        let (_, table) = churn_testkit::latest_rows(&fx);
        let rows: Vec<usize> = (0..table.len()).collect();
        let expected = scorer
            .artifact()
            .model
            .predict_table(&table, &rows)
            .unwrap();
        let columns = scorer.table_columns(&table);
        let mut scratch = Scratch::default();
        let mut bands = std::collections::HashSet::new();
        for r in rows {
            let s = scorer
                .score(
                    |p| table_cell(columns[p], r),
                    Options::default(),
                    &mut scratch,
                )
                .unwrap();
            assert_eq!(
                s.model.probability.to_bits(),
                expected[r].to_bits(),
                "row {r}"
            );
            assert_eq!(
                s.rules.unwrap(),
                rules::score(&RuleInputs::from_table(&table, r), &scorer.artifact().rules)
            );
            let mrr = table.number("mrr", r).unwrap();
            assert_eq!(s.model.revenue_at_risk, Some(expected[r] * mrr));
            assert!(s.model.reasons.len() <= 5);
            assert!(s
                .model
                .reasons
                .windows(2)
                .all(|w| w[0].contribution >= w[1].contribution));
            assert!(s
                .model
                .reasons
                .iter()
                .all(|c| c.contribution > 0.0 && scorer.is_model_input(c.feature)));
            bands.insert(s.model.risk_band);
        }
        assert!(bands.len() >= 2, "{kind:?}: one risk band for all rows");
    }
}

#[test]
fn an_empty_row_is_imputed_with_warnings_and_text_in_a_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 200, 9);
    let scorer = Scorer::new(churn_testkit::train(&fx, ModelKind::Logistic, "m", "v1"));
    let mut scratch = Scratch::default();
    let s = scorer
        .score(
            |_| Cell::Missing,
            Options {
                explain: false,
                top: 3,
                warnings: true,
                survival: true,
            },
            &mut scratch,
        )
        .unwrap();
    assert!(s.model.reasons.is_empty());
    assert_eq!(s.model.revenue_at_risk, None);
    let imputed = s
        .model
        .warnings
        .iter()
        .filter(|w| w.note == Note::Imputed)
        .count();
    let numeric_inputs = scorer
        .artifact()
        .model
        .preprocessor
        .transforms
        .iter()
        .filter(|t| matches!(t, churn_model::preprocess::Transform::Numeric { .. }))
        .count();
    assert_eq!(imputed, numeric_inputs);
    let w = scorer.describe_warning(&s.model.warnings[0]);
    assert!(w.contains("imputed with the training median"), "{w}");

    let mrr = scorer.position("mrr").unwrap();
    let e = scorer
        .score(
            |p| {
                if p == mrr {
                    Cell::Text("lots")
                } else {
                    Cell::Missing
                }
            },
            Options::default(),
            &mut scratch,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "feature `mrr`: expected a number, found text `lots`"
    );

    let plan = scorer.position("plan").unwrap();
    let s = scorer
        .score(
            |p| {
                if p == plan {
                    Cell::Text("platinum-xl")
                } else {
                    Cell::Missing
                }
            },
            Options::default(),
            &mut scratch,
        )
        .unwrap();
    assert!(s
        .model
        .warnings
        .iter()
        .any(|w| w.feature == plan && w.note == Note::UnseenCategory));
    assert!(RiskBand::ALL.contains(&s.model.risk_band));
}

#[test]
fn a_model_of_a_plain_table_scores_without_rules() {
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 200, 13);
    let mut a = churn_testkit::train(&fx, ModelKind::Logistic, "plain", "v1");
    a.rules_apply = false;
    let scorer = Scorer::new(a);
    let (_, table) = churn_testkit::latest_rows(&fx);
    let columns = scorer.table_columns(&table);
    let s = scorer
        .score(
            |p| table_cell(columns[p], 0),
            Options::default(),
            &mut Scratch::default(),
        )
        .unwrap();
    assert_eq!(s.rules, None);
    assert!(!scorer.rules_apply());
    assert!((0.0..=1.0).contains(&s.model.probability));
}

#[test]
fn no_reason_names_an_input_the_row_did_not_give() {
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 300, 5);
    let (_, table) = churn_testkit::latest_rows(&fx);
    let options = Options {
        explain: true,
        top: 50,
        warnings: false,
        survival: true,
    };
    for kind in [ModelKind::Logistic, ModelKind::Gbm] {
        let scorer = Scorer::new(churn_testkit::train(&fx, kind, "m", "v1"));
        let columns = scorer.table_columns(&table);
        let mut scratch = Scratch::default();
        let mut reasons = 0;
        for r in 0..table.len() {
            // Every third input left out: numbers are imputed, categories absent.
            let left_out = |p: usize| (p + r).is_multiple_of(3);
            let s = scorer
                .score(
                    |p| {
                        if left_out(p) {
                            Cell::Missing
                        } else {
                            table_cell(columns[p], r)
                        }
                    },
                    options,
                    &mut scratch,
                )
                .unwrap();
            for reason in &s.model.reasons {
                assert!(
                    !left_out(reason.feature),
                    "{kind:?} row {r}: `{}` was not given but is a reason",
                    scorer.schema()[reason.feature].name
                );
            }
            reasons += s.model.reasons.len();
        }
        assert!(reasons > table.len(), "{kind:?}: reasons were computed");
    }
}

#[test]
fn the_survival_curve_scored_in_a_block_is_the_curve_from_the_cells() {
    // Three paths, one answer (the curve of the row's cells): a logistic model's
    // survival model reads the inputs as the classifier does, so the curve comes from
    // what the classifier read; a gbm's classifier logs no input, so the survival model
    // logs what the classifier read; and a survival model that does not log an input
    // the classifier logs preprocesses the block itself.
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 300, 5);
    let (_, table) = churn_testkit::latest_rows(&fx);
    for (kind, own) in [
        (ModelKind::Logistic, false),
        (ModelKind::Gbm, false),
        (ModelKind::Logistic, true),
    ] {
        let mut artifact = churn_testkit::train(&fx, kind, "m", "v1");
        if own {
            // Its last logged input read as it comes: the model's weights then fit
            // another curve, but the paths must still agree on it.
            let logs = &mut artifact.survival.as_mut().unwrap().preprocessor.log1p;
            let last = logs.iter().rposition(|&l| l).expect("a logged input");
            logs[last] = false;
        }
        let scorer = Scorer::new(artifact);
        let artifact = scorer.artifact();
        let survival = artifact.survival.as_ref().expect("a survival model");
        let prep = &survival.preprocessor;
        let logs_on_top = prep
            .logs_after(&artifact.model.preprocessor)
            .map(|logs| logs.contains(&true));
        let expected = match (kind, own) {
            (_, true) => None,
            (ModelKind::Logistic, false) => Some(false),
            _ => Some(true),
        };
        assert_eq!(logs_on_top, expected, "{kind:?} {own}: the path under test");
        let kind = format!("{kind:?}{}", if own { " (own inputs)" } else { "" });
        let input = |logged: bool, numeric: bool| {
            prep.transforms
                .iter()
                .enumerate()
                .find(|(i, t)| {
                    matches!(t, Transform::Numeric { .. }) == numeric
                        && (!numeric || prep.log1p.get(*i) == Some(&logged))
                })
                .map(|(_, t)| scorer.position(t.name()).unwrap())
                .unwrap()
        };
        let (large, missing, unseen) = (input(true, true), input(false, true), input(false, false));
        let columns = scorer.table_columns(&table);
        let tenure = scorer.position("tenure_days").unwrap();
        let options = Options {
            explain: true,
            top: 3,
            warnings: true,
            survival: true,
        };
        // Some rows with a number far outside training (a logistic model clips it, the
        // survival model does not), a number missing, a category never seen.
        let cell = |r: usize, p: usize| match p {
            p if p == large && r.is_multiple_of(5) => Cell::Number(1e9),
            p if p == missing && r.is_multiple_of(7) => Cell::Missing,
            p if p == unseen && r.is_multiple_of(3) => Cell::Text("no such level"),
            p => table_cell(columns[p], r),
        };
        let (mut clips, mut compared) = (0, 0);
        for (r, s) in scored_in_blocks(&scorer, table.len(), cell, options)
            .into_iter()
            .enumerate()
        {
            let s = s.unwrap();
            clips += s
                .model
                .warnings
                .iter()
                .filter(|w| w.note == Note::Clipped)
                .count();
            let curve = survival
                .curve(
                    |_, name| cell(r, scorer.position(name).unwrap()),
                    cell(r, tenure),
                    &mut Vec::new(),
                )
                .unwrap();
            let scored = s.model.survival.expect("a survival score");
            assert_eq!(
                scored.expected_lifetime_months.to_bits(),
                curve.expected_lifetime_months().to_bits(),
                "{kind} row {r}"
            );
            for (k, v) in scored.points() {
                assert_eq!(
                    v.to_bits(),
                    curve.survival[k as usize - 1].to_bits(),
                    "{kind} row {r}, S({k})"
                );
            }
            compared += 1;
        }
        if kind.starts_with("Logistic") {
            assert!(clips > 0, "no value was clipped: the test lost its edge");
        }
        assert_eq!(compared, table.len());
        assert!(compared > 100);
    }
}

#[test]
fn a_block_of_rows_scores_as_each_row_alone_does() {
    // Batch scoring hands the scorer a tile of rows at once (a tree model walks a group
    // of trees for every row before the next): every row's answer, survival and reasons
    // included, is the one it gets alone, and a row that cannot be scored fails alone.
    let dir = tempfile::tempdir().unwrap();
    let fx = churn_testkit::simulate(dir.path(), 300, 5);
    let (_, table) = churn_testkit::latest_rows(&fx);
    for kind in [ModelKind::Gbm, ModelKind::Logistic, ModelKind::Blend] {
        let scorer = Scorer::new(churn_testkit::train(&fx, kind, "m", "v1"));
        let columns = scorer.table_columns(&table);
        let prep = &scorer.artifact().model.preprocessor;
        let numeric = prep
            .transforms
            .iter()
            .find(|t| matches!(t, Transform::Numeric { .. }))
            .map(|t| scorer.position(t.name()).unwrap())
            .unwrap();
        // Some rows with a number that is not one (an error), some with it missing.
        let cell = |r: usize, p: usize| match p {
            p if p == numeric && r % 11 == 4 => Cell::Text("not a number"),
            p if p == numeric && r.is_multiple_of(7) => Cell::Missing,
            p => table_cell(columns[p], r),
        };
        let options = Options {
            top: 3,
            ..Options::default()
        };
        let (mut failed, mut block_rows) = (0, 0);
        for (r, s) in scored_in_blocks(&scorer, table.len(), cell, options)
            .into_iter()
            .enumerate()
        {
            let alone = scorer.score(|p| cell(r, p), options, &mut Scratch::default());
            assert_eq!(s, alone, "{kind:?} row {r}");
            failed += usize::from(s.is_err());
            block_rows += 1;
        }
        assert_eq!(block_rows, table.len());
        assert_eq!(failed, (0..table.len()).filter(|r| r % 11 == 4).count());
        // `score_batch` (tiles in parallel): the same answers, in row order.
        let batch = scorer.score_batch(table.len(), cell, options);
        assert_eq!(batch.len(), table.len());
        for (r, s) in batch.into_iter().enumerate() {
            let alone = scorer.score(|p| cell(r, p), options, &mut Scratch::default());
            assert_eq!(s, alone, "{kind:?} row {r} of score_batch");
        }
    }
}

/// Scores rows `0..n` through [`Scorer::score_rows`] in blocks of 37 (the last one
/// shorter), one scratch reused from block to block: every row's result, in row order.
fn scored_in_blocks<'a>(
    scorer: &Scorer,
    n: usize,
    cell: impl Fn(usize, usize) -> Cell<'a>,
    options: Options,
) -> Vec<Result<Scored, ScoreError>> {
    let mut scratch = Scratch::default();
    let mut all = Vec::with_capacity(n);
    for start in (0..n).step_by(37) {
        let rows = 37.min(n - start);
        scorer.score_rows(
            rows,
            |j, p| cell(start + j, p),
            options,
            &mut scratch,
            |j, s| {
                assert_eq!(start + j, all.len(), "rows heard in order");
                all.push(s);
            },
        );
        assert_eq!(all.len(), start + rows, "every row of the block heard");
    }
    all
}
