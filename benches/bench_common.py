"""What the Python benchmarks share: the median of timed runs, and the scikit-learn
peer's pipeline (the usual way: median imputation with indicators, scaling, one-hot,
logistic regression)."""

from __future__ import annotations

import statistics
import time


def median_of(runs: int, call) -> tuple[float, list[float]]:
    """Runs `call` `runs` times: the median time and every time, in seconds."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def fit_peer(sample):
    """The peer's pipeline fitted on `sample` (a pandas DataFrame of feature rows) and
    the feature columns it reads. The label is the sample's own low-activity customers:
    the model's quality is not what is measured; its shape and cost are."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = [c for c in sample.columns if c not in ("customer_id", "as_of", "signup_cohort")]
    numeric = [c for c in features if sample[c].dtype.kind == "f"]
    categorical = [c for c in features if c not in numeric]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical),
    ])
    y = (sample["logins_per_week_28d"].fillna(0) < 1.0).to_numpy()
    return make_pipeline(prep, LogisticRegression(max_iter=200)).fit(sample[features], y), features
