"""Render the top-level `model_card.md` template into a model folder's `README.md`.

Every figure on the card is read from the folder's own files, so the card cannot disagree with the
weights it describes.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from training import artifacts
from training.evaluate import CALIBRATION_BINS, THRESHOLD

TEMPLATE = Path(__file__).resolve().parent.parent / "model_card.md"
PLACEHOLDER_REPO = "OWNER/NAME"
LICENSE = "apache-2.0"
DATASET_ID = "stanfordnlp/imdb"
DATASET_NAME = "IMDB movie reviews (Maas et al., 2011)"
TUTORIAL_ACCURACY = 0.86  # what the original tutorial reports for the network of the `seed` preset
TAGS = ["keras", "tensorflow", "text-classification", "sentiment-analysis", "lstm", "bidirectional-lstm", "imdb"]


def folder_bytes(folder: Path) -> int:
    """Size on disk of everything a user downloads, the card itself excepted."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != artifacts.CARD)


def card_data(metrics: dict, split_name: str) -> ModelCardData:
    """The YAML metadata block, with a model-index holding the measured test figures."""
    results = [
        EvalResult(
            task_type="text-classification",
            task_name="Sentiment analysis",
            dataset_type=DATASET_ID,
            dataset_name=DATASET_NAME,
            dataset_split=split_name,
            metric_type=metric,
            metric_name=metric.capitalize() if metric == "accuracy" else metric.upper(),
            metric_value=round(metrics["test"][metric], 4),
        )
        for metric in ("accuracy", "f1")
    ]
    return ModelCardData(
        model_name="IMDB sentiment BiLSTM",
        language="en",
        license=LICENSE,
        library_name="keras",
        pipeline_tag="text-classification",
        tags=TAGS,
        datasets=[DATASET_ID],
        metrics=["accuracy", "f1"],
        eval_results=results,
    )


def render_card(folder: Path, repo_id: str | None = None, space_id: str | None = None) -> ModelCard:
    """The card for the model folder `folder`, with usage examples for `repo_id` if known."""
    metrics = json.loads((folder / artifacts.METRICS).read_text(encoding="utf-8"))
    config = json.loads((folder / artifacts.TRAINING_CONFIG).read_text(encoding="utf-8"))
    benchmark = folder / artifacts.BENCHMARK
    test_share = config["hyperparameters"]["test_size"]
    split_name = f"held-out {test_share:.0%} of the de-duplicated reviews"
    return ModelCard.from_template(
        card_data(metrics, split_name),
        template_path=str(TEMPLATE),
        repo_id=repo_id or PLACEHOLDER_REPO,
        space_id=space_id,
        metrics=metrics,
        config=config,
        hp=config["hyperparameters"],
        rows=config["data"]["rows"],
        split_name=split_name,
        size_mb=folder_bytes(folder) / 1e6,
        tutorial_accuracy=TUTORIAL_ACCURACY,
        dataset_id=DATASET_ID,
        license=LICENSE,
        files=artifacts,
        benchmark=benchmark.read_text(encoding="utf-8") if benchmark.is_file() else None,
        threshold=THRESHOLD,
        calibration_bins=CALIBRATION_BINS,
    )


def write_card(folder: Path, repo_id: str | None = None, space_id: str | None = None) -> None:
    """Render the card into `folder/README.md`."""
    render_card(folder, repo_id, space_id).save(folder / artifacts.CARD)
