"""Publishing a model folder to a local Hub-compatible server, loading it back, and the model card."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, hub_env, run_module, run_python
from huggingface_hub import ModelCard
from hub_server import FakeHub

from training import artifacts
from training.card import render_card

REPO_ID = f"{FakeHub.user}/imdb-bilstm"
TEXTS = ["A moving, beautifully acted film.", "Two hours I will never get back.", "", "😀"]


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def push(folder: Path, env: dict, *extra: str):
    return run_module("training.push", "--model-dir", str(folder), "--repo-id", REPO_ID, *extra, env=env)


def test_push_then_load_with_keras_and_pinned_revision(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    env = hub_env(hub, tmp_path / "home")
    first = push(folder, env)
    assert first.returncode == 0, first.stderr[-2000:]
    commit = first.stdout.split("commit: ")[1].split()[0]
    assert f"{hub.url}/{REPO_ID}" in first.stdout
    assert hub.commits(REPO_ID)[-1] == commit
    assert set(hub.files(REPO_ID)) >= set(artifacts.REQUIRED_FILES) | {artifacts.CARD}
    assert f'load_model("hf://{REPO_ID}")' in hub.files(REPO_ID)[artifacts.CARD].decode()

    # Unchanged folder: no new commit.
    commits = hub.commits(REPO_ID)
    again = push(folder, env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert hub.commits(REPO_ID) == commits
    assert f"commit: {commit}" in again.stdout

    code = f"""
import json, keras, tensorflow as tf
from training.hub import load_from_hub
texts = tf.constant({TEXTS!r})
local = keras.saving.load_model({str(folder)!r}, safe_mode=True).predict(texts, verbose=0)
from_hub = keras.saving.load_model("hf://{REPO_ID}", safe_mode=True).predict(texts, verbose=0)
pinned = load_from_hub("{REPO_ID}", revision="{commit}").predict(texts, verbose=0)
print(json.dumps([local[:, 0].tolist(), from_hub[:, 0].tolist(), pinned[:, 0].tolist()]))
"""
    result = run_python(code, cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    local, from_hub, pinned = json.loads(result.stdout.strip().splitlines()[-1])
    assert local == from_hub == pinned


def test_push_to_a_branch(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    result = push(folder, hub_env(hub, tmp_path / "home"), "--revision", "dev", "--private", "--space-id", "me/demo")
    assert result.returncode == 0, result.stderr[-2000:]
    assert artifacts.KERAS_WEIGHTS in hub.files(REPO_ID, revision="dev")
    assert 'Client("me/demo")' in hub.files(REPO_ID, revision="dev")[artifacts.CARD].decode()
    assert artifacts.KERAS_WEIGHTS not in hub.files(REPO_ID, revision="main")


def test_failed_pushes_say_why_and_leave_the_folder_alone(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    before = fingerprint(folder)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(tiny_model, incomplete)
    (incomplete / artifacts.TOKENIZER).unlink()

    no_token = push(folder, hub_env(hub, tmp_path / "home", token=""))
    assert no_token.returncode == 2 and "error: no Hugging Face token" in no_token.stderr
    closed = {**hub_env(hub, tmp_path / "home"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    unreachable = push(folder, closed)
    assert unreachable.returncode == 2 and "error: cannot reach the Hub" in unreachable.stderr
    missing = push(incomplete, hub_env(hub, tmp_path / "home"))
    assert missing.returncode == 2 and f"missing {artifacts.TOKENIZER}" in missing.stderr
    older = tmp_path / "older"
    shutil.copytree(tiny_model, older)
    config = json.loads((older / artifacts.TRAINING_CONFIG).read_text())
    config["data"] = {"file": "reviews.csv", "sha256": "0" * 64, "rows": config["data"]["rows"]}  # the earlier layout
    (older / artifacts.TRAINING_CONFIG).write_text(json.dumps(config))
    old_layout = push(older, hub_env(hub, tmp_path / "home"))
    assert old_layout.returncode == 2 and "train it again" in old_layout.stderr

    for result in (no_token, unreachable, missing, old_layout):
        assert "Traceback" not in result.stderr
    assert fingerprint(folder) == before
    assert REPO_ID not in str(hub.requests)


def test_made_up_token_never_reaches_output_or_files(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    token = "hf_madeUpTokenThatMustNeverLeak0123"
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    result = push(folder, hub_env(hub, tmp_path / "home", token=token))
    assert result.returncode == 2 and "token was refused" in result.stderr
    assert token not in result.stdout + result.stderr
    for path in [*folder.rglob("*"), *(tmp_path / "home").rglob("*")]:
        assert not path.is_file() or token.encode() not in path.read_bytes()


def test_card_metadata_and_figures_come_from_the_folder(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    text = (folder / artifacts.CARD).read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "keras" and meta["pipeline_tag"] == "text-classification"
    assert meta["language"] == "en" and meta["license"]
    metrics = json.loads((folder / artifacts.METRICS).read_text())
    results = meta["model-index"][0]["results"][0]
    assert results["task"]["type"] == "text-classification"
    # Trained on a local file: a custom split of it, no Hub dataset or split claimed.
    assert "datasets" not in meta and "split" not in results["dataset"]
    assert results["dataset"]["type"] == "imdb_sample.csv.gz" and "custom split" in results["dataset"]["name"]
    values = {m["type"]: m["value"] for m in results["metrics"]}
    assert values == {"accuracy": round(metrics["lstm"]["accuracy"], 4), "f1": round(metrics["lstm"]["f1"], 4)}
    assert ModelCard(text).data.eval_results[0].metric_value == values["accuracy"]
    assert f"**License**: {meta['license']}." in text

    metrics["lstm"]["accuracy"] = 0.9876
    metrics["baseline"]["accuracy"] = 0.5432
    (folder / artifacts.METRICS).write_text(json.dumps(metrics))
    card = str(render_card(folder, repo_id="someone/else"))
    assert "**98.76%**" in card and "0.5432" in card and "value: 0.9876" in card
    assert 'load_model("hf://someone/else")' in card


def test_card_widget_usage_compute_and_parts_of_the_test_set(tiny_model: Path, tmp_path: Path) -> None:
    """The widget's outputs are the model's own answers; the usage snippet picks TensorFlow before Keras is
    imported; Compute and the disaggregated table show the run's records."""
    import keras
    import tensorflow as tf

    text = (tiny_model / artifacts.CARD).read_text(encoding="utf-8")
    widget = yaml.safe_load(text.split("---\n")[1])["widget"]
    p = keras.saving.load_model(tiny_model, safe_mode=True).predict(tf.constant([w["text"] for w in widget]), verbose=0)
    for example, positive in zip(widget, p[:, 0]):
        scores = {answer["label"]: answer["score"] for answer in example["output"]}
        assert scores == {"positive": pytest.approx(positive, abs=1e-4), "negative": pytest.approx(1 - positive, abs=1e-4)}
        assert example["output"][0]["score"] >= example["output"][1]["score"]
    usage = text[text.index("## How to use"):]
    assert usage.index('os.environ["KERAS_BACKEND"] = "tensorflow"') < usage.index("import keras")
    assert "`jax`" in usage and "TensorFlow only" in usage

    metrics = json.loads((tiny_model / artifacts.METRICS).read_text())
    compute = text[text.index("## Compute"):text.index("## Citation")]
    assert f"{metrics['compute']['cores']} cores" in compute and metrics["compute"]["cpu"] in compute
    assert f"Wall time {metrics['training']['wall_seconds']:,.0f} s" in compute
    for group in metrics["lstm"]["by_length"]:
        accuracy = "–" if group["accuracy"] is None else f"{group['accuracy']:.4f}"
        assert f"| {group['group']} | {group['reviews']:,} | {accuracy} |" in text
    assert f"| {metrics['lstm']['one_sentence_accuracy']:.4f} |" in text


