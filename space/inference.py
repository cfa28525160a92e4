"""Find the model folder (a local folder or a Hub repo), load it safely, and score reviews fast.

The request path never calls `model.predict`: the model's own tokenizer runs in a `tf.function`, and
its classifier in an XLA-compiled `tf.function` over a fixed window, warmed up at start-up.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, HfHubHTTPError, LocalEntryNotFoundError

from quiet_tf import keras, tf
from review_text import Window, WindowReader, clean

log = logging.getLogger("space.inference")

MODEL_REPO_VARIABLE = "MODEL_REPO"
MODEL_REVISION_VARIABLE = "MODEL_REVISION"
# What serving needs from the model folder; the plots and the card stay on the Hub.
REQUIRED_FILES = ("config.json", "metadata.json", "model.weights.h5", "tokenizer.json", "training_config.json")
DOWNLOAD_PATTERNS = [*REQUIRED_FILES, "assets/*"]
TOKENIZER_LAYER = "tokenizer"
CLASSIFIER_LAYER = "bilstm_classifier"
# XLA compiles once per batch shape, so batches are padded up to one of these sizes (at most 20 shapes).
SMALL_BATCHES = (1, 2, 4, 8, 16, 32)
BATCH_STEP = 32
MAX_BATCH = 512
MESSAGE_CHARS = 400


class ModelUnavailable(RuntimeError):
    """There is no usable model; the message says what is missing and how to fix it."""


def _summary(error: Exception) -> str:
    """An exception's message on one line, cut to a length a page can show."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:MESSAGE_CHARS] + ("..." if len(text) > MESSAGE_CHARS else "")


def model_folder(source: str | None, revision: str | None = None) -> Path:
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
            f"({_summary(error)}). Check the repo id, {MODEL_REVISION_VARIABLE} and, for a private repo, HF_TOKEN."
        ) from None


def _read_json(folder: Path, name: str) -> dict:
    """A JSON file of the model folder; ModelUnavailable if it cannot be read."""
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelUnavailable(f"{name} in the model folder is missing or not valid JSON.") from None


def blank(text: str | None) -> bool:
    """Whether a text has nothing to score: None, empty or only whitespace."""
    return not (text or "").strip()


def _batch_size(n: int) -> int:
    """The compiled batch size that holds `n` rows."""
    for size in SMALL_BATCHES:
        if n <= size:
            return size
    return min(MAX_BATCH, -(-n // BATCH_STEP) * BATCH_STEP)


@dataclass(frozen=True)
class Explanation:
    """P(positive) of a review and, for each word the model reads, how much leaving it out lowers it."""

    probability: float
    window: Window
    effects: np.ndarray  # one per window word (excluding the one past the window), in window order


class Predictor:
    """A loaded model folder: its labels, its window, and compiled calls to score text."""

    def __init__(self, model: keras.Model, labels: Sequence[str], tokenizer: dict) -> None:
        self.labels = tuple(labels)
        self.window_size = int(tokenizer["sequence_length"])
        self.reader = WindowReader(tokenizer["split"], tokenizer["strip_regex"], self.window_size)
        self.replacements = dict(tokenizer.get("replace_before_tokenizing", {}))
        layer = model.get_layer(TOKENIZER_LAYER)
        classifier = model.get_layer(CLASSIFIER_LAYER)
        # The window cut in review_text assumes the model keeps the start of a long text.
        if layer.get_config().get("output_sequence_length") != self.window_size or tokenizer["truncation"] != "post":
            raise ValueError("tokenizer.json does not describe the model's tokenizer (window, post truncation)")
        self._tokenize = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)])
        self._classify = tf.function(
            lambda ids: classifier(ids, training=False)[:, 0],
            input_signature=[tf.TensorSpec([None, self.window_size], tf.int64)],
            jit_compile=True,
        )
        # Compile the single-review shape now, so the first request is as fast as the others.
        self.probabilities(["warm up"])

    def _scores(self, ids: np.ndarray) -> np.ndarray:
        """P(positive) for each row of token ids, padded with empty rows to a compiled batch size."""
        out = []
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ids[start : start + MAX_BATCH]
            padded = np.zeros((_batch_size(len(chunk)), self.window_size), dtype=np.int64)
            padded[: len(chunk)] = chunk
            out.append(self._classify(padded).numpy()[: len(chunk)])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def window(self, text: str) -> Window:
        """The cleaned review and the words of it that the model reads."""
        return self.reader(clean(text, self.replacements))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text; only the part the model reads is tokenized."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        read = [self.window(text).read for text in texts]
        ids = np.concatenate(
            [self._tokenize(tf.constant(read[i : i + MAX_BATCH])).numpy() for i in range(0, len(read), MAX_BATCH)]
        )
        return self._scores(ids)

    def scores(self, texts: Sequence[str | None]) -> np.ndarray:
        """P(positive) for each text, NaN for a blank one: it has nothing to score."""
        filled = [i for i, text in enumerate(texts) if not blank(text)]
        out = np.full(len(texts), np.nan)
        out[filled] = self.probabilities([texts[i] for i in filled])
        return out

    def explain(self, text: str) -> Explanation:
        """Occlusion: score the review and every copy of it with one word left out, in one batched call."""
        window = self.window(text)
        words = window.words()
        if not words:
            probability = float(self._scores(np.zeros((1, self.window_size), dtype=np.int64))[0])
            return Explanation(probability, window, np.zeros(0, dtype=np.float32))
        # Each word is one token, so tokenizing the words alone gives the review's ids in order.
        ids = self._tokenize(tf.constant(words)).numpy()[:, 0]
        n = min(len(ids), self.window_size)
        rows = np.zeros((n + 1, self.window_size), dtype=np.int64)
        rows[0, :n] = ids[:n]
        for i in range(n):
            # Leaving word i out lets the first word past the window (if any) move in at the end.
            without = np.delete(ids, i)[: self.window_size]
            rows[i + 1, : len(without)] = without
        scores = self._scores(rows)
        return Explanation(float(scores[0]), window, scores[0] - scores[1:])


def load_predictor(folder: Path) -> Predictor:
    """Load a model folder with Keras' safe mode on; ModelUnavailable says what is wrong with it."""
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelUnavailable(f"The model folder is incomplete: {', '.join(missing)} missing.")
    tokenizer = _read_json(folder, "tokenizer.json")
    labels = _read_json(folder, "training_config.json").get("labels")
    if not (isinstance(labels, list) and len(labels) == 2 and all(isinstance(x, str) for x in labels)):
        raise ModelUnavailable("training_config.json does not name the two labels.")
    try:
        # Safe mode refuses to run code stored in the model (Lambda layers), so a model file cannot run code here.
        model = keras.saving.load_model(folder, safe_mode=True)
        return Predictor(model, labels, tokenizer)
    except Exception as error:  # Keras raises many types for damaged files (even UnboundLocalError)
        raise ModelUnavailable(f"The model folder could not be loaded: {_summary(error)}") from None


def load_from_environment() -> Predictor:
    """The model named by MODEL_REPO (and MODEL_REVISION), ready to serve."""
    folder = model_folder(os.getenv(MODEL_REPO_VARIABLE), os.getenv(MODEL_REVISION_VARIABLE) or None)
    predictor = load_predictor(folder)
    log.info("model loaded: window %d words, labels %s", predictor.window_size, predictor.labels)
    return predictor
