"""End to end: `python -m training.train` on the bundled sample, the folder it writes, and bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, TINY_FLAGS, free_port, hub_env, run_module, run_python
from hub_server import FakeHub
from sklearn.metrics import roc_auc_score

from training import model_folder
from training.data import SAMPLE_CSV, Splits, load_splits, sha256_of
from training.evaluate import NEGATION, last_sentences

TRICKY_TEXTS = [
    "",
    "   \t\n ",
    "😀",
    "Great movie!<br /><br />Loved it... 10/10",
    "<script>alert('x')</script> <b>bold</b> &amp; more",
    "ÉCOLE Straße naïve café — “quotes” 電影 很好",
    "don't WON'T it's-a-me, (parens) [brackets] {braces} under_score",
    "non\u00a0breaking\u2003em space\ttab\nnewline",
    " ".join(["the"] * 100),
]


def test_folder_is_complete(tiny_model: Path) -> None:
    for name in (*model_folder.REQUIRED_FILES, model_folder.HISTORY, model_folder.CURVES_PLOT, model_folder.CONFUSION_PLOT,
                 model_folder.CARD):
        assert (tiny_model / name).is_file(), name
    model_folder.check_folder(tiny_model)
    assert not list(tiny_model.parent.glob(".tiny.*")), "a staging folder was left behind"
    for plot in (model_folder.CURVES_PLOT, model_folder.CONFUSION_PLOT):
        assert (tiny_model / plot).read_bytes().startswith(b"\x89PNG")


def test_training_config_records_the_run(tiny_model: Path) -> None:
    config = json.loads((tiny_model / model_folder.TRAINING_CONFIG).read_text())
    assert config["hyperparameters"]["vocab_size"] == 500 and config["hyperparameters"]["seed"] == 42
    assert config["labels"] == ["negative", "positive"]
    assert config["data"]["files"] == {"reviews": {"file": SAMPLE_CSV.name, "sha256": sha256_of(SAMPLE_CSV)}}
    assert config["data"]["official_splits"] is None  # split here: a custom split of the file
    rows = config["data"]["rows"]
    assert rows["rows_read"] == 400
    assert rows["train"] + rows["val"] + rows["test"] == rows["rows_used"] == 400 - rows["duplicates_dropped"]
    assert {"tensorflow", "keras", "scikit-learn"} <= set(config["versions"])


def test_metrics_and_history(tiny_model: Path) -> None:
    metrics = json.loads((tiny_model / model_folder.METRICS).read_text())
    rows = json.loads((tiny_model / model_folder.TRAINING_CONFIG).read_text())["data"]["rows"]
    assert set(metrics["baselines"]) == {"tfidf", "nbsvm"}
    for m in (metrics["test"], *metrics["baselines"].values()):
        assert set(m) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "ece", "confusion_matrix"}
        assert sum(g["examples"] for g in m["by_length"].values()) == rows["test"]
        assert sum(map(sum, m["confusion_matrix"])) == m["examples"] == rows["test"]
        tn, fp = m["confusion_matrix"][0]
        fn, tp = m["confusion_matrix"][1]
        assert m["accuracy"] == pytest.approx((tn + tp) / m["examples"])
    history = pd.read_csv(tiny_model / model_folder.HISTORY)
    assert len(history) == metrics["training"]["epochs_run"] == 2
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    assert metrics["training"]["best_epoch"] == history["val_loss"].idxmin() + 1
    assert metrics["training"]["best_val_loss"] == pytest.approx(history["val_loss"].min())


def splits_of(folder: Path) -> Splits:
    """The split that the run which made `folder` trained and tested on, from its recorded settings."""
    hp = json.loads((folder / model_folder.TRAINING_CONFIG).read_text())["hyperparameters"]
    return load_splits(SAMPLE_CSV, hp["test_size"], hp["val_size"], hp["seed"], hp["max_rows"])


def test_reported_test_figures_are_those_of_the_saved_model(tiny_model: Path) -> None:
    import keras
    import tensorflow as tf

    test = splits_of(tiny_model).test
    model = keras.saving.load_model(tiny_model, safe_mode=True)
    scores = model.predict(tf.constant(test["text"].tolist()), verbose=0)[:, 0]
    reported = json.loads((tiny_model / model_folder.METRICS).read_text())["test"]
    assert reported["examples"] == len(test)
    assert reported["accuracy"] == pytest.approx(((scores >= 0.5) == test["label"]).mean())
    assert reported["roc_auc"] == pytest.approx(roc_auc_score(test["label"], scores), abs=1e-6)


def test_accuracy_by_length_and_on_one_sentence(tiny_model: Path) -> None:
    """metrics.json's disaggregated figures, recomputed here from the saved model and the same test part."""
    import keras
    import tensorflow as tf

    metrics = json.loads((tiny_model / model_folder.METRICS).read_text())["test"]
    hp = json.loads((tiny_model / model_folder.TRAINING_CONFIG).read_text())["hyperparameters"]
    test = load_splits(SAMPLE_CSV, hp["test_size"], hp["val_size"], hp["seed"], hp["max_rows"]).test
    model = keras.saving.load_model(tiny_model, safe_mode=True)

    def correct(texts: list[str]) -> np.ndarray:
        return (model.predict(tf.constant(texts), verbose=0)[:, 0] >= 0.5) == test["label"].to_numpy()

    words = test["text"].str.split().str.len().to_numpy()
    right = correct(test["text"].tolist())
    groups = [words <= 100, (words > 100) & (words <= 400), words > 400]
    by_length = list(metrics["by_length"].values())
    assert [g["examples"] for g in by_length] == [int(g.sum()) for g in groups]
    assert sum(g["examples"] for g in by_length) == metrics["examples"]
    for group, inside in zip(by_length, groups):
        assert group["accuracy"] == (pytest.approx(right[inside].mean()) if inside.any() else None)
    last = last_sentences(test["text"].tolist())
    sentences = correct(last)
    assert metrics["one_sentence"]["accuracy"] == pytest.approx(sentences.mean())
    negated = np.array([bool(NEGATION.search(sentence)) for sentence in last])
    assert metrics["negation_sentence"]["examples"] == negated.sum() > 0
    assert metrics["negation_sentence"]["accuracy"] == pytest.approx(sentences[negated].mean())


