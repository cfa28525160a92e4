"""The batch tab: a CSV with a `review` column in, the same rows with `probability` and `label` out."""

from __future__ import annotations

import csv
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_COLUMN = "review"
PROBABILITY_COLUMN = "probability"
LABEL_COLUMN = "label"
MAX_BYTES = 5 * 1024 * 1024  # also given to Gradio as the upload limit
MAX_ROWS = 10_000
OUTPUT_NAME = "scored_reviews.csv"
PREVIEW_ROWS = 20
HISTOGRAM_BINS = 10
NOT_SCORED = "(empty: not scored)"
OUTPUT_TTL_SECONDS = 3600
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class BatchError(ValueError):
    """The upload cannot be scored; the message says why and what to change."""


def read_reviews(path: Path) -> pd.DataFrame:
    """Every column of the CSV as text; BatchError if it is too big, unreadable or has no review column."""
    if path.stat().st_size > MAX_BYTES:
        raise BatchError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into smaller files.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", nrows=MAX_ROWS + 1)
    except UnicodeDecodeError:
        raise BatchError("The file is not UTF-8 text; save it as a UTF-8 CSV.") from None
    except pd.errors.EmptyDataError:
        raise BatchError("The file is empty.") from None
    except (pd.errors.ParserError, csv.Error, ValueError):
        raise BatchError("The file is not a readable CSV (comma-separated, with a header row).") from None
    if TEXT_COLUMN not in frame.columns:
        raise BatchError(f"The CSV needs a header row with a column named `{TEXT_COLUMN}`.")
    if len(frame) > MAX_ROWS:
        raise BatchError(f"The CSV has more than {MAX_ROWS:,} rows; split it into smaller files.")
    return frame


def score(
    frame: pd.DataFrame, score_texts: Callable[[Sequence[str]], np.ndarray], labels: Sequence[str]
) -> pd.DataFrame:
    """The rows with P(labels[1]) and the label at threshold 0.5 added; empty reviews (NaN from
    `score_texts`) stay unscored."""
    scores = score_texts(frame[TEXT_COLUMN].tolist())
    out = frame.drop(columns=[PROBABILITY_COLUMN, LABEL_COLUMN], errors="ignore")
    out[PROBABILITY_COLUMN] = np.round(scores, 6)
    out[LABEL_COLUMN] = [labels[int(p >= 0.5)] if not np.isnan(p) else "" for p in scores]
    return out


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells (and headers) that a spreadsheet would run as a formula with an apostrophe."""

    def safe(value: object) -> object:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    return frame.map(safe).rename(columns=safe)


def write_csv(frame: pd.DataFrame, root: Path) -> Path:
    """Write a spreadsheet-safe CSV in a fresh folder under `root`; folders older than an hour are removed."""
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if time.time() - old.stat().st_mtime > OUTPUT_TTL_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(dir=root)) / OUTPUT_NAME
    spreadsheet_safe(frame).to_csv(path, index=False)
    return path


def summary(path: Path, labels: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the tab shows of a scored CSV as downloaded: its first rows, the count per label, and the
    histogram of P(labels[1]) in HISTOGRAM_BINS equal bins from 0 to 1."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    counts = frame[LABEL_COLUMN].replace("", NOT_SCORED).value_counts()
    counts = counts.reindex([*labels, *sorted(set(counts.index) - set(labels))], fill_value=0)
    probabilities = pd.to_numeric(frame[PROBABILITY_COLUMN], errors="coerce").dropna()
    reviews, edges = np.histogram(probabilities, bins=HISTOGRAM_BINS, range=(0, 1))
    bins = [f"{low:.1f}-{high:.1f}" for low, high in zip(edges[:-1], edges[1:])]
    return (frame.head(PREVIEW_ROWS),
            pd.DataFrame({LABEL_COLUMN: counts.index, "reviews": counts.to_numpy()}),
            pd.DataFrame({PROBABILITY_COLUMN: bins, "reviews": reviews}))
