"""Measure the static Space against its budgets in headless Chromium and print the figures (not a test), next to
the Gradio Space's for the same reviews.

    python space/benchmark_static.py --model-dir artifacts/full [--no-gradio]

The model folder needs its browser copy (`python -m training.web_export --model-dir ...`). It is served here by a
small Hub look-alike on 127.0.0.1 (the page downloads it as from the Hub); the page's files are staged by
publish.py and served from another port. Needs Debian's `chromium` and the `playwright` package
(tests/requirements.txt).
"""

from __future__ import annotations

import argparse
import functools
import json
import http.server
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
from playwright.sync_api import sync_playwright

import publish

SPACE_DIR = Path(__file__).resolve().parent
SAMPLE_CSV = SPACE_DIR.parent / "training" / "data" / "imdb_sample.csv.gz"  # real reviews, bundled with the repo
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODEL_REPO, REVISION = "local/model", "local"
REVIEWS = 50  # real reviews timed one by one
HIGHLIGHT_WORDS = 230  # about the mean length of an IMDB review
HIGHLIGHT_ROUNDS = 3
TIMEOUT_MS = 120_000
BUDGETS = {"first answer s": 5, "one review ms": 150, "highlights s": 3, "download MB": 25}


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class ModelFiles(Quiet):
    """/{owner}/{name}/resolve/{revision}/{path} answered from the model folder, with the Hub's CORS header."""

    folder: Path

    def do_GET(self) -> None:
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/")[1:]]
        path = self.folder.joinpath(*parts[4:]) if len(parts) > 4 and parts[2] == "resolve" else None
        if path is None or ".." in parts or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(handler) -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reviews() -> tuple[list[str], str]:
    """REVIEWS real reviews, and the real review whose length is closest to HIGHLIGHT_WORDS words."""
    texts = pd.read_csv(SAMPLE_CSV)["review"].tolist()
    long = min(texts, key=lambda text: abs(len(text.split()) - HIGHLIGHT_WORDS))
    return texts[:REVIEWS], long


def body_bytes(responses: list) -> int:
    """Bytes of the responses' bodies as they came over the network (compressed where the server compressed)."""
    return sum(response.request.sizes()["responseBodySize"] for response in responses)


def static_figures(browser, site: str, texts: list[str], long: str) -> dict[str, float]:
    """The static page: load to first answer, one review, highlights, everything downloaded."""
    page = browser.new_page()
    responses: list = []
    page.on("response", lambda response: responses.append(response))
    start = time.perf_counter()
    page.goto(site, timeout=TIMEOUT_MS)
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
    ready = time.perf_counter() - start
    page.fill("#review", texts[0])
    page.click("#classify")
    page.wait_for_selector("#probability[data-value]", timeout=TIMEOUT_MS)
    first = time.perf_counter() - start
    downloaded = body_bytes(responses)
    one = []
    for text in texts:
        page.fill("#review", text)
        page.click("#classify")  # the probability is computed in the click's handler
        one.append(float(page.get_attribute("#probability", "data-ms")))
    page.wait_for_selector("#highlights[data-ms]", timeout=TIMEOUT_MS)
    highlights = []
    for _ in range(HIGHLIGHT_ROUNDS):
        page.evaluate("delete document.getElementById('highlights').dataset.ms")
        page.fill("#review", long)
        page.click("#classify")
        page.wait_for_selector("#highlights[data-ms]", timeout=TIMEOUT_MS)
        highlights.append(float(page.get_attribute("#highlights", "data-ms")) / 1000)
    page.close()
    return {"model ready s": ready, "first answer s": first, "one review ms": statistics.median(one),
            "one review max ms": max(one), "highlights s": statistics.median(highlights),
            "download MB": downloaded / 1e6}


def gradio_figures(browser, model_dir: Path, texts: list[str], long: str) -> dict[str, float]:
    """The Gradio Space on this machine, same reviews: the server is started first (not counted in the page
    load), one review through its API, highlights through its page."""
    port = free_port()
    env = {**os.environ, "MODEL_REPO": str(model_dir), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, str(SPACE_DIR / "app.py")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).close()
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - started > TIMEOUT_MS / 1000:
                    raise SystemExit("error: the Gradio Space did not start") from None
                time.sleep(0.2)
        server_start = time.perf_counter() - started
        page = browser.new_page()
        responses: list = []
        page.on("response", lambda response: responses.append(response))
        start = time.perf_counter()
        page.goto(url, timeout=TIMEOUT_MS)
        page.locator("#review textarea").fill(texts[0])
        page.locator("#classify").click()
        page.wait_for_function("() => document.querySelector('#probability input')?.value", timeout=TIMEOUT_MS)
        first = time.perf_counter() - start
        downloaded = body_bytes(responses)
        one = []
        for text in texts:
            request = urllib.request.Request(f"{url}/gradio_api/run/probability", method="POST",
                                             data=json.dumps({"data": [text]}).encode(),
                                             headers={"Content-Type": "application/json"})
            begin = time.perf_counter()
            urllib.request.urlopen(request, timeout=60).read()
            one.append((time.perf_counter() - begin) * 1000)
        highlights = []
        probe = long.split()[HIGHLIGHT_WORDS // 2]
        for _ in range(HIGHLIGHT_ROUNDS):
            page.goto(url, timeout=TIMEOUT_MS)
            page.locator("#review textarea").fill(long)
            begin = time.perf_counter()
            page.locator("#classify").click()
            page.locator("#highlights").get_by_text(probe).first.wait_for(timeout=TIMEOUT_MS)
            highlights.append(time.perf_counter() - begin)
        page.close()
    finally:
        server.terminate()
        server.wait()
    return {"server start s": server_start, "first answer s": first, "one review ms": statistics.median(one),
            "one review max ms": max(one), "highlights s": statistics.median(highlights),
            "download MB": downloaded / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python space/benchmark_static.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="a model folder with its web/ export")
    parser.add_argument("--no-gradio", action="store_true", help="measure the static page only")
    args = parser.parse_args(argv)
    if not (args.model_dir / publish.WEB_MANIFEST).is_file():
        print(f"error: {args.model_dir} has no {publish.WEB_MANIFEST}: run python -m training.web_export "
              f"--model-dir {args.model_dir}", file=sys.stderr)
        return 2
    texts, long = reviews()
    hub = serve(type("Files", (ModelFiles,), {"folder": args.model_dir.resolve()}))
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        publish.stage_static(Path(folder), MODEL_REPO, REVISION, hub)
        site = serve(functools.partial(Quiet, directory=folder)) + "/"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        figures = {"static": static_figures(browser, site, texts, long)}
        if not args.no_gradio:
            figures["gradio"] = gradio_figures(browser, args.model_dir, texts, long)
        browser.close()
    web = sum(p.stat().st_size for p in (args.model_dir / "web").iterdir())
    page = sum((SPACE_DIR / "static" / name).stat().st_size for name in publish.STATIC_FILES)
    print(f"model {args.model_dir}: web/ {web / 1e6:.1f} MB; page files {page / 1e3:.1f} kB (no runtime library); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {len(texts)} real reviews, highlights "
          f"of a {len(long.split())}-word review (median of {HIGHLIGHT_ROUNDS})")
    names = list(dict.fromkeys(name for result in figures.values() for name in result))
    print(f"{'figure':<20}" + "".join(f"{kind:>12}" for kind in figures) + f"{'budget':>10}")
    for name in names:
        cells = "".join(f"{result[name]:>12.3f}" if name in result else f"{'-':>12}" for result in figures.values())
        print(f"{name:<20}{cells}{BUDGETS.get(name, ''):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
