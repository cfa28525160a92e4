"""The Space's seams (space/limits.py and how app.py uses it): a bound per kind of work, a cap on request bodies,
file inputs that take uploads only, the direct route, and a queue that rests while nobody calls."""

from __future__ import annotations

import asyncio
import http.client
import inspect
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.responses import JSONResponse

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


def test_a_batch_gate_is_idle_only_while_no_call_runs_or_waits() -> None:
    release, idle_while = threading.Event(), []

    def score(items: list) -> list:
        idle_while.append(gate.idle.is_set())
        release.wait(TIMEOUT_S)
        return items

    async def scenario() -> list:
        call = asyncio.ensure_future(gate.run("a"))
        await until(lambda: idle_while)
        release.set()
        return await call

    gate = limits.BatchGate(score, running=1, waiting=5, max_batch=3)
    assert gate.idle.is_set()
    assert asyncio.run(scenario()) == "a" and idle_while == [False] and gate.idle.is_set()


def door_client(lines_waiting: int) -> tuple[httpx.AsyncClient, list[bytes], int]:
    """A client of QueueDoor (a line of 2 for `score_csv`) in front of an app that records the bodies it gets,
    with `lines_waiting` events of `score_csv` in a real Gradio queue; and that event's index."""
    with gr.Blocks() as page:
        button, box = gr.Button(), gr.Textbox()
        button.click(lambda: "", None, box, api_name="score_csv")
        box.submit(lambda text: text, box, box, api_name="other")
    page.queue()
    csv_fn = next(fn for fn in page.fns.values() if fn.api_name == "score_csv")
    page._queue.create_event_queue_for_fn(csv_fn)
    page._queue.event_queue_per_concurrency_id[csv_fn.concurrency_id].queue.extend([object()] * lines_waiting)
    received: list[bytes] = []

    async def app(scope, receive, send) -> None:
        received.append((await receive())["body"])
        await JSONResponse({"ok": True})(scope, receive, send)

    door = limits.QueueDoor(app, page=page, lines={"score_csv": 2})
    return httpx.AsyncClient(transport=httpx.ASGITransport(door), base_url="http://door"), received, csv_fn._id


@pytest.mark.parametrize("waiting, refused", [(1, False), (2, True)])
def test_a_call_that_would_join_a_full_line_is_refused_at_the_door(waiting: int, refused: bool) -> None:
    async def scenario() -> tuple[list[int], list[bytes], bytes]:
        client, received, csv_index = door_client(waiting)
        other = json.dumps({"fn_index": csv_index + 1, "data": ["x"]}).encode()
        async with client:
            statuses = [(await client.post(path, content=body)).status_code for path, body in (
                ("/gradio_api/queue/join", json.dumps({"fn_index": csv_index, "data": []}).encode()),
                ("/gradio_api/call/score_csv", b'{"data": []}'),
                ("/gradio_api/call/v2/score_csv/", b'{"data": []}'),
                ("/gradio_api/queue/join", other),
                ("/gradio_api/call/other", b'{"data": ["x"]}'),
                ("/gradio_api/queue/join", b"not JSON"),
            )]
        return statuses, received, other

    statuses, received, other = asyncio.run(scenario())
    assert statuses[:3] == [503 if refused else 200] * 3 and statuses[3:] == [200] * 3
    # What passes the door reaches the app whole, the body it read too.
    assert received[-3:] == [other, b'{"data": ["x"]}', b"not JSON"]


def test_the_apis_calls_without_a_session_share_one_and_the_rest_pass_as_they_were() -> None:
    async def scenario() -> list[bytes]:
        received: list[bytes] = []

        async def app(scope, receive, send) -> None:
            received.append((await receive())["body"])
            await JSONResponse({"ok": True})(scope, receive, send)

        shared = limits.SharedSession(app, paths=["/gradio_api/run/probability"], session="api")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(shared), base_url="http://api") as client:
            for path, body in (("/gradio_api/run/probability", b'{"data": ["x"]}'),
                               ("/gradio_api/run/probability/", b' {"data": ["x"], "session_hash": "mine"}'),
                               ("/gradio_api/run/probability", b"{ }"),
                               ("/gradio_api/run/probability", b"not JSON"),
                               ("/gradio_api/run/other", b'{"data": ["x"]}')):
                assert (await client.post(path, content=body)).status_code == 200
        return received

    received = asyncio.run(scenario())
    parsed = [json.loads(body) for body in received[:3]]
    assert parsed == [{"session_hash": "api", "data": ["x"]}, {"session_hash": "mine", "data": ["x"]},
                      {"session_hash": "api"}]  # a caller's own session wins
    assert received[3:] == [b"not JSON", b'{"data": ["x"]}']


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
    upload = tmp_path / "reviews.csv"  # a second or so of scoring a job: the line fills while the jobs are sent
    upload.write_text("review\n" + "".join(f'"A fine film, {n} stars, the plot thin."\n' for n in range(10_000)))
    with httpx.Client(base_url=app_url, timeout=TIMEOUT_S) as client:
        with upload.open("rb") as handle:
            path = client.post("/gradio_api/upload", files={"files": handle}).json()[0]
        file = {"path": path, "meta": {"_type": "gradio.FileData"}}
        posted = [client.post("/gradio_api/call/score_csv", json={"data": [file]}) for _ in range(30)]
        one_liners = [direct_call(client, "probability", f"Not bad, {n} stars.") for n in range(20)]
        ended = [client.get(f"/gradio_api/call/score_csv/{job.json()['event_id']}").text.splitlines()[-3:]
                 for job in posted if job.status_code == 200]
    assert all(answer.status_code == 200 and 0 <= answer.json()["data"][0] <= 1 for answer in one_liners)
    # Past the CSV tab's line, refused at the door with "busy", before joining Gradio's queue (never "queue full").
    at_the_door = [job for job in posted if job.status_code != 200]
    assert at_the_door and all((job.status_code, job.json()) == (503, {"detail": limits.BUSY}) for job in at_the_door)
    # Those let in are scored, or refused by the gate with "busy" too.
    assert ended and all(event == "event: complete" or (event == "event: error" and limits.BUSY in data)
                         for event, data, _ in ended)
