"""Measure the Space against its speed and memory budgets and print the figures (not a test).

    cd space && MODEL_REPO=../artifacts/full python -m tools.benchmark [--rounds 200]
    cd space && MODEL_REPO=../artifacts/full python -m tools.benchmark --startup 3

Uses only the Space's own requirements. It starts `app.py` as a server on 127.0.0.1 for the HTTP,
start-up and memory figures, and loads the model in this process for the in-process ones. With `--startup N`
it only starts the Space and a bare Gradio app that imports TensorFlow N times each, in turn, and prints the
time to the first answer and the memory peak of each, and their ratio. With `--timing-worker` it only times
the serving path for `training.benchmark`, which has its own table.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from examples import REAL_REVIEWS

SPACE_DIR = Path(__file__).resolve().parent.parent

REVIEW_WORDS = 230  # about the mean length of an IMDB review
HIGHLIGHT_WORDS = 400
HUGE_TEXT_BYTES = 1_000_000
STARTUP_TIMEOUT_S = 120
BUDGETS_MS = {"single": 3, "http": 30, "highlights": 150, "startup": 15_000}
MEMORY_BUDGET_MB = 1024
STARTUP_BUDGET_RATIO = 1.3  # the Space's time to its first answer, against the bare app's
# The baseline for the start-up: what any Gradio app that serves a TensorFlow model pays before its model.
BARE_APP = ("import gradio as gr, tensorflow as tf\n"
            "gr.Interface(lambda text: 0.5, 'text', 'number', api_name='probability').launch()")


def words(n: int) -> str:
    """A review of `n` words made from the real example reviews."""
    pool = " ".join(REAL_REVIEWS).split()
    return " ".join(pool[i % len(pool)] for i in range(n))


def timings_ms(call: Callable[[], object], rounds: int) -> np.ndarray:
    """Milliseconds per call, after two warm-up calls."""
    call(), call()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return np.array(out)


def report(name: str, ms: np.ndarray, budget: float | None = None) -> None:
    p50, p95 = np.percentile(ms, [50, 95])
    verdict = "" if budget is None else f"  (budget p50 < {budget} ms: {'ok' if p50 < budget else 'OVER'})"
    print(f"{name:<46} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms   n={len(ms)}{verdict}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a Linux process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def in_process(rounds: int) -> None:
    import inference  # after the server's figures: see main

    start = time.perf_counter()
    predictor = inference.load_from_environment()
    print(f"model load + warm-up in this process: {time.perf_counter() - start:.1f} s")
    review, short = words(REVIEW_WORDS), "Not bad at all."
    report(f"single review ({REVIEW_WORDS} words), in-process", timings_ms(lambda: predictor.probabilities([review]), rounds), BUDGETS_MS["single"])
    report("single one-line review, in-process", timings_ms(lambda: predictor.probabilities([short]), rounds), BUDGETS_MS["single"])
    long_review = words(HIGHLIGHT_WORDS)
    report(f"highlights, {HIGHLIGHT_WORDS}-word review (one batched call)", timings_ms(lambda: predictor.explain(long_review), max(5, rounds // 10)), BUDGETS_MS["highlights"])
    huge = ("a " * (HUGE_TEXT_BYTES // 2))[:HUGE_TEXT_BYTES]
    report("1 MB text, in-process", timings_ms(lambda: predictor.probabilities([huge]), max(5, rounds // 10)))
    batch = [review] * 256
    ms = timings_ms(lambda: predictor.probabilities(batch), 5)
    print(f"{'batch of 256 reviews, in-process':<46} {256 / np.median(ms) * 1000:8.0f} reviews/s")


def timing_worker() -> None:
    """Time the serving path for another process: one JSON line in on stdin (a list of texts), one out on stdout
    (the milliseconds `probabilities` took on them), until stdin closes. The first line out says it is ready."""
    import inference

    answers, sys.stdout = sys.stdout, sys.stderr  # whatever else prints cannot break the answers
    predictor = inference.load_from_environment()
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        texts = json.loads(line)
        start = time.perf_counter()
        predictor.probabilities(texts)
        print(json.dumps({"ms": (time.perf_counter() - start) * 1000}), file=answers, flush=True)


def call_api(client: httpx.Client, endpoint: str, review: str) -> object:
    """Gradio's documented HTTP call, as `curl` makes it: POST the input, then read the result stream."""
    event = client.post(f"/gradio_api/call/{endpoint}", json={"data": [review]}).json()["event_id"]
    with client.stream("GET", f"/gradio_api/call/{endpoint}/{event}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return json.loads(line[5:])
    raise RuntimeError("the result stream ended without data")


def start_server(port: int, argv: list[str] | None = None) -> tuple[subprocess.Popen, httpx.Client, float]:
    """`python app.py` (or `python argv`) on 127.0.0.1:`port`, the client once it answered, and the seconds that
    took."""
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, *(argv or [str(SPACE_DIR / "app.py")])], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    while True:
        try:
            call_api(client, "probability", "A fine film.")
            return server, client, time.perf_counter() - started
        except httpx.TransportError:  # the port opens once the model is loaded
            if server.poll() is not None or time.perf_counter() - started > STARTUP_TIMEOUT_S:
                server.kill()
                raise SystemExit("the app did not start; run it alone to see why") from None
            time.sleep(0.05)


