"""Peer for `cargo bench --bench score`, like for like: polars + numpy computing every
column of `churn-score`'s default output from the same model, vectorised over whole
columns: the churn probability (the model's own preprocessing: clipping to the training
range, log1p, median imputation, scaling, one-hot, logistic regression, Platt
calibration), risk band, revenue at risk, the survival curve's expected lifetime, CLV and
CLV at risk, the playbook's health score and band, signals, intervention and segment, the
top 3 reasons as text, and the model's name and version; written to Parquet (zstd).

The model is `target/bench-score/peer_model.json`, which the bench writes beside the
input (the artifact as JSON, and the column each rule input is read from). Rows are
processed a million at a time so the design matrices stay within a few GB.

    pip install polars pyarrow numpy
    python3 benches/peer_score_polars.py target/bench-score [RUNS] [--reasons N] [--check]

`--check` compares the output with `churn-score`'s (`scores.parquet`, written by the
bench) and prints the largest differences: the peer must compute the same thing.
"""
import json
import math
import pathlib
import sys
import time

import numpy as np
import polars as pl

root = pathlib.Path(sys.argv[1])
args = sys.argv[2:]
runs = int(args[0]) if args and args[0].isdigit() else 1
reasons_wanted = int(args[args.index("--reasons") + 1]) if "--reasons" in args else 3
check = "--check" in args
spec = json.loads((root / "peer_model.json").read_text())
artifact = spec["artifact"]
model = artifact["model"]
survival = artifact["survival"]
rules = artifact["rules"]
rule_columns = spec["rule_columns"]
GROUP_STARTS = [1, 2, 3, 4, 7, 13]
SIGNALS = ["low_login_frequency", "short_sessions", "low_adoption", "many_tickets", "payment_problem"]
CHUNK = 1_000_000


def number_column(df, name):
    if name not in df.columns:
        return np.full(df.height, np.nan)
    return df.get_column(name).cast(pl.Float64).to_numpy().astype(np.float64, copy=False)


def design(df, prep, ranges):
    """The preprocessor's matrix (rows x inputs) and which features were missing."""
    n = df.height
    # Column-major: each input is written as one contiguous column.
    x = np.empty((n, len(prep["output_names"])), order="F")
    missing = np.zeros((n, len(prep["transforms"])), dtype=bool)
    log1p = prep.get("log1p") or [False] * len(prep["transforms"])
    k = 0
    for i, t in enumerate(prep["transforms"]):
        if "Numeric" in t:
            t = t["Numeric"]
            v = number_column(df, t["name"])
            absent = np.isnan(v)
            r = ranges[i] if ranges else None
            if r is not None:
                width = r["max"] - r["min"]
                lo, hi = (r["min"] - width, r["max"] + width) if width > 0 else (
                    r["min"] - max(abs(r["min"]), 1.0), r["max"] + max(abs(r["max"]), 1.0))
                v = np.clip(v, lo, hi)
            if log1p[i]:
                v = np.log1p(np.maximum(v, 0.0))
            x[:, k] = (np.where(absent, t["median"], v) - t["mean"]) / t["std"]
            k += 1
            if t["indicator"]:
                x[:, k] = absent
                k += 1
            missing[:, i] = absent
        else:
            t = t["Categorical"]
            levels = t["levels"]
            col = df.get_column(t["name"]) if t["name"] in df.columns else pl.Series([None] * n, dtype=pl.Utf8)
            codes = col.cast(pl.Utf8).replace_strict(levels, list(range(len(levels))), default=len(levels), return_dtype=pl.Int64)
            codes = codes.to_numpy()
            absent = col.is_null().to_numpy()
            x[:, k : k + len(levels) + 1] = 0.0
            rows = np.flatnonzero(~absent)
            x[rows, k + codes[rows]] = 1.0
            k += len(levels) + 1
            missing[:, i] = absent
    return x, missing


