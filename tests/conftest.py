"""Shared test set-up: quiet, offline-safe environment and one tiny model folder per test session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import FakeHub

# Before anything imports gradio or huggingface_hub: no telemetry, no analytics, quiet TensorFlow.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

REPO = Path(__file__).resolve().parent.parent
# Small enough to train in seconds on two cores, big enough to exercise every part of the pipeline.
TINY_FLAGS = [
    "--max-rows", "400", "--vocab-size", "500", "--sequence-length", "40", "--embedding-dim", "8",
    "--lstm-units", "4", "--dense-units", "4", "--epochs", "2", "--batch-size", "32", "--ngram-vocab-size", "5000",
]
# Set to 1 where everything the tests need is installed (CI): there a skipped test fails the run.
FAIL_ON_SKIP = "FAIL_ON_SKIP"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under FAIL_ON_SKIP=1, turn a green run that skipped tests into a failed one."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get(FAIL_ON_SKIP) == "1" and skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"{FAIL_ON_SKIP}=1 and {skipped} test(s) skipped: the run fails", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def run_module(module: str, *args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m module args` in a fresh interpreter (environment `env`, default ours) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True, timeout=600,
    )


def run_python(code: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter in `cwd` (outside the repo: nothing of ours importable); `env` as above."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True, timeout=600,
    )


_HANDED_OUT_PORTS: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that no earlier call returned.

    The kernel may give a just-closed probe's port again, so two servers started together could get the same one.
    """
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _HANDED_OUT_PORTS:
            _HANDED_OUT_PORTS.add(port)
            return port


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete model folder trained on the bundled sample with a tiny configuration."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A Hub-compatible server on 127.0.0.1, empty, for one test."""
    with FakeHub() as server:
        yield server


def hub_env(hub: FakeHub, home: Path, token: str | None = None) -> dict[str, str]:
    """Environment for a fresh process whose huggingface_hub talks to `hub`, with its own empty HF_HOME.

    token: None sends the hub's valid token, "" sends none, anything else is sent as is.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    if token != "":
        env["HF_TOKEN"] = hub.token if token is None else token
    return env
