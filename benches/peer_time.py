"""churn-train against tuned peers on the last two observation dates of a data set.

On exactly the rows that `churn-train examples` writes (features as of each monthly
observation date, 30-day labels), the last two dates are held out; everything before
them is training data for all three:

- LightGBM, tuned by expanding-window time CV on the training dates (each of the last
  three training dates validated on a model fit on the dates before it): num_leaves
  {4, 8, 16}, min_child_samples {20, 50, 100}, learning rate {0.03, 0.1}, subsample 0.8,
  column subsample 0.8, the number of trees by early stopping (up to 1,000) on each
  validation date; refit on every training date with the mean best number of trees.
- L2 logistic regression on log1p of the non-negative numeric columns (median
  imputation with indicators, scaling, one-hot categories), C over 12 values by the
  same time CV.
- `churn-train train --table TRAIN --id customer_id --label label` with default
  settings (its own out-of-time backtest), then `churn-score` on the held-out rows.

Prints ROC AUC and top-decile lift on the held-out rows, with their number of churners.

    pip install lightgbm scikit-learn pandas pyarrow
    cargo build --release -p churn-train -p churn-score
    python3 benches/peer_time.py DATA_DIR [WORK_DIR]

`CHURN_TRAIN_ARGS` adds arguments to `churn-train train` (e.g. `--models gbm`).
"""
import itertools
import os
import pathlib
import shutil
import subprocess
import sys
import time
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

warnings.filterwarnings("ignore")
root = pathlib.Path(__file__).resolve().parent.parent
data = pathlib.Path(sys.argv[1])
work = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else root / "target" / "peer-time" / data.name
work.mkdir(parents=True, exist_ok=True)
release = root / "target" / "release"


def run(*args):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


examples = work / "examples.parquet"
run(release / "churn-train", "examples", "--data", data, "--out", examples)
df = pd.read_parquet(examples)
dates = sorted(df["as_of"].unique())
test_dates = dates[-2:]
train = df[df["as_of"] < test_dates[0]].reset_index(drop=True)
test = df[df["as_of"] >= test_dates[0]].reset_index(drop=True)
ids = ["customer_id", "as_of", "label", "signup_cohort"]
features = [c for c in df.columns if c not in ids]
categorical = [c for c in features if not pd.api.types.is_numeric_dtype(df[c])]
numeric = [c for c in features if c not in categorical]
y_train = train["label"].to_numpy()
y_test = test["label"].to_numpy()
print(
    f"{data}: {len(df)} examples over {len(dates)} dates; training {len(train)} rows "
    f"({int(y_train.sum())} churners) before {pd.Timestamp(test_dates[0]).date()}; "
    f"held out {len(test)} rows, {int(y_test.sum())} churners, on {', '.join(str(pd.Timestamp(d).date()) for d in test_dates)}"
)


def lift(y, p, top=0.1):
    k = max(1, int(round(len(y) * top)))
    order = np.argsort(-p, kind="stable")[:k]
    return y[order].mean() / y.mean()


def time_folds(frame, n=3):
    """(fit rows, validation rows) for each of the last n training dates."""
    d = sorted(frame["as_of"].unique())
    for v in d[-n:]:
        fit = frame.index[frame["as_of"] < v].to_numpy()
        val = frame.index[frame["as_of"] == v].to_numpy()
        if len(set(frame["label"].iloc[fit])) == 2 and frame["label"].iloc[val].sum() > 0:
            yield fit, val


def lgb_frame(frame):
    x = frame[features].copy()
    for c in categorical:
        x[c] = x[c].astype("category")
    return x


results = {}
peers = os.environ.get("CHURN_PEERS", "1") != "0"

