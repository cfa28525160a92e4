"""Scoring against the baselines: test-part metrics (calibration included), the bag-of-n-grams baselines, the plots."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import training.quiet_tf  # noqa: F401  (first: TensorFlow without its C++ start-up lines)
import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibrationDisplay
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline, make_pipeline

from training.config import TrainConfig
from training.data import LABELS, Splits
from training.model_folder import (CALIBRATION_BINS, CALIBRATION_PLOT, CONFUSION_PLOT, CURVES_PLOT,
                                    MIN_SENTENCE_WORDS, THRESHOLD)

BASELINE_NAME = "TF-IDF (1-2 grams) + logistic regression"
NBSVM_NAME = "NBSVM (binarized 1-3 grams, Wang & Manning 2012)"
NBSVM_MAX_N = 3
NBSVM_SMOOTHING = 1.0  # added to every n-gram count before the log-count ratio
PREDICT_BATCH = 256
# A sentence ends after . ! or ?, before whitespace or the IMDB dump's line breaks.
SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s|<br />)+")
# Sentences with one of these are reported apart: a review's label teaches a negated phrase worst.
NEGATION = re.compile(r"\b(?:not|no|never|hardly|nothing|none|neither|nor|without)\b|n't\b", re.IGNORECASE)
# Review lengths in words, for the results broken down by length: (name, fewest words, most words).
LENGTH_GROUPS = (("up to 100 words", 0, 100), ("101-400 words", 101, 400), ("over 400 words", 401, None))


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC and the confusion matrix ([[TN, FP], [FN, TP]])."""
    predicted = (probabilities >= THRESHOLD).astype(int)
    return {
        **accuracy_and_ece(labels, probabilities),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "examples": int(len(labels)),
    }


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """How far P(positive) is from the observed share of positives: the mean gap over equal-width bins,
    weighted by how many reviews fall in each."""
    bins = np.minimum((probabilities * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    gaps = [abs(labels[bins == b].mean() - probabilities[bins == b].mean()) * (bins == b).sum()
            for b in range(CALIBRATION_BINS) if (bins == b).any()]
    return float(np.sum(gaps) / len(labels))


def accuracy_and_ece(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy at THRESHOLD and the expected calibration error: the two figures shown for every part."""
    return {"accuracy": float(((probabilities >= THRESHOLD) == labels).mean()),
            "ece": expected_calibration_error(labels, probabilities)}


def sentences(text: str) -> list[str]:
    """The sentences of at least MIN_SENTENCE_WORDS words of a review, in order."""
    return [s.strip() for s in SENTENCE_END.split(text) if len(s.split()) >= MIN_SENTENCE_WORDS]


def last_sentences(texts: list[str]) -> list[str]:
    """The last sentence of each review (the whole review if it has none): the one-line texts demo visitors type."""
    return [(sentences(text) or [text])[-1] for text in texts]


def accuracy_by_length(texts: pd.Series, labels: np.ndarray, probabilities: np.ndarray) -> dict[str, dict]:
    """Accuracy and review count of each LENGTH_GROUPS group."""
    words = texts.str.split().str.len().to_numpy()
    correct = (probabilities >= THRESHOLD).astype(int) == labels
    groups = {}
    for name, low, high in LENGTH_GROUPS:
        member = (words >= low) & (words <= (high if high is not None else words.max()))
        groups[name] = {"accuracy": float(correct[member].mean()) if member.any() else None,
                        "examples": int(member.sum())}
    return groups


class LogCountRatio(TransformerMixin, BaseEstimator):
    """Scales binarized n-gram features by their naive-Bayes log-count ratio, the "NB" of NBSVM."""

    def fit(self, features: sparse.spmatrix, labels: np.ndarray,
            sample_weight: np.ndarray | None = None) -> LogCountRatio:
        labels = np.asarray(labels)
        weights = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight)
        positive = NBSVM_SMOOTHING + features[labels == 1].T @ weights[labels == 1]
        negative = NBSVM_SMOOTHING + features[labels == 0].T @ weights[labels == 0]
        self.ratio_ = (np.log(positive / positive.sum()) - np.log(negative / negative.sum())).astype("float32")
        return self

    def transform(self, features: sparse.spmatrix) -> sparse.csr_matrix:
        return sparse.csr_matrix(sparse.csr_matrix(features).multiply(self.ratio_))


def nbsvm(c: float, seed: int) -> Pipeline:
    """NBSVM on binarized n-gram features: log-count-ratio scaling, then logistic regression (the
    logistic-loss variant of Wang & Manning's NBSVM, as in Mesnil et al. 2015)."""
    return make_pipeline(LogCountRatio(), LogisticRegression(C=c, solver="liblinear", random_state=seed))


def nbsvm_weights(pipeline: Pipeline) -> tuple[np.ndarray, float]:
    """One weight per n-gram and a bias, such that weights . features + bias is the NBSVM's logit."""
    ratio, regression = pipeline[0].ratio_, pipeline[-1]
    return ratio * regression.coef_[0], float(regression.intercept_[0])


def predict(model: keras.Model | Pipeline, texts: list[str]) -> np.ndarray:
    """P(positive) of each text, from the Keras model or a scikit-learn baseline."""
    if isinstance(model, Pipeline):
        return model.predict_proba(texts)[:, 1]
    return model.predict(tf.constant(texts), batch_size=PREDICT_BATCH, verbose=0)[:, 0]


def test_figures(model: keras.Model | Pipeline, test: pd.DataFrame) -> tuple[dict, dict]:
    """The test part's metrics (whole reviews, their last sentences alone, those with a negation word, by length),
    and the (labels, probabilities) pairs of reviews and sentences for the reliability diagram."""
    labels = test["label"].to_numpy()
    probabilities = predict(model, test["text"].tolist())
    last = last_sentences(test["text"].tolist())
    sentences = predict(model, last)
    negated = np.array([bool(NEGATION.search(sentence)) for sentence in last])
    figures = {
        **classification_metrics(labels, probabilities),
        "one_sentence": accuracy_and_ece(labels, sentences),
        "negation_sentence": {**accuracy_and_ece(labels[negated], sentences[negated]), "examples": int(negated.sum())},
        "by_length": accuracy_by_length(test["text"], labels, probabilities),
    }
    return figures, {"whole reviews": (labels, probabilities), "last sentence only": (labels, sentences)}


def train_baselines(splits: Splits, config: TrainConfig) -> dict[str, tuple[str, Pipeline]]:
    """The bag-of-n-grams baselines, trained on the same training part: {key: (name, model)}. TF-IDF is the classic
    model every neural model here has to beat; NBSVM reads every 1-3-gram (scikit-learn's own tokenizer)."""
    tfidf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True),
                          LogisticRegression(C=4.0, max_iter=1000, random_state=config.seed))
    counts = CountVectorizer(ngram_range=(1, NBSVM_MAX_N), binary=True, dtype=np.float32)
    classic_nbsvm = Pipeline([("counts", counts), *nbsvm(config.ngram_c, config.seed).steps])
    texts, labels = splits.train["text"], splits.train["label"]
    return {"tfidf": (BASELINE_NAME, tfidf.fit(texts, labels)), "nbsvm": (NBSVM_NAME, classic_nbsvm.fit(texts, labels))}


def baseline_figures(baselines: dict[str, tuple[str, Pipeline]], test: pd.DataFrame) -> dict:
    """The baselines' figures on the test part, as the model's are computed."""
    return {key: {"name": name, **test_figures(model, test)[0]} for key, (name, model) in baselines.items()}


def plot_history(history: pd.DataFrame, path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    epochs = np.arange(1, len(history) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[metric], "o-", label="training")
        ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        ax.set(title=metric.capitalize(), xlabel="epoch", ylabel=metric)
        ax.set_xticks(epochs)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], labels: tuple[str, str], path: Path) -> None:
    """The test part's confusion matrix as an image."""
    display = ConfusionMatrixDisplay(np.array(matrix), display_labels=list(labels))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    display.plot(ax=ax, cmap="Blues", values_format="d", colorbar=False)
    ax.set_title("Test part")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Reliability diagram: observed share of positives against P(positive), one curve per test set."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (labels, probabilities) in curves.items():
        CalibrationDisplay.from_predictions(labels, probabilities, n_bins=CALIBRATION_BINS, name=name, ax=ax)
    ax.set_title("Calibration on the test part")
    ax.set(xlabel="P(positive) given by the model", ylabel="share of positive reviews")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(folder: Path, history: pd.DataFrame, confusion: list[list[int]],
                curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The model folder's plots: the training curves, the test part's confusion matrix, the reliability diagram."""
    plot_history(history, folder / CURVES_PLOT)
    plot_confusion(confusion, LABELS, folder / CONFUSION_PLOT)
    plot_reliability(curves, folder / CALIBRATION_PLOT)
