"""The benchmark's load (tools/loadtest.py) against the app: it counts every call and each failure; and the API
under concurrent callers, whose calls are batched together.

Speed is not asserted here: `tools.benchmark` prints the figures and their targets (see "Benchmark" in
space/tools/README.md).
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from space_support import queued_call
from tools import loadtest

RUN_TIMEOUT_S = 120


def test_a_short_load_gets_valid_answers_only_and_counts_each_call(app_url: str) -> None:
    results = loadtest.run_load(app_url, None, 8, 3.0, loadtest.texts())
    assert results.errors == {} and len(results.latencies_ms) > 8
    # Calls start until the duration is over; the last one ends within its timeout.
    assert 3.0 <= results.seconds < 3.0 + loadtest.REQUEST_TIMEOUT_S
    p50, p95, p99 = results.percentiles()
    assert 0 < p50 <= p95 <= p99


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


def test_failed_calls_are_counted_by_their_reason_and_the_servers_cost_is_read() -> None:
    """The server runs in this process, so its CPU time and memory are this process's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        results = loadtest.run_load(f"http://127.0.0.1:{server.server_port}", os.getpid(), 2, 1.0, loadtest.texts())
    finally:
        server.shutdown()
        server.server_close()
    assert results.errors == {"POST HTTP 503": len(results.latencies_ms)} and results.latencies_ms
    assert 0 < results.server_cpu_s <= os.cpu_count() * results.seconds
    now, peak = loadtest.rss_mb(os.getpid())
    assert 10 < now <= peak


def test_the_serving_table_compares_each_round_and_replaces_only_its_block(tmp_path) -> None:
    """tools.benchmark: the start ratio is taken per round (both apps saw the same load), and --update-readme
    rewrites what lies between the markers, nothing else, as often as it runs."""
    import numpy as np
    from tools import benchmark

    # Per round 1.2x, 1.0x and 1.4x: the median is 1.2x, where the medians' ratio would be 1.4x.
    starts = {benchmark.SPACE: np.array([[12.0, 900], [30.0, 910], [14.0, 905]]),
              benchmark.BARE: np.array([[10.0, 700], [30.0, 710], [10.0, 705]])}
    load = {"idle_cpu": 1.5, "rate_1": 40, "p50_1": 20, "p99_1": 50, "errors_1": 0, "cpu_ms_1": 3.0,
            "rate_50": 100, "p50_50": 400, "p99_50": 1000, "errors_50": 2, "cpu_ms_50": 4.0}
    table = benchmark.table(starts, {benchmark.SPACE: load, benchmark.BARE: {**load, "rate_50": 200, "cpu_ms_50": 2.0}},
                            7.3)
    assert "| time to the first answer | 14.0 s | 10.0 s | 1.20× |" in table
    assert "| calls a second, 50 clients | 100.0 | 200.0 | 0.50× |" in table
    assert "| server CPU a call, 50 clients | 4.0 ms | 2.0 ms | 2.00× |" in table
    assert "| failed calls | 2 | 2 |" in table and "| static page download (`web/`) | 7.3 MB |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n{benchmark.TABLE_START}\nold\n{benchmark.TABLE_END}\nThe rest.\n", encoding="utf-8")
    for _ in range(2):
        benchmark.update_readme(table, readme)
    assert readme.read_text(encoding="utf-8") == \
        f"# Title\n{benchmark.TABLE_START}\n{table}{benchmark.TABLE_END}\nThe rest.\n"
