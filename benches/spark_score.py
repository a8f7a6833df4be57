"""Scoring on a local Spark (local[2]): `churn.spark.score` against `churn-score` on the
same Parquet file (the Spark overhead, as a ratio) and against the peer a Databricks
user has today, an MLflow `spark_udf`-style pandas UDF calling scikit-learn's
`predict_proba` (the pipeline of `benches/python_score.py`'s peer, fitted on 200,000
rows and broadcast in the UDF's closure). Every job reads the Parquet file and writes
its output as Parquet; each is timed end to end, median of `--runs`.

    pip install ./crates/churn-py pyspark scikit-learn pandas
    cargo build --release -p churn-score
    python benches/spark_score.py --rows 10000000 --runs 3
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile

import pandas as pd
import pyarrow.parquet as pq

import churn
import churn.spark

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from bench_common import fit_peer, median_of  # noqa: E402
from python_score import cycled  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--batch", type=int, default=10_000, help="spark.sql.execution.arrow.maxRecordsPerBatch")
    ap.add_argument("--skip-peers", action="store_true", help="time churn.spark.score only")
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="churn-spark-bench-"))
    ds = churn.Dataset.open("data/sample")
    run = churn.train(ds, out=work / "models", models=["logistic"], search="none")
    path = work / "features.parquet"
    pq.write_table(cycled(ds.features(as_of="2025-06-01"), a.rows), path, compression="zstd", row_group_size=1 << 20)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "8g")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(a.batch))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def ours():
        df = spark.read.parquet(str(path))
        churn.spark.score(df, run.path, reasons=3).write.mode("overwrite").parquet(str(work / "spark_out"))

    def cli():
        subprocess.run(
            [f"{a.bin}/churn-score", "--model", run.path, "--input", str(path), "--output", str(work / "cli.parquet"), "--quiet"],
            check=True,
            capture_output=True,
        )

    # The peer: scikit-learn in a pandas UDF, as mlflow.pyfunc.spark_udf runs a model.
    sample = pq.read_table(path).slice(0, 200_000).to_pandas()
    model, features = fit_peer(sample)
    del sample

    @F.pandas_udf("double")
    def predict(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(model.predict_proba(frame[features])[:, 1])

    def peer():
        df = spark.read.parquet(str(path))
        df.select("customer_id", predict(F.struct(*features)).alias("churn_probability")).write.mode(
            "overwrite"
        ).parquet(str(work / "peer_out"))

    jobs = [("churn-score (one process)", cli), (f"churn.spark.score, local[2], {a.batch}-row batches", ours), ("pandas UDF + scikit-learn, local[2]", peer)]
    for name, call in jobs[1:2] if a.skip_peers else jobs:
        median, times = median_of(a.runs, call)
        print(f"{a.rows:,} rows, {name}: {median:.2f} s ({', '.join(f'{t:.2f}' for t in times)})", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
