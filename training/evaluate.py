"""Test-part metrics, the TF-IDF + logistic-regression baseline, and the two plots."""

from __future__ import annotations

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
