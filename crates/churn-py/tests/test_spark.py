"""churn.spark on a local Spark (local[2]): the same rows and bits as the CLI."""

from __future__ import annotations

import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
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
