"""Find the model folder (a local folder or a Hub repo), load it safely, and score reviews fast.

The request path never calls `model.predict`: the model's own tokenizers run in `tf.function`s, and
its BiLSTM in XLA-compiled `tf.function`s, one per window length: a batch is scored with the shortest
window that holds its longest review, so a one-liner costs a one-liner's steps. Padding is masked, so
the scores are those of the full window.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import model_folder
from model_folder import (CLASSIFIER_LAYER, MODEL_REPO_VARIABLE, MODEL_REVISION_VARIABLE, NGRAM_TOKENIZER_LAYER,
                          NGRAM_WEIGHTS_LAYER, OUTPUT_LAYER, TOKENIZER_LAYER, ModelUnavailable, summary)
from quiet_tf import keras, tf
from review_text import MAX_TEXT_CHARS, Window, WindowReader, clean

log = logging.getLogger("space.inference")

# XLA compiles once per shape, so batches are padded up to one of these sizes (at most 21) and reviews
# up to one of these window lengths (and the model's own window), compiled the first time they are used.
SMALL_BATCHES = (1, 2, 4, 8, 16, 32)
BATCH_STEP = 32
MAX_BATCH = 512
WINDOWS = (32, 128)


def blank(text: str | None) -> bool:
    """Whether a text has nothing to score: None, or only whitespace in the part that is read (its first
    MAX_TEXT_CHARS characters; looking no further also bounds the cost of a huge text)."""
    return not (text or "")[:MAX_TEXT_CHARS].strip()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def output_features(logits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """What the model's output layer reads: the branches' logits, each times r, and r, where r = log(1 + the
    number of words the BiLSTM reads, `lengths`)."""
    read = np.log1p(lengths.astype(np.float32))[:, None]
    return np.hstack([logits, logits * read, read])


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
        if len(weights) != 2 * (1 + self.has_ngram_branch) + 1:
            raise ValueError(f"its {OUTPUT_LAYER} layer does not read the branches' logits and the words read "
                             "(a folder trained before that layer: train it again)")
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

    def _bilstm_logits(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The BiLSTM's logit for each row of token ids (of `lengths` words): rows sorted by length, each run of
        rows scored with the shortest compiled window that holds them, padded to a compiled batch size."""
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

    def _probabilities(self, ids: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """P(positive) from the BiLSTM's token ids and, if the model has an n-gram branch, the texts."""
        lengths = np.count_nonzero(ids, axis=1)
        logits = [self._bilstm_logits(ids, lengths)]
        if self._ngram_logits is not None:
            logits.append(np.concatenate([self._ngram_logits(tf.constant(texts[i : i + MAX_BATCH])).numpy()
                                          for i in range(0, len(texts), MAX_BATCH)]))
        features = output_features(np.stack(logits, axis=1), lengths)
        return _sigmoid(features @ self._output_weights + self._output_bias).astype(np.float32)

    def window(self, text: str) -> Window:
        """The cleaned review and the words of it that the BiLSTM reads."""
        return self.reader(clean(text, self.replacements))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text, a blank one too (see probabilities_or_nan); the BiLSTM's tokenizer sees only
        the part it reads."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        windows = [self.window(text) for text in texts]
        read = [w.read for w in windows]
        ids = np.concatenate(
            [self._tokenize(tf.constant(read[i : i + MAX_BATCH])).numpy() for i in range(0, len(read), MAX_BATCH)]
        )
        return self._probabilities(ids, [w.text for w in windows])

    def probabilities_or_nan(self, texts: Sequence[str | None]) -> np.ndarray:
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
        scores = self._probabilities(rows, texts)
        return Explanation(float(scores[0]), window, scores[0] - scores[1:])


def load_predictor(folder: Path) -> Predictor:
    """The model folder (see model_folder.load) ready to serve; ModelUnavailable says what is wrong with it."""
    contents = model_folder.load(folder)
    try:
        return Predictor(contents.model, contents.labels, contents.tokenizer)
    except Exception as error:  # a tokenizer.json that does not describe the model, a missing layer
        raise ModelUnavailable(f"The model folder could not be loaded: {summary(error)}") from None


def load_from_environment() -> Predictor:
    """The model named by MODEL_REPO (and MODEL_REVISION), ready to serve."""
    folder = model_folder.locate(os.getenv(MODEL_REPO_VARIABLE), os.getenv(MODEL_REVISION_VARIABLE) or None)
    predictor = load_predictor(folder)
    log.info("model loaded: window %d words, labels %s", predictor.window_size, predictor.labels)
    return predictor
