"""The load `tools.benchmark` puts on a server: concurrent clients calling its API, each a thread with its own
connection and plain POSTs, as the card documents (gradio_client's own bookkeeping would load a shared machine's
cores); what they saw, and the server's CPU and memory (Linux's /proc)."""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import os
import platform
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from examples import ONE_LINERS

REQUEST_TIMEOUT_S = 30.0
ENDPOINTS = ("probability", "predict")
SAMPLE_CSV = Path(__file__).resolve().parents[2] / "training" / "data" / "imdb_sample.csv.gz"
REAL_REVIEW_COUNT = 50
LONG_TEXT_WORDS = 20_000
# The share of each kind of text: mostly ordinary reviews and one-liners, a few pasted walls of text.
MIX = {"one-line": 0.45, "review": 0.45, "20,000 words": 0.10}
SEED = 6


@dataclass
class Results:
    """What every client saw, collected under one lock: the latency of every request, failed or not."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seconds: float = 0.0  # of load
    server_cpu_s: float = math.nan  # the server's CPU time meanwhile (nan: its process was not given)

    def add(self, ms: float, why: str | None) -> None:
        with self.lock:
            self.latencies_ms.append(ms)
            if why is not None:
                self.errors[why] = self.errors.get(why, 0) + 1

    def rate(self) -> float:
        """Requests a second."""
        return len(self.latencies_ms) / self.seconds

    def percentiles(self) -> np.ndarray:
        """p50, p95 and p99 latency in ms, by nearest rank (a latency that was seen)."""
        return np.percentile(self.latencies_ms, [50, 95, 99], method="inverted_cdf")


def texts() -> dict[str, list[str]]:
    """The texts of each kind: one-liners, real reviews from the bundled sample, 20,000-word texts."""
    with gzip.open(SAMPLE_CSV, "rt", encoding="utf-8", newline="") as handle:
        reviews = [row["review"] for row in itertools.islice(csv.DictReader(handle), REAL_REVIEW_COUNT)]
    words = " ".join(reviews).split()
    long_texts = [" ".join(itertools.islice(itertools.cycle(words[offset:] + words[:offset]), LONG_TEXT_WORDS))
                  for offset in (0, len(words) // 2)]
    return {"one-line": list(ONE_LINERS), "review": reviews, "20,000 words": long_texts}


def valid(endpoint: str, data: object) -> bool:
    """Whether an answer has the documented shape: [p] for /probability, [{label: p, ...}] for /predict."""
    if not (isinstance(data, list) and len(data) == 1):
        return False
    answer = data[0]
    if endpoint == "probability":
        return isinstance(answer, (int, float)) and 0 <= answer <= 1
    return (isinstance(answer, dict) and len(answer) == 2
            and all(isinstance(p, (int, float)) and 0 <= p <= 1 for p in answer.values()))


def call_run(client: httpx.Client, endpoint: str, text: str) -> str | None:
    """One API call in one POST to /gradio_api/run/<api_name>; None if it succeeded, else why it failed."""
    posted = client.post(f"/gradio_api/run/{endpoint}", json={"data": [text]})
    if posted.status_code != 200:
        return f"POST HTTP {posted.status_code}"
    return None if valid(endpoint, posted.json().get("data")) else "answer of the wrong shape"


def client_loop(url: str, number: int, corpus: dict[str, list[str]], deadline: float, results: Results,
                names: Sequence[str] = ENDPOINTS) -> None:
    """One client: requests back to back, to each endpoint of `names` in turn, until the deadline."""
    chooser = random.Random(SEED + number)
    endpoints = itertools.cycle(names[number % len(names) :] + names[: number % len(names)])
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        while time.monotonic() < deadline:
            text = chooser.choice(corpus[chooser.choices(list(MIX), list(MIX.values()))[0]])  # a kind, then a text
            started = time.perf_counter()
            try:
                why = call_run(client, next(endpoints), text)
            except (httpx.HTTPError, ValueError, KeyError) as error:  # transport, timeout, bad JSON
                why = type(error).__name__
            results.add((time.perf_counter() - started) * 1000, why)


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a Linux process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_s(pid: int | None) -> float:
    """The CPU seconds process `pid` has used (Linux's /proc); nan for None."""
    if pid is None:
        return math.nan
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu(pid: int, seconds: float) -> float:
    """The share of one core that process `pid` uses over `seconds`, in percent."""
    before, started = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_s(pid) - before) / (time.monotonic() - started)


def machine() -> str:
    """The CPU model, its core count and the load average: figures from different machines or loads differ."""
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")]
    return (f"machine: {models[0] if models else platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f} (other work slows every figure)")


def run_load(url: str, pid: int | None, clients: int, duration: float, corpus: dict[str, list[str]],
             names: Sequence[str] = ENDPOINTS) -> Results:
    """`clients` clients calling the server at `url` for `duration` seconds: what they saw, with the CPU time of the
    server (process `pid`, or None) meanwhile."""
    results = Results()
    cpu_before = cpu_s(pid)
    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, daemon=True,
                                args=(url, n, corpus, started + duration, results, names))
               for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.seconds = time.monotonic() - started
    results.server_cpu_s = cpu_s(pid) - cpu_before
    return results
