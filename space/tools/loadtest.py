"""Drive the running Space's API with concurrent clients and print its throughput, latency, CPU and errors.
"Load test" in tools/README.md. Each client is a thread with its own connection and plain POSTs, as the card
documents: gradio_client's own bookkeeping would load a shared machine's cores."""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import itertools
import json
import math
import os
import platform
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np

from examples import ONE_LINERS

DEFAULT_URL = "http://127.0.0.1:7860"
DEFAULT_CLIENTS = [1, 50]
DEFAULT_DURATION_S = 60.0
DEFAULT_WARM_UP_S = 5.0
DEFAULT_MAX_REQUESTS = 100_000
MAX_CLIENTS = 500
MAX_DURATION_S = 600.0
REQUEST_TIMEOUT_S = 30.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MEMORY_BUDGET_MB = 1024
ENDPOINTS = ("probability", "predict")
SAMPLE_CSV = Path(__file__).resolve().parents[2] / "training" / "data" / "imdb_sample.csv.gz"
REAL_REVIEW_COUNT = 50
LONG_TEXT_WORDS = 20_000
# The share of each kind of text: mostly ordinary reviews and one-liners, a few pasted walls of text.
MIX = {"one-line": 0.45, "review": 0.45, "20,000 words": 0.10}
SEED = 6
# The latency tail: p99 at most this many times p50; an idle server under this share of a core (percent).
TARGET_TAIL = 3.0
TARGET_IDLE_CPU = 3.0
IDLE_S = 10.0
# --csv-flood: the upload is the bundled sample's reviews this many times over, sent by this many threads.
FLOOD_COPIES = 20
FLOOD_THREADS = 30


@dataclass
class Results:
    """What every client saw, collected under one lock: the latency of every request, failed or not."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seconds: float = 0.0  # of load, over every round
    server_cpu_s: float = math.nan  # the server's CPU time meanwhile (nan: not a process of this machine)

    def add(self, ms: float, why: str | None) -> None:
        with self.lock:
            self.latencies_ms.append(ms)
            if why is not None:
                self.errors[why] = self.errors.get(why, 0) + 1

    def rate(self) -> float:
        """Requests a second, over every round."""
        return len(self.latencies_ms) / self.seconds

    def percentiles(self) -> np.ndarray:
        """p50, p95 and p99 latency in ms, by nearest rank (a latency that was seen)."""
        return np.percentile(self.latencies_ms, [50, 95, 99], method="inverted_cdf")


def local_url(url: str) -> str:
    """`url` without a trailing slash if it names this machine; SystemExit otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
        raise SystemExit(f"refusing {url!r}: only http(s)://127.0.0.1, localhost or [::1] can be load-tested")
    return url.rstrip("/")


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
    if endpoint == "score_csv":
        return isinstance(data, list) and len(data) == 2
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


def call_queued(client: httpx.Client, endpoint: str, text: str) -> str | None:
    """One API call through Gradio's queue, its two steps; None if it succeeded, else why it failed."""
    # httpx's timeout is per read, and Gradio's heartbeats keep a stuck stream reading: bound the whole call.
    give_up = time.monotonic() + REQUEST_TIMEOUT_S
    posted = client.post(f"/gradio_api/call/{endpoint}", json={"data": [text]})
    if posted.status_code != 200:
        return f"POST HTTP {posted.status_code}"
    event_id = posted.json()["event_id"]
    event = None
    with client.stream("GET", f"/gradio_api/call/{endpoint}/{event_id}") as stream:
        if stream.status_code != 200:
            return f"GET HTTP {stream.status_code}"
        for line in stream.iter_lines():
            if time.monotonic() > give_up:
                return "no result within the timeout"
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    return "error event"
                return None if valid(endpoint, json.loads(line[5:])) else "answer of the wrong shape"
    return "stream ended without a result"


