"""Test-part metrics, the TF-IDF + logistic-regression baseline, and the two plots."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline, make_pipeline

THRESHOLD = 0.5
BASELINE_NAME = "TF-IDF (1-2 grams) + logistic regression"
MIN_SENTENCE_WORDS = 4
# Review lengths in words (whitespace-separated, after cleaning): (name, fewest, most; None: no limit).
LENGTH_GROUPS = (("up to 100 words", 0, 100), ("101-400 words", 101, 400), ("over 400 words", 401, None))


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC and the confusion matrix ([[TN, FP], [FN, TP]])."""
    predicted = (probabilities >= THRESHOLD).astype(int)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "examples": int(len(labels)),
    }


def last_sentences(texts: Sequence[str]) -> list[str]:
    """The last sentence of at least MIN_SENTENCE_WORDS words of each review: the one-line texts demo visitors type."""
    result = []
    for text in texts:
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= MIN_SENTENCE_WORDS]
        result.append(sentences[-1] if sentences else text)
    return result


def accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    """The share of correct answers at THRESHOLD; None when there is nothing to score."""
    return float(np.mean((probabilities >= THRESHOLD) == labels)) if len(labels) else None


def one_sentence_accuracy(score: Callable[[list[str]], np.ndarray], texts: Sequence[str], labels: np.ndarray) -> float:
    """Accuracy when the model sees only the last sentence of each review, labelled as its review."""
    return accuracy(labels, np.ravel(score(last_sentences(texts))))


def accuracy_by_length(texts: Sequence[str], labels: np.ndarray, probabilities: np.ndarray) -> list[dict]:
    """Accuracy of each LENGTH_GROUPS group of reviews, with its size."""
    words = np.array([len(text.split()) for text in texts])
    groups = []
    for name, fewest, most in LENGTH_GROUPS:
        inside = (words >= fewest) & (words <= (np.inf if most is None else most))
        groups.append({"group": name, "reviews": int(inside.sum()),
                       "accuracy": accuracy(labels[inside], probabilities[inside])})
    return groups


def held_out_metrics(score: Callable[[list[str]], np.ndarray], texts: Sequence[str], labels: np.ndarray) -> dict:
    """Everything measured on the test part with `score` (texts in, P(positive) out): the classification
    metrics, accuracy by review length, and one-sentence accuracy."""
    probabilities = np.ravel(score(list(texts)))
    return {**classification_metrics(labels, probabilities),
            "by_length": accuracy_by_length(texts, labels, probabilities),
            "one_sentence_accuracy": one_sentence_accuracy(score, texts, labels)}


def train_baseline(texts: pd.Series, labels: pd.Series, seed: int) -> Pipeline:
    """The classic bag-of-words model every neural model here has to beat."""
    baseline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=1000, random_state=seed),
    )
    return baseline.fit(texts, labels)


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
