"""The model folder as the Space reads it: its file and layer names, finding it (a local folder or a Hub repo),
loading it safely. training/model_folder.py writes it; tests/test_model_folder.py keeps the two sides equal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, HfHubHTTPError, LocalEntryNotFoundError

if TYPE_CHECKING:
    from quiet_tf import keras

MODEL_REPO_VARIABLE = "MODEL_REPO"
MODEL_REVISION_VARIABLE = "MODEL_REVISION"
# What serving needs from the folder (Keras' unzipped model, then ours); the plots and the card stay on the Hub.
KERAS_CONFIG = "config.json"
KERAS_METADATA = "metadata.json"
KERAS_WEIGHTS = "model.weights.h5"
TOKENIZER = "tokenizer.json"
TRAINING_CONFIG = "training_config.json"
REQUIRED_FILES = (KERAS_CONFIG, KERAS_METADATA, KERAS_WEIGHTS, TOKENIZER, TRAINING_CONFIG)
DOWNLOAD_PATTERNS = [*REQUIRED_FILES, "assets/*"]
# The parts of the model, by layer name.
TOKENIZER_LAYER = "tokenizer"
CLASSIFIER_LAYER = "bilstm_classifier"
EMBEDDING_LAYER = "embedding"  # inside the classifier
BILSTM_LAYER = "bilstm"  # inside the classifier
NGRAM_TOKENIZER_LAYER = "ngram_tokenizer"
NGRAM_WEIGHTS_LAYER = "ngram_weights"
THRESHOLD = 0.5  # P(labels[1]) from which a review gets labels[1]
MESSAGE_CHARS = 400  # of an error message, on the page and in the tools' one-line errors


class ModelUnavailable(RuntimeError):
    """There is no usable model; the message says what is missing and how to fix it."""


def summary(error: Exception) -> str:
    """An exception's message on one line, cut to a length a page or a terminal line can show."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:MESSAGE_CHARS] + ("..." if len(text) > MESSAGE_CHARS else "")


def locate(source: str | None, revision: str | None = None) -> Path:
    """A local model folder as given, or the Hub repo `source` downloaded (or found in the cache)."""
    if not source:
        raise ModelUnavailable(
            f"No model is configured. Set the variable {MODEL_REPO_VARIABLE} to a Hub model repo id "
            "(owner/name) or to a local model folder made by `python -m training.train`, then restart."
        )
    local = Path(source).expanduser()
    if local.is_dir():
        return local
    try:
        # The normal cache; when the Hub cannot be reached, huggingface_hub answers from the cache itself.
        return Path(snapshot_download(source, revision=revision, allow_patterns=DOWNLOAD_PATTERNS))
    except HFValidationError:
        raise ModelUnavailable(
            f"{MODEL_REPO_VARIABLE}={source!r} is neither an existing folder nor a valid Hub repo id (owner/name)."
        ) from None
    except LocalEntryNotFoundError:
        raise ModelUnavailable(
            f"The Hub could not be reached and {source!r} is not in the local Hugging Face cache. "
            f"Connect to the Hub once, or set {MODEL_REPO_VARIABLE} to a local model folder."
        ) from None
    except HfHubHTTPError as error:
        raise ModelUnavailable(
            f"{MODEL_REPO_VARIABLE}={source!r} is not a local folder and could not be downloaded from the Hub "
            f"({summary(error)}). Check the repo id, {MODEL_REVISION_VARIABLE} and, for a private repo, HF_TOKEN."
        ) from None


def read_json(folder: Path, name: str) -> dict:
    """A JSON file of the model folder; ModelUnavailable if it cannot be read."""
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelUnavailable(f"{name} in the model folder is missing or not valid JSON.") from None


@dataclass(frozen=True)
class Contents:
    """What serving reads from a model folder: the Keras model, the two label names and tokenizer.json."""

    model: keras.Model
    labels: tuple[str, str]
    tokenizer: dict


def check_labels(labels: object) -> tuple[str, str]:
    """The two label names of training_config.json; ModelUnavailable unless they are two different, non-blank
    strings (equal names would merge /predict's two answers into one)."""
    if not (isinstance(labels, list) and len(labels) == 2 and all(isinstance(x, str) and x.strip() for x in labels)):
        raise ModelUnavailable(f"{TRAINING_CONFIG} must name the two labels as two non-empty strings "
                               f"(negative first), e.g. [\"negative\", \"positive\"]; it has {summary(repr(labels))}.")
    if labels[0].strip() == labels[1].strip():
        raise ModelUnavailable(f"{TRAINING_CONFIG} names the same label twice ({summary(repr(labels[0]))}); the two "
                               "labels must differ.")
    return labels[0], labels[1]


def load(folder: Path) -> Contents:
    """Read a model folder, the model with Keras' safe mode on; ModelUnavailable says what is wrong with it."""
    from quiet_tf import keras  # here, so that the tools that only need this module's names skip TensorFlow

    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelUnavailable(f"The model folder is incomplete: {', '.join(missing)} missing.")
    tokenizer = read_json(folder, TOKENIZER)
    labels = check_labels(read_json(folder, TRAINING_CONFIG).get("labels"))
    try:
        # Safe mode refuses to run code stored in the model (Lambda layers), so a model file cannot run code here.
        # compile=False: serving needs no optimizer, loss or metrics. Keras reads a TextVectorization's vocabulary
        # twice, through the layer and through its lookup layer, which it visits on its own with a copy of the file
        # beside it: the lookup's read is enough, and the n-gram vocabulary is most of the model's loading time.
        with mock.patch.object(keras.layers.TextVectorization, "load_assets", lambda layer, path: None):
            model = keras.saving.load_model(folder, safe_mode=True, compile=False)
        for layer in model.layers:  # fails if a Keras upgrade no longer visits the lookup layers
            if isinstance(layer, keras.layers.TextVectorization):
                layer([""])
    except Exception as error:  # Keras raises many types for damaged files (even UnboundLocalError)
        raise ModelUnavailable(f"The model folder could not be loaded: {summary(error)}") from None
    return Contents(model, labels, tokenizer)