def test_negation_words() -> None:
    found = [bool(NEGATION.search(text)) for text in ("Not bad at all.", "I didn't like it", "Never boring.",
                                                       "Nothing happens.", "Notable and knotty.", "Nobody's fool.")]
    assert found == [True, True, True, True, False, False]


def test_last_sentence_has_enough_words() -> None:
    assert last_sentences(["Great film. I loved every minute of it! 10/10", "Too short.", "One. Two three four five?",
                           "A fine film here.<br /><br />I loved every minute of it."]) == [
        "I loved every minute of it!", "Too short.", "Two three four five?", "I loved every minute of it."]


def test_compute_is_recorded(tiny_model: Path) -> None:
    compute = json.loads((tiny_model / model_folder.METRICS).read_text())["compute"]
    assert compute["cores"] == len(os.sched_getaffinity(0)) and compute["cpu"] and isinstance(compute["gpus"], list)


def test_tokenizer_json_matches_the_model(tiny_model: Path, tmp_path: Path) -> None:
    """The ids a non-Keras user computes from tokenizer.json equal the ids inside the saved model."""
    spec = json.loads((tiny_model / model_folder.TOKENIZER).read_text(encoding="utf-8"))
    code = f"""
import json, keras, tensorflow as tf
model = keras.saving.load_model({str(tiny_model)!r}, safe_mode=True)
texts = {TRICKY_TEXTS!r}
ids = model.get_layer("tokenizer")(tf.constant(texts)).numpy().tolist()
print(json.dumps(ids))
"""
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    model_ids = json.loads(result.stdout.strip().splitlines()[-1])
    assert model_ids == [reference_ids(text, spec) for text in TRICKY_TEXTS]


