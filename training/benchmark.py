"""Train the `seed` preset, the default preset and the TF-IDF baseline on one split, and compare them.

    python -m training.benchmark --data ../shared/data/imdb_reviews.csv.gz --update-readme
    python -m training.benchmark --quick          # the bundled sample, one epoch: a smoke test

Prints one markdown table and writes it, with the raw figures as JSON, to --out. Timings are
medians of repeats; since the machine is noisy, each speed is also given as a ratio to `seed`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from training import artifacts
from training.config import PRESETS, TrainConfig
from training.data import SAMPLE_CSV, load_splits, read_unlabeled
from training.evaluate import one_sentence_accuracy
from training.score import serving_scorer

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_START, TABLE_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
RESULTS_JSON = "benchmark.json"
SINGLE_CALLS = 200  # single-review latency samples per model
BATCH_SIZE = 256
BATCH_REPEATS = 3
QUICK = {"max_rows": 600, "epochs": 1}


def short_text_accuracy(score, splits) -> float:
    """Accuracy when the model sees only one sentence of each test review, labelled as its review."""
    return one_sentence_accuracy(score, splits.test["text"].tolist(), splits.test["label"].to_numpy())


def peak_rss_reset() -> None:
    """Start a new peak-memory measurement (Linux: clears VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset, in MB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def latency_ms(score, texts: list[str]) -> dict[str, float]:
    """p50/p99 of scoring one review at a time."""
    score(texts[:1])  # warm-up
    times = []
    for text in texts[:SINGLE_CALLS]:
        started = time.perf_counter()
        score([text])
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def throughput(score, texts: list[str]) -> float:
    """Reviews per second scoring `texts` in batches; the median of BATCH_REPEATS passes."""
    rates = []
    for _ in range(BATCH_REPEATS):
        started = time.perf_counter()
        for i in range(0, len(texts), BATCH_SIZE):
            score(texts[i : i + BATCH_SIZE])
        rates.append(len(texts) / (time.perf_counter() - started))
    return float(np.median(rates))


def bench_preset(name: str, config: TrainConfig, splits, args, unlabeled, out: Path) -> dict:
    """Train one preset into out/name and measure it."""
    from training.fit import fit_and_save

    peak_rss_reset()
    started = time.perf_counter()
    metrics = fit_and_save(config, splits, out / name, True, unlabeled)
    train_seconds = time.perf_counter() - started
    train_peak = peak_rss_mb()
    score = serving_scorer(out / name)
    texts = splits.test["text"].tolist()
    return {
        "model": f"BiLSTM `{name}`",
        "accuracy": metrics["lstm"]["accuracy"],
        "f1": metrics["lstm"]["f1"],
        "one_sentence_accuracy": short_text_accuracy(score, splits),
        "train_seconds": train_seconds,
        "seconds_per_epoch": metrics["training"]["seconds_per_epoch"],
        "epochs": metrics["training"]["epochs_run"],
        "peak_rss_mb": train_peak,
        "parameters": metrics["model"]["parameters"],
        "folder_mb": sum(p.stat().st_size for p in (out / name).rglob("*") if p.is_file()) / 1e6,
        **latency_ms(score, texts),
        "batch_reviews_per_s": throughput(score, texts),
    }


def bench_baseline(splits, seed: int) -> dict:
    """The TF-IDF + logistic-regression baseline on the same training part, measured the same way."""
    from training.evaluate import BASELINE_NAME, classification_metrics, train_baseline

    peak_rss_reset()
    started = time.perf_counter()
    baseline = train_baseline(splits.train["text"], splits.train["label"], seed)
    train_seconds = time.perf_counter() - started
    test = splits.test["text"].tolist()
    metrics = classification_metrics(splits.test["label"].to_numpy(), baseline.predict_proba(test)[:, 1])
    score = baseline.predict_proba
    return {
        "model": BASELINE_NAME,
        "accuracy": metrics["accuracy"],
        "f1": metrics["f1"],
        "one_sentence_accuracy": short_text_accuracy(lambda texts: score(list(texts))[:, 1], splits),
        "train_seconds": train_seconds,
        "seconds_per_epoch": None,
        "epochs": None,
        "peak_rss_mb": peak_rss_mb(),
        "parameters": int(baseline[-1].coef_.size + 1),
        "folder_mb": None,  # scikit-learn models save only as pickle, which this project does not use
        **latency_ms(score, test),
        "batch_reviews_per_s": throughput(score, test),
    }


def markdown(rows: list[dict], header: str) -> str:
    """One table: quality, training cost, size and serving speed, with speed ratios to `seed`."""
    seed = rows[0]

    def fmt(value, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    def ratio(row: dict, key: str, higher_is_faster: bool) -> str:
        if row[key] is None or seed[key] is None:
            return "–"
        return f"{(row[key] / seed[key]) if higher_is_faster else (seed[key] / row[key]):.2f}×"

    lines = [
        header,
        "One-sentence accuracy: the last sentence of each test review alone, labelled as its review.",
        "",
        "| model | test accuracy | test F1 | one-sentence accuracy | training wall s | s/epoch | epochs | peak RSS MB | parameters "
        "| folder MB | single p50 ms | single p99 ms | batch reviews/s | epoch speed vs seed "
        "| single speed vs seed | batch speed vs seed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['accuracy']:.4f} | {row['f1']:.4f} | {row['one_sentence_accuracy']:.4f} "
            f"| {row['train_seconds']:.0f} "
            f"| {fmt(row['seconds_per_epoch'], '.1f')} | {fmt(row['epochs'], 'd')} | {row['peak_rss_mb']:.0f} "
            f"| {row['parameters']:,} | {fmt(row['folder_mb'], '.1f')} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['batch_reviews_per_s']:,.0f} | {ratio(row, 'seconds_per_epoch', False)} "
            f"| {ratio(row, 'p50_ms', False)} | {ratio(row, 'batch_reviews_per_s', True)} |"
        )
    return "\n".join(lines) + "\n"


def update_readme(table: str) -> None:
    """Replace the table between the README's benchmark markers."""
    text = README.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    README.write_text(text[:start] + "\n" + table + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SAMPLE_CSV), help="labelled reviews, as for training.train (default: the sample)")
    parser.add_argument("--unlabeled", metavar="FILE_OR_DATASET", help="unlabeled reviews for the default preset")
    parser.add_argument("--out", type=Path, default=Path("artifacts/benchmark"), help="where the folders and results go")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK} on the bundled sample")
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args(argv)
    # Our lines at INFO; the libraries' (one per HTTP request to the Hub, ...) from WARNING up.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("training").setLevel(logging.INFO)

    presets = {name: replace(PRESETS[name], **(QUICK if args.quick else {})) for name in ("seed", "default")}
    first = presets["default"]
    splits = load_splits(args.data, first.test_size, first.val_size, first.seed, first.max_rows)
    unlabeled = read_unlabeled(args.unlabeled) if args.unlabeled else None
    args.out.mkdir(parents=True, exist_ok=True)

    rows = [bench_preset(name, config, splits, args, unlabeled if name == "default" else None, args.out)
            for name, config in presets.items()]
    rows.append(bench_baseline(splits, first.seed))

    command = "python -m training.benchmark " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    date = datetime.date.today().isoformat()
    header = (f"`{command}` on {date}: {len(splits.train):,} training and {len(splits.test):,} test reviews, "
              f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU.")
    table = markdown(rows, header)
    results = {"command": command, "date": date, "rows": rows, "splits": splits.counts}
    (args.out / RESULTS_JSON).write_text(json.dumps(results, indent=2) + "\n")
    (args.out / artifacts.BENCHMARK).write_text(table)
    # The default preset's folder carries the table, so its model card can quote it.
    (args.out / "default" / artifacts.BENCHMARK).write_text(table)
    from training.card import write_card

    write_card(args.out / "default")
    if args.update_readme:
        update_readme(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
