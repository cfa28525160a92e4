"""The Space's seams (space/limits.py and how app.py uses it): a bound per kind of work, a cap on request bodies,
file inputs that take uploads only, the direct route, and a queue that rests while nobody calls."""

from __future__ import annotations

import asyncio
import http.client
import inspect
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import space_support  # noqa: F401  (the quiet environment, before gradio is imported)
from space_support import queued_call

import gradio as gr  # noqa: E402
from gradio import queueing  # noqa: E402

import limits  # noqa: E402

TIMEOUT_S = 60


async def held(gate: limits.Gate, release: threading.Event, session: str | None = None) -> str:
    """A call that keeps its place in `gate` until `release` is set."""
    return await gate.run(lambda: release.wait(TIMEOUT_S) and "done", session=session)


async def until(condition, deadline_s: float = TIMEOUT_S) -> None:
    """Wait, with a deadline, until `condition()` holds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    while not condition():
        assert loop.time() < give_up, "the condition never held"
        await asyncio.sleep(0.01)


def test_a_gate_refuses_at_once_past_its_line_and_lets_the_others_finish() -> None:
    async def scenario() -> tuple[list, str]:
        gate, release = limits.Gate(running=1, waiting=2), threading.Event()
        admitted = [asyncio.ensure_future(held(gate, release)) for _ in range(3)]  # one runs, two wait
        await until(lambda: gate.limiter.statistics().tasks_waiting == 2)
        with pytest.raises(gr.Error) as refused:
            await held(gate, release)
        release.set()
        return await asyncio.gather(*admitted), refused.value.message

    finished, message = asyncio.run(scenario())
    assert finished == ["done"] * 3 and message == limits.BUSY


def test_one_session_holds_at_most_its_share_of_a_gate() -> None:
    async def scenario() -> tuple[list, str]:
        gate, release = limits.Gate(running=1, waiting=10, per_session=2), threading.Event()
        mine = [asyncio.ensure_future(held(gate, release, "mine")) for _ in range(2)]
        await until(lambda: gate.sessions["mine"] == 2)
        with pytest.raises(gr.Error) as refused:
            await held(gate, release, "mine")
        theirs = asyncio.ensure_future(held(gate, release, "theirs"))  # another session still gets in line
        release.set()
        return await asyncio.gather(*mine, theirs), refused.value.message

    finished, message = asyncio.run(scenario())
    assert finished == ["done"] * 3 and message == limits.SESSION_BUSY.format(jobs=2)


def test_a_batch_gate_scores_waiting_calls_together_and_a_failure_reaches_only_its_batch() -> None:
    batches: list[list] = []
    release = threading.Event()

    def score(items: list) -> list:
        batches.append(items)
        release.wait(TIMEOUT_S)
        if "bad" in items:
            raise ValueError("bad input")
        return [f"{item}!" for item in items]

    async def scenario() -> tuple[list, str]:
        gate = limits.BatchGate(score, running=1, waiting=5, max_batch=3)
        first = asyncio.ensure_future(gate.run("a"))
        await until(lambda: batches)
        waiting = [asyncio.ensure_future(gate.run(item)) for item in ("b", "c", "bad", "d", "e")]
        await until(lambda: len(gate.pending) == 5)
        with pytest.raises(gr.Error) as refused:
            await gate.run("f")
        release.set()
        return await asyncio.gather(first, *waiting, return_exceptions=True), refused.value.message

    results, message = asyncio.run(scenario())
    assert message == limits.BUSY
    assert batches == [["a"], ["b", "c", "bad"], ["d", "e"]]
    assert results[0] == "a!" and results[4:] == ["d!", "e!"]
    assert all(isinstance(result, ValueError) for result in results[1:4])


def test_the_queue_rests_while_it_is_free() -> None:
    """The setting is not public: this fails when a Gradio upgrade renames or stops using it."""
    with gr.Blocks() as page:
        gr.Markdown("nothing")
    page.queue()
    polls = ("sleep_when_free", "progress_update_sleep_when_free")
    assert all(getattr(page._queue, name) < 0.02 for name in polls)  # Gradio's own, 1 and 10 ms
    limits.rest(page, 0.05)
    assert all(getattr(page._queue, name) == 0.05 for name in polls)
    assert "asyncio.sleep(self.sleep_when_free)" in inspect.getsource(queueing.Queue.start_processing)
    assert "asyncio.sleep(self.progress_update_sleep_when_free)" in inspect.getsource(
        queueing.Queue.start_progress_updates)


# The Space itself: a server with the tiny model.


def direct_call(client: httpx.Client, endpoint: str, value: object) -> httpx.Response:
    return client.post(f"/gradio_api/run/{endpoint}", json={"data": [value]})


@pytest.mark.slow
def test_a_body_over_its_cap_is_refused_before_it_is_read(app_url: str) -> None:
    host, port = urlsplit(app_url).hostname, urlsplit(app_url).port
    # 60 MB announced: the answer comes before a byte of the body is sent.
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    connection.putrequest("POST", "/gradio_api/call/probability")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(60 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "limit" in json.load(response)["detail"]
    connection.close()

    # Streamed without a length: refused once it passes the cap.
    def chunks() -> Iterator[bytes]:
        yield b'{"data": ["'
        for _ in range(64):
            yield b"a" * 65536
        yield b'"]}'

    with httpx.Client(base_url=app_url, timeout=TIMEOUT_S) as client:
        assert client.post("/gradio_api/run/probability", content=chunks()).status_code == 413
        # A legitimate call: one review at the text limit, every character escaped in JSON.
        review = json.dumps(["\u00e9" * 20_000], ensure_ascii=True)
        answered = client.post("/gradio_api/run/probability", content=f'{{"data": {review}}}',
                               headers={"Content-Type": "application/json"})
        assert answered.status_code == 200 and 0 <= answered.json()["data"][0] <= 1


@pytest.mark.slow
def test_a_url_given_for_a_file_is_refused_not_fetched(app_url: str) -> None:
    url_file = {"path": "https://example.com/reviews.csv", "meta": {"_type": "gradio.FileData"}}
    with httpx.Client(base_url=app_url, timeout=TIMEOUT_S) as client:
        status, event, data = queued_call(client, "score_csv", url_file)
    assert (status, event) == (200, "error") and data["error"] == limits.NO_URLS


@pytest.mark.slow
def test_the_direct_route_reaches_only_the_bounded_and_validated_api(app_url: str) -> None:
    with httpx.Client(base_url=app_url, timeout=TIMEOUT_S) as client:
        # The CSV tab is queued: not callable around the queue.
        assert direct_call(client, "score_csv", None).status_code == 404
        refused = direct_call(client, "probability", 5)
        assert refused.json()["error"] == "The review must be a string (or null for no review), not a number."
        assert direct_call(client, "predict", "   ").json()["data"] == [None]
        # The queued route validates before the call joins the queue.
        assert queued_call(client, "probability", [1])[:1] == (400,)


@pytest.mark.slow
def test_a_flood_of_csv_jobs_gets_busy_answers_and_never_delays_the_api(app_url: str, tmp_path: Path) -> None:
    upload = tmp_path / "reviews.csv"
    upload.write_text("review\n" + "".join(f'"A fine film, {n} stars, the plot thin."\n' for n in range(2000)))
    with httpx.Client(base_url=app_url, timeout=TIMEOUT_S) as client:
        with upload.open("rb") as handle:
            path = client.post("/gradio_api/upload", files={"files": handle}).json()[0]
        file = {"path": path, "meta": {"_type": "gradio.FileData"}}

        def csv_job(_: int) -> tuple[int, str, object]:
            with httpx.Client(base_url=app_url, timeout=TIMEOUT_S) as own:
                return queued_call(own, "score_csv", file)

        with ThreadPoolExecutor(30) as pool:
            flood = pool.map(csv_job, range(30))
            one_liners = [direct_call(client, "probability", f"Not bad, {n} stars.") for n in range(20)]
            jobs = list(flood)
    assert all(answer.status_code == 200 and 0 <= answer.json()["data"][0] <= 1 for answer in one_liners)
    busy = [data for _, event, data in jobs if event == "error"]
    assert busy and all(data["error"] == limits.BUSY for data in busy)
    assert all(status == 200 for status, _, _ in jobs)  # refused by the CSV tab's gate, not by a full queue