def reference_ids(text: str, spec: dict) -> list[int]:
    """Token ids from tokenizer.json alone, written from its documented settings."""
    assert spec["lowercase"] == "ascii" and spec["split"] == "whitespace" and spec["padding"] == "post"
    text = text.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))
    text = re.sub(spec["strip_regex"], "", text)
    index = {word: i for i, word in enumerate(spec["vocabulary"])}
    ids = [index.get(word, spec["oov_id"]) for word in re.split(r"[ \t\n\r\f\v]+", text) if word]
    length = spec["sequence_length"]
    return (ids + [spec["pad_id"]] * length)[:length]


def keras_scores(folder: Path, texts: list[str]) -> list[float]:
    import keras
    import tensorflow as tf

    return keras.saving.load_model(folder, safe_mode=True).predict(tf.constant(texts), verbose=0)[:, 0].tolist()


def test_plain_keras_loads_the_folder_and_scores_raw_strings(tiny_model: Path, tmp_path: Path) -> None:
    """A fresh process with only Keras and TensorFlow (our code not importable) scores any string."""
    texts = [*TRICKY_TEXTS, "word " * 50_000]
    code = f"""
import json, keras, numpy as np, tensorflow as tf
try:
    import training
    raise SystemExit("the project is importable here; the test would prove nothing")
except ImportError:
    pass
model = keras.saving.load_model({str(tiny_model)!r}, safe_mode=True)
texts = {TRICKY_TEXTS!r} + ["word " * 50_000]
p = model.predict(tf.constant(texts), verbose=0)
print(json.dumps({{"shape": list(p.shape), "values": p[:, 0].tolist()}}))
"""
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["shape"] == [len(TRICKY_TEXTS) + 1, 1]
    # The same answers as in this process, where the project is importable.
    assert out["values"] == pytest.approx(keras_scores(tiny_model, texts), abs=1e-6)


def test_refuses_to_overwrite_without_the_flag(tmp_path: Path) -> None:
    """Refused before any work; what --overwrite does is test_a_folder_that_appears_meanwhile_is_never_replaced's."""
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("previous model")
    refused = run_module("training.train", "--out", str(out), *TINY_FLAGS, "--epochs", "1")
    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--overwrite" in refused.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def bad_csv(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.csv"
    if kind == "missing":
        return path
    if kind == "not-csv":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "columns":
        path.write_text("text,stars\nnice,5\n")
    elif kind == "latin-1":
        path.write_bytes("review,sentiment\nun film \xe9mouvant,positive\n".encode("latin-1"))
    elif kind == "few-rows":
        pd.DataFrame({"review": ["good", "bad"], "sentiment": ["positive", "negative"]}).to_csv(path, index=False)
    elif kind == "one-class":
        pd.DataFrame({"review": [f"nice {i}" for i in range(50)], "sentiment": "positive"}).to_csv(path, index=False)
    elif kind == "labels":
        pd.DataFrame({"review": [f"r {i}" for i in range(50)], "sentiment": ["pos", "neg"] * 24 + ["great", "3"]}
                     ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "not found"),
        ("not-csv", "not a readable CSV"),
        ("columns", "found: 'text', 'stars'"),
        ("latin-1", "not UTF-8"),
        ("few-rows", "at least 20"),
        ("one-class", "both classes"),
        ("labels", "rows [50, 51]"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, kind: str, expected: str) -> None:
    data = bad_csv(kind, tmp_path)
    out = tmp_path / "out" / "model"
    result = run_module("training.train", "--data", str(data), "--out", str(out), *TINY_FLAGS)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_hyperparameter_is_a_clear_error(tmp_path: Path) -> None:
    result = run_module("training.train", "--out", str(tmp_path / "m"), "--no-mask-padding")
    assert result.returncode == 2
    assert "--bucket-by-length needs --mask-padding" in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("damage", ["truncated-weights", "missing-tokenizer", "config-not-json"])