def number_text(values):
    """Numbers as the reasons show them: whole numbers without a fraction."""
    col = pl.Series(values)
    return pl.select(
        pl.when(col == col.floor()).then(col.cast(pl.Int64).cast(pl.Utf8)).otherwise(col.cast(pl.Utf8))
    ).to_series()


def fixed3(values):
    """`values` (>= 0) with three decimals."""
    thousandths = pl.Series(np.round(values * 1000.0)).cast(pl.Int64)
    return pl.select(
        pl.concat_str([(thousandths // 1000).cast(pl.Utf8), pl.lit("."), (thousandths % 1000).cast(pl.Utf8).str.zfill(3)])
    ).to_series()


def reasons_text(df, contrib, missing, transforms, top):
    """The top `top` features pushing each row's probability up, as `name=value (+c)`."""
    if top == 0:
        return pl.Series("top_reasons", [""] * df.height)
    names = [next(iter(t.values()))["name"] for t in transforms]
    categorical = [i for i, t in enumerate(transforms) if "Categorical" in t]
    raw = np.column_stack([number_column(df, n) if "Numeric" in t else np.zeros(df.height) for n, t in zip(names, transforms)])
    c = np.where(missing | (contrib <= 0.0), -np.inf, contrib)
    best = np.argpartition(-c, top - 1, axis=1)[:, :top]
    order = np.argsort(-np.take_along_axis(c, best, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)
    label_of = np.array(names, dtype=object)
    parts = []
    for rank in range(top):
        feature = best[:, rank]
        value = np.take_along_axis(c, best[:, rank : rank + 1], axis=1)[:, 0]
        shown = number_text(np.take_along_axis(raw, best[:, rank : rank + 1], axis=1)[:, 0])
        for i in categorical:
            shown = pl.select(pl.when(pl.Series(feature == i)).then(df.get_column(names[i]).cast(pl.Utf8)).otherwise(shown)).to_series()
        label = pl.Series(label_of[feature], dtype=pl.Utf8)
        part = pl.select(
            pl.when(pl.Series(np.isfinite(value)))
            .then(pl.concat_str([label, pl.lit("="), shown, pl.lit(" (+"), fixed3(np.where(np.isfinite(value), value, 0.0)), pl.lit(")")]))
        ).to_series()
        parts.append(part)
    return pl.select(pl.concat_str(parts, separator="; ", ignore_nulls=True).fill_null("")).to_series()


def clamp100(v):
    return np.clip(v, 0.0, 100.0)


def nanmean(*columns):
    stack = np.vstack(columns)
    count = (~np.isnan(stack)).sum(axis=0)
    total = np.nansum(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def playbook(df):
    v = {name: number_column(df, col) for name, col in zip(
        ["tenure", "logins", "active_days", "session", "adoption", "features_used", "ttv", "value_reached",
         "tickets", "open_tickets", "satisfaction", "late", "failed", "past_due", "inactive", "nps", "csat",
         "referrals", "reviews"], rule_columns)}
    h = rules["health"]
    usage = nanmean(clamp100(100 * v["logins"] / h["usage"]["logins_per_week_for_full_score"]),
                    clamp100(100 * v["active_days"] / h["usage"]["active_days_28d_for_full_score"]))
    adoption = clamp100(100 * v["adoption"] / h["adoption"]["adoption_for_full_score"])
    s = h["support"]
    volume = np.where(np.isnan(v["tickets"]) & np.isnan(v["open_tickets"]), np.nan,
                      clamp100(100 - s["points_per_ticket_30d"] * np.nan_to_num(v["tickets"])
                               - s["points_per_open_ticket"] * np.nan_to_num(v["open_tickets"])))
    satisfaction = clamp100(100 * (v["satisfaction"] - 1) / 4)
    share = s["satisfaction_share"]
    support = np.where(np.isnan(volume), satisfaction,
                       np.where(np.isnan(satisfaction), volume, (1 - share) * volume + share * satisfaction))
    p = h["payment"]
    payment = np.where(np.isnan(v["late"]) & np.isnan(v["failed"]) & np.isnan(v["past_due"]), np.nan,
                       clamp100(100 - p["points_per_late_payment"] * np.nan_to_num(v["late"])
                                - p["points_per_failed_payment"] * np.nan_to_num(v["failed"])
                                - p["points_per_day_past_due"] * np.nan_to_num(v["past_due"])))
    engagement = nanmean(clamp100(100 * (1 - v["inactive"] / h["engagement"]["inactive_days_for_zero_recency"])),
                         clamp100(10 * v["nps"]), clamp100(100 * (v["csat"] - 1) / 9))
    comps = np.vstack([usage, adoption, support, payment, engagement])
    w = h["weights"]
    weights = np.array([w["usage"], w["adoption"], w["support"], w["payment"], w["engagement"]])[:, None]
    present = ~np.isnan(comps)
    total = (weights * present).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(total > 0, (np.nan_to_num(comps) * weights).sum(axis=0) / total, np.nan)
    b = h["bands"]
    band = np.select([score >= b["healthy"], score >= b["at_risk"], score >= b["critical"], ~np.isnan(score)],
                     ["healthy", "at_risk", "critical", "churning"], default=None)
    sg = rules["signals"]
    problems = np.where(np.isnan(v["late"]) & np.isnan(v["failed"]), np.nan,
                        np.nan_to_num(v["late"]) + np.nan_to_num(v["failed"]))
    fired = np.vstack([v["logins"] < sg["min_logins_per_week"], v["session"] < sg["min_session_minutes"],
                       v["adoption"] < sg["min_adoption"], v["tickets"] > sg["max_tickets_30d"], problems > 0])
    mask = (fired * (1 << np.arange(5))[:, None]).sum(axis=0)
    texts = np.array([",".join(SIGNALS[k] for k in range(5) if m & (1 << k)) for m in range(32)], dtype=object)
    count = fired.sum(axis=0)
    intervention = np.select([v["failed"] > 0, count >= rules["interventions"]["urgent_min_signals"], count >= 1],
                             ["immediate", "urgent", "monitor"], default="none")
    seg = rules["segments"]
    urgent = (intervention == "immediate") | (intervention == "urgent")
    segment = np.select([urgent | (score < seg["at_risk_below_health"]), v["tenure"] < seg["new_max_tenure_days"],
                         (v["logins"] >= seg["power_min_logins_per_week"]) & (v["adoption"] >= seg["power_min_adoption"])],
                        ["at_risk", "new", "power"], default="casual")
    return score, band, texts[mask], intervention, segment


def lifetime(df, p, mrr_known, mrr):
    x, _ = design(df, survival["preprocessor"], None)
    score = x @ np.array(survival["weights"])
    tenure = number_column(df, "tenure_days")
    t0 = np.where(np.isnan(tenure), survival["median_tenure_months"], np.maximum(tenure / 30.0, 0.0))
    months = survival["months"]
    curve = np.empty((months, df.height))
    s = np.ones(df.height)
    for k in range(1, months + 1):
        g = min(max(i for i, start in enumerate(GROUP_STARTS) if k >= start), survival["observed_groups"] - 1)
        effect = survival["score_scale"] + survival["score_decay"] * math.log(k)
        z = survival["intercept"] + score * effect + survival["baseline"][g] + survival["tenure_weight"] * np.log1p(t0 + k)
        hazard = 1.0 / (1.0 + np.exp(-z))
        s = s * (1.0 - hazard)
        curve[k - 1] = s
    last = np.clip(hazard, 1e-6, 1.0)

    def discounted(d):
        factors = d ** np.arange(1, months)
        return 1.0 + factors @ curve[:-1] + curve[-1] * d**months / (1.0 - (1.0 - last) * d)

    settings = survival["clv"]
    d = (1.0 + settings["annual_discount"]) ** (-1.0 / 12.0)
    expected = discounted(1.0) - 0.5
    clv = np.where(mrr_known, mrr * settings["gross_margin"] * discounted(d), np.nan)
    return expected, clv, p * clv


def score_chunk(df):
    x, missing = design(df, model["preprocessor"], model["input_ranges"])
    est = model["estimator"]["Logistic"]
    weights = np.array(est["weights"])
    z = est["intercept"] + x @ weights
    platt = model["calibrator"]["Platt"]
    p = 1.0 / (1.0 + np.exp(-(platt["a"] * z + platt["b"])))
    t = model["threshold"]
    band = np.select([p >= min(2 * t, (1 + t) / 2), p >= t, p >= t / 2], ["critical", "high", "medium"], default="low")
    mrr = number_column(df, "mrr")
    known = (mrr >= 0) & (mrr <= 1e12)
    revenue = np.where(known, p * mrr, np.nan)
    expected, clv, clv_at_risk = lifetime(df, p, known, mrr)
    health, health_band, signals, intervention, segment = playbook(df)
    source = np.array(model["preprocessor"]["output_source"])
    by_feature = np.zeros((len(source), len(model["preprocessor"]["transforms"])))
    by_feature[np.arange(len(source)), source] = 1.0
    per_feature = (x * weights) @ by_feature
    top = reasons_text(df, per_feature, missing, model["preprocessor"]["transforms"], reasons_wanted)
    nan_null = lambda a: pl.Series(a).fill_nan(None)  # noqa: E731
    return pl.DataFrame({
        "customer_id": df.get_column("customer_id"),
        "as_of": df.get_column("as_of") if "as_of" in df.columns else pl.Series([None] * df.height, dtype=pl.Date),
        "churn_probability": p,
        "risk_band": band,
        "revenue_at_risk": nan_null(revenue),
        "expected_lifetime_months": expected,
        "clv": nan_null(clv),
        "clv_at_risk": nan_null(clv_at_risk),
        "health_score": nan_null(health),
        "health_band": pl.Series(health_band, dtype=pl.Utf8),
        "signals": pl.Series(signals, dtype=pl.Utf8),
        "intervention": intervention,
        "segment": segment,
        "top_reasons": top,
        "model_name": pl.repeat(artifact["name"], df.height, eager=True),
        "model_version": pl.repeat(artifact["version"], df.height, eager=True),
    })


times = []
out = pathlib.Path("/tmp/peer_polars_scores.parquet")
for _ in range(runs):
    start = time.perf_counter()
    frame = pl.read_parquet(root / "features.parquet")
    scored = pl.concat([score_chunk(frame.slice(o, CHUNK)) for o in range(0, frame.height, CHUNK)], rechunk=False)
    scored.write_parquet(out, compression="zstd")
    times.append(time.perf_counter() - start)
    rows = frame.height
    del frame, scored
print(f"polars + numpy ({rows} rows, rules and {reasons_wanted} reasons): {runs} run(s), median {np.median(times):.2f} s ({', '.join(f'{t:.2f}' for t in times)})")

if check:
    ours = pl.read_parquet(root / "scores.parquet")
    peer = pl.read_parquet(out)
    assert ours.height == peer.height, (ours.height, peer.height)
    for col in ["churn_probability", "revenue_at_risk", "expected_lifetime_months", "clv", "health_score"]:
        a, b = ours.get_column(col).to_numpy(), peer.get_column(col).to_numpy()
        both = ~(np.isnan(a) | np.isnan(b))
        print(f"{col}: max |difference| {np.max(np.abs(a[both] - b[both]) / np.maximum(1.0, np.abs(a[both]))):.2e} (relative), "
              f"nulls {int(np.isnan(a).sum())} vs {int(np.isnan(b).sum())}")
    for col in ["customer_id", "risk_band", "health_band", "signals", "intervention", "segment", "top_reasons"]:
        same = (ours.get_column(col).fill_null("<null>") == peer.get_column(col).fill_null("<null>")).sum()
        print(f"{col}: {same} of {ours.height} equal")
