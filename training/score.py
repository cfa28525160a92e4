"""Score a CSV of reviews of any size with a model folder, in chunks, with flat memory.

    python -m training.score --model-dir artifacts/full --data reviews.csv --out scored.csv

The output has the input's columns plus `probability` (of positive) and `label`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from training import artifacts
from training.data import TEXT_COLUMN, DataError
from training.evaluate import THRESHOLD

CHUNK_ROWS = 20_000  # rows read, scored and written at a time
SPACE = Path(__file__).resolve().parent.parent / "space"


def serving_scorer(folder: Path) -> Callable[[Sequence[str]], np.ndarray]:
    """P(positive) for any number of texts through the Space's own serving path (compiled calls, the
    folder's text clean-up), so scores here equal the demo's."""
    sys.path.insert(0, str(SPACE))
    from inference import load_predictor

    return load_predictor(folder).probabilities


def score_csv(folder: Path, data: Path, out: Path, chunk_rows: int = CHUNK_ROWS) -> int:
    """Write `out` (complete or not at all) with scores for every row of `data`; returns the row count."""
    artifacts.check_folder(folder)
    if not data.is_file():
        raise DataError(f"data file not found: {data}")
    labels = json.loads((folder / artifacts.TRAINING_CONFIG).read_text())["labels"]
    score = serving_scorer(folder)
    partial = out.with_name(f".{out.name}.partial")
    rows = 0
    try:
        reader = pd.read_csv(data, dtype=str, keep_default_na=False, chunksize=chunk_rows, encoding="utf-8")
        for chunk in reader:
            if TEXT_COLUMN not in chunk.columns:
                raise DataError(f"{data} has no {TEXT_COLUMN!r} column; found: {', '.join(map(repr, chunk.columns))}")
            chunk["probability"] = score(chunk[TEXT_COLUMN].tolist())
            chunk["label"] = np.where(chunk["probability"] >= THRESHOLD, labels[1], labels[0])
            chunk.to_csv(partial, mode="w" if rows == 0 else "a", header=rows == 0, index=False)
            rows += len(chunk)
        os.replace(partial, out)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{data} is not a readable UTF-8 CSV file ({type(err).__name__})") from None
    finally:
        partial.unlink(missing_ok=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="model folder made by training.train")
    parser.add_argument("--data", type=Path, required=True, help="CSV (or .csv.gz) with a 'review' column")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows held in memory at a time")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        rows = score_csv(args.model_dir, args.data, args.out, args.chunk_rows)
    except (DataError, artifacts.FolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"scored {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