def flood_csv(url: str, jobs: int, corpus: dict[str, list[str]]) -> Counter:
    """Another caller floods the CSV tab: one upload, then `jobs` scoring calls through the queue, FLOOD_THREADS
    at a time; how each ended. The threads share one client: a client each costs more CPU than the server's
    refusals, and on one machine the flooder would then measure itself."""
    rows = "".join(f'"{review.replace(chr(34), chr(34) * 2)}"\n' for review in corpus["review"] * FLOOD_COPIES)
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        path = client.post("/gradio_api/upload", files={"files": ("reviews.csv", "review\n" + rows)}).json()[0]
        upload = {"path": path, "meta": {"_type": "gradio.FileData"}}

        def job(_: int) -> str:
            try:
                return call_queued(client, "score_csv", upload) or "scored"
            except httpx.HTTPError as error:
                return type(error).__name__

        with ThreadPoolExecutor(FLOOD_THREADS) as pool:
            return Counter(pool.map(job, range(jobs)))


def client_loop(url: str, number: int, corpus: dict[str, list[str]], deadline: float, tickets: itertools.count,
                max_requests: int, results: Results, names: Sequence[str] = ENDPOINTS) -> None:
    """One client: requests back to back, to each endpoint of `names` in turn, until the deadline or the request
    budget is spent."""
    chooser = random.Random(SEED + number)
    endpoints = itertools.cycle(names[number % len(names) :] + names[: number % len(names)])
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        # `next(tickets)` is atomic under the GIL, so the budget is shared without a lock.
        while time.monotonic() < deadline and next(tickets) < max_requests:
            text = chooser.choice(corpus[chooser.choices(list(MIX), list(MIX.values()))[0]])  # a kind, then a text
            started = time.perf_counter()
            try:
                why = call_run(client, next(endpoints), text)
            except (httpx.HTTPError, ValueError, KeyError) as error:  # transport, timeout, bad JSON
                why = type(error).__name__
            results.add((time.perf_counter() - started) * 1000, why)


def listening_pid(port: int) -> int | None:
    """The process that listens on TCP `port` of this machine (Linux's /proc), or None."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: listening
                sockets.add(f"socket:[{fields[9]}]")
    for descriptor in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):  # processes come and go
            if os.readlink(descriptor) in sockets:
                return int(descriptor.parts[2])
    return None


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a Linux process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def memory_report(pid: int | None) -> str:
    """The server's memory now and its peak, against MEMORY_BUDGET_MB."""
    if pid is None:
        return "server memory: no process of ours on the port"
    now, peak = rss_mb(pid)
    return (f"server memory at the end: {now:.0f} MiB, peak {peak:.0f} MiB (target under {MEMORY_BUDGET_MB} MiB: "
            f"{'met' if now < MEMORY_BUDGET_MB else 'missed'})")


def cpu_s(pid: int | None) -> float:
    """The CPU seconds process `pid` has used (Linux's /proc); nan for None."""
    if pid is None:
        return math.nan
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu(pid: int, seconds: float = IDLE_S) -> float:
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


def run_load(url: str, pid: int | None, clients: int, duration: float, max_requests: int,
             corpus: dict[str, list[str]], results: Results | None = None, names: Sequence[str] = ENDPOINTS) -> Results:
    """Every client's requests added to `results` (new ones by default), with the CPU time of the server (process
    `pid`) meanwhile."""
    results = results or Results()
    tickets = itertools.count()
    cpu_before = cpu_s(pid)
    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, daemon=True,
                                args=(url, n, corpus, started + duration, tickets, max_requests, results, names))
               for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.seconds += time.monotonic() - started
    results.server_cpu_s = (0 if math.isnan(results.server_cpu_s) else results.server_cpu_s) + cpu_s(pid) - cpu_before
    return results


