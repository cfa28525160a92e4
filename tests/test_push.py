"""Publishing a model folder to a local Hub-compatible server, loading it back, and the model card."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, hub_env, run_module, run_python
from huggingface_hub import ModelCard
from hub_server import FakeHub, HubError

from training import card, model_folder
from training.card import render_card

REPO_ID = f"{FakeHub.user}/imdb-bilstm"
TEXTS = ["A moving, beautifully acted film.", "Two hours I will never get back.", "", "😀"]


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def push(folder: Path, env: dict, *extra: str):
    return run_module("training.push", "--model-dir", str(folder), "--repo-id", REPO_ID, *extra, env=env)


def pushed_commit(result) -> str:
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split("commit: ")[1].split()[0]


def change_weights(folder: Path) -> None:
    """Give the model in `folder` other weights (its last one moved), as another training run would."""
    import keras

    model = keras.saving.load_model(folder, safe_mode=True)
    model.weights[-1].assign(model.weights[-1] + 1.0)
    model.save_weights(folder / model_folder.KERAS_WEIGHTS)
    metrics = json.loads((folder / model_folder.METRICS).read_text())
    metrics["model"]["weights_bytes"] = (folder / model_folder.KERAS_WEIGHTS).stat().st_size
    (folder / model_folder.METRICS).write_text(json.dumps(metrics))


def predictions(folder: Path, env: dict, cwd: Path, revisions: list[str]) -> dict[str, list[float]]:
    """The folder's scores of TEXTS, then those of the pushed model by hf:// and at each revision, loaded as
    training/README.md says (snapshot_download, then Keras)."""
    code = f"""
import json, keras, tensorflow as tf
from huggingface_hub import snapshot_download
texts = tf.constant({TEXTS!r})
out = {{"local": keras.saving.load_model({str(folder)!r}, safe_mode=True).predict(texts, verbose=0),
        "hf://": keras.saving.load_model("hf://{REPO_ID}", safe_mode=True).predict(texts, verbose=0)}}
out.update({{revision: keras.saving.load_model(snapshot_download("{REPO_ID}", revision=revision)).predict(texts, verbose=0)
            for revision in {revisions!r}}})
