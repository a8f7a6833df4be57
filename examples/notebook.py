"""A notebook session with the churn package, as a script (its cells are marked `# %%`).

Loads the sample data, trains a model, looks at the report's figures, scores the
customer base and plots revenue at risk by risk band with matplotlib.

    python examples/notebook.py [DATA_DIR] [WORK_DIR]
"""

# %%
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # a file, not a window: works the same in a terminal or in CI
import matplotlib.pyplot as plt
import polars as pl

import churn

data = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample")
work = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "notebook-output")
work.mkdir(parents=True, exist_ok=True)

# %% Load and look
ds = churn.Dataset.open(data)
print(ds)
first, last = ds.date_range()

# %% Train (a quick look: two candidates, fixed settings; drop the arguments for the full search)
run = churn.train(ds, out=work / "models", name="churn", models=["logistic", "gbm"], search="none")
print(run)
m = run.metrics
print(f"backtest: ROC AUC {m['roc_auc']:.3f}, PR AUC {m['pr_auc']:.3f}, lift in the top decile {m['lift_top10']:.2f}x")
print(f"report: {run.report}")

# %% Score the customer base as of the day after the data ends
as_of = "2025-07-01" if last >= "2025-06-30" else last
model = churn.Model.load(work / "models" / "churn")
features = ds.features(as_of=as_of)
scores = pl.from_arrow(model.score(features, reasons=3))
print(scores.select("customer_id", "churn_probability", "risk_band", "revenue_at_risk", "top_reasons").head(5))

# %% Revenue at risk by band
order = ["low", "medium", "high", "critical"]
by_band = (
    scores.group_by("risk_band")
    .agg(pl.col("revenue_at_risk").sum().alias("revenue_at_risk"), pl.len().alias("customers"))
    .with_columns(pl.col("risk_band").cast(pl.Enum(order)))
    .sort("risk_band")
)
print(by_band)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(by_band["risk_band"].cast(pl.Utf8).to_list(), by_band["revenue_at_risk"].to_list(), color="#D55E00")
ax.set_xlabel("risk band")
ax.set_ylabel("monthly revenue at risk ($)")
ax.set_title(f"Revenue at risk by band, as of {as_of}")
fig.tight_layout()
chart = work / "revenue_at_risk.png"
fig.savefig(chart, dpi=120)
print(f"chart: {chart}")

# %% The playbook and the KPIs
health = pl.from_arrow(churn.rules.score(features))
print(health.group_by("health_band").len().sort("health_band"))
kpis = churn.kpis(ds, as_of=as_of)
print(f"monthly churn {kpis.summary['monthly_churn_pct']:.2f} %, MRR ${kpis.summary['mrr']:,.0f}")
print(f"KPI page: {kpis.html(work / 'kpis.html')}")