def test_damaged_folders_are_refused(tiny_model: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    if damage == "truncated-weights":
        weights = folder / model_folder.KERAS_WEIGHTS
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "missing-tokenizer":
        (folder / model_folder.TOKENIZER).unlink()
    else:
        (folder / model_folder.KERAS_CONFIG).write_text("{ not json")
    with pytest.raises(model_folder.FolderError) as err:
        model_folder.check_folder(folder)
    expected = {"truncated-weights": "truncated", "missing-tokenizer": "missing tokenizer.json",
                "config-not-json": "config.json is not valid JSON"}[damage]
    assert expected in str(err.value)


def test_vocabulary_survives_unicode_line_separators(tmp_path: Path) -> None:
    """Words may hold characters that Python treats as line breaks; the saved vocabulary must not split them."""
    import keras
    import tensorflow as tf

    from training.model import make_tokenizer

    texts = ["hello world\u2028x", "foo\x85bar baz\x1cqux", "plain words here"]
    tokenizer = make_tokenizer(texts, vocab_size=50, sequence_length=6)
    text = keras.Input(shape=(), dtype="string")
    keras.Model(text, tokenizer(text)).save(tmp_path / "m", zipped=False)
    loaded = keras.saving.load_model(tmp_path / "m", safe_mode=True)
    assert loaded.get_layer("tokenizer").get_vocabulary() == tokenizer.get_vocabulary()
    assert (loaded(tf.constant(texts)).numpy() == tokenizer(tf.constant(texts)).numpy()).all()


KILLED_AFTER_FIRST_EPOCH = """
import os, signal, sys
import keras
log_epoch = keras.callbacks.CSVLogger.on_epoch_end
def log_then_die(self, epoch, logs=None):
    log_epoch(self, epoch, logs)
    if epoch == 0:  # after the backup and the history row of epoch 1, as a kill during epoch 2 leaves them
        os.kill(os.getpid(), signal.SIGKILL)
keras.callbacks.CSVLogger.on_epoch_end = log_then_die
from training.train import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    out = tmp_path / "model"
    flags = ["--out", str(out), *TINY_FLAGS, "--epochs", "3", "--patience", "9"]
    state_history = model_folder.training_state(out) / model_folder.HISTORY
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_FIRST_EPOCH, *flags], cwd=REPO, capture_output=True,
                            timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists(), "a killed run must leave no model folder"
    assert len(pd.read_csv(state_history)) == 1

    fresh = run_module("training.train", *flags)
    assert fresh.returncode == 2 and "--resume" in fresh.stderr
    state = sorted(p.name for p in model_folder.training_state(out).rglob("*"))
    changed = run_module("training.train", *flags, "--seed", "7", "--resume")
    assert changed.returncode == 2 and "holds a run with other settings or data" in changed.stderr
    assert sorted(p.name for p in model_folder.training_state(out).rglob("*")) == state

    resumed = run_module("training.train", *flags, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    model_folder.check_folder(out)
    epochs = [int(row["epoch"]) for row in csv.DictReader(open(out / model_folder.HISTORY))]
    assert epochs == [0, 1, 2]
    assert not model_folder.training_state(out).exists()


@pytest.mark.parametrize("preset", ["default", "bilstm"])
def test_distillation_labels_the_unlabeled_reviews_with_the_ngram_models_probability(preset: str) -> None:
    """With --distill and --unlabeled, the BiLSTM's training data is the training part with its labels, then every
    unlabeled review with the n-gram model's P(positive), whether the saved model keeps that model or not."""
    from dataclasses import replace

    from scipy.special import expit

    from training import fit
    from training.config import PRESETS
    from training.data import Unlabeled
    from training.model import accuracy, make_tokenizer, tokenize

    config = replace(PRESETS[preset], distill=True, vocab_size=500, sequence_length=40, ngram_vocab_size=5000)
    splits = load_splits(str(SAMPLE_CSV), config.test_size, config.val_size, config.seed, 400)
    reviews = pd.read_csv(SAMPLE_CSV)["review"][1000:1100].tolist()
    tokenizer = make_tokenizer(splits.train["text"].tolist(), config.vocab_size, config.sequence_length)
    data, corpus, ngram = fit.prepare_data(config, splits, tokenizer, Unlabeled(pd.Series(reviews), {}))
    n = len(splits.train)
    assert len(data.train_ids) == len(data.train_labels) == len(corpus) == n + 100
    # The word vectors are computed from the training part and the unlabeled reviews together.
    np.testing.assert_array_equal(corpus, np.concatenate([tokenize(tokenizer, splits.train["text"]),
                                                          tokenize(tokenizer, pd.Series(reviews))]))
    np.testing.assert_array_equal(data.train_labels[:n], splits.train["label"])
    teacher = expit(fit.ngram_logits(ngram, pd.Series(reviews))[:, 0])  # the logit learned from whole reviews
    np.testing.assert_allclose(data.train_labels[n:], teacher, atol=1e-6)
    assert 0 < teacher.min() and teacher.max() < 1 and np.ptp(teacher) > 0.5
    plain, _, no_teacher = fit.prepare_data(replace(config, distill=False), splits, tokenizer, Unlabeled(pd.Series(reviews), {}))
    assert len(plain.train_ids) == n and no_teacher is None  # the n-gram branch, if any, is fitted later
    # The training accuracy of a distilled review compares with its label rounded to 0 or 1.
    logits = np.array([[2.0], [2.0], [-1.0]], "float32")
    assert np.asarray(accuracy(np.array([[0.9], [0.2], [0.6]], "float32"), logits)).ravel().tolist() == [1, 0, 0]


@pytest.mark.slow
def test_early_stopping_keeps_the_best_validation_weights(tmp_path: Path) -> None:
    """Patience 1 and a high learning rate on the tiny data: training stops early, and the folder holds the weights
    of the best validation loss, not the last epoch's."""
    import keras
    import tensorflow as tf

    out = tmp_path / "model"
    epochs, patience = 8, 1
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS, "--epochs", str(epochs),
                        "--patience", str(patience), "--learning-rate", "0.02")
    assert result.returncode == 0, result.stderr[-2000:]
    history = pd.read_csv(out / model_folder.HISTORY)
    best = int(history["val_loss"].idxmin())
    assert len(history) == best + 1 + patience < epochs, "early stopping did not stop the run"

    # The BiLSTM branch, on the token ids the saved tokenizer gives, with the training loss.
    model = keras.saving.load_model(out, safe_mode=True)
    bilstm = model.get_layer("bilstm_classifier")
    bilstm.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True))
    val = splits_of(out).val
    ids = model.get_layer("tokenizer")(tf.constant(val["text"].tolist()))
    val_loss = bilstm.evaluate(ids, val["label"].to_numpy(), verbose=0, return_dict=True)["loss"]
    best_loss, last_loss = history["val_loss"][best], history["val_loss"].iloc[-1]
    assert last_loss - best_loss > 1e-4, "the last epoch is as good as the best: the test cannot tell them apart"
    assert val_loss == pytest.approx(best_loss, abs=1e-5)


