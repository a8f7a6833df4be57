"""churn.spark on a local Spark (local[2]): the same rows and bits as the CLI."""

from __future__ import annotations

import os
import shutil

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest

from conftest import SAMPLE, run_cli
from test_same_as_cli import same_table

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed: the Spark tests did not run")


@pytest.fixture(scope="module")
def spark():
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("no Java runtime (java on PATH or JAVA_HOME): the Spark tests did not run")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("churn-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_scores_are_churn_scores(spark, cli_model, features, tmp_path):
    import churn.spark
    from pyspark.sql import functions as F

    source = tmp_path / "features.parquet"
    pq.write_table(features, source, row_group_size=200)
    out = tmp_path / "scores.parquet"
    run_cli("churn-score", "--model", cli_model, "--input", source, "--output", out, "--quiet")
    # Rows spread over partitions in another order than the file's.
    df = spark.read.parquet(str(source)).orderBy(F.rand(seed=7)).repartition(5)
    scored = churn.spark.score(df, str(cli_model), reasons=3)
    assert scored.columns == pq.read_schema(out).names
    ours = scored.toArrow().sort_by([("customer_id", "ascending")])
    theirs = pq.read_table(out).sort_by([("customer_id", "ascending")])
    same_table(ours, theirs)


def test_a_bad_row_fails_the_job_with_the_engines_message(spark, cli_model, features):
    import churn.spark

    mrr = features.schema.get_field_index("mrr")
    values = ["1"] * features.num_rows
    values[3] = "a lot"
    bad = features.set_column(mrr, "mrr", pa.array(values))
    df = spark.createDataFrame(bad)
    with pytest.raises(Exception, match=r"feature `mrr`: expected a number, found text `a lot`"):
        churn.spark.score(df, str(cli_model)).collect()


@pytest.fixture(scope="module")
def sample_tables(spark):
    """The sample's tables as Spark reads them (CSV as text, Parquet typed), their rows
    shuffled over partitions."""
    from pyspark.sql import functions as F

    out = {}
    for f in sorted(SAMPLE.iterdir()):
        name = f.name.split(".")[0]
        reader = spark.read.option("header", True)
        df = reader.parquet(str(f)) if f.suffix == ".parquet" else reader.csv(str(f))
        out[name] = df.orderBy(F.rand(seed=11)).repartition(3)
    return out


def by_key(table: pa.Table) -> pa.Table:
    return table.sort_by([("customer_id", "ascending"), ("as_of", "ascending")])


@pytest.mark.parametrize("buckets", [1, 3, 16])
def test_spark_features_are_churn_train_features(spark, sample_tables, buckets, tmp_path):
    import churn.spark

    dates = ["2025-03-01", "2025-06-01"]
    expected = []
    for d in dates:
        out = tmp_path / f"features-{d}.parquet"
        run_cli("churn-train", "features", "--data", SAMPLE, "--as-of", d, "--out", out)
        expected.append(pq.read_table(out))
    ours = churn.spark.features(sample_tables, dates, buckets=buckets).toArrow()
    same_table(by_key(ours), by_key(pa.concat_tables(expected)))


def test_spark_examples_are_churn_train_examples_and_samples_are_stable(spark, sample_tables, tmp_path):
    import churn.spark

    out = tmp_path / "examples.parquet"
    run_cli("churn-train", "examples", "--data", SAMPLE, "--out", out)
    expected = by_key(pq.read_table(out))
    # Spark has no unsigned types: the label is a signed byte there.
    label = expected.schema.get_field_index("label")
    expected = expected.set_column(label, expected.schema.field(label).with_type(pa.int8()), expected["label"].cast(pa.int8()))
    same_table(by_key(churn.spark.examples(sample_tables, buckets=4).toArrow()), expected)
    half = by_key(churn.spark.examples(sample_tables, buckets=4, sample=0.5).toArrow())
    again = by_key(churn.spark.examples(sample_tables, buckets=4, sample=0.5).toArrow())
    same_table(half, again)
    customers = set(half["customer_id"].to_pylist())
    assert 0.3 < len(customers) / len(set(expected["customer_id"].to_pylist())) < 0.7
    # Every date of a kept customer, each row as in the whole.
    kept = expected.filter(pa.compute.is_in(expected["customer_id"], value_set=pa.array(sorted(customers))))
    same_table(half, kept)
