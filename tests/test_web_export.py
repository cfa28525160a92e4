"""The browser copy of a model folder (training.web_export), its push, and publishing the static Space."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import hub_env, run_module
from hub_server import FakeHub
from space_support import SPACE_DIR, clean_env

from tools import publish  # noqa: E402  (space_support put space/ on the path)
from training import web_export  # noqa: E402

MODEL_REPO = f"{FakeHub.user}/imdb-sentiment-bilstm"
STATIC_SPACE = f"{FakeHub.user}/imdb-sentiment-static"
PUBLISH_STATIC = [sys.executable, "-m", "tools.publish", "--static", "--space-id", STATIC_SPACE,
                  "--model-repo", MODEL_REPO]
# tools.publish run on a copy of static/ (argv[1]).
PUBLISH_COPY = "import sys; from pathlib import Path; from tools import publish; " \
               "publish.STATIC_DIR = Path(sys.argv[1]); sys.exit(publish.main(sys.argv[2:]))"


def unpacked(folder: Path, name: str) -> bytes:
    return gzip.decompress((folder / web_export.WEB_DIR / name).read_bytes())


def tensor(folder: Path, entry: dict) -> np.ndarray:
    dtype = np.dtype(entry["dtype"]).newbyteorder("<")
    return np.frombuffer(unpacked(folder, web_export.WEIGHTS), dtype, int(np.prod(entry["shape"])),
                         entry["offset"]).reshape(entry["shape"])


def test_export_holds_the_models_settings_vocabularies_and_weights(web_model: Path) -> None:
    import keras

    web = web_model / web_export.WEB_DIR
    manifest = json.loads((web / web_export.MANIFEST).read_text())
    vocabulary = json.loads(unpacked(web_model, web_export.VOCABULARY))
    tokenizer = json.loads((web_model / "tokenizer.json").read_text(encoding="utf-8"))
    training = json.loads((web_model / "training_config.json").read_text())["hyperparameters"]
    model = keras.saving.load_model(web_model, safe_mode=True)
    assert vocabulary["words"] == tokenizer["vocabulary"]
    # The n-grams in alphabetical order (the out-of-vocabulary slot first), each with its weight in 16 bits.
    ngrams = model.get_layer("ngram_tokenizer").get_vocabulary()
    assert vocabulary["ngrams"] == ngrams[:1] + sorted(ngrams[1:])
    assert len(vocabulary["ngrams"]) == training["ngram_vocab_size"]
    # Every logit's column: the one learned from reviews, the one also learned from sentences.
    kernel = dict(zip(ngrams, model.get_layer("ngram_weights").get_weights()[0].astype("float16")))
    exported = tensor(web_model, manifest["ngram"]["weights"]["kernel"])
    assert exported.dtype == np.float16 and exported.shape == (len(ngrams), 2)
    assert np.array_equal(exported, [kernel[gram] for gram in vocabulary["ngrams"]])
    assert manifest["tokenizer"]["sequence_length"] == training["sequence_length"]
    embedding, bilstm = manifest["classifier"][:2]
    assert bilstm["forward"]["units"] == training["lstm_units"]
    classifier = model.get_layer("bilstm_classifier")
    vectors = tensor(web_model, embedding["embeddings"])
    assert vectors.dtype == np.float16
    assert np.array_equal(vectors, classifier.get_layer("embedding").get_weights()[0].astype("float16"))
    backward = classifier.get_layer("bilstm").backward_layer.get_weights()
    assert np.array_equal(tensor(web_model, bilstm["backward"]["recurrent_kernel"]), backward[1])
    for name, facts in manifest["files"].items():
        assert (web / name).stat().st_size == facts["bytes"]
        assert len(unpacked(web_model, name)) == facts["unpacked_bytes"]


def test_an_existing_export_is_replaced_only_when_asked(web_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(web_model, folder)
    (folder / "web" / "model.json").write_text("{}")
    refused = run_module("training.web_export", "--model-dir", str(folder))
    assert refused.returncode == 2 and refused.stderr.startswith("error: ") and "--overwrite" in refused.stderr
    assert (folder / "web" / "model.json").read_text() == "{}"
    replaced = run_module("training.web_export", "--model-dir", str(folder), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert json.loads((folder / "web" / "model.json").read_text())["format"] == web_export.FORMAT


@pytest.mark.slow
def test_a_folder_that_is_not_a_model_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = run_module("training.web_export", "--model-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "incomplete" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "web").exists()


def test_push_uploads_the_browser_copy_with_the_rest(web_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    result = run_module("training.push", "--model-dir", str(web_model), "--repo-id", MODEL_REPO,
                        env=hub_env(hub, tmp_path / "home"))
    assert result.returncode == 0, result.stderr[-2000:]
    files = hub.files(MODEL_REPO)
    for name in (web_export.MANIFEST, web_export.VOCABULARY, web_export.WEIGHTS):
        assert files[f"web/{name}"] == (web_model / "web" / name).read_bytes()


def static_env(hub: FakeHub, home: Path) -> dict[str, str]:
    return clean_env(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_TOKEN=hub.token)


def test_publish_static_uploads_its_files_pinned_to_the_models_commit(web_model: Path, hub: FakeHub,
                                                                      tmp_path: Path) -> None:
    files = {str(p.relative_to(web_model)): p.read_bytes() for p in web_model.rglob("*") if p.is_file()}
    commit = hub.publish(MODEL_REPO, files, repo_type="model")
    # A secret, dependencies or notes left in the folder never go public: only the page's files are uploaded.
    static = tmp_path / "static"
    shutil.copytree(SPACE_DIR / "static", static)
    for name in (".env", "node_modules/lib/index.js", "notes.md"):
        (static / name).parent.mkdir(parents=True, exist_ok=True)
        (static / name).write_text("HF_TOKEN=hf_not_for_the_space\n")
    result = subprocess.run([sys.executable, "-c", PUBLISH_COPY, str(static), *PUBLISH_STATIC[3:]], cwd=SPACE_DIR,
                            env=static_env(hub, tmp_path / "home"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert hub.token not in result.stdout + result.stderr
    space = hub.files(STATIC_SPACE, repo_type="space")
    assert set(space) == {*publish.static_files(static), publish.STATIC_CONFIG} and "notes.md" not in space
    assert all(space[name] == (static / name).read_bytes() for name in publish.static_files(static)
               if name != publish.CARD)
    card = yaml.safe_load(space[publish.CARD].decode().split("---")[1])
    assert card["sdk"] == "static" and card["models"] == [MODEL_REPO]
    config = json.loads(space[publish.STATIC_CONFIG])
    assert (config["model_repo"], config["revision"], config["hub_url"]) == (MODEL_REPO, commit, hub.url)
    from examples import EXAMPLES
    from review_text import MAX_TEXT_CHARS

    assert config["examples"] == EXAMPLES and config["max_text_chars"] == MAX_TEXT_CHARS


def test_publish_static_refuses_a_model_without_its_browser_copy(tiny_model: Path, hub: FakeHub,
                                                                 tmp_path: Path) -> None:
    hub.publish(MODEL_REPO, {"config.json": (tiny_model / "config.json").read_bytes()}, repo_type="model")
    result = subprocess.run(PUBLISH_STATIC, cwd=SPACE_DIR, env=static_env(hub, tmp_path / "home"), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == (f"error: {MODEL_REPO} has no web/model.json: run `python -m training.web_export "
                             "--model-dir FOLDER`, then push the folder again\n")
