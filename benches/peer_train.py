"""Peers for `cargo bench --bench train`: scikit-learn's LogisticRegression (lbfgs) and
LightGBM on the same Parquet file, first 80 % of rows to fit, ROC AUC on the rest.

    pip install scikit-learn lightgbm pandas pyarrow
    python3 benches/peer_train.py target/bench-data/train-1000000.parquet
"""
import sys
import time

import lightgbm as lgb
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

df = pd.read_parquet(sys.argv[1])
y = df.pop("label").to_numpy()
x = df.to_numpy()
cut = len(y) * 4 // 5
times = {}

t = time.perf_counter()
lr = LogisticRegression(C=1.0 / (1e-4 * cut), max_iter=1000).fit(x[:cut], y[:cut])
times["sklearn LogisticRegression (lbfgs)"] = (time.perf_counter() - t, roc_auc_score(y[cut:], lr.decision_function(x[cut:])))

for name, params in [
    ("LightGBM, 150 trees, depth 4, lr 0.08 (churn's gbm settings)", dict(n_estimators=150, max_depth=4, num_leaves=16, learning_rate=0.08)),
    ("LightGBM, 100 trees, 63 leaves", dict(n_estimators=100, num_leaves=63)),
]:
    t = time.perf_counter()
    m = lgb.LGBMClassifier(n_jobs=2, verbose=-1, **params).fit(x[:cut], y[:cut])
    times[name] = (time.perf_counter() - t, roc_auc_score(y[cut:], m.predict_proba(x[cut:])[:, 1]))

for name, (secs, auc) in times.items():
    print(f"{name}: {secs:.2f}s, test ROC AUC {auc:.4f}")
