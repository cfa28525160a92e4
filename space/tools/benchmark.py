"""Measure what serving costs, beside a bare Gradio app that imports TensorFlow: start, memory, throughput,
latency, the server's CPU time a call and at rest, and the static page's download; print them, and with
--update-readme write README.md's table.
Usage: "Benchmark" in tools/README.md; `--timing-worker` times the serving path for `training.benchmark`."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from tools.loadtest import ENDPOINTS, idle_cpu, machine, rss_mb, run_load, texts

SPACE_DIR = Path(__file__).resolve().parent.parent
README = SPACE_DIR.parent / "README.md"
TABLE_START, TABLE_END = "<!-- serving:start -->", "<!-- serving:end -->"

STARTUP_ROUNDS = 3
STARTUP_TIMEOUT_S = 120
STARTUP_BUDGET_RATIO = 1.3  # the Space's time to its first answer, against the bare app's
MEMORY_BUDGET_MB = 1024  # the peak while the Space loads
WEB_BUDGET_MB = 8
CLIENTS = (1, 50)
LOAD_S = 20.0  # of load at each number of clients
WARM_UP_S = 15.0  # of load first, uncounted, while the Space compiles its other programs (inference.warm_up)
TARGET_TAIL = 3.0  # p99 at most this many times p50
IDLE_S = 10.0
TARGET_IDLE_CPU = 3.0  # percent of a core
# The baseline: what any Gradio app that serves a TensorFlow model pays before its model, and the most calls a
# second that Gradio answers on this machine (a trivial function, queue-less as the Space's API).
BARE_APP = ("import gradio as gr, tensorflow as tf\n"
            "with gr.Blocks() as demo:\n"
            "    text = gr.Textbox()\n"
            "    text.submit(lambda text: 0.5, text, gr.Number(), api_name='probability', queue=False)\n"
            "demo.launch()")
SPACE, BARE = "the Space", "bare Gradio app"
APPS = {SPACE: (None, ENDPOINTS), BARE: (["-c", BARE_APP], ("probability",))}  # argv, endpoints to load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timing_worker() -> None:
    """Time the serving path for another process: one JSON line in on stdin (a list of texts), one out on stdout
    (the milliseconds `probabilities` took on them), until stdin closes. The first line out says it is ready."""
    import inference

    answers, sys.stdout = sys.stdout, sys.stderr  # whatever else prints cannot break the answers
    predictor = inference.load_from_environment()
    predictor.warm_up()
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        batch = json.loads(line)
        start = time.perf_counter()
        predictor.probabilities(batch)
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
                answer = client.post("/gradio_api/run/probability", json={"data": ["A fine film."]})
                if answer.is_success:
                    return server, time.perf_counter() - started
                server.kill()
                raise SystemExit(f"the app answered HTTP {answer.status_code}; run it alone to see why")
            except httpx.TransportError:  # the port opens once the model is loaded
                if server.poll() is not None or time.perf_counter() - started > STARTUP_TIMEOUT_S:
                    server.kill()
                    raise SystemExit("the app did not start; run it alone to see why") from None
                time.sleep(0.05)


def startup(rounds: int) -> dict[str, np.ndarray]:
    """Start each app `rounds` times, in turns: per app, the seconds to its first answer and its memory peak (MiB)."""
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in APPS}
    for _ in range(rounds):
        for name, (argv, _) in APPS.items():
            server, seconds = start_server(free_port(), argv)
            figures[name].append((seconds, rss_mb(server.pid)[1]))
            server.terminate()
            server.wait(timeout=30)
    return {name: np.array(runs) for name, runs in figures.items()}


def under_load(argv: list[str] | None, names: tuple[str, ...], duration: float) -> dict[str, float]:
    """One app's calls a second, p50 and p99 (ms), errors and server CPU time a call (ms) per number of clients, then
    its CPU at rest (% of a core) once the load is over."""
    port = free_port()
    server, _ = start_server(port, argv)
    url, corpus, figures = f"http://127.0.0.1:{port}", texts(), {}
    try:
        run_load(url, server.pid, max(CLIENTS), WARM_UP_S, corpus, names)
        for clients in CLIENTS:
            results = run_load(url, server.pid, clients, duration, corpus, names)
            p50, _, p99 = results.percentiles()
            figures |= {f"rate_{clients}": results.rate(), f"p50_{clients}": p50, f"p99_{clients}": p99,
                        f"errors_{clients}": sum(results.errors.values()),
                        f"cpu_ms_{clients}": 1000 * results.server_cpu_s / len(results.latencies_ms)}
        return figures | {"idle_cpu": idle_cpu(server.pid, IDLE_S)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def web_mb() -> float | None:
    """The size of the model folder's browser copy (web/), when MODEL_REPO is a local folder that has one."""
    web = Path(os.environ.get("MODEL_REPO", "")).expanduser() / "web"
    return sum(path.stat().st_size for path in web.iterdir()) / 1e6 if web.is_dir() else None


