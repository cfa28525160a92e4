"""The model folder as training writes it: the names of its files, writing it whole or not at all, and checking it.

space/model_folder.py reads it; tests/test_model_folder.py checks that the two sides agree.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import keras

# What metrics.json's figures mean, which the card states: a probability at or above THRESHOLD is positive; the
# calibration error uses CALIBRATION_BINS equal-width bins; the one-sentence test skips sentences shorter than
# MIN_SENTENCE_WORDS words. Here, not in evaluate.py, so that pushing a folder never imports TensorFlow.
THRESHOLD = 0.5
CALIBRATION_BINS = 15
MIN_SENTENCE_WORDS = 4

# Keras' unzipped model layout (`model.save(DIR, zipped=False)`).
KERAS_CONFIG = "config.json"
KERAS_METADATA = "metadata.json"
KERAS_WEIGHTS = "model.weights.h5"
# Ours.
TOKENIZER = "tokenizer.json"
TRAINING_CONFIG = "training_config.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
CURVES_PLOT = "training_curves.png"
CONFUSION_PLOT = "confusion_matrix.png"
CALIBRATION_PLOT = "calibration.png"
CARD = "README.md"
BENCHMARK = "benchmark.md"  # only in folders made by training.benchmark

REQUIRED_FILES = (KERAS_CONFIG, KERAS_METADATA, KERAS_WEIGHTS, TOKENIZER, TRAINING_CONFIG, METRICS)
JSON_FILES = (KERAS_CONFIG, KERAS_METADATA, TOKENIZER, TRAINING_CONFIG, METRICS)
# An HDF5 file starts with this signature; a truncated copy usually still has it, so the size is checked too.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class FolderError(ValueError):
    """A model folder is missing, incomplete or would be overwritten; the message says which."""


def training_state(out: Path) -> Path:
    """The folder beside `out` where a run keeps what `--resume` needs; it is removed when the run succeeds."""
    return out.parent / f".{out.name}.training"


def prepare_training_state(out: Path, settings: dict, resume: bool) -> None:
    """Create the state folder, or, with `resume`, reuse one whose run had exactly these settings."""
    state = training_state(out)
    recorded = state / "settings.json"
    if state.exists() and not resume:
        raise FolderError(f"an interrupted run left {state}: pass --resume to continue it, or delete it to start over")
    if recorded.is_file() and json.loads(recorded.read_text(encoding="utf-8")) != settings:
        raise FolderError(f"{state} holds a run with other settings or data; delete it to start over")
    state.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(settings, indent=2), encoding="utf-8")


def check_destination(out: Path, overwrite: bool) -> None:
    """Refuse, before any work is done, to replace an existing folder without `overwrite`."""
    if out.exists() and not overwrite:
        raise FolderError(f"{out} already exists; choose another --out or pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise FolderError(f"{out} exists and is not a folder")


@contextmanager
def staged_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty folder beside `out`; on success it becomes `out` in one rename, on error it is removed.

    `out` is checked again when renaming: without `overwrite`, a folder that appeared meanwhile is never
    replaced (the rename itself refuses a non-empty one), and the new folder is kept beside it instead.
    """
    check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    stage.chmod(0o755)  # mkdtemp makes it private; a model folder is meant to be shared
    try:
        yield stage
        old = None
        if overwrite and out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        rename_new(stage, out)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def rename_new(stage: Path, out: Path) -> None:
    """Rename `stage` to `out`, which must not exist; if it does, keep `stage` under a new name and say where."""
    if not out.exists():  # checked first: the rename would replace an empty folder
        try:
            os.rename(stage, out)  # refuses an `out` that appeared since and holds anything
            return
        except OSError:
            if not out.exists():
                raise
    kept = Path(tempfile.mkdtemp(prefix=f"{out.name}.new-", dir=out.parent))
    os.rename(stage, kept)  # replaces the empty folder just made
    raise FolderError(f"{out} appeared while this run was writing it and was left as it is; "
                      f"the new folder is {kept}")


def write_json(path: Path, content: dict, indent: int = 2) -> None:
    """One of the folder's JSON files, in UTF-8 (the vocabulary's words stay as they are)."""
    path.write_text(json.dumps(content, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


def write_folder(folder: Path, model: keras.Model, tokenizer: dict, history: pd.DataFrame, metrics: dict,
                 training_config: dict) -> None:
    """Write the folder's files into the empty `folder`: Keras' model, TOKENIZER, HISTORY, METRICS (with the
    weights' size added, which check_folder compares) and TRAINING_CONFIG; evaluate.write_plots draws the plots."""
    model.save(folder, zipped=False)
    write_json(folder / TOKENIZER, tokenizer, indent=1)
    history.to_csv(folder / HISTORY, index=False)
    metrics["model"]["weights_bytes"] = (folder / KERAS_WEIGHTS).stat().st_size
    write_json(folder / METRICS, metrics)
    write_json(folder / TRAINING_CONFIG, training_config)


def check_folder(folder: Path) -> None:
    """Raise FolderError unless `folder` holds a complete, readable model folder."""
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise FolderError(f"{folder} is incomplete: missing {', '.join(missing)}")
    for name in JSON_FILES:
        try:
            json.loads((folder / name).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise FolderError(f"{folder / name} is not valid JSON") from None
    expected = json.loads((folder / METRICS).read_text(encoding="utf-8")).get("model", {}).get("weights_bytes")
    weights = folder / KERAS_WEIGHTS
    with open(weights, "rb") as f:
        signature = f.read(len(HDF5_SIGNATURE))
    if signature != HDF5_SIGNATURE or (expected is not None and weights.stat().st_size != expected):
        raise FolderError(f"{weights} is damaged or truncated; train again or copy the folder again")
