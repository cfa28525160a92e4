"""Shared test set-up: quiet, offline-safe environment and one tiny model folder per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Before anything imports gradio or huggingface_hub: no telemetry, no analytics, quiet TensorFlow.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # so plain `pytest` finds `training` as `python -m pytest` does
# Small enough to train in seconds on two cores, big enough to exercise every part of the pipeline.
TINY_FLAGS = [
    "--max-rows", "400", "--vocab-size", "500", "--sequence-length", "40", "--embedding-dim", "8",
    "--lstm-units", "4", "--dense-units", "4", "--epochs", "2", "--batch-size", "32",
]


def run_module(module: str, *args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m module args` in a fresh interpreter, as a user would, and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600,
    )


def run_python(code: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter whose working folder is `cwd` (outside the repo: nothing of ours importable)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete model folder trained on the bundled sample with a tiny configuration."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return out
