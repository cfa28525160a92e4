"""The load script (tools/loadtest.py): a short run against the app, its bounds, and how it reports failures.

Speed is not asserted here: the targets are printed by the script (see "Serving more traffic" in
space/tools/README.md); these tests check that it runs, counts and reports correctly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from space_support import SPACE_DIR, clean_env, queued_call

FIGURES = ("requests per second", "latency p50", "latency p95", "latency p99", "errors")
RUN_TIMEOUT_S = 120


def run_load(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.loadtest", "--url", url, *args], cwd=SPACE_DIR,
                          env=clean_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def figures(output: str) -> dict[str, float]:
    """The figures the script prints, by name; all of them must be there and be numbers."""
    found = dict(re.findall(rf"^({'|'.join(FIGURES)}): ([0-9.]+)", output, re.MULTILINE))
    assert set(found) == set(FIGURES), output
    return {name: float(value) for name, value in found.items()}


def requests_made(output: str) -> tuple[int, float]:
    """How many requests the run made, and in how many seconds."""
    count, seconds = re.search(r"^requests: (\d+) in ([0-9.]+) s$", output, re.MULTILINE).groups()
    return int(count), float(seconds)


def test_short_run_has_no_errors_and_prints_its_figures(app_url: str) -> None:
    result = run_load(app_url, "--clients", "8", "--duration", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    found = figures(result.stdout)
    requests, seconds = requests_made(result.stdout)
    assert found["errors"] == 0 and requests > 0
    # The figures are this run's: requests start until --duration, and the rate is their count over the time.
    assert seconds >= 5
    assert found["requests per second"] == pytest.approx(requests / seconds, rel=0.02, abs=0.1)
    assert re.search(r"^target \(.*\): (met|missed)$", result.stdout, re.MULTILINE)
    # The server's memory at the end and its peak, in MiB, plausible for a Python process that loaded a model.
    now, peak = map(int, re.search(r"^server memory at the end: (\d+) MiB, peak (\d+) MiB", result.stdout,
                                   re.MULTILINE).groups())
    assert 50 < now <= peak < 16_000


def test_request_count_is_bounded(app_url: str) -> None:
    result = run_load(app_url, "--clients", "4", "--duration", "60", "--max-requests", "12")
    assert result.returncode == 0, result.stdout + result.stderr
    assert requests_made(result.stdout)[0] == 12


def test_a_csv_flood_reports_how_each_job_ended(app_url: str) -> None:
    """--csv-flood: every job is counted once, as scored or refused at the CSV tab's door, beside the run."""
    result = run_load(app_url, "--clients", "1", "--duration", "3", "--warm-up", "0", "--csv-flood", "40")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = re.search(r"^CSV flood of .*: 40 jobs: (.*)$", result.stdout, re.MULTILINE).group(1)
    ended = {why: int(n) for why, n in re.findall(r"([^,]+) (\d+)(?:, |$)", counts)}
    assert sum(ended.values()) == 40 and ended["scored"] > 0 and set(ended) <= {"scored", "POST HTTP 503"}
    assert figures(result.stdout)["errors"] == 0


def two_step_call(url: str, endpoint: str, text: str) -> tuple[str, object]:
    """The API call as the README documents it: the event the stream ends with and its data."""
    with httpx.Client(base_url=url, timeout=RUN_TIMEOUT_S) as client:
        event_id = client.post(f"/gradio_api/call/{endpoint}", json={"data": [text]}).json()["event_id"]
        lines = [line for line in client.get(f"/gradio_api/call/{endpoint}/{event_id}").text.splitlines() if line]
    return lines[-2].removeprefix("event:").strip(), json.loads(lines[-1].removeprefix("data:"))


def test_concurrent_calls_are_answered_each_and_an_empty_text_fails_no_one(app_url: str) -> None:
    # Calls that wait together are batched; an empty text among them must not fail the others.
    texts = [f"{word} film, {n} stars." for n, word in enumerate(["A great", "A dull", "An odd"] * 8)]
    texts[5] = texts[17] = "   "
    calls = [(endpoint, text) for text in texts for endpoint in ("probability", "predict")]
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(lambda call: two_step_call(app_url, *call), calls))
    alone = {text: two_step_call(app_url, "probability", text)[1][0] for text in set(texts)}
    for (endpoint, text), (event, data) in zip(calls, answers):
        assert event == "complete", (endpoint, text, data)
        if not text.strip():
            assert data == [None]
        elif endpoint == "probability":
            assert data[0] == pytest.approx(alone[text], abs=1e-6)
        else:
            assert max(data[0].values()) >= 0.5 and sum(data[0].values()) == pytest.approx(1)
            assert alone[text] in (pytest.approx(p, abs=1e-6) for p in data[0].values())


