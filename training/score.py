"""Score a CSV of reviews of any size with a model folder, in chunks, with flat memory.

    python -m training.score --model-dir artifacts/full --data reviews.csv --out scored.csv

The output has the input's columns plus `probability` (of positive) and `label`, by the Space's rules:
an empty review gets neither, and a cell that a spreadsheet would run as a formula gets a leading `'`.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TextIO

import numpy as np

from training import artifacts
from training.data import DataError

CHUNK_ROWS = 20_000  # rows read, scored and written at a time
SPACE = Path(__file__).resolve().parent.parent / "space"


def space_module(name: str) -> ModuleType:
    """A module of the Space (space/ is uploaded alone, so it is no package here): the scores and the CSV
    rules of this command are the demo's own."""
    if str(SPACE) not in sys.path:
        sys.path.insert(0, str(SPACE))
    return importlib.import_module(name)


def serving_scorer(folder: Path) -> Callable[[Sequence[str]], np.ndarray]:
    """P(positive) for any number of texts through the Space's own serving path (compiled calls, the
    folder's text clean-up), so scores here equal the demo's."""
    return space_module("inference").load_predictor(folder).probabilities


def open_text(path: Path) -> TextIO:
    """A CSV or gzip'd CSV as UTF-8 text (a byte order mark is skipped)."""
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def check_paths(data: Path, out: Path, overwrite: bool) -> None:
    """Refuse, before any work, a missing --data, an --out that is --data, or an existing --out without overwrite."""
    if not data.is_file():
        raise DataError(f"data file not found: {data}")
    if out.exists() and out.samefile(data):
        raise DataError(f"--out {out} is the --data file; choose another --out")
    if out.is_dir():
        raise DataError(f"--out {out} is a folder; name the CSV file to write")
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; choose another --out or pass --overwrite to replace it")


def score_csv(folder: Path, data: Path, out: Path, chunk_rows: int = CHUNK_ROWS, overwrite: bool = False) -> int:
    """Write `out` (complete or not at all) with scores for every row of `data`; returns the row count."""
    check_paths(data, out, overwrite)
    artifacts.check_folder(folder)
    batch = space_module("batch")
    predictor = space_module("inference").load_predictor(folder)
    partial = out.with_name(f".{out.name}.partial")
    rows = 0
    try:
        with open_text(data) as handle:
            for chunk in batch.frames(handle, chunk_rows, max_columns=None):
                scored = batch.spreadsheet_safe(batch.score(chunk, predictor.scores, predictor.labels))
                scored.to_csv(partial, mode="w" if rows == 0 else "a", header=rows == 0, index=False)
                rows += len(chunk)
        os.replace(partial, out)
    except batch.BatchError as err:
        raise DataError(f"{data}: {err}") from None
    except (UnicodeDecodeError, OSError, EOFError) as err:  # OSError: a damaged gzip file
        raise DataError(f"{data} is not a readable UTF-8 CSV file ({type(err).__name__})") from None
    finally:
        partial.unlink(missing_ok=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="model folder made by training.train")
    parser.add_argument("--data", type=Path, required=True, help="CSV (or .csv.gz) with a 'review' column")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (never the --data file)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows held in memory at a time")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        rows = score_csv(args.model_dir, args.data, args.out, args.chunk_rows, args.overwrite)
    except (DataError, artifacts.FolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"scored {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
