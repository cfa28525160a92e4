"""Reading, label parsing, cleaning and splitting of the reviews CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.data import SAMPLE_CSV, DataError, clean, load_splits, locate, parse_labels, read_reviews


def write_csv(path: Path, reviews: list[str], labels: list[str]) -> Path:
    pd.DataFrame({"review": reviews, "sentiment": labels}).to_csv(path, index=False)
    return path


def balanced(n: int) -> tuple[list[str], list[str]]:
    reviews = [f"review number {i} was {'great' if i % 2 else 'awful'}" for i in range(n)]
    return reviews, ["positive" if i % 2 else "negative" for i in range(n)]


def test_labels_accept_every_spelling() -> None:
    values = pd.Series(["positive", "NEGATIVE", " Pos ", "neg", "1", "0", "Positive"])
    assert parse_labels(values).tolist() == [1, 0, 1, 0, 1, 0, 1]


def test_bad_labels_name_values_and_rows() -> None:
    values = pd.Series(["positive", "meh", "negative", "5"])
    with pytest.raises(DataError) as err:
        parse_labels(values)
    message = str(err.value)
    assert "'5'" in message and "'meh'" in message
    assert "rows [3, 5]" in message  # spreadsheet rows: the header is row 1


def test_clean_drops_empty_and_duplicates_and_keeps_the_text_as_written() -> None:
    frame = pd.DataFrame({
        "review": ["Great.<br /><br />Loved it", "", "   ", "Awful film", " Awful film\n", "Great.  Loved it"],
        "sentiment": ["positive", "negative", "positive", "negative", "negative", "positive"],
    })
    data, counts = clean(frame)
    assert data["text"].tolist() == ["Great.<br /><br />Loved it", "Awful film", "Great.  Loved it"]
    assert counts == {"rows_read": 6, "empty_dropped": 2, "duplicates_dropped": 1, "rows_used": 3}


def test_sample_splits_are_disjoint_stratified_and_deterministic() -> None:
    first = load_splits(SAMPLE_CSV, test_size=0.25, val_size=0.1, seed=7)
    again = load_splits(SAMPLE_CSV, test_size=0.25, val_size=0.1, seed=7)
    other = load_splits(SAMPLE_CSV, test_size=0.25, val_size=0.1, seed=8)
    parts = [set(first.train["text"]), set(first.val["text"]), set(first.test["text"])]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(map(len, parts)) == first.counts["rows_used"]
    assert first.counts["duplicates_dropped"] > 0  # the shipped sample holds real IMDB duplicates
    assert first.test["text"].tolist() == again.test["text"].tolist()
    assert first.test["text"].tolist() != other.test["text"].tolist()
    overall = (first.train["label"].mean() * len(first.train) + first.test["label"].mean() * len(first.test)
               + first.val["label"].mean() * len(first.val)) / first.counts["rows_used"]
    for part in (first.train, first.val, first.test):
        assert abs(part["label"].mean() - overall) < 0.02
    assert abs(len(first.test) / first.counts["rows_used"] - 0.25) < 0.01


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "nope.csv", "not found"),
        (lambda d: Path("no-such-folder/reviews.csv"), "data file not found"),  # a path, not a Hub dataset id
        (lambda d: (d / "x.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\xff\xfe") and d / "x.csv",
         "not UTF-8"),
        (lambda d: (d / "x.csv").write_text("text,stars\nhello,5\n") and d / "x.csv",
         "lacks the columns 'review', 'sentiment' or 'text', 'label'; found: 'text', 'stars'"),
        (lambda d: (d / "x.csv").write_bytes("review,sentiment\nun film \xe9mouvant,positive\n".encode("latin-1"))
         and d / "x.csv", "not UTF-8"),
        (lambda d: write_csv(d / "x.csv", *balanced(6)), "at least 20 are needed"),
        (lambda d: write_csv(d / "x.csv", balanced(30)[0], ["positive"] * 30), "both classes"),
        (lambda d: (d / "x.csv").write_text('review,sentiment\n"unclosed,positive\n' + "a,b\n" * 3) and d / "x.csv",
         "not a readable CSV"),
    ],
    ids=["missing", "missing-relative", "binary", "columns", "latin-1", "too-few", "one-class", "malformed"],
)
def test_bad_files_raise_one_line_errors(tmp_path: Path, make, expected: str) -> None:
    path = make(tmp_path)
    with pytest.raises(DataError) as err:
        load_splits(path, test_size=0.25, val_size=0.1, seed=0)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_reads_gzip_and_keeps_only_the_two_columns(tmp_path: Path) -> None:
    reviews, labels = balanced(30)
    frame = pd.DataFrame({"id": range(30), "review": reviews, "sentiment": labels})
    frame.to_csv(tmp_path / "x.csv.gz", index=False)
    assert list(read_reviews(locate(str(tmp_path / "x.csv.gz"))).columns) == ["review", "sentiment"]


def test_reads_parquet_in_the_hub_layout(tmp_path: Path) -> None:
    """stanfordnlp/imdb's columns: `text` and an integer `label`; a missing text counts as an empty review."""
    reviews, labels = balanced(30)
    frame = pd.DataFrame({"label": [int(label == "positive") for label in labels] + [1], "text": reviews + [None]})
    frame.to_parquet(tmp_path / "x.parquet")
    splits = load_splits(tmp_path / "x.parquet", test_size=0.25, val_size=0.1, seed=0)
    assert splits.counts["rows_read"] == 31 and splits.counts["empty_dropped"] == 1
    used = pd.concat([splits.train, splits.val, splits.test])
    assert sorted(used["text"]) == sorted(reviews)
    assert ((used["label"] == 1) == used["text"].str.endswith("great")).all()
    assert splits.source["files"]["reviews"]["file"] == "x.parquet" and splits.source["official_splits"] is None
