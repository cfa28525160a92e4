"""The model folder's contract: what training writes (training/model_folder.py, training/model.py) is what the
Space reads (space/model_folder.py), checked on a folder trained here."""

from __future__ import annotations

from pathlib import Path

import pytest

import space_support  # noqa: F401  (the quiet environment, before TensorFlow is imported)

import model_folder as serving  # noqa: E402  (space/model_folder.py)
from review_text import SEPARATORS  # noqa: E402
from training import model  # noqa: E402
from training import model_folder as training  # noqa: E402
from training.data import LABELS  # noqa: E402

FILES = ("KERAS_CONFIG", "KERAS_METADATA", "KERAS_WEIGHTS", "TOKENIZER", "TRAINING_CONFIG")
LAYERS = ("TOKENIZER_LAYER", "CLASSIFIER_LAYER", "NGRAM_TOKENIZER_LAYER", "NGRAM_WEIGHTS_LAYER")


@pytest.fixture(scope="module")
def contents(tiny_model: Path) -> serving.Contents:
    return serving.load(tiny_model)


def test_the_space_reads_files_that_training_writes(tiny_model: Path) -> None:
    for name in FILES:
        assert getattr(serving, name) == getattr(training, name), name
    assert set(serving.REQUIRED_FILES) <= set(training.REQUIRED_FILES)
    assert all((tiny_model / name).is_file() for name in serving.REQUIRED_FILES)


def test_the_space_finds_the_layers_that_training_names(contents: serving.Contents) -> None:
    names = {layer.name for layer in contents.model.layers}
    for name in LAYERS:
        assert getattr(serving, name) == getattr(model, name), name
        assert getattr(serving, name) in names, name
    classifier = contents.model.get_layer(serving.CLASSIFIER_LAYER)
    for name in ("EMBEDDING_LAYER", "BILSTM_LAYER"):  # inside the classifier
        assert getattr(serving, name) == getattr(model, name), name
        assert classifier.get_layer(getattr(serving, name)), name


def test_labels_and_threshold_agree(contents: serving.Contents) -> None:
    assert contents.labels == LABELS
    assert serving.THRESHOLD == training.THRESHOLD


def test_tokenizer_json_is_what_the_tokenizer_layer_says(contents: serving.Contents) -> None:
    spec = contents.tokenizer
    config = contents.model.get_layer(serving.TOKENIZER_LAYER).get_config()
    assert (spec["standardize"], spec["split"], spec["sequence_length"]) == (
        config["standardize"], config["split"], config["output_sequence_length"])
    assert spec["split"] in SEPARATORS
    vocabulary = contents.model.get_layer(serving.TOKENIZER_LAYER).get_vocabulary()
    assert spec["vocabulary"] == vocabulary and (spec["pad_id"], spec["oov_id"]) == (model.PAD_ID, model.OOV_ID)
    assert vocabulary[model.PAD_ID] == "" and len(vocabulary) > model.FIRST_WORD_ID
