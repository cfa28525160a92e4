"""Fit the model on prepared splits: the BiLSTM, the n-gram branch, the output layer; `fit_and_save` also scores
the test part and has model_folder.py write the folder."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import training.quiet_tf  # noqa: F401  (first: TensorFlow without its C++ start-up lines)
import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import sparse
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from training import card, evaluate, model_folder
from training.config import TrainConfig
from training.data import LABELS, Splits, Unlabeled
from training.evaluate import PREDICT_BATCH
from training.model import (EMBEDDING_LAYER, TOKENIZE_CHUNK, accuracy, build_classifier, end_to_end,
                            make_ngram_tokenizer, make_tokenizer, ngram_weights, output_features, output_layer,
                            tokenize, tokenizer_json)
from training.pretrain import word_vectors
from training.provenance import hardware, library_versions, provenance

log = logging.getLogger("training")

BUCKET_WIDTH = 50  # tokens; batches hold reviews whose lengths differ by less than this
# The output layer is a logistic regression on the output features over the validation part: almost
# unregularised, since it has only two weights per branch, one for the words read, and a bias.
OUTPUT_LAYER_C = 1e4
# The logits the output layer reads, in order (the validation figures name them so).
BRANCH_LOGITS = ("bilstm", "ngram", "ngram_sentences")


def bucketed_batches(ids: np.ndarray, boundaries: list[int], batch_size: int) -> int:
    """How many batches `bucket_by_sequence_length` makes of `ids`, in any order: ceil(reviews / batch size) per bucket."""
    buckets = np.searchsorted(boundaries, np.count_nonzero(ids, axis=1), side="right")
    return int(sum(-(-count // batch_size) for count in np.bincount(buckets, minlength=len(boundaries) + 1)))


def make_dataset(ids: np.ndarray, labels: np.ndarray, config: TrainConfig, shuffle: bool) -> tf.data.Dataset:
    """Batches of (ids, label); with bucketing, each batch is only as long as its longest review."""
    data = tf.data.Dataset.from_tensor_slices((ids, labels))
    if config.bucket_by_length:
        # Padding is post and masked, so dropping the trailing zeros changes nothing but the cost.
        data = data.map(lambda x, y: (x[: tf.math.count_nonzero(x, dtype=tf.int32)], y))
    if shuffle:
        data = data.shuffle(len(labels), seed=config.seed, reshuffle_each_iteration=True)
    if config.bucket_by_length:
        boundaries = list(range(BUCKET_WIDTH, config.sequence_length, BUCKET_WIDTH))
        data = data.bucket_by_sequence_length(
            lambda x, y: tf.shape(x)[0], boundaries, [config.batch_size] * (len(boundaries) + 1)
        )
        # Keras then knows where an epoch ends instead of running the data dry ("Your input ran out of data").
        data = data.apply(tf.data.experimental.assert_cardinality(bucketed_batches(ids, boundaries, config.batch_size)))
    else:
        data = data.batch(config.batch_size)
    return data.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class Encoded:
    """Token ids and labels of the training and validation parts (0/1, or the teacher's probability for a
    distilled review)."""

    train_ids: np.ndarray
    train_labels: np.ndarray
    val_ids: np.ndarray
    val_labels: np.ndarray


def fit_keras(
    classifier: keras.Model, data: Encoded, config: TrainConfig, out: Path, resume: bool
) -> tuple[pd.DataFrame, list[float]]:
    """Keras `fit` with early stopping, the best validation weights (the classifier ends with them) and resumable
    state (`resume`: from the last completed epoch, or the finished fit); the per-epoch history and durations."""
    train_data = make_dataset(data.train_ids, data.train_labels, config, shuffle=True)
    val_data = make_dataset(data.val_ids, data.val_labels, config, shuffle=False)
    # Training state lives beside the output so that a killed run can go on with --resume.
    state = model_folder.training_state(out)
    state.mkdir(parents=True, exist_ok=True)
    history_csv = state / model_folder.HISTORY
    best_weights = state / "best.weights.h5"
    backup = state / "backup"
    finished = state / "fit.json"  # written when the fit has ended: its epoch durations
    if resume and finished.is_file():
        classifier.load_weights(best_weights)
        return pd.read_csv(history_csv), json.loads(finished.read_text())
    if not resume:
        shutil.rmtree(backup, ignore_errors=True)
    resuming = resume and history_csv.is_file()
    best_so_far = pd.read_csv(history_csv)["val_loss"].min() if resuming else None
    epoch_ends = [time.perf_counter()]
    classifier.fit(
        train_data,
        validation_data=val_data,
        epochs=config.epochs,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=1 if sys.stdout.isatty() else 2,
        callbacks=[
            # Restores weights, optimizer and epoch counter after a kill; saved after every epoch.
            keras.callbacks.BackupAndRestore(backup),
            # Model selection looks at the validation part only.
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
            keras.callbacks.ModelCheckpoint(best_weights, monitor="val_loss", save_best_only=True,
                                            save_weights_only=True, initial_value_threshold=best_so_far),
            keras.callbacks.CSVLogger(history_csv, append=resuming),
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epoch_ends.append(time.perf_counter())),
        ],
    )
    epoch_seconds = np.diff(epoch_ends).tolist()
    finished.write_text(json.dumps(epoch_seconds))
    classifier.load_weights(best_weights)
    return pd.read_csv(history_csv), epoch_seconds


def build_bilstm(config: TrainConfig, vocab_size: int, corpus: np.ndarray) -> keras.Model:
    """The compiled BiLSTM classifier, its embedding pre-trained on the token ids of `corpus` if asked."""
    classifier = build_classifier(vocab_size, config)
    if config.pretrain_embeddings:
        vectors = word_vectors(corpus, vocab_size, config.embedding_dim, config.seed)
        classifier.get_layer(EMBEDDING_LAYER).set_weights([vectors])
    classifier.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")],
    )
    return classifier


def ngram_features(layer: keras.layers.TextVectorization, texts: pd.Series) -> sparse.csr_matrix:
    """The n-gram tokenizer's sparse 0/1 output as a SciPy matrix, computed in chunks."""
    chunks = []
    for i in range(0, len(texts), TOKENIZE_CHUNK):
        out = layer(tf.constant(texts.iloc[i : i + TOKENIZE_CHUNK].tolist()))
        rows, columns = out.indices.numpy().T
        chunks.append(sparse.csr_matrix((np.ones(len(rows), "float32"), (rows, columns)),
                                        shape=tuple(out.dense_shape.numpy())))
    return sparse.vstack(chunks).tocsr()