if peers:
    # LightGBM, tuned by expanding-window time CV.
    t = time.perf_counter()
    x_all = lgb_frame(pd.concat([train, test], ignore_index=True))
    x_train, x_test = x_all.iloc[: len(train)], x_all.iloc[len(train):]
    best = None
    for leaves, min_child, lr in itertools.product([4, 8, 16], [20, 50, 100], [0.03, 0.1]):
        losses, iters = [], []
        for fit, val in time_folds(train):
            m = lgb.LGBMClassifier(
                num_leaves=leaves, min_child_samples=min_child, learning_rate=lr, n_estimators=1000,
                subsample=0.8, subsample_freq=1, colsample_bytree=0.8, n_jobs=2, verbose=-1,
            )
            m.fit(x_train.iloc[fit], y_train[fit], eval_set=[(x_train.iloc[val], y_train[val])],
                  callbacks=[lgb.early_stopping(50, verbose=False)])
            losses.append(log_loss(y_train[val], m.predict_proba(x_train.iloc[val])[:, 1], labels=[0, 1]))
            iters.append(m.best_iteration_ or 1000)
        score = np.mean(losses)
        if best is None or score < best[0]:
            best = (score, leaves, min_child, lr, int(np.mean(iters)))
    _, leaves, min_child, lr, trees = best
    m = lgb.LGBMClassifier(
        num_leaves=leaves, min_child_samples=min_child, learning_rate=lr, n_estimators=max(trees, 10),
        subsample=0.8, subsample_freq=1, colsample_bytree=0.8, n_jobs=2, verbose=-1,
    )
    m.fit(x_train, y_train)
    p = m.predict_proba(x_test)[:, 1]
    results[f"LightGBM (num_leaves {leaves}, min_child_samples {min_child}, lr {lr}, {trees} trees; time CV)"] = (p, time.perf_counter() - t)

    # L2 logistic regression on log1p counts, C by time CV.
    t = time.perf_counter()
    nonneg = [c for c in numeric if (train[c].dropna() >= 0).all()]
    signed = [c for c in numeric if c not in nonneg]
    def pipeline(c):
        pre = ColumnTransformer([
            ("log", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), FunctionTransformer(np.log1p), StandardScaler()), nonneg),
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), signed),
            ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical),
        ])
        return make_pipeline(pre, LogisticRegression(C=c, max_iter=2000))
    best = None
    for c in np.logspace(-4, 2, 12):
        losses = []
        for fit, val in time_folds(train):
            lr_model = pipeline(c).fit(train.iloc[fit][features], y_train[fit])
            losses.append(log_loss(y_train[val], lr_model.predict_proba(train.iloc[val][features])[:, 1], labels=[0, 1]))
        if best is None or np.mean(losses) < best[0]:
            best = (np.mean(losses), c)
    lr_model = pipeline(best[1]).fit(train[features], y_train)
    p = lr_model.predict_proba(test[features])[:, 1]
    results[f"L2 logistic regression on log1p counts (C {best[1]:.3g}; time CV)"] = (p, time.perf_counter() - t)

# churn-train with defaults, scored by churn-score.
t = time.perf_counter()
train_file, test_file = work / "train.parquet", work / "test.parquet"
train.to_parquet(train_file, index=False)
test.drop(columns=["signup_cohort"]).to_parquet(test_file, index=False)
models = work / "models"
extra = os.environ.get("CHURN_TRAIN_ARGS", "").split()
if models.exists():
    shutil.rmtree(models)
run(release / "churn-train", "train", "--table", train_file, "--id", "customer_id", "--label", "label", "--out", models, *extra)
scores = work / "scores.parquet"
run(release / "churn-score", "--model", models / "churn", "--input", test_file, "--output", scores, "--quiet", "--reasons", "0")
s = pd.read_parquet(scores)
p = test.merge(s[["customer_id", "as_of", "churn_probability"]], on=["customer_id", "as_of"], how="left")["churn_probability"].to_numpy()
assert not np.isnan(p).any(), "churn-score left rows out"
results["churn-train train, " + (" ".join(extra) or "defaults")] = (p, time.perf_counter() - t)

print(f"| on the {len(test)} held-out rows ({int(y_test.sum())} churners) | ROC AUC | top-decile lift | time |")
print("| --- | --- | --- | --- |")
for name, (p, secs) in results.items():
    print(f"| {name} | {roc_auc_score(y_test, p):.3f} | {lift(y_test, p):.2f} | {secs:.1f} s |")
