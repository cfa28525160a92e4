"""Read the reviews CSV, clean it, and split it reproducibly.

The input is the layout of the widely used "IMDB Dataset.csv": a `review` column with the text and a
`sentiment` column with `positive` or `negative`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

SAMPLE_CSV = Path(__file__).parent / "data" / "imdb_sample.csv.gz"
TEXT_COLUMN = "review"
LABEL_COLUMN = "sentiment"
# Index i is the name of class i; the model outputs P(class 1).
LABELS = ("negative", "positive")
LABEL_ALIASES = {"negative": 0, "neg": 0, "0": 0, "positive": 1, "pos": 1, "1": 1}
# The IMDB dump keeps the site's HTML line breaks; they are layout, not words.
LINE_BREAK = "<br />"
MIN_ROWS = 20


class DataError(ValueError):
    """The input file cannot be used; the message says why, in one line."""


@dataclass(frozen=True)
class Splits:
    """Texts and 0/1 labels of the three parts, and how many rows each cleaning step kept."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    counts: dict[str, int]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, so a model folder names the exact data it came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV or gzip'd CSV and keep `columns`; raise DataError if it is missing or unusable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path} is not a readable CSV file ({first_line})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(repr(c) for c in frame.columns[:10]) or "none"
        raise DataError(f"{path} lacks column(s) {', '.join(map(repr, missing))}; found: {found}")
    return frame[list(columns)]


def read_reviews(path: Path) -> pd.DataFrame:
    """The labelled reviews: `review` and `sentiment` columns."""
    return read_csv(path, (TEXT_COLUMN, LABEL_COLUMN))


def read_unlabeled(path: Path) -> pd.Series:
    """Review texts of a CSV with a `review` column (other columns are ignored), cleaned, empty ones dropped."""
    text = normalize_text(read_csv(path, (TEXT_COLUMN,))[TEXT_COLUMN])
    return text[text != ""]


def normalize_text(text: pd.Series) -> pd.Series:
    """Line breaks of the IMDB dump become spaces; surrounding whitespace goes."""
    return text.str.replace(LINE_BREAK, " ", regex=False).str.strip()


def parse_labels(values: pd.Series) -> pd.Series:
    """Map positive/negative, pos/neg and 1/0 (any case) to 1/0; raise DataError naming bad values."""
    labels = values.astype(str).str.strip().str.lower().map(LABEL_ALIASES)
    bad = labels.isna()
    if bad.any():
        examples = sorted(set(values[bad].astype(str)))[:5]
        # Row numbers as a spreadsheet shows them: the header is row 1.
        rows = [int(i) + 2 for i in values.index[bad][:5]]
        raise DataError(
            f"{int(bad.sum())} row(s) have a {LABEL_COLUMN!r} that is not positive/negative, "
            f"pos/neg or 1/0: values {examples} at rows {rows}"
        )
    return labels.astype("int64")


def clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Turn line breaks into spaces, drop empty reviews and exact duplicates; return rows and counts."""
    counts = {"rows_read": len(frame)}
    text = normalize_text(frame[TEXT_COLUMN])
    data = pd.DataFrame({"text": text, "label": parse_labels(frame[LABEL_COLUMN])})
    data = data[data["text"] != ""]
    counts["empty_dropped"] = counts["rows_read"] - len(data)
    if counts["empty_dropped"]:
        log.info("dropped %d empty review(s)", counts["empty_dropped"])
    # Duplicates go before the split so that no review is both trained and tested on.
    before = len(data)
    data = data.drop_duplicates(subset="text", keep="first")
    counts["duplicates_dropped"] = before - len(data)
    log.info("dropped %d duplicate review(s)", counts["duplicates_dropped"])
    counts["rows_used"] = len(data)
    return data.reset_index(drop=True), counts


def split(data: pd.DataFrame, test_size: float, val_size: float, seed: int) -> tuple[pd.DataFrame, ...]:
    """Stratified train/validation/test parts; `val_size` is a fraction of what remains after the test part."""
    rest, test = train_test_split(data, test_size=test_size, stratify=data["label"], random_state=seed)
    train, val = train_test_split(rest, test_size=val_size, stratify=rest["label"], random_state=seed)
    return train, val, test


def load_splits(path: Path, test_size: float, val_size: float, seed: int, max_rows: int = 0) -> Splits:
    """Read, validate, clean and split the CSV at `path` (only its first `max_rows` rows if set)."""
    frame = read_reviews(path)
    data, counts = clean(frame.head(max_rows) if max_rows else frame)
    if len(data) < MIN_ROWS:
        raise DataError(f"{path} has {len(data)} usable review(s); at least {MIN_ROWS} are needed")
    classes = data["label"].value_counts()
    if len(classes) < 2 or classes.min() < 3:
        present = ", ".join(f"{LABELS[i]}: {n}" for i, n in classes.items())
        raise DataError(f"{path} needs reviews of both classes, at least 3 each; found {present}")
    train, val, test = split(data, test_size, val_size, seed)
    counts.update(train=len(train), val=len(val), test=len(test))
    return Splits(train, val, test, counts)