@pytest.mark.slow
def test_train_with_unlabeled_reviews_then_push_with_a_commit_message(hub: FakeHub, tmp_path: Path) -> None:
    """--unlabeled with --distill: the file is recorded with its checksum and the card says what the BiLSTM learned
    from (that the same reviews feed the word vectors is checked on prepare_data above); then the folder, exactly
    as written, is pushed as one private commit with the message given."""
    unlabeled = tmp_path / "unlabeled.csv"
    # Reviews the tiny run does not read (it reads the first 400 rows), with another column to ignore.
    reviews = pd.read_csv(SAMPLE_CSV)["review"][1000:1600]
    pd.DataFrame({"id": range(600), "review": reviews}).to_csv(unlabeled, index=False)
    out = tmp_path / "model"
    repo_id = f"{FakeHub.user}/trained"
    result = run_module("training.train", "--out", str(out), *TINY_FLAGS, "--epochs", "1",
                        "--unlabeled", str(unlabeled), "--distill", "--push-to-hub", repo_id,
                        "--private", "--commit-message", "First training", env=hub_env(hub, tmp_path / "home"))
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((out / model_folder.TRAINING_CONFIG).read_text())
    assert config["unlabeled_data"] == {"file": "unlabeled.csv", "sha256": sha256_of(unlabeled), "rows": 600}
    assert json.loads((out / model_folder.METRICS).read_text())["training"]["distilled_reviews"] == 600
    assert "learned from 600 unlabeled reviews" in " ".join((out / model_folder.CARD).read_text().split())
    assert f"commit: {hub.commits(repo_id)[-1]}" in result.stdout
    assert hub.commit_message(repo_id) == "First training" and hub.is_private(repo_id)
    local = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert hub.files(repo_id) == local


