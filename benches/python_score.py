"""`model.score` in Python on feature rows held in a pyarrow.Table, against `churn-score`
on the same rows as a Parquet file and against pandas + scikit-learn `predict_proba` on
the same rows held in a pandas DataFrame.

The rows: the sample's features as of 2025-06-01 cycled to N rows, with fresh customer
ids and jittered numbers (as `cargo bench --bench score` does, so that nothing is
dictionary-encoded away). The model: logistic regression trained by `churn.train` on
the sample (the batch bench's model). Every timing is a median of `--runs` runs, all in
one sitting; what is timed:

- `model.score(table)`: the call alone (the table is already in memory).
- `churn-score`: the whole command, reading the Parquet file and writing its output.
- scikit-learn: `predict_proba` alone on the DataFrame already in memory (a fitted
  ColumnTransformer with median imputation, scaling and one-hot, and logistic
  regression), in a process of its own.

    pip install ./crates/churn-py scikit-learn pandas polars
    cargo build --release -p churn-score
    python benches/python_score.py --rows 1000000 10000000 --runs 3
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import churn

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from bench_common import median_of  # noqa: E402

PEER = r"""
import sys, time, statistics
import pyarrow.parquet as pq
sys.path.insert(0, sys.argv[3])
from bench_common import fit_peer

df = pq.read_table(sys.argv[1]).to_pandas()
runs = int(sys.argv[2])
model, features = fit_peer(df.head(200_000))
times = []
for _ in range(runs):
    t = time.perf_counter()
    p = model.predict_proba(df[features])[:, 1]
    times.append(time.perf_counter() - t)
print(statistics.median(times), " ".join(f"{x:.2f}" for x in times))
"""


def cycled(features: pa.Table, rows: int, seed: int = 7) -> pa.Table:
    """`features` repeated to `rows` rows, fresh ids, numbers jittered by up to 1 %."""
    rng = np.random.default_rng(seed)
    repeats = rows // features.num_rows + 1
    table = pa.concat_tables([features] * repeats).slice(0, rows).combine_chunks()
    columns = []
    for name, column in zip(table.column_names, table.columns):
        if name == "customer_id":
            column = pa.array([f"B{i:09d}" for i in range(rows)])
        elif pa.types.is_floating(column.type):
            jitter = pa.array(1.0 + rng.uniform(-0.01, 0.01, rows))
            column = pc.multiply(column, jitter)
        columns.append(column)
    return pa.table(columns, schema=table.schema)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-runs", type=int, default=1, help="the peer needs ~2 GB per million rows")
    ap.add_argument("--data", default="data/sample")
    ap.add_argument("--bin", default="target/release")
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="churn-py-bench-"))
    ds = churn.Dataset.open(a.data)
    run = churn.train(ds, out=work / "models", models=["logistic"], search="none")
    model = churn.Model.load(run.path)
    features = ds.features(as_of="2025-06-01")
    score_bin = pathlib.Path(a.bin) / "churn-score"
    print(f"model {model.name} {model.version} (logistic); {features.num_rows} feature rows cycled")
    for rows in a.rows:
        table = cycled(features, rows)
        path = work / f"features-{rows}.parquet"
        pq.write_table(table, path, compression="zstd")
        for reasons in (3, 0):
            ours, ours_runs = median_of(a.runs, lambda: model.score(table, reasons=reasons))
            cli, cli_runs = median_of(
                a.runs,
                lambda: subprocess.run(
                    [str(score_bin), "--model", run.path, "--input", str(path), "--output",
                     str(work / "out.parquet"), "--quiet", "--reasons", str(reasons)],
                    check=True,
                ),
            )
            print(
                f"{rows:>11,} rows, reasons={reasons}: model.score {ours:6.2f} s ({', '.join(f'{t:.2f}' for t in ours_runs)}), "
                f"churn-score {cli:6.2f} s ({', '.join(f'{t:.2f}' for t in cli_runs)})",
                flush=True,
            )
        del table
        peer = subprocess.run(
            [sys.executable, "-c", PEER, str(path), str(a.peer_runs), str(pathlib.Path(__file__).parent)], capture_output=True, text=True, check=True
        ).stdout.split()
        print(f"{rows:>11,} rows: pandas + scikit-learn predict_proba {float(peer[0]):6.2f} s ({', '.join(peer[1:])})", flush=True)
        path.unlink()


if __name__ == "__main__":
    main()
