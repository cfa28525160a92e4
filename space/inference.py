"""Find the model folder (a local folder or a Hub repo), load it safely, and score reviews fast.

The request path never calls `model.predict`: the model's own tokenizers run in `tf.function`s, and
its BiLSTM in XLA-compiled `tf.function`s, one per window length: a batch is scored with the shortest
window that holds its longest review, so a one-liner costs a one-liner's steps. Padding is masked, so
the scores are those of the full window.
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
from review_text import MAX_TEXT_CHARS, Window, WindowReader, clean

log = logging.getLogger("space.inference")

MODEL_REPO_VARIABLE = "MODEL_REPO"
MODEL_REVISION_VARIABLE = "MODEL_REVISION"
# What serving needs from the model folder; the plots and the card stay on the Hub.
REQUIRED_FILES = ("config.json", "metadata.json", "model.weights.h5", "tokenizer.json", "training_config.json")
DOWNLOAD_PATTERNS = [*REQUIRED_FILES, "assets/*"]
# The parts of the model, by layer name (training/model.py names them).
TOKENIZER_LAYER = "tokenizer"
CLASSIFIER_LAYER = "bilstm_classifier"
NGRAM_TOKENIZER_LAYER = "ngram_tokenizer"
NGRAM_WEIGHTS_LAYER = "ngram_weights"
OUTPUT_LAYER = "positive"
# XLA compiles once per shape, so batches are padded up to one of these sizes (at most 21) and reviews
# up to one of these window lengths (and the model's own window), compiled the first time they are used.
SMALL_BATCHES = (1, 2, 4, 8, 16, 32)
BATCH_STEP = 32
MAX_BATCH = 512
WINDOWS = (32, 128)
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
    """Whether a text has nothing to score: None, or only whitespace in the part that is read (its first
    MAX_TEXT_CHARS characters; looking no further also bounds the cost of a huge text)."""
    return not (text or "")[:MAX_TEXT_CHARS].strip()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


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
        self.windows = tuple(w for w in WINDOWS if w < self.window_size) + (self.window_size,)
        self.reader = WindowReader(tokenizer["split"], tokenizer["strip_regex"], self.window_size)
        self.replacements = dict(tokenizer.get("replace_before_tokenizing", {}))
        layer = model.get_layer(TOKENIZER_LAYER)
        classifier = model.get_layer(CLASSIFIER_LAYER)
        # The window cut in review_text assumes the model keeps the start of a long text.
        if layer.get_config().get("output_sequence_length") != self.window_size or tokenizer["truncation"] != "post":
            raise ValueError("tokenizer.json does not describe the model's tokenizer (window, post truncation)")
        self._tokenize = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)])
        # One trace for every shape; XLA still compiles one program per (batch, window) shape. Traced per
        # shape instead, each shape kept its own copy of the BiLSTM's graph: 18 shapes took 212 MiB, not 94.
        self._classify = tf.function(lambda ids: classifier(ids, training=False)[:, 0], jit_compile=True,
                                     input_signature=[tf.TensorSpec([None, None], tf.int64)])
        self._ngram_logits = self._ngram_branch(model)
        self.has_ngram_branch = self._ngram_logits is not None
        weights, bias = model.get_layer(OUTPUT_LAYER).get_weights()
        self._output_weights, self._output_bias = weights[:, 0], bias[0]
        # Compile the single-review shapes now, so the first requests are as fast as the others.
        for window in self.windows:
            self._classify(np.zeros((1, window), dtype=np.int64))
        self.probabilities(["warm up"])

    @staticmethod
    def _ngram_branch(model: keras.Model):
        """The n-gram branch as one compiled call (texts -> logits), or None for a model without one."""
        names = {layer.name for layer in model.layers}
        if NGRAM_TOKENIZER_LAYER not in names:
            return None
        tokenizer, dense = model.get_layer(NGRAM_TOKENIZER_LAYER), model.get_layer(NGRAM_WEIGHTS_LAYER)
        return tf.function(lambda texts: dense(tokenizer(texts))[:, 0],
                           input_signature=[tf.TensorSpec([None], tf.string)])

    def _bilstm_logits(self, ids: np.ndarray) -> np.ndarray:
        """The BiLSTM's logit for each row of token ids: rows sorted by length, each run of rows scored
        with the shortest compiled window that holds them, padded to a compiled batch size."""
        lengths = np.count_nonzero(ids, axis=1)
        order = np.argsort(lengths, kind="stable")
        # A window longer than the review, unless it fills the model's own: the model's max over time also
        # sees the zeros of masked padding (GlobalMaxPooling1D ignores the mask), so a review that fills a
        # short window exactly would lose them.
        window_of = np.minimum(np.searchsorted(self.windows, lengths[order], side="right"), len(self.windows) - 1)
        out = np.zeros(len(ids), dtype=np.float32)
        for start in range(0, len(ids), MAX_BATCH):
            rows = order[start : start + MAX_BATCH]
            for w in np.unique(window_of[start : start + MAX_BATCH]):
                chunk = rows[window_of[start : start + MAX_BATCH] == w]
                window = self.windows[w]
                padded = np.zeros((_batch_size(len(chunk)), window), dtype=np.int64)
                padded[: len(chunk)] = ids[chunk, :window]
                out[chunk] = self._classify(padded).numpy()[: len(chunk)]
        return out

    def _combine(self, bilstm: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """P(positive) from the BiLSTM's logits and, if the model has one, the n-gram branch's."""
        logits = [bilstm]
        if self._ngram_logits is not None:
            logits.append(np.concatenate([self._ngram_logits(tf.constant(texts[i : i + MAX_BATCH])).numpy()
                                          for i in range(0, len(texts), MAX_BATCH)]))
        return _sigmoid(np.stack(logits, axis=1) @ self._output_weights + self._output_bias).astype(np.float32)

    def window(self, text: str) -> Window:
        """The cleaned review and the words of it that the BiLSTM reads."""
        return self.reader(clean(text, self.replacements))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text; the BiLSTM's tokenizer sees only the part it reads."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        windows = [self.window(text) for text in texts]
        read = [w.read for w in windows]
        ids = np.concatenate(
            [self._tokenize(tf.constant(read[i : i + MAX_BATCH])).numpy() for i in range(0, len(read), MAX_BATCH)]
        )
        return self._combine(self._bilstm_logits(ids), [w.text for w in windows])

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
        n = min(len(words), self.window_size)
        rows = np.zeros((n + 1, self.window_size), dtype=np.int64)
        if words:
            # Each word is one token, so tokenizing the words alone gives the review's ids in order.
            ids = self._tokenize(tf.constant(words)).numpy()[:, 0]
            rows[0, :n] = ids[:n]
            for i in range(n):
                # Leaving word i out lets the first word past the window (if any) move in at the end.
                without = np.delete(ids, i)[: self.window_size]
                rows[i + 1, : len(without)] = without
        texts = [window.text] + [window.text[:start] + window.text[end:] for start, end in window.spans[:n]]
        scores = self._combine(self._bilstm_logits(rows), texts)
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
        # compile=False: serving needs no optimizer, loss or metrics.
        model = keras.saving.load_model(folder, safe_mode=True, compile=False)
        return Predictor(model, labels, tokenizer)
    except Exception as error:  # Keras raises many types for damaged files (even UnboundLocalError)
        raise ModelUnavailable(f"The model folder could not be loaded: {_summary(error)}") from None


def load_from_environment() -> Predictor:
    """The model named by MODEL_REPO (and MODEL_REVISION), ready to serve."""
    folder = model_folder(os.getenv(MODEL_REPO_VARIABLE), os.getenv(MODEL_REVISION_VARIABLE) or None)
    predictor = load_predictor(folder)
    log.info("model loaded: window %d words, labels %s", predictor.window_size, predictor.labels)
    return predictor