def test_free_port_never_returns_a_port_twice() -> None:
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)


def test_a_folder_that_appears_meanwhile_is_never_replaced(tmp_path: Path) -> None:
    for appears in ("with files", "empty"):
        out = tmp_path / appears / "model"
        with pytest.raises(model_folder.FolderError, match="appeared while this run was writing it"):
            with model_folder.staged_folder(out, overwrite=False) as stage:
                (stage / "new.txt").write_text("new model")
                out.mkdir(parents=True)
                if appears == "with files":
                    (out / "theirs.txt").write_text("someone else's model")
        assert sorted(p.name for p in out.iterdir()) == ([] if appears == "empty" else ["theirs.txt"])
        [kept] = [p for p in out.parent.iterdir() if p != out]  # the new folder, beside it, nothing else
        assert kept.name.startswith("model.new-") and (kept / "new.txt").read_text() == "new model"
    out = tmp_path / "overwritten" / "model"
    with model_folder.staged_folder(out, overwrite=True) as stage:
        (stage / "new.txt").write_text("new model")
        out.mkdir(parents=True)
        (out / "theirs.txt").write_text("replaced, as asked")
    assert [p.name for p in out.parent.iterdir()] == ["model"] and [p.name for p in out.iterdir()] == ["new.txt"]


DIE_AFTER_FIT = """
import os, sys
import training.model_folder
def die(*args, **kwargs):
    os._exit(9)  # like a kill: no clean-up runs
training.model_folder.write_folder = die
from training.train import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_resume_after_the_fit_finished_keeps_that_fit(tmp_path: Path) -> None:
    """A run that dies after its fit (here while writing the folder) goes on from there with --resume:
    no second fit, one history, the first fit's epoch timings."""
    out = tmp_path / "model"
    flags = ["--out", str(out), *TINY_FLAGS, "--patience", "9"]
    died = subprocess.run([sys.executable, "-c", DIE_AFTER_FIT, *flags], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert died.returncode == 9 and "Epoch 2/2" in died.stdout, died.stderr[-2000:]
    assert not out.exists() and (model_folder.training_state(out) / model_folder.HISTORY).is_file()

    resumed = run_module("training.train", *flags, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Epoch 1/" not in resumed.stdout + resumed.stderr  # Keras logs every epoch it trains
    history = pd.read_csv(out / model_folder.HISTORY)
    metrics = json.loads((out / model_folder.METRICS).read_text())["training"]
    assert history["epoch"].tolist() == [0, 1] and metrics["epochs_run"] == len(metrics["epoch_seconds"]) == 2
    assert not model_folder.training_state(out).exists()