# What a caller may send instead of a string, and what the error calls it.
NOT_TEXT = [(5, "a number"), (0.5, "a number"), (True, "a boolean"), (["A great film."], "an array"),
            ({"review": "A great film."}, "an object")]


def one_call(url: str, endpoint: str, value: object) -> tuple[int, str, object]:
    """space_support.queued_call on a client of its own."""
    with httpx.Client(base_url=url, timeout=RUN_TIMEOUT_S) as client:
        return queued_call(client, endpoint, value)


def test_a_call_that_is_not_text_is_refused_alone(app_url: str) -> None:
    """Numbers, booleans, arrays and objects get a clear error each; the texts and nulls sent with them
    (concurrently, so batched together) still get their answers."""
    texts = [f"{word} film, {n} stars." for n, word in enumerate(["A great", "A dull", "An odd"] * 4)]
    sent = [*texts[:6], *(value for value, _ in NOT_TEXT), None, *texts[6:]]
    kinds = {json.dumps(value): kind for value, kind in NOT_TEXT}
    calls = [(endpoint, value) for value in sent for endpoint in ("probability", "predict")]
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(lambda call: one_call(app_url, *call), calls))
    for (endpoint, value), (status, event, data) in zip(calls, answers):
        if value is None or isinstance(value, str):
            assert (status, event) == (200, "complete") and (data == [None]) == (value is None), (endpoint, value)
        else:
            expected = f"The review must be a string (or null for no review), not {kinds[json.dumps(value)]}."
            assert (status, data) == (400, {"detail": expected}), (endpoint, value)


class Unavailable(BaseHTTPRequestHandler):
    """Answers every request with 503, like an overloaded server."""

    def do_POST(self) -> None:
        self.send_error(503)

    def log_message(self, *args: object) -> None:
        pass


def test_failed_requests_are_counted_and_exit_non_zero() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_load(f"http://127.0.0.1:{server.server_port}", "--clients", "2", "--duration", "1")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1, result.stdout + result.stderr
    errors = figures(result.stdout)["errors"]
    assert errors == requests_made(result.stdout)[0] > 0
    assert f"POST HTTP 503: {int(errors)}" in result.stdout


@pytest.mark.parametrize("url", ["http://example.com:7860", "http://10.0.0.1:7860", "ftp://127.0.0.1:7860"])
def test_refuses_anything_but_this_machine(url: str) -> None:
    result = run_load(url, "--duration", "1")
    assert result.returncode != 0 and "refusing" in result.stderr
    assert "requests per second" not in result.stdout


def test_the_serving_table_compares_each_round_and_replaces_only_its_block(tmp_path) -> None:
    """tools.benchmark: the start ratio is taken per round (both apps saw the same load), and --update-readme
    rewrites what lies between the markers, nothing else, as often as it runs."""
    import numpy as np
    from tools import benchmark

    # Per round 1.2x, 1.0x and 1.4x: the median is 1.2x, where the medians' ratio would be 1.4x.
    starts = {benchmark.SPACE: np.array([[12.0, 900], [30.0, 910], [14.0, 905]]),
              benchmark.BARE: np.array([[10.0, 700], [30.0, 710], [10.0, 705]])}
    load = {"idle_cpu": 1.5, "rate_1": 40, "p50_1": 20, "p99_1": 50, "errors_1": 0,
            "rate_50": 100, "p50_50": 400, "p99_50": 1000, "errors_50": 2}
    table = benchmark.table(starts, {benchmark.SPACE: load, benchmark.BARE: {**load, "rate_50": 200}}, 7.3)
    assert "| time to the first answer | 14.0 s | 10.0 s | 1.20× |" in table
    assert "| calls a second, 50 clients | 100.0 | 200.0 | 0.50× |" in table
    assert "| failed calls | 2 | 2 |" in table and "| static page download (`web/`) | 7.3 MB |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n{benchmark.TABLE_START}\nold\n{benchmark.TABLE_END}\nThe rest.\n", encoding="utf-8")
    for _ in range(2):
        benchmark.update_readme(table, readme)
    assert readme.read_text(encoding="utf-8") == \
        f"# Title\n{benchmark.TABLE_START}\n{table}{benchmark.TABLE_END}\nThe rest.\n"
