"""Shared fixtures: the sample data, the command-line tools, a model trained by them."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

import churn

REPO = pathlib.Path(os.environ.get("CHURN_REPO", pathlib.Path(__file__).resolve().parents[3]))
SAMPLE = REPO / "data" / "sample"
AS_OF = "2025-06-01"
#: Small and quick candidates: the tests compare the engine's two doors, not models.
MODELS = "logistic,gbm"


def bin_dir() -> pathlib.Path:
    given = os.environ.get("CHURN_BIN_DIR")
    return pathlib.Path(given) if given else REPO / "target" / "release"


def tool(name: str) -> pathlib.Path:
    exe = bin_dir() / name
    if not exe.exists():
        pytest.skip(f"{exe} is not built (cargo build --release -p {name}); cargo test builds it")
    return exe


def run_cli(name: str, *args: object) -> subprocess.CompletedProcess:
    """Runs a command-line tool; its failure fails the test with its stderr."""
    done = subprocess.run([str(tool(name)), *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{name} {' '.join(map(str, args))} exited with {done.returncode}:\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def sample() -> churn.Dataset:
    return churn.Dataset.open(SAMPLE)


@pytest.fixture(scope="session")
def features(sample: churn.Dataset):
    return sample.features(as_of=AS_OF)


@pytest.fixture(scope="session")
def cli_model(tmp_path_factory) -> pathlib.Path:
    """A model trained by `churn-train train` on the sample: its model directory."""
    out = tmp_path_factory.mktemp("cli-models")
    run_cli("churn-train", "train", "--data", SAMPLE, "--out", out, "--models", MODELS, "--search", "none")
    return out / "churn"


@pytest.fixture(scope="session")
def model(cli_model: pathlib.Path) -> churn.Model:
    return churn.Model.load(cli_model)
