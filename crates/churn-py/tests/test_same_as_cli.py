"""The package and the command-line tools are one engine: the same rows and bits."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import churn
from conftest import AS_OF, MODELS, SAMPLE, run_cli, tool

#: Fields of `churn-train train --json` that name the run rather than describe it.
RUN_NAMES = {"version", "path", "report", "seconds"}


def same_table(ours: pa.Table, theirs: pa.Table) -> None:
    """Equal schemas (names, types, nullability) and equal values, bit for bit."""
    assert ours.schema.remove_metadata() == theirs.schema.remove_metadata()
    assert ours.num_rows == theirs.num_rows
    for name in ours.column_names:
        a, b = ours[name].combine_chunks(), theirs[name].combine_chunks()
        if pa.types.is_floating(a.type):
            # Bit equality: NaN-safe and -0.0-safe, unlike ==.
            a, b = a.view(pa.int64()), b.view(pa.int64())
        assert a.equals(b), f"column {name} differs"


def test_features_are_the_rows_of_churn_train_features(features, tmp_path):
    out = tmp_path / "features.parquet"
    run_cli("churn-train", "features", "--data", SAMPLE, "--as-of", AS_OF, "--out", out)
    assert features.num_rows > 1000
    same_table(features, pq.read_table(out))


def test_examples_are_the_rows_of_churn_train_examples(sample, tmp_path):
    out = tmp_path / "examples.parquet"
    run_cli("churn-train", "examples", "--data", SAMPLE, "--horizon-days", 45, "--out", out)
    ours = sample.examples(horizon_days=45)
    assert set(ours["label"].to_pylist()) == {0, 1}
    same_table(ours, pq.read_table(out))


@pytest.mark.parametrize(
    "options",
    [{}, {"reasons": 0}, {"reasons": 5, "top": 25}, {"top": 25, "order": "clv_at_risk"}, {"survival": False}],
)
def test_scores_are_the_rows_of_churn_score(model, cli_model, features, tmp_path, options):
    source = tmp_path / "features.parquet"
    pq.write_table(features, source)
    out = tmp_path / "scores.parquet"
    args = ["--model", cli_model, "--input", source, "--output", out, "--quiet"]
    args += ["--reasons", options.get("reasons", 3)]
    if "top" in options:
        args += ["--top", options["top"]]
    if "order" in options:
        args += ["--order", options["order"].replace("_", "-")]
    if options.get("survival") is False:
        args += ["--no-survival"]
    run_cli("churn-score", *args)
    ours = model.score(features, **options)
    assert ours.num_rows == options.get("top", features.num_rows)
    same_table(ours, pq.read_table(out))


def test_training_is_churn_train_train(sample, cli_model, features, tmp_path):
    run = churn.train(sample, out=tmp_path / "models", name="churn", models=MODELS.split(","), search="none")
    cli = run_cli(
        "churn-train", "train", "--data", SAMPLE, "--out", tmp_path / "cli", "--models", MODELS, "--search", "none", "--json"
    )
    theirs = json.loads(cli.stdout)
    assert {k: v for k, v in run.summary.items() if k not in RUN_NAMES} == {
        k: v for k, v in theirs.items() if k not in RUN_NAMES
    }
    assert run.metrics["roc_auc"] > 0.8
    assert (tmp_path / "models" / "churn" / "LATEST").read_text().strip() == run.version
    with open(run.report, encoding="utf-8") as page:
        assert "<svg" in page.read()
    # The two saved models give the same probabilities, bit for bit.
    ours = run.model().score(features)["churn_probability"]
    other = churn.Model.load(theirs["path"]).score(features)["churn_probability"]
    assert ours.cast(pa.float64()).combine_chunks().view(pa.int64()).equals(
        other.combine_chunks().view(pa.int64())
    )


def test_kpis_are_churn_train_kpis(sample, tmp_path):
    html, js = tmp_path / "cli.html", tmp_path / "cli.json"
    run_cli("churn-train", "kpis", "--data", SAMPLE, "--as-of", "2025-07-01", "--out", html, "--json", js)
    ours = churn.kpis(sample, as_of="2025-07-01")
    with open(js, encoding="utf-8") as f:
        assert dict(ours) == json.load(f)
    assert ours.summary["monthly_churn_pct"] > 0
    page = ours.html(tmp_path / "ours.html")
    assert open(page, "rb").read() == html.read_bytes()


def test_kpis_with_a_model_are_churn_train_kpis_model(sample, model, cli_model, tmp_path):
    html, js = tmp_path / "cli.html", tmp_path / "cli.json"
    run_cli("churn-train", "kpis", "--data", SAMPLE, "--out", html, "--json", js, "--model", cli_model)
    ours = churn.kpis(sample, model=model)
    with open(js, encoding="utf-8") as f:
        assert dict(ours) == json.load(f)
    value = ours["model_clv"]
    assert value["base"]["customers"] > 1000 and value["goal"] == 4000
    assert sum(g["customers"] for g in value["by_segment"]) == value["base"]["customers"]
    assert open(ours.html(tmp_path / "ours.html"), "rb").read() == html.read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(cli_model):
    """`churn-serve` on a real socket, serving the CLI-trained model."""
    port = free_port()
    proc = subprocess.Popen(
        [str(tool("churn-serve")), "--models", str(cli_model.parent), "--addr", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"churn-serve did not become ready: {proc.stderr.read().decode()}")
        time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def test_predict_is_post_v1_predict(server, model, features):
    rows = features.slice(0, 40).to_pylist()
    for r in rows:
        r["as_of"] = r["as_of"].isoformat()
    answer = post(f"{server}/v1/predict", {"customers": [{"features": r} for r in rows]})
    assert answer["model"] == {"name": model.name, "version": model.version}
    assert model.predict(rows) == answer["predictions"]
    # One customer with explanations turned down, its id given beside the features.
    one = {k: v for k, v in rows[7].items() if k != "customer_id"}
    answer = post(
        f"{server}/v1/predict",
        {"top": 2, "customers": [{"customer_id": "c-7", "features": one}]},
    )
    assert model.predict(one, customer_id="c-7", top=2) == answer["predictions"][0]
    assert len(answer["predictions"][0]["reasons"]) <= 2
