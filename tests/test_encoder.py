"""training.encoder pre-trains the embedding and the BiLSTM as a language model; training.train --encoder starts
from that folder, local or on the Hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_FLAGS, hub_env, run_module, run_python
from hub_server import FakeHub

from training import model_folder
from training.data import SAMPLE_CSV, sha256_of
from training.encoder import ENCODER_CARD, ENCODER_CONFIG, ENCODER_LOG

# The tiny training run's sizes (TINY_FLAGS), so that its split and network match.
SIZES = ["--max-rows", "400", "--vocab-size", "500", "--sequence-length", "40", "--embedding-dim", "8",
         "--lstm-units", "4"]
EPOCHS = 2


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reviews that the tiny runs do not read as labelled ones (they read the first 400 rows)."""
    path = tmp_path_factory.mktemp("unlabeled") / "unlabeled.csv"
    pd.DataFrame({"review": pd.read_csv(SAMPLE_CSV)["review"][1000:1600]}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory, unlabeled: Path) -> Path:
    out = tmp_path_factory.mktemp("encoders") / "tiny"
    result = run_module("training.encoder", "--data", str(SAMPLE_CSV), "--unlabeled", str(unlabeled),
                        "--out", str(out), *SIZES, "--epochs", str(EPOCHS), "--batch-size", "32")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"encoder folder: {out}" in result.stdout
    return out


def test_encoder_folder_records_its_data_and_learning(encoder: Path, unlabeled: Path) -> None:
    record = json.loads((encoder / ENCODER_CONFIG).read_text())
    assert record["data"]["files"]["reviews"]["sha256"] == sha256_of(SAMPLE_CSV)
    assert record["unlabeled_data"]["sha256"] == sha256_of(unlabeled)
    # The training part of the 400 rows (as training.train splits them) and the 600 unlabeled reviews.
    assert record["training_texts"] == record["data"]["rows"]["train"] + 600
    log = pd.read_csv(encoder / ENCODER_LOG)
    assert log["epoch"].tolist() == list(range(1, EPOCHS + 1))
    # Better with each epoch, and than guessing uniformly among the 500 words: the language model learns.
    assert log["held_out_perplexity"].is_monotonic_decreasing and log["held_out_perplexity"].iloc[-1] < 0.8 * 500
    assert not (encoder.parent / f".{encoder.name}.training").exists(), "the finished run left its state"
    card = (encoder / ENCODER_CARD).read_text()
    assert f"| {EPOCHS} | {log['held_out_perplexity'].iloc[-1]:.1f} |" in card and "imdb_sample.csv.gz" in card


def test_encoder_loads_in_safe_mode_without_our_code(encoder: Path, tmp_path: Path) -> None:
    code = f"""
import json, keras
encoder = keras.saving.load_model({str(encoder)!r}, safe_mode=True)
forward, backward = encoder.predict(keras.ops.convert_to_tensor(["a great film", "dull"]), verbose=0)
print(json.dumps([list(forward.shape), list(backward.shape)]))
"""
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [[2, 40, 4], [2, 40, 4]]


def test_training_starts_from_the_encoder(encoder: Path, tmp_path: Path) -> None:
    """With frozen embeddings, the saved embedding is exactly the encoder's, and so is the vocabulary."""
    import keras

    out = tmp_path / "model"
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS, "--epochs", "1", "--encoder", str(encoder),
                        "--freeze-embeddings")
    assert result.returncode == 0, result.stderr[-2000:]
    hyperparameters = json.loads((out / model_folder.TRAINING_CONFIG).read_text())["hyperparameters"]
    assert hyperparameters["encoder"] == str(encoder) and hyperparameters["pretrain_embeddings"] is False
    pretrained = keras.saving.load_model(encoder, safe_mode=True)
    model = keras.saving.load_model(out, safe_mode=True)
    assert model.get_layer("tokenizer").get_vocabulary() == pretrained.get_layer("tokenizer").get_vocabulary()
    saved = model.get_layer("bilstm_classifier").get_layer("embedding").get_weights()[0]
    np.testing.assert_array_equal(saved, pretrained.get_layer("bilstm_states").get_layer("embedding").get_weights()[0])


@pytest.mark.parametrize(("flags", "message"), [
    (["--lstm-units", "8"], "was pre-trained with --vocab-size 500 --embedding-dim 8 --lstm-units 4"),
    (["--pretrain-embeddings"], "cannot be combined with --pretrain-embeddings"),
])
def test_an_encoder_that_does_not_fit_is_refused(encoder: Path, tmp_path: Path, flags: list, message: str) -> None:
    out = tmp_path / "model"
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS, "--encoder", str(encoder), *flags)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not (tmp_path / ".model.training").exists()


def test_missing_encoder_folder_is_refused(tmp_path: Path) -> None:
    result = run_module("training.train", "--out", str(tmp_path / "model"), *TINY_FLAGS,
                        "--encoder", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "nowhere: no such folder" in result.stderr


def test_training_from_an_encoder_on_the_hub(encoder: Path, hub: FakeHub, tmp_path: Path) -> None:
    """`--encoder hf://OWNER/NAME` reads the published folder; a missing repo gets a one-line error."""
    hub.publish("someone/tiny-encoder", {p.relative_to(encoder).as_posix(): p.read_bytes()
                                         for p in encoder.rglob("*") if p.is_file()}, repo_type="model")
    env = hub_env(hub, tmp_path / "home", token="")
    out = tmp_path / "model"
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS, "--epochs", "1",
                        "--encoder", "hf://someone/tiny-encoder", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    missing = run_module("training.train", "--out", str(tmp_path / "other"), *TINY_FLAGS,
                         "--encoder", "hf://someone/missing", env=env)
    assert missing.returncode == 2 and "--encoder hf://someone/missing: not an encoder folder" in missing.stderr
    assert "Traceback" not in missing.stderr