def test_loading_helper_refuses_a_model_with_code_in_it(hub: FakeHub, tmp_path: Path) -> None:
    """A `Lambda` layer carries Python code; with safe_mode on it must not be deserialized."""
    code = f"""
import keras, tensorflow as tf
from huggingface_hub import HfApi
from training.hub import load_from_hub
inputs = keras.Input(shape=(3,))
keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save("lambda_model", zipped=False)
HfApi().create_repo("{REPO_ID}")
HfApi().upload_folder(folder_path="lambda_model", repo_id="{REPO_ID}")
try:
    load_from_hub("{REPO_ID}")
except ValueError as err:
    print("REFUSED", err)
"""
    result = run_python(code, cwd=tmp_path, env={**hub_env(hub, tmp_path / "home"), "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REFUSED" in result.stdout and "safe_mode" in result.stdout


def test_push_interrupted_by_the_server_going_away(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    env = hub_env(hub, tmp_path / "home")
    hub.drop_commits = 1000  # every try of the client's retries
    interrupted = push(folder, env)
    assert interrupted.returncode == 2, interrupted.stdout + interrupted.stderr[-2000:]
    assert "interrupted" in interrupted.stderr and "Traceback" not in interrupted.stderr
    artifacts.check_folder(folder)
    assert artifacts.KERAS_WEIGHTS not in hub.files(REPO_ID)

    hub.drop_commits = 0
    completed = push(folder, env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert hub.files(REPO_ID)[artifacts.KERAS_WEIGHTS] == (folder / artifacts.KERAS_WEIGHTS).read_bytes()
