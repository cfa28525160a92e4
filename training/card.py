"""Render the top-level `model_card.md` template into a model folder's `README.md`.

Every figure on the card is read from the folder's own files, written when its model was trained, so the
card cannot disagree with the weights it describes.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from training import model_folder
from training.model_folder import CALIBRATION_BINS, MIN_SENTENCE_WORDS, THRESHOLD

if TYPE_CHECKING:
    import keras

TEMPLATE = Path(__file__).resolve().parent.parent / "model_card.md"
PLACEHOLDER_REPO = "OWNER/NAME"
LICENSE = "apache-2.0"
DATASET_ID = "stanfordnlp/imdb"
DATASET_NAME = "IMDB movie reviews (Maas et al., 2011)"
TUTORIAL_ACCURACY = 0.86  # what the original tutorial reports for the network of the `tutorial` preset
TAGS = ["keras", "tensorflow", "text-classification", "sentiment-analysis", "lstm", "bidirectional-lstm", "imdb"]
# The card's examples: the Hub's widget shows them with the answers this model gave when it was trained.
EXAMPLES = ("A moving, beautifully acted film.", "Two hours I will never get back.", "Not bad at all.")


def evaluation_dataset(config: dict) -> dict:
    """What the test figures were measured on, as model-index fields: a Hub dataset's own test split, or a
    custom split of one file (then no split of any Hub dataset is claimed)."""
    data = config["data"]
    dataset = data["official_splits"]
    if dataset:
        test = data["files"]["test"]
        return {"dataset_type": dataset, "dataset_name": DATASET_NAME if dataset == DATASET_ID else dataset,
                "dataset_config": PurePosixPath(test["path"]).parent.name, "dataset_split": "test",
                "dataset_revision": test["commit"]}
    file = data["files"]["reviews"]
    share = config["hyperparameters"]["test_size"]
    return {"dataset_type": file.get("repo", file["file"]),
            "dataset_name": f"custom split of {file['file']}: its held-out {share:.0%}",
            "dataset_revision": file.get("commit")}


def example_probabilities(model: keras.Model) -> dict[str, float]:
    """P(positive) of each of EXAMPLES by `model`: stored in metrics.json when the model is trained, so that
    rendering the card at every push needs no TensorFlow."""
    from training.quiet_tf import tf

    probabilities = model.predict(tf.constant(EXAMPLES), verbose=0)[:, 0].tolist()
    return {text: round(p, 4) for text, p in zip(EXAMPLES, probabilities)}


def widget(examples: dict[str, float], labels: list[str]) -> list[dict]:
    """The examples with the model's answers in the Hub's widget format: the Hub runs no Keras text model itself,
    so a card shows static outputs. The likelier label comes first, as in a live widget."""
    answers = ([{"label": labels[1], "score": p}, {"label": labels[0], "score": round(1 - p, 4)}] for p in examples.values())
    return [{"text": text, "output": sorted(answer, key=lambda a: -a["score"])} for text, answer in zip(examples, answers)]


def card_data(metrics: dict, evaluation: dict, examples: list[dict]) -> ModelCardData:
    """The YAML metadata block, with a model-index holding the measured test figures."""
    results = [
        EvalResult(
            task_type="text-classification",
            task_name="Sentiment analysis",
            **evaluation,
            metric_type=metric,
            metric_name=metric.capitalize() if metric == "accuracy" else metric.upper(),
            metric_value=round(metrics["test"][metric], 4),
        )
        for metric in ("accuracy", "f1")
    ]
    on_hub = evaluation.get("dataset_revision") is not None  # a local file has no commit and no Hub page
    return ModelCardData(
        model_name="IMDB sentiment BiLSTM",
        language="en",
        license=LICENSE,
        library_name="keras",
        pipeline_tag="text-classification",
        tags=TAGS,
        datasets=[evaluation["dataset_type"]] if on_hub else None,
        metrics=["accuracy", "f1"],
        eval_results=results,
        widget=examples,
    )


def render_card(folder: Path, repo_id: str | None = None, space_id: str | None = None) -> ModelCard:
    """The card for the model folder `folder`, with usage examples for `repo_id` if known."""
    metrics = json.loads((folder / model_folder.METRICS).read_text(encoding="utf-8"))
    config = json.loads((folder / model_folder.TRAINING_CONFIG).read_text(encoding="utf-8"))
    tokenizer = json.loads((folder / model_folder.TOKENIZER).read_text(encoding="utf-8"))
    if "files" not in config["data"] or "widget" not in metrics:
        raise model_folder.FolderError(f"{folder} was made by an older training.train, without the records of its data "
                                       "files or the widget's answers that the card shows; train it again")
    benchmark = folder / model_folder.BENCHMARK
    evaluation = evaluation_dataset(config)
    return ModelCard.from_template(
        card_data(metrics, evaluation, widget(metrics["widget"], config["labels"])),
        template_path=str(TEMPLATE),
        repo_id=repo_id or PLACEHOLDER_REPO,
        space_id=space_id,
        metrics=metrics,
        config=config,
        tokenizer={name: value for name, value in tokenizer.items() if name != "vocabulary"},
        hp=config["hyperparameters"],
        data=config["data"],
        rows=config["data"]["rows"],
        evaluation=evaluation,
        examples=list(metrics["widget"]),
        example_probabilities=list(metrics["widget"].values()),
        min_sentence_words=MIN_SENTENCE_WORDS,
        # Everything a user downloads, the card itself excepted.
        size_mb=sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != model_folder.CARD) / 1e6,
        tutorial_accuracy=TUTORIAL_ACCURACY,
        license=LICENSE,
        files=model_folder,
        benchmark=benchmark.read_text(encoding="utf-8") if benchmark.is_file() else None,
        threshold=THRESHOLD,
        calibration_bins=CALIBRATION_BINS,
    )


