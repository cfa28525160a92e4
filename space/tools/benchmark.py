"""Measure the Space's start against a bare Gradio app that imports TensorFlow, and print the figures.
Usage: "Benchmarks" in tools/README.md; `--timing-worker` times the serving path for `training.benchmark`."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

SPACE_DIR = Path(__file__).resolve().parent.parent

STARTUP_ROUNDS = 3
STARTUP_TIMEOUT_S = 120
MEMORY_BUDGET_MB = 1024
STARTUP_BUDGET_RATIO = 1.3  # the Space's time to its first answer, against the bare app's
# The baseline for the start-up: what any Gradio app that serves a TensorFlow model pays before its model.
BARE_APP = ("import gradio as gr, tensorflow as tf\n"
            "gr.Interface(lambda text: 0.5, 'text', 'number', api_name='probability').launch()")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a Linux process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def timing_worker() -> None:
    """Time the serving path for another process: one JSON line in on stdin (a list of texts), one out on stdout
    (the milliseconds `probabilities` took on them), until stdin closes. The first line out says it is ready."""
    import inference

    answers, sys.stdout = sys.stdout, sys.stderr  # whatever else prints cannot break the answers
    predictor = inference.load_from_environment()
    predictor.warm_up()
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        texts = json.loads(line)
        start = time.perf_counter()
        predictor.probabilities(texts)
        print(json.dumps({"ms": (time.perf_counter() - start) * 1000}), file=answers, flush=True)


def start_server(port: int, argv: list[str] | None = None) -> tuple[subprocess.Popen, float]:
    """`python app.py` (or `python argv`) on 127.0.0.1:`port`, once it answered, and the seconds that took."""
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, *(argv or [str(SPACE_DIR / "app.py")])], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while True:
            try:
                client.post("/gradio_api/run/probability", json={"data": ["A fine film."]}).raise_for_status()
                return server, time.perf_counter() - started
            except httpx.TransportError:  # the port opens once the model is loaded
                if server.poll() is not None or time.perf_counter() - started > STARTUP_TIMEOUT_S:
                    server.kill()
                    raise SystemExit("the app did not start; run it alone to see why") from None
                time.sleep(0.05)


def startup(rounds: int) -> None:
    """Start the bare app and the Space `rounds` times each, in turn: seconds to the first answer and memory peak."""
    apps = {"bare Gradio app importing TensorFlow": ["-c", BARE_APP], "the Space (python app.py)": None}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, argv in apps.items():
            server, seconds = start_server(free_port(), argv)
            figures[name].append((seconds, rss_mb(server.pid)[1]))
            server.terminate()
            server.wait(timeout=30)
    for name, runs in figures.items():
        seconds, peaks = np.array(runs).T
        print(f"{name:<46} first answer after {np.median(seconds):6.1f} s (runs: "
              f"{', '.join(f'{s:.1f}' for s in seconds)}), memory peak {np.median(peaks):6.0f} MiB")
    bare, space = (np.array(runs)[:, 0] for runs in figures.values())
    ratio = float(np.median(space / bare))
    peak = float(np.median(np.array(figures["the Space (python app.py)"])[:, 1]))
    print(f"{'start-up ratio, Space / bare app (per round)':<46} {ratio:6.2f}x  (budget <= {STARTUP_BUDGET_RATIO}x: "
          f"{'ok' if ratio <= STARTUP_BUDGET_RATIO else 'OVER'}); memory peak {peak:.0f} MiB (budget < 1 GiB: "
          f"{'ok' if peak < MEMORY_BUDGET_MB else 'OVER'})")


def web_size() -> None:
    """The size of the model folder's browser copy (web/), when MODEL_REPO is a local folder that has one."""
    web = Path(os.environ.get("MODEL_REPO", "")).expanduser() / "web"
    if web.is_dir():
        size = sum(path.stat().st_size for path in web.iterdir())
        verdict = "ok" if size <= 8e6 else "OVER"
        print(f"{'static page download (web/)':<46} {size / 1e6:8.2f} MB  (budget <= 8 MB: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--startup", type=int, default=STARTUP_ROUNDS, metavar="N",
                        help="start the Space and the bare app N times each (default %(default)s)")
    parser.add_argument("--timing-worker", action="store_true",
                        help="only time the serving path on texts sent as JSON lines (see training.benchmark)")
    args = parser.parse_args()
    if args.timing_worker:
        timing_worker()
        return
    print(f"CPUs: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    web_size()
    startup(args.startup)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
