"""The model's parts: the n-gram branch's NBSVM weights, the fitted output layer, a model without the branch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import space_support  # noqa: F401  (the quiet environment, before gradio is imported)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import inference  # noqa: E402
from training import evaluate  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from training.config import PRESETS, TrainConfig  # noqa: E402
from training.data import SAMPLE_CSV, load_splits  # noqa: E402
from training.fit import fit_ngram_branch, fit_output_layer, ngram_features  # noqa: E402
from training.model import (OUTPUT_LAYER, build_classifier, end_to_end, make_tokenizer, output_features,  # noqa: E402
                            output_layer)


@pytest.fixture(scope="module")
def splits():
    return load_splits(SAMPLE_CSV, 0.25, 0.1, 42, max_rows=600)


def test_ngram_branch_holds_the_nbsvm_of_its_features(splits) -> None:
    """weights . x + bias of the Keras branch is logistic regression on x scaled by the log-count ratio."""
    config = replace(PRESETS["default"], ngram_vocab_size=3000)
    texts, labels = splits.train["text"], splits.train["label"].to_numpy()
    tokenizer, dense = fit_ngram_branch(texts, labels, config)
    features = ngram_features(tokenizer, texts).toarray()
    assert set(np.unique(features)) == {0.0, 1.0} and features.shape[1] == 3000  # binarized, capped
    # The log-count ratio, computed here from its definition (Wang & Manning 2012, eq. 1, alpha = 1).
    p, q = 1 + features[labels == 1].sum(axis=0), 1 + features[labels == 0].sum(axis=0)
    ratio = np.log(p / p.sum()) - np.log(q / q.sum())
    regression = evaluate.nbsvm(config.ngram_c, config.seed).fit(features, labels)[-1]
    test = splits.test["text"].iloc[:20]
    expected = (ngram_features(tokenizer, test).toarray() * ratio) @ regression.coef_[0] + regression.intercept_[0]
    keras_logits = dense(tokenizer(tf.constant(test.tolist()))).numpy()[:, 0]
    np.testing.assert_allclose(keras_logits, expected, rtol=1e-4, atol=1e-4)
    # And it learned something: better than chance on reviews it did not see.
    accuracy = ((dense(tokenizer(tf.constant(splits.test["text"].tolist()))).numpy()[:, 0] > 0)
                == splits.test["label"].to_numpy()).mean()
    assert accuracy > 0.65


def test_the_second_logit_also_learns_from_the_sentences(splits) -> None:
    """The second column is NBSVM on the reviews and, with `sentence_weight`, the sentences of each review that has
    more than one, labelled as their review; without it, the branch has one logit."""
    config = replace(PRESETS["default"], ngram_vocab_size=3000, sentence_weight=0.3)
    texts, labels = splits.train["text"], splits.train["label"].to_numpy()
    tokenizer, dense = fit_ngram_branch(texts, labels, config)
    sentences = [(part, label) for text, label in zip(texts, labels)
                 for part in (evaluate.sentences(text) if len(evaluate.sentences(text)) > 1 else [])]
    rows = pd.Series([*texts, *(part for part, _ in sentences)])
    row_labels = np.array([*labels, *(label for _, label in sentences)])
    weights = np.array([1.0] * len(texts) + [config.sentence_weight] * len(sentences))
    features = ngram_features(tokenizer, rows).toarray()
    # The log-count ratio with each row counted by its weight, then the weighted logistic regression.
    p = 1 + features[row_labels == 1].T @ weights[row_labels == 1]
    q = 1 + features[row_labels == 0].T @ weights[row_labels == 0]
    ratio = np.log(p / p.sum()) - np.log(q / q.sum())
    regression = LogisticRegression(C=config.ngram_c, solver="liblinear", random_state=config.seed).fit(
        features * ratio, row_labels, sample_weight=weights)
    test = splits.test["text"].iloc[:20]
    expected = (ngram_features(tokenizer, test).toarray() * ratio) @ regression.coef_[0] + regression.intercept_[0]
    np.testing.assert_allclose(dense(tokenizer(tf.constant(test.tolist()))).numpy()[:, 1], expected, rtol=1e-4, atol=1e-4)
    assert len(sentences) > len(texts)
    assert fit_ngram_branch(texts, labels, replace(config, sentence_weight=0.0))[1].units == 1


def ids_of_length(lengths: np.ndarray, window: int = 400) -> np.ndarray:
    """Token ids (all 2) of rows with `lengths` words, padded to `window`."""
    return (np.arange(window)[None, :] < lengths[:, None]) * 2


def test_output_layer_calibrates_overconfident_logits() -> None:
    """Fitted on validation logits that are five times too confident, the output layer undoes it."""
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(4000, 1))
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logits[:, 0]))).astype(int)
    overconfident = 5 * true_logits
    ids = ids_of_length(rng.integers(1, 400, 4000))
    features = output_features(overconfident, ids)
    fitted = fit_output_layer(overconfident, ids, labels, calibrate=True)
    before = evaluate.expected_calibration_error(labels, 1 / (1 + np.exp(-overconfident[:, 0])))
    after = evaluate.expected_calibration_error(labels, fitted(features).numpy()[:, 0])
    assert before > 0.1 and after < 0.03
    plain = fit_output_layer(overconfident, ids, labels, calibrate=False)
    np.testing.assert_allclose(plain(features).numpy()[:, 0], 1 / (1 + np.exp(-overconfident[:, 0])), rtol=1e-5)


def test_output_layer_calibrates_each_length() -> None:
    """Logits whose confidence depends on the review's length (one-liners four times too confident, long reviews
    half as confident as they should be): one temperature cannot fix both, the output layer fixes each."""
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 2, size=(20_000, 1))
    labels = (rng.random(20_000) < 1 / (1 + np.exp(-true_logits[:, 0]))).astype(int)
    lengths = np.exp(rng.uniform(np.log(3), np.log(400), 20_000)).astype(int)
    logits = true_logits / (0.4 * np.log1p(lengths) - 0.3)[:, None]
    ids = ids_of_length(lengths)
    fitted = fit_output_layer(logits, ids, labels, calibrate=True)
    np.testing.assert_allclose(fitted.get_weights()[0][:2, 0], [-0.3, 0.4], atol=0.05)
    probabilities = fitted(output_features(logits, ids)).numpy()[:, 0]
    one_temperature = LogisticRegression().fit(logits, labels).predict_proba(logits)[:, 1]
    for part in (lengths < 30, lengths >= 30):
        assert evaluate.expected_calibration_error(labels[part], one_temperature[part]) > 0.03
        assert evaluate.expected_calibration_error(labels[part], probabilities[part]) < 0.02


def test_output_features_in_the_model_read_the_words_read() -> None:
    """The end-to-end model's output layer reads r = log(1 + words in the window): a known output layer on a
    known classifier gives sigmoid(logit + 0.5 logit r + 0.25 r + 0.1)."""
    tokenizer = make_tokenizer(["a good film", "bad bad movie here"], 100, 8)
    classifier = build_classifier(tokenizer.vocabulary_size(), TrainConfig(lstm_units=4, embedding_dim=4, dense_units=4))
    model = end_to_end(tokenizer, classifier, output_layer(np.array([1.0, 0.5, 0.25]), 0.1))
    texts = ["a good film", "bad", "one two three four five six seven eight nine ten"]
    logit = classifier.predict(tokenizer(tf.constant(texts)).numpy(), verbose=0)[:, 0]
    r = np.log1p([3, 1, 8])  # the third is cut at the window of 8
    np.testing.assert_allclose(model.predict(tf.constant(texts), verbose=0)[:, 0],
                               1 / (1 + np.exp(-(logit + 0.5 * logit * r + 0.25 * r + 0.1))), rtol=1e-5)


def test_calibration_error_of_known_cases() -> None:
    labels = np.array([0, 1] * 50)
    assert evaluate.expected_calibration_error(labels, np.full(100, 0.5)) == pytest.approx(0.0)
    assert evaluate.expected_calibration_error(labels, labels.astype(float)) == pytest.approx(0.0)
    assert evaluate.expected_calibration_error(labels, np.full(100, 0.9)) == pytest.approx(0.4)


@pytest.mark.slow
def test_a_model_without_the_ngram_branch_serves_the_same(quick_benchmark: tuple[Path, object]) -> None:
    """The `bilstm` preset (as the quick benchmark trained it): one logit, no n-gram layers; the Space still equals
    plain Keras."""
    out = quick_benchmark[0] / "bilstm"
    model = keras.saving.load_model(out, safe_mode=True)
    assert {layer.name for layer in model.layers}.isdisjoint({inference.NGRAM_TOKENIZER_LAYER,
                                                               inference.NGRAM_WEIGHTS_LAYER})
    assert json.loads((out / "metrics.json").read_text())["model"]["ngram_branch"] is False
    predictor = inference.load_predictor(out)
    assert not predictor.has_ngram_branch
    texts = ["A wonderful, moving film.", "Boring. " * 60, "meh"]
    np.testing.assert_allclose(predictor.probabilities(texts), model(tf.constant(texts)).numpy()[:, 0], atol=1e-5)


def test_the_head_the_space_borrows_starts_at_the_logits(tiny_model: Path, quick_benchmark: tuple[Path, object]) -> None:
    """The Space runs the BiLSTM in its own compiled loop, through the window it picked, and borrows only the model's
    head: if the head were cut at a nested model's own `.output` (its inner graph's tensor), every call would also
    run the whole classifier again, in plain Keras over the full window, and give the same scores, only slower."""
    for folder in (tiny_model, quick_benchmark[0] / "bilstm"):
        head = inference.load_predictor(folder)._head
        assert [layer.name for layer in head.layers if layer.weights] == [OUTPUT_LAYER]


def test_a_model_that_reads_its_padding_is_scored_on_its_full_window(tutorial_model: Path) -> None:
    """The `tutorial` preset does not mask its padding, so its score depends on the padding it reads: the Space must
    not cut its window, or one-liners get another score than plain Keras gives them."""
    out = tutorial_model
    predictor = inference.load_predictor(out)
    assert predictor.windows == (predictor.window_size,)
    model = keras.saving.load_model(out, safe_mode=True)
    texts = ["Great.", "Bad film, dull and long.", "word " * (predictor.window_size + 10)]
    for batch in ([texts[0]], texts):
        np.testing.assert_allclose(predictor.probabilities(batch), model(tf.constant(batch)).numpy()[:, 0], atol=1e-5)


def test_short_reviews_are_scored_with_the_shortest_window(tiny_model: Path) -> None:
    predictor = inference.load_predictor(tiny_model)
    calls = []  # (rows, window the BiLSTM read) of each compiled call
    score = predictor._score_texts

    def spy(read, texts):
        probabilities, window = score(read, texts)
        calls.append((int(np.sum(texts.numpy() != b"")), int(window)))
        return probabilities, window

    predictor._score_texts = spy
    short = ["Great.", "Bad film."]
    predictor.probabilities(short)
    # A batch is one call through the window of its longest review: a long one among short ones reads it whole.
    texts = [short[0], "word " * (predictor.window_size + 10), short[1]]
    scores = predictor.probabilities(texts)
    assert calls == [(2, predictor.windows[0]), (3, predictor.window_size)]
    # The window is chosen from the token ids themselves: a long review in a one-liner's call still reads its own.
    long_review = tf.constant(["word " * (predictor.window_size + 10)])
    assert int(score(long_review, long_review)[1]) == predictor.window_size
    model = keras.saving.load_model(tiny_model, safe_mode=True)
    np.testing.assert_allclose(scores, model(tf.constant(texts)).numpy()[:, 0], atol=1e-5)
    assert pd.Series(scores).notna().all()