print(json.dumps({{name: scores[:, 0].tolist() for name, scores in out.items()}}))
"""
    result = run_python(code, cwd=cwd, env={**env, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_push_twice_then_load_the_first_commit_by_id_and_tag(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    env = hub_env(hub, tmp_path / "home")
    first = push(folder, env)
    commit = pushed_commit(first)
    assert f"{hub.url}/{REPO_ID}" in first.stdout
    assert hub.commits(REPO_ID)[-1] == commit and not hub.is_private(REPO_ID)
    assert hub.commit_message(REPO_ID) == f"Upload model folder {folder.name}"
    assert set(hub.files(REPO_ID)) >= set(model_folder.REQUIRED_FILES) | {model_folder.CARD}
    assert f'load_model("hf://{REPO_ID}")' in hub.files(REPO_ID)[model_folder.CARD].decode()

    # Unchanged folder: no new commit.
    commits = hub.commits(REPO_ID)
    assert pushed_commit(push(folder, env)) == commit
    assert hub.commits(REPO_ID) == commits
    first_scores = predictions(folder, env, tmp_path, [])["local"]

    change_weights(folder)
    second = pushed_commit(push(folder, env, "--commit-message", "Retrained: other weights"))
    assert hub.commits(REPO_ID) == [*commits, second]
    assert hub.commit_message(REPO_ID) == "Retrained: other weights"
    tag = run_python(f"import huggingface_hub as hf; hf.HfApi().create_tag({REPO_ID!r}, tag='v1', revision={commit!r})",
                     cwd=tmp_path, env=env)
    assert tag.returncode == 0, tag.stderr[-2000:]

    scores = predictions(folder, env, tmp_path, [commit, "v1"])
    assert scores[commit] == scores["v1"] == first_scores
    assert scores["local"] == scores["hf://"] != first_scores


def test_push_to_a_branch(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    result = push(folder, hub_env(hub, tmp_path / "home"), "--revision", "dev", "--private", "--space-id", "me/demo")
    assert result.returncode == 0, result.stderr[-2000:]
    assert hub.is_private(REPO_ID)
    assert model_folder.KERAS_WEIGHTS in hub.files(REPO_ID, revision="dev")
    assert 'Client("me/demo")' in hub.files(REPO_ID, revision="dev")[model_folder.CARD].decode()
    assert model_folder.KERAS_WEIGHTS not in hub.files(REPO_ID, revision="main")


def test_failed_pushes_say_why_and_leave_the_folder_alone(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    before = fingerprint(folder)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(tiny_model, incomplete)
    (incomplete / model_folder.TOKENIZER).unlink()

    no_token = push(folder, hub_env(hub, tmp_path / "home", token=""))
    assert no_token.returncode == 2 and "error: no Hugging Face token" in no_token.stderr
    closed = {**hub_env(hub, tmp_path / "home"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    unreachable = push(folder, closed)
    assert unreachable.returncode == 2 and "error: cannot reach the Hub" in unreachable.stderr
    missing = push(incomplete, hub_env(hub, tmp_path / "home"))
    assert missing.returncode == 2 and f"missing {model_folder.TOKENIZER}" in missing.stderr
    older = tmp_path / "older"
    shutil.copytree(tiny_model, older)
    config = json.loads((older / model_folder.TRAINING_CONFIG).read_text())
    config["data"] = {"file": "reviews.csv", "sha256": "0" * 64, "rows": config["data"]["rows"]}  # the earlier layout
    (older / model_folder.TRAINING_CONFIG).write_text(json.dumps(config))
    old_layout = push(older, hub_env(hub, tmp_path / "home"))
    assert old_layout.returncode == 2 and "train it again" in old_layout.stderr
    no_widget = tmp_path / "no-widget"  # made before the widget's answers were stored at training time
    shutil.copytree(tiny_model, no_widget)
    metrics = json.loads((no_widget / model_folder.METRICS).read_text())
    del metrics["widget"]
    (no_widget / model_folder.METRICS).write_text(json.dumps(metrics))
    old_metrics = push(no_widget, hub_env(hub, tmp_path / "home"))
    assert old_metrics.returncode == 2 and "train it again" in old_metrics.stderr

    for result in (no_token, unreachable, missing, old_layout, old_metrics):
        assert "Traceback" not in result.stderr
    assert fingerprint(folder) == before
    assert REPO_ID not in str(hub.requests)


REFUSALS = {
    "read-only-token": "error: the Hugging Face token may not write to tester/imdb-bilstm (403 Forbidden): use a token "
    "with write access",
    "card-metadata": 'error: the Hub refused the push: Invalid metadata in README.md. - "base_model" must be a string',
    "xet-upload": "error: the push to tester/imdb-bilstm was interrupted (ConnectionError: ",
    "lfs-upload": "error: the Hub refused the push: LFS batch API returned errors: ",
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_refused_pushes_are_one_line_errors(tiny_model: Path, hub: FakeHub, tmp_path: Path, refusal: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    env = hub_env(hub, tmp_path / "home", token=hub.read_token if refusal == "read-only-token" else None)
    if refusal == "card-metadata":
        # A card template that writes metadata the Hub refuses.
        template = tmp_path / "bad_card.md"
        template.write_text(card.TEMPLATE.read_text().replace("{{ card_data }}", "{{ card_data }}\nbase_model: 5", 1))
        code = (f"import sys; from training import card, push; card.TEMPLATE = {str(template)!r}; "
                f"sys.exit(push.main(['--model-dir', {str(folder)!r}, '--repo-id', {REPO_ID!r}]))")
        result = run_python(code, cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)})
    else:
        hub.large_file_bytes = (folder / model_folder.KERAS_WEIGHTS).stat().st_size
        result = push(folder, {**env, "HF_HUB_DISABLE_XET": "1" if refusal == "lfs-upload" else "0"})
    assert result.returncode == 2, result.stdout + result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(REFUSALS[refusal]), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and hub.read_token not in result.stderr
    if refusal == "read-only-token":
        with pytest.raises(HubError, match="Repository not found"):
            hub.commits(REPO_ID)
    else:
        assert len(hub.commits(REPO_ID)) == 1  # the repo's initial commit only


def test_made_up_token_never_reaches_output_or_files(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    token = "hf_madeUpTokenThatMustNeverLeak0123"
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    result = push(folder, hub_env(hub, tmp_path / "home", token=token))
    assert result.returncode == 2 and "token was refused" in result.stderr
    assert token not in result.stdout + result.stderr
    for path in [*folder.rglob("*"), *(tmp_path / "home").rglob("*")]:
        assert not path.is_file() or token.encode() not in path.read_bytes()


def test_rendering_the_card_needs_no_tensorflow(tiny_model: Path, tmp_path: Path) -> None:
    """Every push renders the card: it reads the widget's answers from metrics.json instead of loading the model,
    so a push (or a refused one) does not pay for TensorFlow's start."""
    code = (f"import sys; from pathlib import Path; from training.card import render_card\n"
            f"text = str(render_card(Path({str(tiny_model)!r}), repo_id='someone/else'))\n"
            "print('tensorflow' in sys.modules, 'Not bad at all.' in text)")
    result = run_python(code, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True"]


def test_card_metadata_and_figures_come_from_the_folder(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    text = (folder / model_folder.CARD).read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "keras" and meta["pipeline_tag"] == "text-classification"
    assert meta["language"] == "en" and meta["license"]
    metrics = json.loads((folder / model_folder.METRICS).read_text())
    results = meta["model-index"][0]["results"][0]
    assert results["task"]["type"] == "text-classification"
    # Trained on a local file: a custom split of it, no Hub dataset or split claimed.
    assert "datasets" not in meta and "split" not in results["dataset"]
    assert results["dataset"]["type"] == "imdb_sample.csv.gz" and "custom split" in results["dataset"]["name"]
    values = {m["type"]: m["value"] for m in results["metrics"]}
    assert values == {"accuracy": round(metrics["test"]["accuracy"], 4), "f1": round(metrics["test"]["f1"], 4)}
    assert ModelCard(text).data.eval_results[0].metric_value == values["accuracy"]
    assert f"**License**: {meta['license']}." in text

    metrics["test"]["accuracy"] = 0.9876
    metrics["baselines"]["nbsvm"]["accuracy"] = 0.5432
    (folder / model_folder.METRICS).write_text(json.dumps(metrics))
    card = str(render_card(folder, repo_id="someone/else"))
    assert "**98.76%**" in card and "0.5432" in card and "value: 0.9876" in card
    assert 'load_model("hf://someone/else")' in card


def test_card_widget_usage_compute_and_parts_of_the_test_set(tiny_model: Path, tmp_path: Path) -> None:
    """The widget's outputs are the model's own answers; the usage snippet picks TensorFlow before Keras is
    imported; Compute and the disaggregated table show the run's records."""
    import keras
    import tensorflow as tf

    text = (tiny_model / model_folder.CARD).read_text(encoding="utf-8")
    widget = yaml.safe_load(text.split("---\n")[1])["widget"]
    p = keras.saving.load_model(tiny_model, safe_mode=True).predict(tf.constant([w["text"] for w in widget]), verbose=0)
    for example, positive in zip(widget, p[:, 0]):
        scores = {answer["label"]: answer["score"] for answer in example["output"]}
        assert scores == {"positive": pytest.approx(positive, abs=1e-4), "negative": pytest.approx(1 - positive, abs=1e-4)}
        assert example["output"][0]["score"] >= example["output"][1]["score"]
    usage = text[text.index("## How to use"):]
    assert usage.index('os.environ["KERAS_BACKEND"] = "tensorflow"') < usage.index("import keras")
    assert "`jax`" in usage and "TensorFlow only" in usage

    metrics = json.loads((tiny_model / model_folder.METRICS).read_text())
    compute = text[text.index("## Compute"):text.index("## Citation")]
    assert f"{metrics['compute']['cores']} cores" in compute and metrics["compute"]["cpu"] in compute
    assert f"Wall time {metrics['training']['wall_seconds']:,.0f} s" in compute
    for name, group in metrics["test"]["by_length"].items():
        accuracy = "–" if group["accuracy"] is None else f"{group['accuracy']:.4f}"
        assert f"| {name} | {group['examples']:,} | {accuracy} |" in text
    assert f"| last sentence alone | {metrics['test']['examples']:,} | {metrics['test']['one_sentence']['accuracy']:.4f} |" in text


@pytest.mark.slow
def test_the_documented_pinned_load_refuses_a_model_with_code_in_it(hub: FakeHub, tmp_path: Path) -> None:
    """A `Lambda` layer carries Python code: the load that training/README.md shows must not deserialize it."""
    code = f"""
import keras, tensorflow as tf
from huggingface_hub import HfApi, snapshot_download
inputs = keras.Input(shape=(3,))
keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save("lambda_model", zipped=False)
HfApi().create_repo("{REPO_ID}")
HfApi().upload_folder(folder_path="lambda_model", repo_id="{REPO_ID}")
try:
    keras.saving.load_model(snapshot_download("{REPO_ID}"))
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
    model_folder.check_folder(folder)
    assert model_folder.KERAS_WEIGHTS not in hub.files(REPO_ID)

    hub.drop_commits = 0
    completed = push(folder, env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert hub.files(REPO_ID)[model_folder.KERAS_WEIGHTS] == (folder / model_folder.KERAS_WEIGHTS).read_bytes()


def test_push_uploads_only_the_model_folders_own_files(tiny_model: Path, hub: FakeHub, tmp_path: Path) -> None:
    """A `.env`, a notebook or a scored CSV left in the model folder never goes public with the model."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    (folder / "web").mkdir()
    (folder / "web" / "model.json").write_text("{}")
    strays = [".env", "analysis.ipynb", "scored.csv", "notes/todo.txt", "web/.env", ".secrets/key"]
    for name in strays:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("HF_TOKEN=hf_not_for_the_public")
    result = push(folder, hub_env(hub, tmp_path / "home"))
    assert result.returncode == 0, result.stderr[-2000:]
    uploaded = set(hub.files(REPO_ID))
    assert uploaded >= {*model_folder.REQUIRED_FILES, model_folder.CARD, model_folder.HISTORY, "web/model.json"}
    assert uploaded >= {name for name in fingerprint(tiny_model) if not name.startswith(".")}
    assert not uploaded & set(strays)
