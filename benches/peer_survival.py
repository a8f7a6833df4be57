"""churn-train's survival model against lifelines (Cox proportional hazards and a Weibull
accelerated failure time model) on the same examples and the same backtest.

`churn-train train --data DIR --json` backtests its survival model on up to four test
dates (docs/survival.md): fitted on the examples before each date with their futures
censored at the date (a churn counts once its grace period has passed), judged on the
examples of the date against the rest of the data. This script reads those test dates
from the trainer's JSON and does the same with lifelines, on exactly the rows
`churn-train examples --futures` writes:

- features: median imputation with indicators, log1p of the non-negative numeric
  columns, scaling, one-hot categories (as the peers of benches/peer_time.py);
- durations in whole 30-day intervals: a churn in interval k -> (k, 1); a customer seen
  through m complete intervals without churning -> (m, 0); rows seen through none are
  left out (they say nothing, and the trainer's fit skips them too);
- CoxPHFitter and WeibullAFTFitter, L2 penalizer chosen from {0.01, 0.1, 1} by the
  same pooled integrated Brier score the trainer chooses by (an advantage the peers get:
  they choose on the test rows).

Figures, pooled over the test dates, computed here with the definitions of
crates/churn-model/src/survival_eval.rs: Harrell's C of 1 - S(12) (outcomes truncated
at 12 months), the integrated Brier score over months 1-12 with censoring weights, and
the mean |predicted - Kaplan-Meier| of S(3), S(6), S(12) over risk deciles. The line
"Kaplan-Meier for everyone" is computed both here and by the trainer: equal figures
show the two implementations, rows and targets agree.

    pip install lifelines scikit-learn pandas pyarrow
    cargo build --release -p churn-train
    python3 benches/peer_survival.py DATA_DIR [WORK_DIR]
"""
import json
import pathlib
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, WeibullAFTFitter
from lifelines.utils import concordance_index
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

warnings.filterwarnings("ignore")
root = pathlib.Path(__file__).resolve().parent.parent
data = pathlib.Path(sys.argv[1])
work = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else root / "target" / "peer-survival" / data.name
work.mkdir(parents=True, exist_ok=True)
release = root / "target" / "release"
TAU = 12
INTERVAL = 30


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, stdout=subprocess.PIPE, **kw).stdout


examples, futures = work / "examples.parquet", work / "futures.csv"
run(release / "churn-train", "examples", "--data", data, "--out", examples, "--futures", futures)
models = work / "models"
if models.exists():
    shutil.rmtree(models)
t = time.perf_counter()
ours = json.loads(run(release / "churn-train", "train", "--data", data, "--out", models, "--models", "logistic", "--search", "none", "--json"))
ours_secs = time.perf_counter() - t
report = ours["survival"]

df = pd.read_parquet(examples)
fut = pd.read_csv(futures, dtype={"customer_id": str})
assert len(fut) == len(df)
df["as_of_day"] = pd.to_datetime(df["as_of"]).dt.normalize()
end = pd.to_datetime(fut["period_end"])
data_end = pd.to_datetime(fut["data_end"])
grace = pd.to_timedelta(fut["grace_days"], unit="D")
ids = ["customer_id", "as_of", "label", "signup_cohort", "as_of_day"]
features = [c for c in df.columns if c not in ids]
categorical = [c for c in features if not pd.api.types.is_numeric_dtype(df[c])]
numeric = [c for c in features if c not in categorical]


def targets(known_on):
    """(event interval or 0, complete intervals observed) per row, as Target::of."""
    observed = ((known_on - grace - df["as_of_day"]).dt.days.clip(lower=0) // INTERVAL).to_numpy()
    days = (end - df["as_of_day"]).dt.days.clip(lower=1)
    k = np.ceil(days / INTERVAL).fillna(0).to_numpy().astype(int)
    k = np.where((k > 0) & (k <= observed), k, 0)
    return k, observed


def truncated(k, m, tau):
    time_ = np.where(k > 0, np.minimum(k, tau), np.minimum(m, tau))
    event = (k > 0) & (k <= tau)
    return time_, event


def concordance(risk, k, m, tau=TAU):
    time_, event = truncated(k, m, tau)
    c, n = 0.0, 0
    for i in np.flatnonzero(event):
        comp = (time_ > time_[i]) | ((time_ == time_[i]) & ~event)
        r = risk[comp]
        n += len(r)
        c += (r < risk[i]).sum() + 0.5 * (r == risk[i]).sum()
    return c / n if n else float("nan")


def kaplan_meier(k, m, tau=TAU):
    time_, event = truncated(k, m, tau)
    s, out = 1.0, []
    for t in range(1, tau + 1):
        at_risk = (time_ >= t).sum()
        if at_risk:
            s *= 1 - (event & (time_ == t)).sum() / at_risk
        out.append(s)
    return np.array(out)


def censoring_survival(k, m, tau=TAU):
    g = np.ones(tau + 1)
    churned = np.array([((k > 0) & (k == j)).sum() for j in range(tau + 1)])
    censored = np.array([((k == 0) & (m == j)).sum() for j in range(tau + 1)])
    at_risk = len(k)
    for j in range(tau):
        at_risk -= churned[j]
        g[j + 1] = g[j] * (1 - censored[j] / at_risk) if at_risk > 0 else g[j]
        at_risk -= censored[j]
    return g


def integrated_brier(curves, k, m, tau=TAU):
    g = censoring_survival(k, m, tau)
    total = 0.0
    for t in range(1, tau + 1):
        s = curves[:, t - 1]
        died = (k > 0) & (k <= t)
        alive = ((k > t) | ((k == 0) & (m >= t)))
        w_died = np.where(died, 1 / np.maximum(g[np.minimum(k, tau)], 1e-9), 0)
        total += (s * s * w_died).sum() + ((1 - s) ** 2 * alive / max(g[t], 1e-9)).sum()
    return total / len(k) / tau


def calibration_error(curves, k, m, t):
    s = curves[:, t - 1]
    order = np.argsort(-s, kind="stable")
    n, err = len(s), 0.0
    for d in range(10):
        rows = order[d * n // 10:(d + 1) * n // 10]
        km = kaplan_meier(k[rows], m[rows], t)[-1]
        err += len(rows) * abs(s[rows].mean() - km)
    return err / n


def design():
    nonneg = [c for c in numeric if (df[c].dropna() >= 0).all()]
    signed = [c for c in numeric if c not in nonneg]
    return ColumnTransformer([
        ("log", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), FunctionTransformer(np.log1p), StandardScaler()), nonneg),
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), signed),
        ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False), categorical),
    ])


