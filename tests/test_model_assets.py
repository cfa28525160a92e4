"""The n-gram vocabulary's place in the model folder: a text file in Keras' assets/, not JSON in config.json; the
folder loads in plain Keras with safe mode, and a folder of the former layout still serves."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from conftest import run_python

import space_support  # noqa: F401  (the quiet environment, before gradio is imported)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import inference  # noqa: E402
from training import model_folder  # noqa: E402
from training.model import (MAX_NGRAM_CHARS, NGRAM_TOKENIZER_LAYER, NGRAM_WEIGHTS_LAYER, OUTPUT_LAYER,  # noqa: E402
                            TOKENIZER_LAYER, CLASSIFIER_LAYER, end_to_end, most_frequent_ngrams)

TEXTS = ["A fine film.", "Dull, long and badly acted.", "not good, not bad", ""]


def layer_config(folder: Path, name: str) -> dict:
    """The saved configuration of the end-to-end model's layer `name`, as config.json holds it."""
    layers = json.loads((folder / model_folder.KERAS_CONFIG).read_text(encoding="utf-8"))["config"]["layers"]
    return next(layer["config"] for layer in layers if layer["config"]["name"] == name)


def test_the_ngram_vocabulary_is_an_asset_and_loads_in_plain_keras(tiny_model: Path, tmp_path: Path) -> None:
    assert layer_config(tiny_model, NGRAM_TOKENIZER_LAYER)["vocabulary"] is None
    vocabulary = keras.saving.load_model(tiny_model, safe_mode=True).get_layer(NGRAM_TOKENIZER_LAYER).get_vocabulary()
    saved = [path.read_text(encoding="utf-8").split("\n") for path in (tiny_model / "assets").rglob("vocabulary.txt")]
    assert saved and all(lines == vocabulary for lines in saved)
    # Nothing of ours importable (another folder, no PYTHONPATH), safe mode on: the scores of the folder's model.
    code = f"""
import json, keras, tensorflow as tf
model = keras.saving.load_model({str(tiny_model)!r}, safe_mode=True)
print(json.dumps(model.predict(tf.constant({TEXTS!r}), verbose=0)[:, 0].tolist()))
"""
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = inference.load_predictor(tiny_model).probabilities(TEXTS)
    np.testing.assert_allclose(json.loads(result.stdout.strip().splitlines()[-1]), expected, atol=1e-5)


def test_ngrams_that_would_not_survive_the_asset_file_are_left_out() -> None:
    """Keras reads the file back with str.splitlines: an n-gram holding U+0085 (common in IMDB's reviews) or
    U+2028 would come back as two lines. An n-gram longer than MAX_NGRAM_CHARS would widen every entry."""
    long_word = "x" * (MAX_NGRAM_CHARS + 1)
    texts = ["well\x85 done film", "line\u2028break film", f"{long_word} film"] * 3
    ngrams = most_frequent_ngrams(texts, 100, 3)
    assert "film" in ngrams and "done film" in ngrams
    assert all(gram.splitlines() == [gram] and len(gram) <= MAX_NGRAM_CHARS for gram in ngrams)
    assert not any(long_word in gram for gram in ngrams)


def test_a_folder_with_the_vocabulary_in_config_json_still_serves(tiny_model: Path, tmp_path: Path) -> None:
    """Folders trained before the vocabulary moved to assets/ hold it as JSON in config.json: they load as before."""
    model = keras.saving.load_model(tiny_model, safe_mode=True)
    ngrams = model.get_layer(NGRAM_TOKENIZER_LAYER)
    settings = {key: ngrams.get_config()[key] for key in ("standardize", "split", "ngrams", "output_mode", "sparse")}
    settings["ngrams"] = tuple(settings["ngrams"]) if isinstance(settings["ngrams"], list) else settings["ngrams"]
    inline = keras.layers.TextVectorization(**settings, vocabulary=ngrams.get_vocabulary()[1:],
                                            name=NGRAM_TOKENIZER_LAYER)
    old = end_to_end(model.get_layer(TOKENIZER_LAYER), model.get_layer(CLASSIFIER_LAYER), model.get_layer(OUTPUT_LAYER),
                     inline, model.get_layer(NGRAM_WEIGHTS_LAYER))
    folder = tmp_path / "old"
    folder.mkdir()
    for name in (model_folder.TOKENIZER, model_folder.TRAINING_CONFIG):
        shutil.copy(tiny_model / name, folder)
    old.save(folder, zipped=False)
    assert layer_config(folder, NGRAM_TOKENIZER_LAYER)["vocabulary"] == ngrams.get_vocabulary()[1:]
    np.testing.assert_allclose(inference.load_predictor(folder).probabilities(TEXTS),
                               model(tf.constant(TEXTS)).numpy()[:, 0], atol=1e-5)


def test_the_space_reads_each_vocabulary_once_and_refuses_one_left_unread(tiny_model: Path) -> None:
    """Plain Keras reads the n-gram vocabulary twice (the layer's read and its lookup layer's); the Space, once.
    Were a Keras upgrade to stop reading it through the lookup layer, the Space would refuse the folder."""
    def sizes_read(load) -> Counter:
        read = keras.layers.StringLookup.set_vocabulary
        with mock.patch.object(keras.layers.StringLookup, "set_vocabulary", autospec=True, side_effect=read) as spy:
            load(tiny_model)
        return Counter(len(call.args[1]) for call in spy.call_args_list)

    assert max(sizes_read(lambda folder: keras.saving.load_model(folder, safe_mode=True)).values()) == 2
    assert set(sizes_read(inference.model_folder.load).values()) == {1}
    with mock.patch.object(keras.layers.StringLookup, "load_assets", lambda layer, path: None):
        with pytest.raises(inference.ModelUnavailable, match="could not be loaded"):
            inference.model_folder.load(tiny_model)
