"""Features of a simulated customer base through `churn.spark.features` on a local
Spark (local[2]) against `churn-train features` on the same directory, one as-of date,
medians of `--runs`, one sitting. The Spark job reads the Parquet tables, buckets and
shuffles them, runs both passes and writes the features as Parquet.

    churn-train generate --out /tmp/big1m --customers 1000000 --months 2 --format parquet
    pip install ./crates/churn-py pyspark
    python benches/spark_features.py /tmp/big1m --as-of 2024-03-01 --runs 1
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import subprocess
import tempfile

import churn.spark

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from bench_common import median_of  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--buckets", type=int, default=None)
    ap.add_argument("--bin", default="target/release")
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="churn-spark-features-"))

    def cli():
        subprocess.run(
            [f"{a.bin}/churn-train", "features", "--data", a.data, "--as-of", a.as_of, "--out", str(work / "cli.parquet")],
            check=True,
            capture_output=True,
        )

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "12g")
        .config("spark.sql.shuffle.partitions", "64")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def ours():
        tables = {f.name.split(".")[0]: spark.read.parquet(str(f)) for f in pathlib.Path(a.data).glob("*.parquet")}
        churn.spark.features(tables, a.as_of, buckets=a.buckets).write.mode("overwrite").parquet(str(work / "spark"))

    for name, call in (("churn-train features (one process)", cli), ("churn.spark.features, local[2]", ours)):
        median, times = median_of(a.runs, call)
        print(f"{name}: {median:.1f} s ({', '.join(f'{t:.1f}' for t in times)})", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
