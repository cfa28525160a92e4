"""Train the `tutorial`, `bilstm` and default presets and the two bag-of-n-grams baselines on one split,
and compare them (what it measures and how: "Benchmark" in training/README.md)."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import replace
from pathlib import Path

import numpy as np

from training import model_folder
from training.benchmark_tables import headline, markdown, update_readmes
from training.config import PRESETS, ConfigError, TrainConfig, validate
from training.data import SAMPLE_CSV, load_splits, read_unlabeled

SPACE_DIR = Path(__file__).resolve().parent.parent / "space"
TIMING_WORKER = ("-m", "tools.benchmark", "--timing-worker")  # run in SPACE_DIR
RESULTS_JSON = "benchmark.json"
ROWS_JSON = "rows.json"  # each trained row as it finishes, so that --resume goes on after the last
SINGLE_CALLS = 200  # single-review latency samples per model
BATCH_SIZE = 256
BATCH_REPEATS = 3
THROUGHPUT_REVIEWS = 2_560  # real test reviews per throughput pass
QUICK = {"max_rows": 600, "epochs": 1, "ngram_vocab_size": 20_000, "sequence_length": 64}
QUICK_SINGLE_CALLS = 20  # a smoke test's figures mean nothing: time a few calls only
SPACE = " (Space)"  # a model's timer name through the Space's serving path
Timer = Callable[[list[str]], float]  # scores the texts, returns the milliseconds that took


def configs(ablation: bool) -> dict[str, TrainConfig]:
    """The rows to train, by folder name: the presets and, with `ablation`, the steps between them: each
    ingredient of the default added in turn."""
    rows = {"tutorial": PRESETS["tutorial"]}
    if ablation:
        rows["bilstm-random"] = replace(PRESETS["bilstm"], pretrain_embeddings=False, distill=False)
        rows["bilstm-ppmi"] = replace(PRESETS["bilstm"], distill=False)
    rows["bilstm"] = PRESETS["bilstm"]
    if ablation:
        rows["default-summed"] = replace(PRESETS["default"], calibrate=False, sentence_weight=0.0)
        rows["default-reviews"] = replace(PRESETS["default"], sentence_weight=0.0)
    rows["default"] = PRESETS["default"]
    return rows


def peak_rss_reset() -> None:
    """Start a new peak-memory measurement (Linux: clears VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset, in MB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def timed(score: Callable[[list[str]], np.ndarray]) -> Timer:
    """A timer of a scorer that runs in this process."""
    def timer(texts: list[str]) -> float:
        started = time.perf_counter()
        score(texts)
        return (time.perf_counter() - started) * 1000

    return timer


def folder_scorer(folder: Path) -> Callable[[list[str]], np.ndarray]:
    """P(positive) by the folder's model, loaded as its users load it (Keras, safe mode), in one compiled call."""
    from training.quiet_tf import keras, tf

    model = keras.saving.load_model(folder, safe_mode=True)
    call = tf.function(model, input_signature=[tf.TensorSpec([None], tf.string)])
    return lambda texts: call(tf.constant(list(texts))).numpy()[:, 0]


class WorkerFailed(RuntimeError):
    """The Space's timing worker stopped or did not start; the message says on which folder."""


@contextmanager
def space_timer(folder: Path) -> Iterator[Timer]:
    """A timer of the Space's serving path on the folder: the Space's timing worker in its own process, which
    times each call itself (so the pipe's cost is not counted)."""
    worker = subprocess.Popen([sys.executable, *TIMING_WORKER], text=True, cwd=SPACE_DIR, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env={**os.environ, "MODEL_REPO": str(folder.resolve())})

    def answer() -> dict:
        line = worker.stdout.readline()
        if not line:
            raise WorkerFailed(f"the Space's timing worker on {folder} stopped (exit status {worker.wait()}); "
                               f"run `cd space && MODEL_REPO={folder.resolve()} python {' '.join(TIMING_WORKER)}` to see why")
        return json.loads(line)

    def timer(texts: list[str]) -> float:
        worker.stdin.write(json.dumps(texts) + "\n")
        worker.stdin.flush()
        return answer()["ms"]

    try:
        answer()  # it says it is ready once the model is loaded and compiled
        yield timer
    finally:
        with suppress(BrokenPipeError):
            worker.stdin.close()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def speeds(timers: dict[str, Timer], texts: list[str], single_calls: int) -> dict[str, dict[str, float]]:
    """Single-review latency (real reviews and one-liners) and batch throughput of every model, measured
    in turns (one call of each model, then the next text) so that the machine's load falls on all alike."""
    from training.evaluate import last_sentences

    one_liners = last_sentences(texts)
    for timer in timers.values():
        timer(texts[:BATCH_SIZE])  # warm-up: compiled shapes, caches
    single = {name: {"real": [], "one_line": []} for name in timers}
    for text, line in zip(texts[:single_calls], one_liners[:single_calls]):
        for name, timer in timers.items():
            single[name]["real"].append(timer([text]))
            single[name]["one_line"].append(timer([line]))
    batches = [texts[i : i + BATCH_SIZE] for i in range(0, min(len(texts), THROUGHPUT_REVIEWS), BATCH_SIZE)]
    rates = {name: [] for name in timers}
    for _ in range(BATCH_REPEATS):
        for name, timer in timers.items():
            seconds = sum(timer(batch) for batch in batches) / 1000
            rates[name].append(sum(map(len, batches)) / seconds)
    return {name: {"p50_ms": float(np.percentile(single[name]["real"], 50)),
                   "p99_ms": float(np.percentile(single[name]["real"], 99)),
                   "one_line_p50_ms": float(np.percentile(single[name]["one_line"], 50)),
                   "batch_reviews_per_s": float(np.median(rates[name]))} for name in timers}


def add_speeds(rows: list[dict], scorers: dict, folders: dict[str, Path], texts: list[str],
               single_calls: int = SINGLE_CALLS) -> None:
    """Add each row's serving speeds: every scorer in this process, and every model folder through the Space."""
    with ExitStack() as workers:
        timers = {name: timed(score) for name, score in scorers.items()}
        timers |= {name + SPACE: workers.enter_context(space_timer(folder)) for name, folder in folders.items()}
        measured = speeds(timers, texts, single_calls)
    for row in rows:
        row.update(measured[row["model"]])
        space = measured.get(row["model"] + SPACE, {})
        row["space_one_line_p50_ms"], row["space_batch_reviews_per_s"] = (space.get("one_line_p50_ms"),
                                                                          space.get("batch_reviews_per_s"))


def quality(figures: dict) -> dict:
    """The test-part figures the table shows."""
    return {"accuracy": figures["accuracy"], "f1": figures["f1"], "ece": figures["ece"],
            "one_sentence_accuracy": figures["one_sentence"]["accuracy"],
            "one_sentence_ece": figures["one_sentence"]["ece"],
            "negation_accuracy": figures["negation_sentence"]["accuracy"],
            "negation_ece": figures["negation_sentence"]["ece"]}


def bench_preset(name: str, config: TrainConfig, splits, unlabeled, baselines: dict, out: Path, resume: bool) -> dict:
    """Train one preset into out/name (with `resume`, from its last completed epoch); its row without speeds."""
    from training.fit import fit_and_save

    peak_rss_reset()
    started = time.perf_counter()
    metrics = fit_and_save(config, splits, out / name, True, unlabeled, resume, baselines=baselines)
    train_seconds = time.perf_counter() - started
    train_peak = peak_rss_mb()
    return {
        "model": f"`{name}`",
        **quality(metrics["test"]),
        "train_seconds": train_seconds,
        "epoch_seconds": metrics["training"]["epoch_seconds"],
        "peak_rss_mb": train_peak,
        "parameters": metrics["model"]["parameters"],
        "folder_mb": sum(p.stat().st_size for p in (out / name).rglob("*") if p.is_file()) / 1e6,
    }


def trained_rows(presets: list[tuple[str, TrainConfig]], out: Path, resume: bool,
                 train: Callable[[str, TrainConfig], dict]) -> dict[str, dict]:
    """Each preset's row by `train`, in turn, each saved as it ends; with `resume`, the rows saved are kept."""
    saved = out / ROWS_JSON
    rows = json.loads(saved.read_text()) if resume and saved.is_file() else {}
    for name, config in presets:
        if rows.get(name, {}).get("config") != config.to_dict():
            rows[name] = {**train(name, config), "config": config.to_dict()}
            saved.write_text(json.dumps(rows, indent=2) + "\n")
    return {name: rows[name] for name, _ in presets}


def bench_baselines(splits, config: TrainConfig) -> tuple[list[dict], dict, dict]:
    """The baselines trained once on the same training part; their rows (without speeds), their test
    figures for the model folders' cards, and their scorers."""
    from training.evaluate import baseline_figures, train_baselines

    peak_rss_reset()
    started = time.perf_counter()
    baselines = train_baselines(splits, config)
    train_seconds = time.perf_counter() - started  # both baselines together
    figures = baseline_figures(baselines, splits.test)
    rows, scorers = [], {}
    for key, (name, model) in baselines.items():
        scorers[name] = lambda texts, model=model: model.predict_proba(list(texts))[:, 1]  # noqa: E731
        rows.append({
            "model": name, "key": key, **quality(figures[key]), "train_seconds": train_seconds,
            "epoch_seconds": None, "peak_rss_mb": peak_rss_mb(), "parameters": int(model[-1].coef_.size + 1),
            "folder_mb": None,  # scikit-learn models save only as pickle, which this project does not use
        })
    return rows, figures, scorers


def shown_command(argv: list[str]) -> str:
    """The command as the table shows it: files by their names alone (a reader has other folders), no --out."""
    shown, skip = [], False
    for arg in argv:
        if not skip and arg != "--out":
            shown.append(shlex.quote(Path(arg).name if Path(arg).exists() else arg))
        skip = arg == "--out"
    return " ".join(["python -m training.benchmark", *shown])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (`sys.argv` when `argv` is None)."""
    parser = argparse.ArgumentParser(prog="python -m training.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SAMPLE_CSV),
                        help="labelled reviews, as for training.train (default: the sample)")
    parser.add_argument("--unlabeled", metavar="FILE_OR_DATASET",
                        help="unlabeled reviews for the presets' word vectors and the bilstm preset's distillation")
    parser.add_argument("--out", type=Path, default=Path("artifacts/benchmark"), help="where the folders and results go")
    parser.add_argument("--ablation", action="store_true",
                        help="also train the steps between the presets: random embedding, PPMI word vectors, then the "
                        "default's steps: the n-gram branch with summed logits, the fitted output layer")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK} on the bundled sample")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted run in --out: rows it finished are kept, not trained again")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the table into training/README.md and its headline rows into README.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Our lines at INFO; the libraries' (one per HTTP request to the Hub, ...) from WARNING up.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("training").setLevel(logging.INFO)

    try:
        if args.ablation and not args.unlabeled:
            raise ConfigError("--ablation measures distillation, which learns from the --unlabeled reviews: give them")
        presets = {name: validate(replace(config, **(QUICK if args.quick else {})))
                   for name, config in configs(args.ablation).items()}
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    first = presets["default"]
    splits = load_splits(args.data, first.test_size, first.val_size, first.seed, first.max_rows)
    unlabeled = read_unlabeled(args.unlabeled) if args.unlabeled else None
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]

    baseline_rows, baselines, scorers = bench_baselines(splits, first)

    def train(name: str, config: TrainConfig) -> dict:
        used = unlabeled if config.pretrain_embeddings or config.distill else None
        return bench_preset(name, config, splits, used, baselines, args.out, args.resume)

    rows = list(trained_rows(list(presets.items()), args.out, args.resume, train).values())
    folders = {row["model"]: args.out / name for name, row in zip(presets, rows)}
    scorers |= {model: folder_scorer(folder) for model, folder in folders.items()}
    rows += baseline_rows
    try:
        add_speeds(rows, scorers, folders, splits.test["text"].tolist(),
                   QUICK_SINGLE_CALLS if args.quick else SINGLE_CALLS)
    except WorkerFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    command = shown_command(argv or sys.argv[1:])
    date = datetime.date.today().isoformat()
    header = (f"`{command}` on {date}: {len(splits.train):,} training and {len(splits.test):,} test reviews, "
              f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU; load average "
              f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.")
    table = markdown(rows, header)
    results = {"command": command, "date": date, "rows": rows, "splits": splits.counts}
    (args.out / RESULTS_JSON).write_text(json.dumps(results, indent=2) + "\n")
    (args.out / model_folder.BENCHMARK).write_text(table)
    # The default preset's folder carries the table, so its model card can quote it.
    (args.out / "default" / model_folder.BENCHMARK).write_text(table)
    from training.card import render_card

    render_card(args.out / "default").save(args.out / "default" / model_folder.CARD)
    if args.update_readme:
        update_readmes(table, headline(rows, header))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
