"""Peer for `cargo bench --bench score`: pandas + scikit-learn scoring the same 10 M-row
feature file, the usual way: read the Parquet file, impute and scale numbers, one-hot the
categories (a fitted ColumnTransformer pipeline), `predict_proba`, write customer id and
probability to Parquet. No rules, no reasons: the peer does less than churn-score.

The pipeline is fitted on the first 200,000 rows (fitting is not timed); the scoring of
the whole file is timed end to end.

    pip install scikit-learn pandas pyarrow
    python3 benches/peer_score.py target/bench-score/features.parquet
"""
import pathlib
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from bench_common import fit_peer  # noqa: E402

path = sys.argv[1]
sample = pd.read_parquet(path).head(200_000)
model, features = fit_peer(sample)
del sample

runs = []
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 1):
    t = time.perf_counter()
    df = pd.read_parquet(path)
    p = model.predict_proba(df[features])[:, 1]
    pd.DataFrame({"customer_id": df["customer_id"], "churn_probability": p}).to_parquet(
        "/tmp/peer_scores.parquet", compression="zstd"
    )
    runs.append(time.perf_counter() - t)
    del df, p
print(f"pandas + scikit-learn: {len(runs)} run(s), median {np.median(runs):.1f} s ({', '.join(f'{r:.1f}' for r in runs)})")
