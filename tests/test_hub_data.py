"""Training data straight from the Hub, against the local Hub look-alike: a dataset id (its own train and test
splits, and its unsupervised split for pre-training), and one CSV file of a dataset repo.

huggingface_hub reads HF_ENDPOINT when it is imported, so every run is a fresh `python -m training.train`.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TINY_FLAGS, hub_env, run_module

from hub_server import FakeHub
from training import model_folder
from training.data import SAMPLE_CSV, SPLIT_FILES

IMDB = "stanfordnlp/imdb"
CSV_REPO = "scikit-learn/imdb"
CSV_FILE = "IMDB Dataset.csv"
GATED = "someone/gated-imdb"  # a gated copy of both: its files need an accepted access request
DEAD_ENDPOINT = "http://127.0.0.1:9"  # nothing listens there: the Hub is unreachable


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def imdb_layout(sample: pd.DataFrame) -> dict[str, bytes]:
    """Parquet files in the layout of stanfordnlp/imdb, from real reviews: `text` and `label` (0/1, -1 for
    unsupervised), each split sorted by label like the real files; one test review is also in train."""
    data = pd.DataFrame({"text": sample["review"], "label": (sample["sentiment"] == "positive").astype("int64")})
    train, test = data.iloc[:300], pd.concat([data.iloc[300:399], data.iloc[:1]])
    unsupervised = data.iloc[400:500].assign(label=-1)
    return {SPLIT_FILES["train"]: parquet(train.sort_values("label")),
            SPLIT_FILES["test"]: parquet(test.sort_values("label")),
            SPLIT_FILES["unsupervised"]: parquet(unsupervised)}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    # Unique reviews, so every count below follows from the layout alone.
    return pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).drop_duplicates("review").reset_index(drop=True)


@pytest.fixture
def datasets_hub(sample: pd.DataFrame):
    """The Hub with stanfordnlp/imdb's layout (LFS parquet files), a small "IMDB Dataset.csv" (a regular file), and a
    gated dataset with both."""
    with FakeHub() as hub:
        csv = {CSV_FILE: sample.iloc[:400].to_csv(index=False).encode()}
        hub.publish(IMDB, imdb_layout(sample), lfs=True)
        hub.publish(CSV_REPO, csv)
        hub.publish(GATED, {**imdb_layout(sample), **csv}, gated=True)
        yield hub


def train(hub: FakeHub, tmp_path: Path, *flags: str, endpoint: str | None = None):
    """`python -m training.train` with tiny settings, anonymous, against `hub` (or `endpoint`)."""
    env = {**hub_env(hub, tmp_path / "home", token=""), "HF_ENDPOINT": endpoint or hub.url}
    return run_module("training.train", "--out", str(tmp_path / "model"), *TINY_FLAGS, "--epochs", "1", *flags, env=env)


def card_header(folder: Path) -> dict:
    return yaml.safe_load((folder / model_folder.CARD).read_text(encoding="utf-8").split("---\n")[1])


@pytest.mark.slow
def test_official_splits_pinned_to_a_commit(datasets_hub: FakeHub, sample: pd.DataFrame, tmp_path: Path) -> None:
    pinned = datasets_hub.commits(IMDB, repo_type="dataset")[-1]
    files = datasets_hub.files(IMDB, repo_type="dataset")
    # A later push changes the test split: --data-revision keeps the run on the pinned commit.
    datasets_hub.publish(IMDB, {SPLIT_FILES["test"]: parquet(pd.DataFrame({"text": ["x"], "label": [1]}))}, lfs=True)
    result = train(datasets_hub, tmp_path, "--data", IMDB, "--data-revision", pinned, "--unlabeled", IMDB)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HTTP Request" not in result.stderr  # the Hub client's own lines stay out of the user's log
    folder = tmp_path / "model"
    config = json.loads((folder / model_folder.TRAINING_CONFIG).read_text())
    data = config["data"]
    assert data["official_splits"] == IMDB
    for part in ("train", "test"):
        assert data["files"][part] == {
            "file": Path(SPLIT_FILES[part]).name, "sha256": hashlib.sha256(files[SPLIT_FILES[part]]).hexdigest(),
            "repo": IMDB, "revision": pinned, "commit": pinned, "path": SPLIT_FILES[part]}
    # The test split whole (100 reviews, one of them also in train), the train split without that one.
    assert data["rows"]["test"] == 100 and data["rows"]["test_overlap_dropped"] == 1
    assert data["rows"]["train"] + data["rows"]["val"] == 300 - 1
    assert config["unlabeled_data"]["path"] == SPLIT_FILES["unsupervised"] and config["unlabeled_data"]["rows"] == 100

    header = card_header(folder)
    dataset = header["model-index"][0]["results"][0]["dataset"]
    assert dataset == {"type": IMDB, "name": dataset["name"], "config": "plain_text", "split": "test", "revision": pinned}
    assert header["datasets"] == [IMDB]


@pytest.mark.slow
def test_a_csv_file_of_a_dataset_repo_is_a_custom_split(datasets_hub: FakeHub, tmp_path: Path) -> None:
    result = train(datasets_hub, tmp_path, "--data", f"hf://datasets/{CSV_REPO}/{CSV_FILE}")
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "model"
    data = json.loads((folder / model_folder.TRAINING_CONFIG).read_text())["data"]
    content = datasets_hub.files(CSV_REPO, repo_type="dataset")[CSV_FILE]
    commit = datasets_hub.commits(CSV_REPO, repo_type="dataset")[-1]
    assert data["official_splits"] is None
    assert data["files"] == {"reviews": {"file": CSV_FILE, "sha256": hashlib.sha256(content).hexdigest(),
                                         "repo": CSV_REPO, "revision": "main", "commit": commit, "path": CSV_FILE}}
    assert data["rows"]["rows_read"] == 400

    header = card_header(folder)
    dataset = header["model-index"][0]["results"][0]["dataset"]
    assert dataset["type"] == CSV_REPO and dataset["revision"] == commit and "split" not in dataset
    assert "custom split" in dataset["name"] and header["datasets"] == [CSV_REPO]
    assert IMDB not in yaml.safe_dump(header)
    assert "not results on the test split of any Hub dataset" in (folder / model_folder.CARD).read_text()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--data", "someone/missing"], "no such dataset on the Hub"),
        (["--data", "hf://datasets/scikit-learn/imdb/missing.csv"], "missing.csv: no such file in the dataset"),
        (["--data", IMDB, "--data-revision", "v9"], "no such revision"),
        (["--data", "hf://scikit-learn/imdb/IMDB Dataset.csv"], "give a file of a dataset repo"),
        (["--data", IMDB, "--unlabeled", CSV_REPO], "no such file in the dataset"),
        (["--data", IMDB, "--unreachable"], "cannot reach the Hub"),
        (["--data", f"hf://datasets/{GATED}/{CSV_FILE}"], "the dataset is gated: accept its conditions"),
        (["--data", GATED], "the dataset is gated: accept its conditions"),
    ],
    ids=["no-dataset", "no-file", "no-revision", "model-repo", "no-unsupervised-split", "unreachable", "gated-file",
         "gated-splits"],
)
def test_bad_hub_data_is_one_line(datasets_hub: FakeHub, tmp_path: Path, flags: list[str], expected: str) -> None:
    endpoint = DEAD_ENDPOINT if "--unreachable" in flags else None
    result = train(datasets_hub, tmp_path, *[flag for flag in flags if flag != "--unreachable"], endpoint=endpoint)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "model").exists()
