"""Score a CSV of reviews of any size with a model folder, in chunks, with flat memory, by the Space's own
serving path and CSV rules (review_csv.py); usage: tools/README.md."""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import inference
import review_csv

CHUNK_ROWS = 20_000  # rows read, scored and written at a time


class ScoreError(ValueError):
    """The input or output paths cannot be used; the message says why."""


def open_text(path: Path) -> TextIO:
    """A CSV or gzip'd CSV as UTF-8 text (a byte order mark is skipped)."""
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def check_paths(data: Path, out: Path, overwrite: bool) -> None:
    """Refuse, before any work, a missing --data, an --out that is --data, or an existing --out without overwrite."""
    if not data.is_file():
        raise ScoreError(f"data file not found: {data}")
    if out.exists() and out.samefile(data):
        raise ScoreError(f"--out {out} is the --data file; choose another --out")
    if out.is_dir():
        raise ScoreError(f"--out {out} is a folder; name the CSV file to write")
    if out.exists() and not overwrite:
        raise ScoreError(f"{out} already exists; choose another --out or pass --overwrite to replace it")


def score_csv(folder: Path, data: Path, out: Path, chunk_rows: int = CHUNK_ROWS, overwrite: bool = False) -> int:
    """Write `out` (complete or not at all) with scores for every row of `data`; returns the row count."""
    check_paths(data, out, overwrite)
    predictor = inference.load_predictor(folder)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with open_text(data) as handle:
            scored = review_csv.score_file(handle, partial, predictor.probabilities_or_nan, predictor.labels, chunk_rows,
                                           max_columns=None)
        os.replace(partial, out)
    except review_csv.CsvError as err:
        raise ScoreError(f"{data}: {err}") from None
    except (UnicodeDecodeError, OSError, EOFError) as err:  # OSError: a damaged gzip file
        raise ScoreError(f"{data} is not a readable UTF-8 CSV file ({type(err).__name__})") from None
    finally:
        partial.unlink(missing_ok=True)
    return scored.rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.score_csv", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="model folder made by training.train")
    parser.add_argument("--data", type=Path, required=True, help="CSV (or .csv.gz) with a 'review' column")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (never the --data file)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows held in memory at a time")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        rows = score_csv(args.model_dir, args.data, args.out, args.chunk_rows, args.overwrite)
    except (ScoreError, inference.ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"scored {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