def over_http(rounds: int) -> None:
    from gradio_client import Client

    port = free_port()
    server, client, startup_s = start_server(port)
    try:
        verdict = "ok" if startup_s * 1000 < BUDGETS_MS["startup"] else "OVER"
        print(f"{'start-up to first answer (python app.py)':<46} {startup_s:8.2f} s  (budget < 15 s: {verdict})")
        review = words(REVIEW_WORDS)
        report("HTTP round trip /probability (curl's way)", timings_ms(lambda: call_api(client, "probability", review), rounds), BUDGETS_MS["http"])
        report("HTTP round trip /predict (curl's way)", timings_ms(lambda: call_api(client, "predict", review), rounds), BUDGETS_MS["http"])
        huge = ("a " * (HUGE_TEXT_BYTES // 2))[:HUGE_TEXT_BYTES]
        report("HTTP round trip /probability, 1 MB text", timings_ms(lambda: call_api(client, "probability", huge), 5))
        gradio_client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        report("gradio_client.predict /probability", timings_ms(lambda: gradio_client.predict(review, api_name="/probability"), max(5, rounds // 4)))
        now, peak = rss_mb(server.pid)
        verdict = "ok" if peak < MEMORY_BUDGET_MB else "OVER"
        print(f"{'resident memory of the server':<46} now {now:6.0f} MiB, peak {peak:6.0f} MiB  (budget < 1 GiB: {verdict})")
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)


def startup(rounds: int) -> None:
    """Start the bare app and the Space `rounds` times each, in turn: seconds to the first answer and memory peak."""
    apps = {"bare Gradio app importing TensorFlow": ["-c", BARE_APP], "the Space (python app.py)": None}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, argv in apps.items():
            server, client, seconds = start_server(free_port(), argv)
            figures[name].append((seconds, rss_mb(server.pid)[1]))
            client.close()
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
    parser.add_argument("--rounds", type=int, default=200, help="calls per latency figure")
    parser.add_argument("--startup", type=int, metavar="N",
                        help="only start the Space and a bare Gradio app N times each and compare their start-up")
    parser.add_argument("--timing-worker", action="store_true",
                        help="only time the serving path on texts sent as JSON lines (see training.benchmark)")
    args = parser.parse_args()
    if args.timing_worker:
        timing_worker()
        return
    print(f"CPUs: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    web_size()
    if args.startup:
        startup(args.startup)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return
    # The server first: once this process has imported TensorFlow, the libraries' pages are shared, and the
    # kernel keeps shared pages resident in the server too (see lean_memory.py).
    over_http(args.rounds)
    in_process(args.rounds)


if __name__ == "__main__":
    main()