k_all, m_all = targets(data_end)
pooled = {"k": [], "m": []}
curves = {}
secs = {}
for date in report["test_dates"]:
    day = pd.Timestamp(date)
    fit = (df["as_of_day"] < day).to_numpy()
    test = (df["as_of_day"] == day).to_numpy()
    kf, mf = targets(pd.Series(day, index=df.index))
    duration = np.where(kf > 0, kf, mf)[fit]
    event = (kf > 0)[fit]
    keep = duration > 0
    pre = design().fit(df.loc[fit, features])
    def matrix(rows):
        x = pre.transform(df.loc[rows, features])
        return pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    x_fit = matrix(fit)[keep].reset_index(drop=True)
    x_fit = x_fit.loc[:, x_fit.std() > 1e-9]
    x_test = matrix(test)[x_fit.columns]
    frame = x_fit.assign(duration=duration[keep], event=event[keep].astype(int))
    km_fit = kaplan_meier(kf[fit], mf[fit])
    pooled["k"].append(k_all[test])
    pooled["m"].append(m_all[test])
    for name, make in [
        ("Kaplan-Meier for everyone", None),
        *[(f"lifelines CoxPHFitter (penalizer {p})", lambda p=p: CoxPHFitter(penalizer=p)) for p in (0.01, 0.1, 1.0)],
        *[(f"lifelines WeibullAFTFitter (penalizer {p})", lambda p=p: WeibullAFTFitter(penalizer=p)) for p in (0.01, 0.1, 1.0)],
    ]:
        started = time.perf_counter()
        if make is None:
            c = np.tile(km_fit, (test.sum(), 1))
        else:
            model = make().fit(frame, duration_col="duration", event_col="event")
            c = model.predict_survival_function(x_test, times=np.arange(1, TAU + 1)).to_numpy().T
        curves.setdefault(name, []).append(c)
        secs[name] = secs.get(name, 0.0) + time.perf_counter() - started

k = np.concatenate(pooled["k"])
m = np.concatenate(pooled["m"])
print(f"{data}: {len(df)} examples; survival backtest on {', '.join(report['test_dates'])}: {len(k)} test rows, "
      f"{int(((k > 0) & (k <= TAU)).sum())} churned within {TAU} months (trainer: {report['rows']} rows, {report['churns']} churns)")
rows = []
for name, parts in curves.items():
    c = np.concatenate(parts)
    risk = 1 - c[:, TAU - 1]
    time_, event = truncated(k, m, TAU)
    rows.append((name, concordance(risk, k, m), integrated_brier(c, k, m),
                 [calibration_error(c, k, m, t) for t in (3, 6, 12)], secs[name],
                 concordance_index(time_, -risk, event)))
best = {}
for row in rows:
    family = row[0].split(" (")[0]
    if family not in best or row[2] < best[family][2]:
        best[family] = row
print("| model | Harrell's C (12 months) | integrated Brier 1-12 | S(3) / S(6) / S(12) calibration error | fit and predict |")
print("| --- | --- | --- | --- | --- |")
for name, c, ibs, cal, s, ci in best.values():
    print(f"| {name} | {c:.4f} | {ibs:.4f} | {' / '.join(f'{e:.3f}' for e in cal)} | {s:.1f} s |")
cal = {x["months"]: x["mean_abs_error"] for x in report["calibration"]}
ours_cal = " / ".join(f"{cal[t]:.3f}" if t in cal else "n/a" for t in (3, 6, 12))
print(f"| churn-train (person-period logistic, L2 {report['lambda']:g}) | {report['concordance']:.4f} | {report['integrated_brier']:.4f} | "
      f"{ours_cal} | {ours_secs:.1f} s (whole training run) |")
print(f"trainer's Kaplan-Meier-for-everyone integrated Brier: {report['reference_integrated_brier']:.4f}")
print("lifelines' own concordance_index of the same risks (ties in time counted its way):",
      ", ".join(f"{name.split(' (')[0]} {ci:.4f}" for name, _, _, _, _, ci in best.values()))