def table(starts: dict[str, np.ndarray], loads: dict[str, dict[str, float]], web: float | None) -> str:
    """The figures as a Markdown table: each app's, their ratio and the target."""
    space, bare = loads[SPACE], loads[BARE]
    start_ratio = float(np.median(starts[SPACE][:, 0] / starts[BARE][:, 0]))  # per round: both saw the same load
    median = {name: np.median(runs, axis=0) for name, runs in starts.items()}
    top = max(CLIENTS)
    rows = [("time to the first answer", f"{median[SPACE][0]:.1f} s", f"{median[BARE][0]:.1f} s",
             f"{start_ratio:.2f}×", f"≤ {STARTUP_BUDGET_RATIO}×"),
            ("memory peak while starting", f"{median[SPACE][1]:.0f} MiB", f"{median[BARE][1]:.0f} MiB",
             f"{median[SPACE][1] / median[BARE][1]:.2f}×", f"< {MEMORY_BUDGET_MB} MiB"),
            *((f"calls a second, {n} client{'s' * (n > 1)}", f"{space[f'rate_{n}']:.1f}", f"{bare[f'rate_{n}']:.1f}",
               f"{space[f'rate_{n}'] / bare[f'rate_{n}']:.2f}×", "") for n in CLIENTS),
            (f"p99 / p50 latency, {top} clients", f"{space[f'p99_{top}'] / space[f'p50_{top}']:.1f}",
             f"{bare[f'p99_{top}'] / bare[f'p50_{top}']:.1f}", "", f"≤ {TARGET_TAIL:g}"),
            (f"server CPU a call, {top} clients", f"{space[f'cpu_ms_{top}']:.1f} ms", f"{bare[f'cpu_ms_{top}']:.1f} ms",
             f"{space[f'cpu_ms_{top}'] / bare[f'cpu_ms_{top}']:.2f}×", ""),
            (f"CPU at rest ({IDLE_S:g} s)", f"{space['idle_cpu']:.1f}% of a core", f"{bare['idle_cpu']:.1f}%", "",
             f"< {TARGET_IDLE_CPU:g}%"),
            ("failed calls", *(f"{sum(app[f'errors_{n}'] for n in CLIENTS):.0f}" for app in (space, bare)),
             "", "0")]
    if web is not None:
        rows.append(("static page download (`web/`)", f"{web:.1f} MB", "", "", f"≤ {WEB_BUDGET_MB} MB"))
    lines = [f"| | {SPACE} | {BARE} | ratio | target |", "|---|---|---|---|---|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def update_readme(text: str, path: Path = README) -> None:
    """Replace what lies between the serving table's markers in README.md."""
    page = path.read_text(encoding="utf-8")
    start, end = page.index(TABLE_START) + len(TABLE_START), page.index(TABLE_END)
    path.write_text(page[:start] + "\n" + text + page[end:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--startup", type=int, default=STARTUP_ROUNDS, metavar="N",
                        help="start the Space and the bare app N times each, in turns (default %(default)s)")
    parser.add_argument("--duration", type=float, default=LOAD_S, metavar="S",
                        help=f"seconds of load at {' and '.join(map(str, CLIENTS))} clients "
                        "(default %(default)s)")
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--timing-worker", action="store_true",
                        help="only time the serving path on texts sent as JSON lines (see training.benchmark)")
    args = parser.parse_args()
    if args.timing_worker:
        timing_worker()
        return
    if not os.environ.get("MODEL_REPO"):
        parser.error("set MODEL_REPO to the model the Space should serve (a Hub repo or a local folder)")
    if args.update_readme and TABLE_START not in (README.read_text(encoding="utf-8") if README.exists() else ""):
        parser.error(f"--update-readme: {README} has no {TABLE_START} marker")
    before = machine()
    starts = startup(args.startup)
    loads = {name: under_load(argv, names, args.duration) for name, (argv, names) in APPS.items()}
    text = (f"`python -m tools.benchmark` on {datetime.date.today()}, {before}; at the end: load average "
            f"{os.getloadavg()[0]:.2f}. The Space serves the model in `MODEL_REPO`; the bare app a function "
            "that returns 0.5. Each client calls `/probability` (and `/predict`, the Space) with one-liners, "
            "reviews and 20,000-word texts.\n\n" + table(starts, loads, web_mb()))
    print(text)
    if args.update_readme:
        update_readme(text)
        print(f"wrote the table into {README}")


if __name__ == "__main__":
    main()
