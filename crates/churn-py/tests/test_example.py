"""The notebook-style example runs from start to end and writes what it says."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, SAMPLE


def test_the_notebook_example_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "notebook.py"), str(SAMPLE), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "backtest: ROC AUC 0." in done.stdout
    png = (tmp_path / "revenue_at_risk.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert (tmp_path / "kpis.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert list((tmp_path / "models" / "churn").glob("*/report.html"))
