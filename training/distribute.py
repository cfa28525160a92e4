"""Training over several devices or machines: the strategy, and the plain loop that multi-worker training needs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import training.quiet_tf  # noqa: F401  (first: TensorFlow without its C++ start-up lines)
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.config import TrainConfig
from training.model import LOSS, accuracy

log = logging.getLogger("training")

Part = tuple[np.ndarray, np.ndarray]  # token ids and labels


def make_strategy(distribute: str) -> tf.distribute.Strategy:
    """`none`: the default device; `mirrored`: data-parallel over every local GPU (or every CPU device);
    `multiworker`: data-parallel over the machines that TF_CONFIG lists."""
    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def distributed_batches(
    part: Part, config: TrainConfig, strategy: tf.distribute.Strategy, shuffle: bool
) -> tf.distribute.DistributedDataset:
    """Batched globally: every worker takes every step, each on its share of the batch. Batches keep the full
    window (no length bucketing), which the masking makes equivalent."""
    ids, labels = part
    data = tf.data.Dataset.from_tensor_slices((ids, labels.astype("float32")[:, None]))
    if shuffle:
        data = data.shuffle(len(labels), seed=config.seed, reshuffle_each_iteration=True)
    return strategy.experimental_distribute_dataset(data.batch(config.batch_size * strategy.num_replicas_in_sync))


def distributed_step(
    classifier: keras.Model, global_batch: int, strategy: tf.distribute.Strategy
) -> Callable[[tuple, bool], tf.Tensor]:
    """A compiled step over one global batch, training or not: the summed loss, correct answers and examples."""
    optimizer = classifier.optimizer
    with strategy.scope():
        optimizer.build(classifier.trainable_variables)

    def sums(ids, labels, training: bool) -> tf.Tensor:
        """Summed loss, correct answers and examples of one replica's share of a batch."""
        logits = classifier(ids, training=training)
        losses = LOSS.call(labels, logits)
        correct = accuracy(labels, logits)
        return tf.stack([tf.reduce_sum(losses), tf.reduce_sum(correct), tf.cast(tf.shape(labels)[0], tf.float32)])

    def train_replica(ids, labels) -> tf.Tensor:
        with tf.GradientTape() as tape:
            totals = sums(ids, labels, training=True)
            mean_loss = totals[0] / global_batch  # per replica: the replicas' gradients are summed
        optimizer.apply(tape.gradient(mean_loss, classifier.trainable_variables), classifier.trainable_variables)
        return totals

    @tf.function
    def step(batch, training: bool) -> tf.Tensor:
        replica = train_replica if training else lambda ids, labels: sums(ids, labels, training=False)
        return strategy.reduce("SUM", strategy.run(replica, args=batch), axis=None)

    return step


def fit_multiworker(
    classifier: keras.Model, train: Part, val: Part, config: TrainConfig, strategy: tf.distribute.Strategy
) -> tuple[pd.DataFrame, list[float]]:
    """The same training as `fit_keras` (loss, optimizer, early stopping, best validation weights) as a
    plain loop, because Keras 3's `fit` does not run under MultiWorkerMirroredStrategy
    (keras-team/keras#20585). No resumable state: a killed worker stops the whole cluster anyway.
    """
    step = distributed_step(classifier, config.batch_size * strategy.num_replicas_in_sync, strategy)

    def run_epoch(batches: tf.distribute.DistributedDataset, training: bool) -> tuple[float, float]:
        totals = sum(step(batch, training).numpy() for batch in batches)
        return totals[0] / totals[2], totals[1] / totals[2]

    train_data = distributed_batches(train, config, strategy, shuffle=True)
    val_data = distributed_batches(val, config, strategy, shuffle=False)
    rows, epoch_seconds, best_val_loss, best_weights, waited = [], [], np.inf, None, 0
    for epoch in range(config.epochs):
        epoch_started = time.perf_counter()
        loss, accuracy = run_epoch(train_data, training=True)
        val_loss, val_accuracy = run_epoch(val_data, training=False)
        epoch_seconds.append(time.perf_counter() - epoch_started)
        rows.append({"epoch": epoch, "accuracy": accuracy, "loss": loss,
                     "val_accuracy": val_accuracy, "val_loss": val_loss})
        log.info("epoch %d: loss %.4f, accuracy %.4f, val_loss %.4f, val_accuracy %.4f",
                 epoch + 1, loss, accuracy, val_loss, val_accuracy)
        if val_loss < best_val_loss:
            best_val_loss, best_weights, waited = val_loss, classifier.get_weights(), 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    classifier.set_weights(best_weights)
    return pd.DataFrame(rows), epoch_seconds


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief task of a multi-worker cluster: the chief is the `chief`
    task, or worker 0 of a cluster that has none, so exactly one task writes the folder."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if "chief" in resolver.cluster_spec().jobs:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0
