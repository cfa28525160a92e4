"""What keeps one caller from taking the Space from the others: gates, a door in front of Gradio's queue, a cap
on request bodies, one session for the API's session-less calls, file inputs that take uploads only ("Serving
more traffic" in tools/README.md)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

import anyio
import gradio as gr
from gradio.block_function import BlockFunction
from gradio_client import utils as client_utils
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUSY = "The Space is busy with other calls of this kind: try again in a few seconds."
SESSION_BUSY = "You already have {jobs} files being scored: wait for them to finish, then try again."
NO_URLS = ("Upload the file itself: a URL is not fetched (the Space would download it before it could check "
           "its size).")
TOO_LARGE = "The request body is over {cap:,} bytes, this route's limit."

Result = TypeVar("Result")


class Gate:
    """At most `running` calls at once, `waiting` more in line and, per session, at most `per_session` of
    either; any call past these is refused at once with a clear "busy, try again" (gr.Error)."""

    def __init__(self, running: int, waiting: int, per_session: int | None = None) -> None:
        self.limiter = anyio.CapacityLimiter(running)
        self.waiting = waiting
        self.per_session = per_session
        self.sessions: Counter[str] = Counter()  # only touched on the event loop: no lock

    @property
    def capacity(self) -> int:
        """The calls it holds at once, running or waiting."""
        return int(self.limiter.total_tokens) + self.waiting

    async def run(self, fn: Callable[..., Result], *args: object, session: str | None = None) -> Result:
        """`fn(*args)` in a worker thread once the gate lets it in."""
        if self.limiter.statistics().tasks_waiting >= self.waiting:
            raise gr.Error(BUSY, print_exception=False)
        if self.per_session is not None and session is not None:
            if self.sessions[session] >= self.per_session:
                raise gr.Error(SESSION_BUSY.format(jobs=self.sessions[session]), print_exception=False)
            self.sessions[session] += 1
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)
        finally:
            if self.per_session is not None and session is not None:
                self.sessions[session] -= 1
                if not self.sessions[session]:
                    del self.sessions[session]


class BatchGate:
    """Like Gate, for a function of a list: the items that wait while `running` calls are busy go in together,
    up to `max_batch` a call (one model call for many reviews costs little more than for one)."""

    def __init__(self, fn: Callable[[list], Sequence[Result]], running: int, waiting: int, max_batch: int) -> None:
        self.fn, self.running, self.waiting, self.max_batch = fn, running, waiting, max_batch
        self.pending: list[tuple[object, asyncio.Future]] = []  # only touched on the event loop: no lock
        self.busy = 0
        self.drains: set[asyncio.Task] = set()  # held, or the event loop may drop a running drain
        self.idle = threading.Event()  # set while no call runs or waits: other work can wait for it
        self.idle.set()

    async def run(self, item: object) -> Result:
        """fn([item, ...])'s answer for `item`."""
        if len(self.pending) >= self.waiting:
            raise gr.Error(BUSY, print_exception=False)
        answer = asyncio.get_running_loop().create_future()
        self.idle.clear()
        self.pending.append((item, answer))
        if self.busy < self.running:
            self.busy += 1
            task = asyncio.ensure_future(self.drain())
            self.drains.add(task)
            task.add_done_callback(self.drains.discard)
        return await answer

    async def drain(self) -> None:
        """Score what waits, a batch at a time, until nothing does."""
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                try:
                    results = await anyio.to_thread.run_sync(self.fn, [item for item, _ in batch])
                except Exception as error:  # every caller of the batch hears of it
                    for _, answer in batch:
                        answer.set_exception(error)
                else:
                    for (_, answer), result in zip(batch, results):
                        answer.set_result(result)
        finally:
            self.busy -= 1
            if not self.busy and not self.pending:
                self.idle.set()


class BodyCap:
    """ASGI middleware: a request whose body is over `cap_for(path)` bytes gets HTTP 413 before a route parses
    it, at once by its Content-Length, or as soon as a streamed (chunked) body passes the cap."""

    def __init__(self, app: ASGIApp, cap_for: Callable[[str], int]) -> None:
        self.app = app
        self.cap_for = cap_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = self.cap_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:  # the server reads no more than the length says
            if not length.isdigit() or int(length) > cap:
                return await too_large(cap, scope, receive, send)
            return await self.app(scope, receive, send)
        received, refused = 0, False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > cap and not refused:
                refused = True
                await too_large(cap, scope, receive, send)
                return {"type": "http.disconnect"}  # the route stops reading; its own answer is dropped
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)