def report(results: Results) -> float:
    """Print one server's figures; its requests per second."""
    latencies = results.latencies_ms
    errors = sum(results.errors.values())
    rps = results.rate()
    p50, p95, p99 = results.percentiles()
    print(f"requests: {len(latencies)} in {results.seconds:.1f} s")
    print(f"requests per second: {rps:.1f}")
    print(f"latency p50: {p50:.1f} ms")
    print(f"latency p95: {p95:.1f} ms")
    print(f"latency p99: {p99:.1f} ms")
    if latencies and not math.isnan(results.server_cpu_s):
        print(f"server CPU per request: {1000 * results.server_cpu_s / len(latencies):.1f} ms "
              f"({100 * results.server_cpu_s / results.seconds:.0f}% of a core)")
    print(f"errors: {errors}" + "".join(f"\n  {why}: {n}" for why, n in sorted(results.errors.items())))
    met = errors == 0 and p99 <= TARGET_TAIL * p50
    print(f"target (no errors, p99 <= {TARGET_TAIL:g}x p50): {'met' if met else 'missed'}")
    return rps


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the running Space (default {DEFAULT_URL})")
    parser.add_argument("--clients", type=int, nargs="+", default=DEFAULT_CLIENTS, help="concurrent clients, "
                        "one run per number (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="seconds of load per run")
    parser.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS, help="stop a run after this many")
    parser.add_argument("--baseline", metavar="URL", help="another running Space (say, the last release): each "
                        "run goes first to it, then to --url, and the rates are compared")
    parser.add_argument("--rounds", type=int, default=1, help="runs per server and number of clients, taking "
                        "turns with the baseline's (a shared machine's load changes); their figures are pooled")
    parser.add_argument("--warm-up", type=float, default=DEFAULT_WARM_UP_S, help="seconds of load on each server "
                        "before the runs, not counted (a Space that just started still compiles its programs; "
                        "default %(default)s)")
    parser.add_argument("--csv-flood", type=int, default=0, metavar="JOBS", help="meanwhile another caller sends "
                        "this many CSV jobs (one upload, then the jobs through the queue); how they ended is printed")
    args = parser.parse_args()
    url = local_url(args.url)
    baseline = local_url(args.baseline) if args.baseline else None
    if not (all(1 <= n <= MAX_CLIENTS for n in args.clients) and 0 < args.duration <= MAX_DURATION_S
            and args.max_requests > 0):
        parser.error(f"need 1-{MAX_CLIENTS} clients, 0-{MAX_DURATION_S:.0f} seconds and at least one request")

    corpus = texts()
    print(machine())
    # The server process on each URL's port (Linux's /proc), looked up once: None if not of this machine.
    pids = {target: listening_pid(urlsplit(target).port or 80) for target in filter(None, (baseline, url))}
    for target, pid in pids.items():
        if pid is not None:
            print(f"idle CPU of {target}: {idle_cpu(pid):.1f}% of a core over {IDLE_S:g} s (target < {TARGET_IDLE_CPU:g}%)")
        if args.warm_up:  # uncounted
            run_load(target, pid, max(args.clients), args.warm_up, args.max_requests, corpus)
    failed = False
    for clients in args.clients:
        pooled, loads = {}, []
        for _ in range(args.rounds):
            for target, pid in pids.items():
                loads.append(os.getloadavg()[0])
                with ThreadPoolExecutor(1) as flooder:
                    flood = flooder.submit(flood_csv, target, args.csv_flood, corpus) if args.csv_flood else None
                    pooled[target] = run_load(target, pid, clients, args.duration, args.max_requests, corpus,
                                              pooled.get(target))
                    if flood:
                        print(f"CSV flood of {target}: {args.csv_flood} jobs: " +
                              ", ".join(f"{why} {n}" for why, n in sorted(flood.result().items())))
        rates = {}
        for target, pid in pids.items():
            print(f"\n{clients} clients, {args.rounds} x {args.duration:g} s against {target} "
                  f"(load average {min(loads):.2f}-{max(loads):.2f})")
            rates[target] = report(pooled[target])
            print(memory_report(pid))
            failed |= bool(pooled[target].errors)
        if baseline:
            print(f"{clients} clients: {rates[url] / rates[baseline]:.2f}x the baseline's rate")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
