"""Find the model folder (a local folder or a Hub repo), load it safely, and score reviews fast.

The request path never calls `model.predict`: a batch is sorted by length and cut into chunks, each scored by
one call of a compiled `tf.function` that runs the model's own tokenizers, its BiLSTM (from its weights, in
fast_bilstm's loop; XLA-compiled, one program per shape) and its output layer. The BiLSTM reads the shortest
window that holds the chunk's longest review, so a one-liner costs a one-liner's steps; padding is masked, so the
scores are those of the full window.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# One thread per operation, set before TensorFlow starts: the Space's calls are small (a chunk's LSTM step is a
# 64-row product), so splitting an operation across cores costs more than it saves; whole calls run side by side.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import numpy as np  # noqa: E402

import fast_bilstm  # noqa: E402
import model_folder  # noqa: E402
from model_folder import (CLASSIFIER_LAYER, EMBEDDING_LAYER, MODEL_REPO_VARIABLE, MODEL_REVISION_VARIABLE,  # noqa: E402
                          NGRAM_TOKENIZER_LAYER, NGRAM_WEIGHTS_LAYER, TOKENIZER_LAYER, ModelUnavailable, summary)
from quiet_tf import keras, tf  # noqa: E402
from review_text import MAX_TEXT_CHARS, Window, WindowReader, clean  # noqa: E402

log = logging.getLogger("space.inference")

# XLA compiles a program per shape, the first time the shape comes: a batch is scored in chunks of at most
# MAX_BATCH reviews in length order, each padded up to one of BATCHES and read through the shortest of WINDOWS
# (or the model's own window) that holds its longest review, so few steps are spent on padding.
BATCHES = (1, 2, 4, 8, 16, 32, 64)
MAX_BATCH = BATCHES[-1]
WINDOWS = (32, 64, 128, 192, 256)


def blank(text: str | None) -> bool:
    """Whether a text has nothing to score: None, or only whitespace and invisible format characters (Unicode's Cf:
    zero-width spaces and joiners, U+FEFF...) in the part that is read (its first MAX_TEXT_CHARS characters)."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in (text or "")[:MAX_TEXT_CHARS])


