"""Shared by the Space's tests: a clean environment, the maintainers' tools and the app as a server.

The Space's modules are top-level modules of space/, as on Spaces: pytest.ini puts space/ on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from conftest import free_port

SPACE_DIR = Path(__file__).resolve().parent.parent / "space"
QUIET = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}
STARTUP_TIMEOUT_S = 120
# Texts at the tokenizer's edges: non-ASCII letters, emoji, lone surrogates, other whitespace and line breaks,
# punctuation, full-width letters, zero-width and combining characters.
AWKWARD_TEXTS = [
    "Ça MARCHE très BIEN, ÉTÉ ÎLE straße İstanbul", "I 😍 it!!! 👍🏽 Best film 🎬🎬 ever",
    "lone \ud800 surrogate \udfff here \ud83d", "tabs\tand\x0bvertical\x0cfeeds\r\nok",
    "no\u00a0break\u2003em\u2028line\u2029para\u3000ideographic", "don't can't won't it's <br />great<br /><br />film",
    "A-B-C a.b.c (x) [y] {z} \"q\" 'q' `q` ~!@#$%^&*_+=|\\/<>,;:?", "ＦＵＬＬ width Ｌetters and ﬁ ligature",
    "zero\u200bwidth\u200djoiner e\u0301 combining",
]

os.environ.update(QUIET)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Hugging Face settings or a login, plus the quiet settings and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "MODEL_", "SPACE_"))}
    return {**env, **QUIET, **extra}


def run_tool(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m tools.NAME args` in space/, in a fresh interpreter (environment `env`, default ours), and
    capture its output."""
    return subprocess.run([sys.executable, "-m", f"tools.{name}", *args], cwd=SPACE_DIR, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=600)


@contextmanager
def running_app(model_repo: Path | str, log: Path, unset: tuple[str, ...] = ()) -> Iterator[str]:
    """`python space/app.py` on a free port of 127.0.0.1, without the variables `unset`: its URL once it
    answers; stopped on exit."""
    port = free_port()
    env = clean_env(MODEL_REPO=str(model_repo), GRADIO_SERVER_PORT=str(port), HF_HOME=str(log.parent / "hf-home"))
    env = {name: value for name, value in env.items() if name not in unset}
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, str(SPACE_DIR / "app.py")], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start:\n{log.read_text(errors='replace')[-3000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def queued_call(client: httpx.Client, endpoint: str, value: object) -> tuple[int, str, object]:
    """A two-step call through Gradio's queue with any JSON value as the review: the POST's status, then the event
    the stream ends with and its data; or (status, "", the POST's JSON) when the POST is refused."""
    posted = client.post(f"/gradio_api/call/{endpoint}", json={"data": [value]})
    if posted.status_code != 200:
        return posted.status_code, "", posted.json()
    lines = [line for line in client.get(f"/gradio_api/call/{endpoint}/{posted.json()['event_id']}").text.splitlines()
             if line]
    return 200, lines[-2].removeprefix("event:").strip(), json.loads(lines[-1].removeprefix("data:"))
