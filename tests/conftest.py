"""Shared test set-up: quiet, offline-safe environment and one tiny model folder per test session."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock
from hub_server import FakeHub

from training.config import PRESETS

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
REAL_WINDOW = PRESETS["default"].sequence_length
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Without these, Chromium waits on the network for updates, sync and QUIC, and hangs on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BROWSER_TIMEOUT_MS = 60_000
# Set to 1 where everything the tests need is installed (CI): there a skipped test fails the run.
FAIL_ON_SKIP = "FAIL_ON_SKIP"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under FAIL_ON_SKIP=1, turn a green run that skipped tests into a failed one."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get(FAIL_ON_SKIP) == "1" and skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"{FAIL_ON_SKIP}=1 and {skipped} test(s) skipped: the run fails", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# A test that uses one of these (a trained model, a browser) is marked slow; so is any test marked so by hand (it
# trains, starts the Space or runs a program end to end). `python -m pytest -m "not slow"` leaves them out.
SLOW_FIXTURES = {"tiny_model", "tutorial_model", "window_model", "web_model", "quick_benchmark", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow every test that needs a trained model or a browser (see SLOW_FIXTURES)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """`name`, a folder that `build(path)` makes, made once per test run: under pytest-xdist by the first worker
    that needs it while the others wait for it, then read by all of them."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # the workers' common folder
    out, done = root / "built" / name, root / "built" / f"{name}.done"
    out.parent.mkdir(exist_ok=True)
    with FileLock(root / "built" / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # what a failed attempt left
            build(out)
            done.touch()
    return out


def train(out: Path, *flags: str) -> None:
    """`training.train` of the tiny configuration (TINY_FLAGS, then `flags`) into `out`."""
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS, *flags)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete model folder trained on the bundled sample with a tiny configuration."""
    return built_once(tmp_path_factory, "tiny", train)


@pytest.fixture(scope="session")
def tutorial_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder of the `tutorial` preset (no padding mask, no n-gram branch), tiny as above."""
    return built_once(tmp_path_factory, "tutorial", lambda out: train(out, "--preset", "tutorial"))


@pytest.fixture(scope="session")
def window_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny as above but with the default preset's window (REAL_WINDOW tokens), so the Space picks every window."""
    return built_once(tmp_path_factory, "window", lambda out: train(out, "--sequence-length", str(REAL_WINDOW)))


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
    # The client would upload LFS files through Xet, which FakeHub lacks (see its docstring): LFS instead.
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1")
    if token != "":
        env["HF_TOKEN"] = hub.token if token is None else token
    return env


@pytest.fixture(scope="session")
def quick_benchmark(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """`python -m training.benchmark --quick`, run once: its folder (a model of each preset, the table) and output."""
    def run(out: Path) -> None:
        result = run_module("training.benchmark", "--quick", "--out", str(out / "bench"))
        (out / "result.json").write_text(json.dumps([result.returncode, result.stdout, result.stderr]))

    out = built_once(tmp_path_factory, "benchmark", run)
    returncode, stdout, stderr = json.loads((out / "result.json").read_text())
    return out / "bench", subprocess.CompletedProcess("training.benchmark", returncode, stdout, stderr)


@pytest.fixture(scope="session")
def app_url(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python space/app.py` serving the session's tiny model: one server for every test that calls it over HTTP."""
    from space_support import running_app

    with running_app(tiny_model, tmp_path_factory.mktemp("app") / "app.log") as url:
        yield url


@pytest.fixture(scope="session")
def web_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's tiny model folder with its web/ export (training.web_export)."""
    def export(folder: Path) -> None:
        shutil.copytree(tiny_model, folder)
        result = run_module("training.web_export", "--model-dir", str(folder))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "wrote" in result.stdout

    return built_once(tmp_path_factory, "web", export)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium, one per test module (the module skips itself without Chromium or playwright)."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where browser tests save screenshots: SPACE_SCREENSHOT_DIR (CI lists it), else the test's own folder."""
    folder = Path(os.environ.get("SPACE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that does not log every request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """`folder` over HTTP on a free port of 127.0.0.1 (another origin than the Space's or the Hub's): its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