def _padded(rows: np.ndarray, size: int, pad_id: int) -> tf.Tensor:
    """`rows` (texts or token ids) with empty rows appended up to `size`: XLA compiles a program per batch size."""
    fill = "" if rows.dtype == object else pad_id
    return tf.constant(np.concatenate([rows, np.full((size - len(rows), *rows.shape[1:]), fill, dtype=rows.dtype)]))


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
        # Called between the chunks of a long batch (a CSV, a review's highlights): the app lets other calls go first.
        self.between_chunks: Callable[[], object] = lambda: None
        self.window_size = int(tokenizer["sequence_length"])
        self.reader = WindowReader(tokenizer["split"], tokenizer["strip_regex"], self.window_size)
        self.pad_id, oov_id = tokenizer.get("pad_id"), tokenizer.get("oov_id")
        tokenizer_layer = model.get_layer(TOKENIZER_LAYER)
        # The window cut in review_text assumes the model keeps the start of a long text; an empty text is all padding.
        if (tokenizer_layer.get_config().get("output_sequence_length") != self.window_size
                or tokenizer["truncation"] != "post" or not isinstance(oov_id, int)
                or int(tokenizer_layer(tf.constant([""]))[0, 0]) != self.pad_id):
            raise ValueError("tokenizer.json does not describe the model's tokenizer (window, post truncation, pad "
                             "and OOV ids)")
        classifier = model.get_layer(CLASSIFIER_LAYER)
        # Shorter windows only for a model that masks its padding: an unmasked LSTM (the `tutorial` preset) reads
        # the padding too, so its score depends on the window.
        masked = classifier.get_layer(EMBEDDING_LAYER).get_config()["mask_zero"]
        self.windows = tuple(w for w in WINDOWS if masked and w < self.window_size) + (self.window_size,)
        # One trace for every shape (XLA still compiles one program per shape): traced per shape, each would keep
        # its own copy of the BiLSTM's graph in memory.
        self._classify = tf.function(fast_bilstm.logits(classifier, self.pad_id), jit_compile=True, autograph=False,
                                     input_signature=[tf.TensorSpec([None, None], tf.int64)])
        names = {layer.name for layer in model.layers}
        self.has_ngram_branch = NGRAM_TOKENIZER_LAYER in names
        if self.has_ngram_branch:
            self._ngrams, self._ngram_weights = model.get_layer(NGRAM_TOKENIZER_LAYER), model.get_layer(NGRAM_WEIGHTS_LAYER)
        # The model's own graph from the branches' logits and the token ids to P(positive) (its output features
        # and output layer), so that the Space restates neither. Each logit is the branch's output where this model
        # calls it (Operation.output): a nested model's own `.output` is its inner graph's tensor, and a head cut
        # there would run the whole BiLSTM again, in plain Keras over the full window, on every call.
        logits = [keras.Operation.output.fget(model.get_layer(name))
                  for name in (CLASSIFIER_LAYER, NGRAM_WEIGHTS_LAYER) if name in names]
        self._head = keras.Model([*logits, tokenizer_layer.output], model.output)
        strings = tf.TensorSpec([None], tf.string)
        # The API's call is a concrete function: called directly, it skips tf.function's argument matching, a large
        # part of a one-liner. The highlights' call (a few per click) is traced by warm_up or the first click.
        self._score_texts = tf.function(lambda read, texts: self._score(tokenizer_layer(read), texts),
                                        input_signature=[strings, strings], autograph=False).get_concrete_function()
        self._score_ids = tf.function(self._score, input_signature=[tf.TensorSpec([None, None], tf.int64), strings],
                                      autograph=False)
        # The highlights tokenize a review's words alone: compiled too, as the layer is slow called eagerly.
        self._tokenizer = tf.function(tokenizer_layer, input_signature=[strings], autograph=False)
        self.oov_id = oov_id

    def warm_up(self) -> None:
        """Compile a one-liner's program, then every batch size's at each window (rows as long as the window before
        it), one at a time so that the compilers' memory never adds up; else each compiles on first use, and its
        caller, and every caller behind it, waits for it."""
        self.probabilities(["warm up"])
        for size in BATCHES:
            for length in (0, *self.windows[:-1]):
                ids = [self.oov_id] * length + [self.pad_id] * (self.window_size - length)
                self._score_ids(tf.constant([ids] * size, tf.int64), tf.constant([""] * size))

    def _score(self, ids: tf.Tensor, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """P(positive) of each row (its token ids and its text), and the window the BiLSTM read: the shortest
        that holds the longest row. Graph code, run inside the compiled calls."""
        lengths = tf.reduce_sum(tf.cast(ids != self.pad_id, tf.int64), axis=1)
        # A window longer than the review, unless it fills the model's own: the model's max over time also
        # sees the zeros of masked padding (GlobalMaxPooling1D ignores the mask), so a review that fills a
        # short window exactly would lose them.
        windows = tf.constant(self.windows, tf.int64)
        index = tf.minimum(tf.searchsorted(windows, tf.reduce_max(lengths, keepdims=True), side="right")[0],
                           len(self.windows) - 1)
        window = tf.gather(windows, index)
        # A slice of unknown width, not a switch between the windows: XLA compiles the BiLSTM for each width
        # as it comes all the same, and a one-liner skips the switch's own call.
        logits = [self._classify(ids[:, :window])]
        if self.has_ngram_branch:
            logits.append(self._ngram_weights(self._ngrams(texts)))
        return self._head([*logits, ids])[:, 0], window

    def _scores(self, score, rows: np.ndarray, texts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """`score` (one of the compiled calls) over `rows` and `texts` of about `lengths` words: in length order, in
        chunks of at most MAX_BATCH, each padded to a compiled batch size, each after `self.between_chunks()`.
        (Each call picks its window from its token ids: `lengths` only groups reviews of a length together.)"""
        order = np.argsort(lengths, kind="stable")
        out = np.zeros(len(texts), dtype=np.float32)
        for start in range(0, len(order), MAX_BATCH):
            if start:
                self.between_chunks()
            chunk = order[start : start + MAX_BATCH]
            size = next(size for size in BATCHES if len(chunk) <= size)  # the compiled batch size that holds it
            out[chunk] = score(_padded(rows[chunk], size, self.pad_id), _padded(texts[chunk], size, self.pad_id)
                               )[0].numpy()[: len(chunk)]
        return out

    def window(self, text: str) -> Window:
        """The cleaned review and the words of it that the BiLSTM reads."""
        return self.reader(clean(text))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text, a blank one too (see probabilities_or_nan); the BiLSTM's tokenizer sees only
        the part it reads."""
        cleaned = [clean(text) for text in texts]
        read = np.array([self.reader.part_read(text) for text in cleaned], dtype=object)
        lengths = np.array([len(text.split()) for text in read])  # about the number of tokens, and fast
        return self._scores(self._score_texts, read, np.array(cleaned, dtype=object), lengths)

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
        rows = np.full((n + 1, self.window_size), self.pad_id, dtype=np.int64)
        if words:
            # Each word is one token, so tokenizing the words alone gives the review's ids in order.
            ids = self._tokenizer(tf.constant(words)).numpy()[:, 0]
            rows[0, :n] = ids[:n]
            for i in range(n):
                # Leaving word i out lets the first word past the window (if any) move in at the end.
                without = np.delete(ids, i)[: self.window_size]
                rows[i + 1, : len(without)] = without
        texts = [window.text] + [window.text[:start] + window.text[end:] for start, end in window.spans[:n]]
        lengths = np.count_nonzero(rows != self.pad_id, axis=1)
        scores = self._scores(self._score_ids, rows, np.array(texts, dtype=object), lengths)
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
