"""The Space's serving path on a model with the real 400-token window: every window it picks, and the edges
between them, give plain Keras' probabilities; so do its highlights and awkward texts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REAL_WINDOW

from space_support import AWKWARD_TEXTS  # the quiet environment, before TensorFlow is imported
import inference  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from review_text import clean  # noqa: E402
from training.data import SAMPLE_CSV  # noqa: E402

TOLERANCE = 1e-5
# And one longer than the Space's character cut.
AWKWARD = [*AWKWARD_TEXTS, "A moving film. " * 2_000]


@pytest.fixture(scope="module")
def served(window_model: Path) -> tuple[inference.Predictor, keras.Model, list[str]]:
    """The Space's predictor, plain Keras, and the vocabulary's words (each one token)."""
    words = json.loads((window_model / "tokenizer.json").read_text(encoding="utf-8"))["vocabulary"][2:]
    return inference.load_predictor(window_model), keras.saving.load_model(window_model, safe_mode=True), words


def keras_scores(model: keras.Model, texts: list[str]) -> np.ndarray:
    return model.predict(tf.constant(texts), verbose=0)[:, 0]


def review(words: list[str], n: int, shift: int = 0) -> str:
    return " ".join(words[(shift + i) % len(words)] for i in range(n))


def test_every_window_and_its_edges_match_keras(served) -> None:
    predictor, model, words = served
    assert predictor.windows == (*inference.WINDOWS, REAL_WINDOW)  # the test covers every window the Space has
    lengths = sorted({1, REAL_WINDOW + 50, *(edge + d for edge in predictor.windows for d in (-1, 0, 1))})
    texts = [review(words, n, shift=n) for n in lengths]
    expected = keras_scores(model, texts)
    singles = np.array([predictor.probabilities([text])[0] for text in texts])
    np.testing.assert_allclose(singles, expected, atol=TOLERANCE)
    # Batched, mixed lengths are cut where the window changes: every row still gets its own score.
    np.testing.assert_allclose(predictor.probabilities(texts[::-1]), expected[::-1], atol=TOLERANCE)


@pytest.mark.parametrize("n", [12, 31, 33, REAL_WINDOW, REAL_WINDOW + 30])
def test_highlights_match_keras_on_the_texts_with_a_word_left_out(served, n: int) -> None:
    """Each word's effect is P(review) - P(review without it), as Keras computes them; past the window, the
    first unread word moves in when one is left out."""
    predictor, model, words = served
    text = review(words, n, shift=7)
    explanation = predictor.explain(text)
    spans = explanation.window.spans[: min(n, REAL_WINDOW)]
    without = [text[:start] + text[end:] for start, end in spans]
    scores = keras_scores(model, [text, *without])
    assert explanation.probability == pytest.approx(scores[0], abs=TOLERANCE)
    np.testing.assert_allclose(explanation.effects, scores[0] - scores[1:], atol=TOLERANCE)


def test_awkward_texts_match_keras_on_the_text_the_space_reads(served) -> None:
    """The Space cuts a text and mends lone surrogates (`clean`), then scores what Keras scores on that same text."""
    predictor, model, _ = served
    cleaned = [clean(text) for text in AWKWARD]
    np.testing.assert_allclose(predictor.probabilities(AWKWARD), keras_scores(model, cleaned), atol=TOLERANCE)


def test_real_reviews_with_line_breaks_match_keras_on_the_raw_text(served) -> None:
    """The model reads raw text: the IMDB dump's `<br />` reaches Keras and the Space alike, untouched."""
    predictor, model, _ = served
    reviews = [text for text in pd.read_csv(SAMPLE_CSV)["review"] if "<br />" in text][:40]
    np.testing.assert_allclose(predictor.probabilities(reviews), keras_scores(model, reviews), atol=TOLERANCE)