async def too_large(cap: int, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": TOO_LARGE.format(cap=cap)}, status_code=413)(scope, receive, send)


class QueueDoor:
    """ASGI middleware: a call that would join a full line of Gradio's queue gets HTTP 503 (BUSY) at the door,
    before Gradio builds its session and its event (each costs the one event loop milliseconds), so a flood of
    one kind costs the server a JSON parse a call. `lines`: the most events of each API name that may wait."""

    JOIN = re.compile(r"/gradio_api/(?:queue/join|call/(?:v2/)?(?P<api_name>[^/]+))/?$")

    def __init__(self, app: ASGIApp, page: gr.Blocks, lines: dict[str, int]) -> None:
        self.app, self.page, self.lines = app, page, lines
        self.by_name = {fn.api_name: fn for fn in page.fns.values() if fn.api_name in lines}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        join = scope["type"] == "http" and scope["method"] == "POST" and self.JOIN.search(scope["path"])
        if not join or not self.by_name:
            return await self.app(scope, receive, send)
        name = join["api_name"]
        if name is None:  # the page and the Python client name the event by its index, in the body
            body, receive = await read_body(receive)
            fn = self.page.fns.get(fn_index(body))
            name = fn.api_name if fn else None
        if name in self.by_name and self.waiting(self.by_name[name]) >= self.lines[name]:
            return await JSONResponse({"detail": BUSY}, status_code=503)(scope, receive, send)
        await self.app(scope, receive, send)

    def waiting(self, fn: BlockFunction) -> int:
        """Events of `fn`'s concurrency group waiting in Gradio's queue (attributes of gradio.queueing, not public)."""
        line = self.page._queue.event_queue_per_concurrency_id.get(fn.concurrency_id)
        return len(line.queue) if line else 0


class SharedSession:
    """ASGI middleware: a POST to one of `paths` that names no Gradio session joins `session`. For such a call
    Gradio builds a new session, a copy of the configuration of every block of the page, which costs more than
    the model's answer to a short review. Only for events that keep nothing in a session."""

    def __init__(self, app: ASGIApp, paths: Sequence[str], session: str) -> None:
        self.app, self.paths, self.field = app, frozenset(paths), b'{"session_hash": %s' % json.dumps(session).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/") in self.paths:
            _, receive = await read_body(receive, self.joined)
        await self.app(scope, receive, send)

    def joined(self, body: bytes) -> bytes:
        """The JSON object `body` with the session first: a session of the caller's own, later, wins."""
        rest = body.lstrip()
        if not rest.startswith(b"{"):
            return body  # not an object: Gradio answers it as before
        rest = rest[1:]
        return self.field + (b"" if rest.lstrip().startswith(b"}") else b", ") + rest


async def read_body(receive: Receive, change: Callable[[bytes], bytes] = lambda body: body) -> tuple[bytes, Receive]:
    """The whole request body (BodyCap bounds it), and a `receive` that hands it, after `change`, on to the app as
    one message."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b"", receive
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, sent = change(b"".join(chunks)), False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def fn_index(body: bytes) -> int | None:
    """The `fn_index` of a JSON body to /gradio_api/queue/join, or None (Gradio answers a malformed one)."""
    try:
        index = json.loads(body).get("fn_index")
    except (ValueError, AttributeError):
        return None
    return index if isinstance(index, int) else None


class UploadedFile(gr.File):
    """gr.File that takes files uploaded to this server only: given a URL instead, Gradio would download all of it
    before the app could check its size."""

    is_template = True  # the page and the API docs show it as gr.File

    async def async_move_resource_to_block_cache(self, url_or_file_path: str | None) -> str | None:
        if isinstance(url_or_file_path, str) and client_utils.is_http_url_like(url_or_file_path):
            raise gr.Error(NO_URLS)
        return await super().async_move_resource_to_block_cache(url_or_file_path)


def rest(page: gr.Blocks, poll_s: float) -> None:
    """Let the queue of `page` (after `page.queue()`) look for new events and progress every `poll_s` seconds while
    it is free, instead of Gradio's 1 and 10 ms (attributes of gradio.queueing.Queue, not a public setting)."""
    page._queue.sleep_when_free = page._queue.progress_update_sleep_when_free = poll_s
