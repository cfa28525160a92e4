"""A CSV of reviews in, the same rows and columns with `predicted_probability` and `predicted_label` first out: one
scorer for the Space's CSV tab and `python -m tools.score_csv`, with one rule for blank reviews and formulas."""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model_folder import THRESHOLD

TEXT_COLUMN = "review"
# Ours, named apart from a caller's own `label` or `probability` (ground truth, say), which are kept as they are;
# a CSV that already has one of these is refused, so no column is ever replaced.
PROBABILITY_COLUMN = "predicted_probability"
LABEL_COLUMN = "predicted_label"
ADDED_COLUMNS = (PROBABILITY_COLUMN, LABEL_COLUMN)
MAX_BYTES = 5 * 1024 * 1024  # also given to Gradio as the upload limit
MAX_ROWS = 10_000
# Wider files are refused from their header line alone: each column costs time and memory for every row.
MAX_COLUMNS = 100
OUTPUT_NAME = "scored_reviews.csv"
PREVIEW_ROWS = 20
HISTOGRAM_BINS = 10
NOT_SCORED = "(empty: not scored)"
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection), also after leading
# whitespace or line breaks, which some spreadsheets skip; a leading tab or carriage return is guarded too.
FORMULA_STARTS = ("=", "+", "-", "@")
CONTROL_STARTS = ("\t", "\r")
# A cell may hold a whole review, longer than the csv module's default limit of 128 KB.
csv.field_size_limit(MAX_BYTES)


class CsvError(ValueError):
    """The upload cannot be scored; the message says why and what to change."""


def frames(lines: Iterable[str], rows_per_frame: int, max_columns: int | None = MAX_COLUMNS) -> Iterator[pd.DataFrame]:
    """The CSV's rows as text, `rows_per_frame` at a time, every field under its header (short rows are
    padded with empty cells); CsvError if the header is wider than `max_columns` (None: no limit) or
    has no review column, if a row has more fields than the header, or if the text is not CSV.

    The csv module reads the header alone first, so a file of a million columns is refused before any
    row is parsed; and a longer row is refused, never shifted (pandas reads one as an extra index column).
    """
    reader = csv.reader(lines, strict=True)  # strict: an unterminated quote is an error, not the rest of the file
    try:
        header = next(reader, None)
        if header is None:
            raise CsvError("The file is empty.")
        if max_columns is not None and len(header) > max_columns:
            raise CsvError(f"The CSV has {len(header):,} columns; at most {max_columns:,} can be read.")
        if TEXT_COLUMN not in header:
            raise CsvError(f"The CSV needs a header row with a column named `{TEXT_COLUMN}`.")
        if len(set(header)) < len(header):
            raise CsvError("Two columns of the header row have the same name; rename one of them.")
        taken = [name for name in ADDED_COLUMNS if name in header]
        if taken:
            raise CsvError(f"The CSV already has a column named `{taken[0]}`, where the scores go; rename it.")
        rows: list[list[str]] = []
        sent = False
        for row in reader:
            if len(row) > len(header):
                raise CsvError(f"Line {reader.line_num} has {len(row):,} fields but the header has {len(header)}: "
                                 "quote the cells that contain commas.")
            if row:  # a blank line is no row
                rows.append(row + [""] * (len(header) - len(row)))
            if len(rows) == rows_per_frame:
                yield pd.DataFrame(rows, columns=header, dtype=str)
                rows, sent = [], True
    except csv.Error as error:
        raise CsvError(f"The file is not a readable CSV (line {reader.line_num}: {error}).") from None
    if rows or not sent:
        yield pd.DataFrame(rows, columns=header, dtype=str)


def score_frame(
    frame: pd.DataFrame, probabilities_or_nan: Callable[[Sequence[str]], np.ndarray], labels: Sequence[str]
) -> pd.DataFrame:
    """The rows with P(labels[1]) and the label at THRESHOLD as the first two columns, then every column of
    `frame`; a blank review (NaN from `probabilities_or_nan`) gets neither."""
    probabilities = probabilities_or_nan(frame[TEXT_COLUMN].tolist())
    out = frame.copy()
    out.insert(0, LABEL_COLUMN, [labels[int(p >= THRESHOLD)] if not np.isnan(p) else "" for p in probabilities])
    out.insert(0, PROBABILITY_COLUMN, np.round(probabilities, 6))
    return out


@dataclass(frozen=True)
class Scored:
    """How many rows a scored CSV has, and how many of them were blank (left without a score)."""

    rows: int
    blank: int


def score_file(
    lines: Iterable[str],
    out: Path,
    probabilities_or_nan: Callable[[Sequence[str]], np.ndarray],
    labels: Sequence[str],
    chunk_rows: int,
    max_columns: int | None = MAX_COLUMNS,
    max_rows: int | None = None,
) -> Scored:
    """Score the CSV `lines` into `out`, `chunk_rows` at a time (memory stays flat), spreadsheet-safe.
    CsvError as for `frames`, or if there are more than `max_rows` rows (None: no limit)."""
    rows = blank = 0
    for chunk in frames(lines, chunk_rows, max_columns):
        if max_rows is not None and rows + len(chunk) > max_rows:
            raise CsvError(f"The CSV has more than {max_rows:,} rows; split it into smaller files.")
        scored = score_frame(chunk, probabilities_or_nan, labels)
        spreadsheet_safe(scored).to_csv(out, mode="a" if rows else "w", header=not rows, index=False)
        rows, blank = rows + len(chunk), blank + int((scored[LABEL_COLUMN] == "").sum())
    return Scored(rows, blank)


def score_upload(
    path: Path, root: Path, probabilities_or_nan: Callable[[Sequence[str]], np.ndarray], labels: Sequence[str]
) -> tuple[Path, Scored]:
    """The CSV tab: score an upload into a fresh folder under `root` (Gradio's cache: see app.py); CsvError if it
    is over MAX_BYTES or MAX_ROWS, or unreadable (see `frames`). Read as one chunk of at most MAX_ROWS + 1
    rows, so a file with too many rows is refused before any is scored."""
    if path.stat().st_size > MAX_BYTES:
        raise CsvError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into smaller files.")
    root.mkdir(parents=True, exist_ok=True)  # again, in case something removed it
    folder = Path(tempfile.mkdtemp(dir=root))
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            scored = score_file(handle, folder / OUTPUT_NAME, probabilities_or_nan, labels, MAX_ROWS + 1,
                                max_rows=MAX_ROWS)
    except UnicodeDecodeError:
        shutil.rmtree(folder)
        raise CsvError("The file is not UTF-8 text; save it as a UTF-8 CSV.") from None
    except CsvError:
        shutil.rmtree(folder)
        raise
    return folder / OUTPUT_NAME, scored


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells (and headers) that a spreadsheet would run as a formula with an apostrophe."""

    def safe(value: object) -> object:
        if isinstance(value, str) and (value.lstrip().startswith(FORMULA_STARTS) or value.startswith(CONTROL_STARTS)):
            return "'" + value
        return value

    return frame.map(safe).rename(columns=safe)


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
