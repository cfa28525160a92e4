"""Read the labelled reviews (a local file, a file of a Hub dataset repo, or a Hub dataset's own splits; the
layouts are in training/README.md), clean them, and split them reproducibly."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import fsspec
import httpx2  # the HTTP client huggingface_hub uses; its errors are the transport failures
import pandas as pd
from huggingface_hub import HfApi, RepoFile, constants, parse_hf_uri
from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, HfUriError, RepositoryNotFoundError,
                                   RevisionNotFoundError)
from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

SAMPLE_CSV = Path(__file__).parent / "data" / "imdb_sample.csv.gz"
TEXT_COLUMN = "review"
LABEL_COLUMN = "sentiment"
# Column pairs a file may have, in order of preference: "IMDB Dataset.csv", then stanfordnlp/imdb.
COLUMN_LAYOUTS = ((TEXT_COLUMN, LABEL_COLUMN), ("text", "label"))
# Index i is the name of class i; the model outputs P(class 1).
LABELS = ("negative", "positive")
LABEL_ALIASES = {"negative": 0, "neg": 0, "0": 0, "positive": 1, "pos": 1, "1": 1}
MIN_ROWS = 20
HUB_DATASETS = "hf://datasets/"
# A Hub dataset in the layout of stanfordnlp/imdb: one parquet file per split (label 0/1, -1 in unsupervised).
SPLIT_FILES = {
    "train": "plain_text/train-00000-of-00001.parquet",
    "test": "plain_text/test-00000-of-00001.parquet",
    "unsupervised": "plain_text/unsupervised-00000-of-00001.parquet",
}
DATASET_ID = re.compile(r"[\w.-]+/[\w.-]+")
DATA_FILE_SUFFIXES = (".csv", ".gz", ".parquet")
MESSAGE_CHARS = 300  # of a library's error, quoted in ours


class DataError(ValueError):
    """The input file cannot be used; the message says why, in one line."""


@dataclass(frozen=True)
class DataFile:
    """A file the reviews are read from, and what pins its content."""

    location: str  # a local path, or hf://datasets/OWNER/NAME@COMMIT/PATH
    sha256: str
    hub: dict[str, str] | None = None  # repo, revision, commit and path of a file of a Hub dataset repo

    def record(self) -> dict[str, str]:
        """What training_config.json says about the file."""
        return {"file": PurePosixPath(self.location).name, "sha256": self.sha256, **(self.hub or {})}


@dataclass(frozen=True)
class Splits:
    """Texts and 0/1 labels of the three parts, how many rows each cleaning step kept, and where they came from.

    `source` names the files read; its `official_splits` is the Hub dataset whose own train and test splits
    these are, or None when the test part was split off here (a custom split).
    """

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    counts: dict[str, int]
    source: dict


@dataclass(frozen=True)
class Unlabeled:
    """Cleaned review texts without labels, and the record of the file they came from."""

    texts: pd.Series
    source: dict[str, str]


def sha256_of(location: str | Path) -> str:
    """Hex SHA-256 of a file (local, or hf://...), so a model folder names the exact data it came from."""
    with fsspec.open(str(location), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def hub_file(repo: str, path: str, revision: str | None) -> DataFile:
    """The file `path` of the Hub dataset `repo`, pinned to the commit that `revision` (default main) is now; the
    Hub client's failures become one-line DataErrors."""
    api, what = HfApi(), f"{HUB_DATASETS}{repo}/{path}"
    try:
        api.auth_check(repo, repo_type="dataset")  # a gated dataset's files would be refused later, outside this block
        commit = api.dataset_info(repo, revision=revision).sha
        found = api.get_paths_info(repo, [path], repo_type="dataset", revision=commit)
        if not found or not isinstance(found[0], RepoFile):
            raise DataError(f"{what}: no such file in the dataset at {revision or 'main'}")
        location = f"{HUB_DATASETS}{repo}@{commit}/{path}"
        # The Hub hashes LFS files (the big ones) itself; a small regular file is hashed by reading it.
        sha256 = found[0].lfs.sha256 if found[0].lfs else sha256_of(location)
    except GatedRepoError:  # before RepositoryNotFoundError, its base class
        raise DataError(f"{what}: the dataset is gated: accept its conditions on its Hub page, then set HF_TOKEN "
                        "to a token of that account") from None
    except (RepositoryNotFoundError, FileNotFoundError):
        raise DataError(f"{what}: no such dataset on the Hub (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise DataError(f"{what}: no such revision of the dataset") from None
    except HfHubHTTPError as err:
        raise DataError(f"{what}: the Hub answered an error ({one_line(err)})") from None
    except (httpx2.HTTPError, OSError) as err:
        raise DataError(f"{what}: cannot reach the Hub at {constants.ENDPOINT} ({type(err).__name__}); "
                        "check the network or HF_ENDPOINT") from None
    return DataFile(location, sha256, {"repo": repo, "revision": revision or "main", "commit": commit, "path": path})


def one_line(err: Exception) -> str:
    """An error's whole message on one line, cut to MESSAGE_CHARS (its type's name if it has none)."""
    return " ".join(str(err).split())[:MESSAGE_CHARS] or type(err).__name__


def locate(spec: str, revision: str | None = None) -> DataFile:
    """The file that `spec` names: a local path, or hf://datasets/OWNER/NAME[@REVISION]/PATH."""
    if not spec.startswith("hf://"):
        if not Path(spec).is_file():
            raise DataError(f"data file not found: {spec}")
        return DataFile(spec, sha256_of(spec))
    try:
        uri = parse_hf_uri(spec)
    except HfUriError as err:
        raise DataError(f"{spec} is not a Hub file path: {one_line(err)}") from None
    if uri.type != "dataset" or not uri.path_in_repo:
        raise DataError(f"{spec}: give a file of a dataset repo, {HUB_DATASETS}OWNER/NAME/PATH")
    if uri.revision and revision and uri.revision != revision:
        raise DataError(f"{spec} names revision {uri.revision!r} and --data-revision {revision!r}; give one")
    return hub_file(uri.id, uri.path_in_repo, uri.revision or revision)


def is_dataset_id(spec: str) -> bool:
    """Whether `spec` names a Hub dataset (OWNER/NAME) rather than a local file (one that exists, or that
    ends like a data file: a mistyped path stays a missing file)."""
    return (DATASET_ID.fullmatch(spec) is not None and not Path(spec).exists()
            and not spec.endswith(DATA_FILE_SUFFIXES))


def read_table(file: DataFile, layouts: tuple[tuple[str, ...], ...]) -> pd.DataFrame:
    """The columns of the first of `layouts` that the CSV or parquet file has, named as `layouts[0]`."""
    name = file.location
    try:
        if PurePosixPath(name).suffix == ".parquet":
            frame = pd.read_parquet(name)
        else:
            frame = pd.read_csv(name, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{name} is not UTF-8 text; save it as UTF-8 CSV") from None
    except (ValueError, OSError, EOFError) as err:  # pandas' and pyarrow's parse errors are ValueErrors
        raise DataError(f"{name} is not a readable CSV or parquet file ({one_line(err)})") from None
    for columns in layouts:
        if all(c in frame.columns for c in columns):
            return frame[list(columns)].set_axis(list(layouts[0]), axis=1)
    wanted = " or ".join(", ".join(map(repr, columns)) for columns in layouts)
    found = ", ".join(repr(c) for c in frame.columns[:10]) or "none"
    raise DataError(f"{name} lacks the columns {wanted}; found: {found}")


def read_reviews(file: DataFile) -> pd.DataFrame:
    """The labelled reviews: `review` and `sentiment` columns."""
    return read_table(file, COLUMN_LAYOUTS)


def read_unlabeled(spec: str, revision: str | None = None) -> Unlabeled:
    """Review texts of a file (a `review` or `text` column), or of a Hub dataset's unsupervised split,
    cleaned, empty ones dropped."""
    file = hub_file(spec, SPLIT_FILES["unsupervised"], revision) if is_dataset_id(spec) else locate(spec, revision)
    text = normalize_text(read_table(file, tuple(columns[:1] for columns in COLUMN_LAYOUTS))[TEXT_COLUMN])
    return Unlabeled(text[text != ""], file.record())


def normalize_text(text: pd.Series) -> pd.Series:
    """Surrounding whitespace goes; missing texts are empty. The rest stays as written (the IMDB dump's `<br />`
    included), since the model reads raw text."""
    return text.fillna("").str.strip()


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


def clean(frame: pd.DataFrame, deduplicate: bool = True) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop empty reviews and (if `deduplicate`) exact duplicates; return rows and counts."""
    counts = {"rows_read": len(frame)}
    text = normalize_text(frame[TEXT_COLUMN])
    data = pd.DataFrame({"text": text, "label": parse_labels(frame[LABEL_COLUMN])})
    data = data[data["text"] != ""]
    counts["empty_dropped"] = counts["rows_read"] - len(data)
    if counts["empty_dropped"]:
        log.info("dropped %d empty review(s)", counts["empty_dropped"])
    # Duplicates go before the split so that no review is both trained and tested on.
    before = len(data)
    if deduplicate:
        data = data.drop_duplicates(subset="text", keep="first")
        log.info("dropped %d duplicate review(s)", before - len(data))
    counts["duplicates_dropped"] = before - len(data)
    counts["rows_used"] = len(data)
    return data.reset_index(drop=True), counts


def check_usable(data: pd.DataFrame, where: str) -> None:
    """Raise DataError unless `data` has enough reviews of both classes to split and train on."""
    if len(data) < MIN_ROWS:
        raise DataError(f"{where} has {len(data)} usable review(s); at least {MIN_ROWS} are needed")
    classes = data["label"].value_counts()
    if len(classes) < 2 or classes.min() < 3:
        present = ", ".join(f"{LABELS[i]}: {n}" for i, n in classes.items())
        raise DataError(f"{where} needs reviews of both classes, at least 3 each; found {present}")


def load_splits(
    spec: str | Path, test_size: float, val_size: float, seed: int, max_rows: int = 0, revision: str | None = None
) -> Splits:
    """Read, validate, clean and split the reviews `spec` names: a Hub dataset (its own splits) or a file (its first
    `max_rows` rows if set), at `revision` if given ("Data" in training/README.md)."""
    if is_dataset_id(str(spec)):
        return load_dataset_splits(str(spec), revision, val_size, seed, max_rows)
    file = locate(str(spec), revision)
    frame = read_reviews(file)
    data, counts = clean(frame.head(max_rows) if max_rows else frame)
    check_usable(data, str(spec))
    # Stratified; `val_size` is a fraction of what remains after the test part.
    rest, test = train_test_split(data, test_size=test_size, stratify=data["label"], random_state=seed)
    train, val = train_test_split(rest, test_size=val_size, stratify=rest["label"], random_state=seed)
    counts.update(train=len(train), val=len(val), test=len(test))
    return Splits(train, val, test, counts, {"files": {"reviews": file.record()}, "official_splits": None})


def load_dataset_splits(dataset: str, revision: str | None, val_size: float, seed: int, max_rows: int = 0) -> Splits:
    """A Hub dataset's own splits (SPLIT_FILES), as "Data" in training/README.md says; `max_rows` samples that many
    training reviews (the file is sorted by label)."""
    files = {part: hub_file(dataset, SPLIT_FILES[part], revision) for part in ("train", "test")}
    frame = read_reviews(files["train"])
    if 0 < max_rows < len(frame):
        frame = frame.sample(n=max_rows, random_state=seed).sort_index()
    train, counts = clean(frame)
    test, test_counts = clean(read_reviews(files["test"]), deduplicate=False)
    in_test = train["text"].isin(set(test["text"]))
    train = train[~in_test]
    check_usable(train, files["train"].location)
    train, val = train_test_split(train, test_size=val_size, stratify=train["label"], random_state=seed)
    counts = {
        "rows_read": counts["rows_read"] + test_counts["rows_read"],
        "empty_dropped": counts["empty_dropped"] + test_counts["empty_dropped"],
        "duplicates_dropped": counts["duplicates_dropped"],
        "test_overlap_dropped": int(in_test.sum()),
        "rows_used": len(train) + len(val) + len(test),
        "train": len(train), "val": len(val), "test": len(test),
    }
    records = {part: file.record() for part, file in files.items()}
    return Splits(train, val, test, counts, {"files": records, "official_splits": dataset})