NgramBranch = tuple[keras.layers.TextVectorization, keras.layers.Dense]  # its tokenizer and its weights


def ngram_logits(ngram: NgramBranch, texts: pd.Series) -> np.ndarray:
    """The n-gram branch's logits for each text, shape (texts, logits)."""
    kernel, bias = ngram[1].get_weights()
    return ngram_features(ngram[0], texts) @ kernel + bias


def sentence_rows(texts: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The sentences of every review that has more than one (a review of one sentence is already there whole), and
    the position of each one's review in `texts`."""
    split = [parts if len(parts) > 1 else [] for parts in map(evaluate.sentences, texts)]
    return (pd.Series(list(itertools.chain.from_iterable(split)), dtype=object),
            np.repeat(np.arange(len(split)), [len(parts) for parts in split]))


def fit_ngram_branch(texts: pd.Series, labels: np.ndarray, config: TrainConfig) -> NgramBranch:
    """The n-gram tokenizer and the Dense layer holding NBSVM weights fitted on the training part: the first logit
    learned from whole reviews, the second (with `sentence_weight`) also from their sentences."""
    started = time.perf_counter()
    tokenizer = make_ngram_tokenizer(texts.tolist(), config.ngram_vocab_size, config.ngram_max_n)
    features = ngram_features(tokenizer, texts)
    weights = [evaluate.nbsvm_weights(evaluate.nbsvm(config.ngram_c, config.seed).fit(features, labels))]
    if config.sentence_weight:
        sentences, review = sentence_rows(texts)
        features = sparse.vstack([features, ngram_features(tokenizer, sentences)]).tocsr()
        sample_weight = np.concatenate([np.ones(len(labels)), np.full(len(review), config.sentence_weight)])
        nbsvm = evaluate.nbsvm(config.ngram_c, config.seed).fit(
            features, np.concatenate([labels, labels[review]]),
            logcountratio__sample_weight=sample_weight, logisticregression__sample_weight=sample_weight)
        weights.append(evaluate.nbsvm_weights(nbsvm))
    log.info("n-gram branch: %d n-grams, %d logit(s), fitted in %.0f s", tokenizer.vocabulary_size(), len(weights),
             time.perf_counter() - started)
    return tokenizer, ngram_weights(np.stack([kernel for kernel, _ in weights], axis=1),
                                    np.array([bias for _, bias in weights]))


def fit_output_layer(logits: np.ndarray, ids: np.ndarray, labels: np.ndarray, calibrate: bool) -> keras.layers.Dense:
    """The output layer over the output features of validation-part reviews (their branches' logits and the
    token ids the BiLSTM read): fitted (weights and bias, which also set a temperature for each length) or,
    without `calibrate`, the plain sum of the logits."""
    features = np.asarray(output_features(logits, ids))
    if not calibrate:
        weights = np.zeros(features.shape[1])
        weights[: logits.shape[1]] = 1.0
        return output_layer(weights, 0.0)
    regression = LogisticRegression(C=OUTPUT_LAYER_C).fit(features, labels)
    return output_layer(regression.coef_[0], float(regression.intercept_[0]))


@dataclass
class Fitted:
    """What training produced: the end-to-end model and the record of how it got there."""

    model: keras.Model
    tokenizer: keras.layers.TextVectorization
    history: pd.DataFrame
    epoch_seconds: list[float]
    validation: dict  # validation-part figures of each branch and of the output before and after fitting
    seconds: float
    distilled: int  # unlabeled reviews the BiLSTM learned from, labelled by the n-gram model


def branch_logits(parts: dict, ids: np.ndarray, texts: pd.Series) -> np.ndarray:
    """Each branch's logit for the reviews (token ids for the BiLSTM, texts for the n-gram branch)."""
    columns = [parts["classifier"].predict(ids, batch_size=PREDICT_BATCH, verbose=0)]
    if "ngram" in parts:
        columns.append(ngram_logits(parts["ngram"], texts))
    return np.concatenate(columns, axis=1)


def validation_figures(logits: dict[str, np.ndarray], ids: dict[str, np.ndarray], labels: np.ndarray,
                       output: keras.layers.Dense) -> dict:
    """Accuracy and calibration error on the validation part's reviews and on their last sentences: each
    branch alone, the plain sum of the logits, and the output layer as shipped."""
    branches = BRANCH_LOGITS[: logits["reviews"].shape[1]]
    probabilities = {
        **{name: lambda part, i=i: expit(logits[part][:, i]) for i, name in enumerate(branches)},
        "sum": lambda part: expit(logits[part].sum(axis=1)),
        "output": lambda part: np.asarray(output(output_features(logits[part], ids[part])))[:, 0],
    }
    return {name: {part: evaluate.accuracy_and_ece(labels, probability(part)) for part in logits}
            for name, probability in probabilities.items()}


def prepare_data(config: TrainConfig, splits: Splits, tokenizer: keras.layers.TextVectorization,
                 unlabeled: Unlabeled | None) -> tuple[Encoded, np.ndarray, NgramBranch | None]:
    """The BiLSTM's token ids and labels, the corpus of its word vectors and, with distillation, the n-gram model:
    with `distill` and unlabeled reviews, the BiLSTM also learns from every unlabeled review, labelled with the
    probability that the n-gram model (fitted first, here) gives it (knowledge distillation)."""
    data = Encoded(tokenize(tokenizer, splits.train["text"]), splits.train["label"].to_numpy(),
                   tokenize(tokenizer, splits.val["text"]), splits.val["label"].to_numpy())
    distill = config.distill and unlabeled is not None
    if config.distill and not distill:
        log.warning("--distill: no --unlabeled reviews to learn from; the BiLSTM learns from the labelled ones only")
    unlabeled_ids = None
    if unlabeled is not None and (distill or config.pretrain_embeddings):
        unlabeled_ids = tokenize(tokenizer, unlabeled.texts)
    # The word vectors' pre-training also reads the unlabeled reviews, if any.
    corpus = data.train_ids if unlabeled_ids is None else np.concatenate([data.train_ids, unlabeled_ids])
    ngram = fit_ngram_branch(splits.train["text"], data.train_labels, config) if distill else None
    if distill:
        teacher = expit(ngram_logits(ngram, unlabeled.texts)[:, 0]).astype("float32")  # learned from whole reviews
        data = replace(data, train_ids=np.concatenate([data.train_ids, unlabeled_ids]),
                       train_labels=np.concatenate([data.train_labels.astype("float32"), teacher]))
        log.info("distillation: %d unlabeled reviews labelled by the n-gram model", len(teacher))
    return data, corpus, ngram


def fit_model(
    config: TrainConfig, splits: Splits, out: Path, unlabeled: Unlabeled | None = None, resume: bool = False
) -> Fitted:
    """Tokenizer, BiLSTM, n-gram branch and output layer, fitted on the training and validation parts."""
    started = time.perf_counter()
    log.info("training on %d GPU(s)", len(tf.config.list_physical_devices("GPU")))
    keras.utils.set_random_seed(config.seed)
    # The tokenizers see the training part only.
    tokenizer = make_tokenizer(splits.train["text"].tolist(), config.vocab_size, config.sequence_length)
    data, corpus, ngram = prepare_data(config, splits, tokenizer, unlabeled)
    classifier = build_bilstm(config, tokenizer.vocabulary_size(), corpus)
    history, epoch_seconds = fit_keras(classifier, data, config, out, resume)
    # A copy without the training state (optimizer, loss, our accuracy metric), which the saved model must not
    # carry to load in safe mode.
    trained, classifier = classifier, build_classifier(tokenizer.vocabulary_size(), config)
    classifier.set_weights(trained.get_weights())
    if config.ngram_branch and ngram is None:
        ngram = fit_ngram_branch(splits.train["text"], splits.train["label"].to_numpy(), config)
    parts = {"classifier": classifier, **({"ngram": ngram} if config.ngram_branch else {})}
    # The output layer learns from whole reviews and from one-liners (their last sentences), so that
    # P(positive) means what it says for both; it has two weights per branch, one for r and a bias, nothing else.
    sentences = pd.Series(evaluate.last_sentences(splits.val["text"].tolist()))
    ids = {"reviews": data.val_ids, "last_sentences": tokenize(tokenizer, sentences)}
    logits = {part: branch_logits(parts, ids[part], texts)
              for part, texts in {"reviews": splits.val["text"], "last_sentences": sentences}.items()}
    output = fit_output_layer(np.concatenate(list(logits.values())), np.concatenate(list(ids.values())),
                              np.tile(data.val_labels, 2), config.calibrate)
    model = end_to_end(tokenizer, classifier, output, *parts.get("ngram", ()))
    return Fitted(model, tokenizer, history, epoch_seconds, validation_figures(logits, ids, data.val_labels, output),
                  time.perf_counter() - started, distilled=len(data.train_labels) - len(splits.train))


def run_metrics(fitted: Fitted, test: dict, baselines: dict, config: TrainConfig) -> dict:
    """Everything `metrics.json` holds, but the weights' size (model_folder.write_folder adds it)."""
    history = fitted.history
    return {
        "test": test,
        "baselines": baselines,
        "validation": fitted.validation,
        "training": {
            "epochs_run": len(history),
            "best_epoch": int(history["val_loss"].idxmin()) + 1,
            "best_val_loss": float(history["val_loss"].min()),
            "fit_seconds": round(sum(fitted.epoch_seconds), 1),
            # The median: the first epoch also pays for tracing the graphs.
            "seconds_per_epoch": round(float(np.median(fitted.epoch_seconds)), 1),
            "epoch_seconds": [round(s, 1) for s in fitted.epoch_seconds],
            "wall_seconds": round(fitted.seconds, 1),
            "distilled_reviews": fitted.distilled,
        },
        "compute": hardware(),
        "widget": card.example_probabilities(fitted.model),
        "model": {
            "parameters": int(fitted.model.count_params()),
            "vocabulary": fitted.tokenizer.vocabulary_size(),
            "sequence_length": config.sequence_length,
            "ngram_branch": config.ngram_branch,
        },
    }


def fit_and_save(
    config: TrainConfig,
    splits: Splits,
    out: Path,
    overwrite: bool = False,
    unlabeled: Unlabeled | None = None,
    resume: bool = False,
    baselines: dict | None = None,
) -> dict:
    """Fit, score the test part once, train the baselines (unless given) and write the folder `out`; the metrics."""
    fitted = fit_model(config, splits, out, unlabeled, resume)
    baselines = baselines if baselines is not None else evaluate.baseline_figures(evaluate.train_baselines(splits, config), splits.test)
    test, curves = evaluate.test_figures(fitted.model, splits.test)  # the only time the test part is scored
    metrics = run_metrics(fitted, test, baselines, config)
    training_config = {"hyperparameters": config.to_dict(), "labels": list(LABELS), **provenance(splits, unlabeled),
                       "versions": library_versions()}
    with model_folder.staged_folder(out, overwrite) as folder:
        model_folder.write_folder(folder, fitted.model, tokenizer_json(fitted.tokenizer), fitted.history, metrics,
                                  training_config)
        evaluate.write_plots(folder, fitted.history, metrics["test"]["confusion_matrix"], curves)
        card.render_card(folder).save(folder / model_folder.CARD)
        model_folder.check_folder(folder)
    shutil.rmtree(model_folder.training_state(out), ignore_errors=True)  # the run finished
    return metrics
