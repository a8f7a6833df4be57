"""Bad input raises the right exception, naming the place, as the CLI does."""

from __future__ import annotations

import pyarrow as pa
import pytest

import churn
from conftest import SAMPLE


def test_the_exceptions_form_one_hierarchy():
    for e in (churn.DataError, churn.ModelError, churn.ConfigError, churn.TrainError):
        assert issubclass(e, churn.ChurnError)
    assert issubclass(churn.ChurnError, Exception)


def subscriptions(mrr):
    return pa.table(
        {
            "customer_id": ["a", "b", "c"],
            "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "end_date": [None, None, None],
            "mrr": mrr,
            "plan": ["pro", "pro", "basic"],
        }
    )


def test_a_bad_value_in_a_table_names_table_row_and_column():
    with pytest.raises(churn.DataError, match=r"subscriptions table, row 3, column `mrr`: expected a non-negative number, found `-5`"):
        churn.Dataset.from_tables(subscriptions([10.0, 20.0, -5.0]))
    with pytest.raises(churn.DataError, match=r"subscriptions table, row 2, column `mrr`: expected a number"):
        churn.Dataset.from_tables(subscriptions(["10", "lots", "3"]))
    with pytest.raises(churn.DataError, match=r"missing required column `plan`"):
        churn.Dataset.from_tables(subscriptions([1.0, 2.0, 3.0]).drop_columns(["plan"]))
    ok = churn.Dataset.from_tables(subscriptions([1.0, 2.0, 3.0]))
    assert ok.customers == 3


def test_a_bad_feature_row_names_row_and_column(model, features):
    bad = features.set_column(
        features.schema.get_field_index("mrr"),
        "mrr",
        pa.array(["12"] * 4 + ["twelve"] + ["12"] * (features.num_rows - 5)),
    )
    with pytest.raises(churn.DataError, match=r"row 5, customer `[^`]+`: .*mrr"):
        model.score(bad)
    with pytest.raises(churn.DataError, match=r"column\(s\) colour are not features of model churn"):
        model.score(features.append_column("colour", pa.array(["red"] * features.num_rows)))
    with pytest.raises(TypeError, match="expected a table"):
        model.score([1, 2, 3])
    with pytest.raises(ValueError, match="order `lifetime`: expected revenue_at_risk, clv_at_risk or probability"):
        model.score(features, top=5, order="lifetime")


def test_a_bad_prediction_request_names_the_field(model):
    with pytest.raises(churn.DataError, match=r"`mrr` expects a number or null, found the string \"a lot\" \(at customers\[0\]\.features\.mrr\)"):
        model.predict({"mrr": "a lot"})
    with pytest.raises(churn.DataError, match=r"`tenure` is not a feature of model churn"):
        model.predict({"tenure": 3})
    with pytest.raises(churn.DataError, match="not a finite number"):
        model.predict({"mrr": float("inf")})


def test_missing_or_broken_models_and_files(tmp_path):
    with pytest.raises(churn.ModelError, match=str(tmp_path / "nothing")):
        churn.Model.load(tmp_path / "nothing")
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(churn.ModelError):
        churn.Model.load(tmp_path / "model.bin")
    with pytest.raises(churn.DataError, match="data directory not found"):
        churn.Dataset.open(tmp_path / "nowhere")
    rules = tmp_path / "rules.toml"
    rules.write_text("[health]\nweights = 3\n")
    with pytest.raises(churn.ConfigError, match="rules"):
        churn.rules.score(pa.table({"customer_id": ["a"]}), rules=rules)


def test_bad_arguments_are_value_errors(tmp_path):
    ds = churn.Dataset.open(SAMPLE)
    with pytest.raises(ValueError, match=r"as_of `June` is not a date"):
        ds.features(as_of="June")
    with pytest.raises(ValueError, match="unknown model `svm`"):
        churn.train(ds, out=tmp_path, models=["svm"])
    with pytest.raises(churn.DataError, match="horizon_days"):
        ds.examples(horizon_days=0)


def test_too_little_history_is_a_training_error(tmp_path):
    ds = churn.Dataset.from_tables(subscriptions([1.0, 2.0, 3.0]))
    with pytest.raises(churn.TrainError, match=r"tables in memory: \d observation date\(s\) with a full 30-day horizon; the backtest needs at least 3"):
        churn.train(ds, out=tmp_path)
