"""The bidirectional language model that pre-trains the encoder (embedding + BiLSTM), and loading it for reuse.

    text ─ tokenizer ─ embedding ─ bilstm ─┬─ forward states  ─ predict word t+1 ─┐
                                           └─ backward states ─ predict word t-1 ─┴─ sampled softmax loss
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import training.quiet_tf  # noqa: F401  (first: TensorFlow without its C++ start-up lines)
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from training.config import ConfigError, TrainConfig
from training.model import BILSTM_LAYER, EMBEDDING_LAYER, PAD_ID, TOKENIZER_LAYER, make_tokenizer, tokenize

log = logging.getLogger("training")

CLIP_NORM = 1.0  # recurrent language models blow up now and then without it
SAMPLED_WORDS = 512  # words per step that the sampled softmax scores instead of the whole vocabulary
BUCKET_WIDTH = 50  # tokens; a batch holds reviews whose lengths differ by less than this
EVAL_BATCH = 8  # reviews per full-softmax evaluation step (8 x 400 x 20,000 logits)
STATES_MODEL = "bilstm_states"  # the encoder's part from token ids to states
PROGRESS_FILE = "progress.json"
WEIGHTS_FILE = "encoder.weights.h5"
STATE_ARRAYS = "softmax_and_optimizer.npz"  # plain float arrays, read with allow_pickle=False


def build_encoder(tokenizer: layers.TextVectorization, embedding_dim: int, lstm_units: int) -> keras.Model:
    """Raw strings in; the forward and the backward LSTM states of every word out."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = layers.Embedding(tokenizer.vocabulary_size(), embedding_dim, mask_zero=True, name=EMBEDDING_LAYER)(ids)
    forward, backward = layers.Bidirectional(layers.LSTM(lstm_units, return_sequences=True), merge_mode=None,
                                             name=BILSTM_LAYER)(x)
    states = keras.Model(ids, [forward, backward], name=STATES_MODEL)
    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(text, states(tokenizer(text)), name="bilstm_encoder")


def batches(ids: np.ndarray, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Batches of token ids cut to their longest review; shuffled (and length-bucketed) when `seed` is given."""
    data = tf.data.Dataset.from_tensor_slices(ids).map(lambda x: x[: tf.math.count_nonzero(x, dtype=tf.int32)])
    if seed is None:
        return data.padded_batch(batch_size)
    boundaries = list(range(BUCKET_WIDTH, ids.shape[1], BUCKET_WIDTH))
    data = data.shuffle(len(ids), seed=seed).bucket_by_sequence_length(
        lambda x: tf.shape(x)[0], boundaries, [batch_size] * (len(boundaries) + 1))
    return data.prefetch(tf.data.AUTOTUNE)


def next_and_previous(forward: tf.Tensor, backward: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Every (state, word it must predict) pair of both directions, padding left out: (states, words)."""
    states = tf.concat([tf.reshape(forward[:, :-1], (-1, forward.shape[-1])),
                        tf.reshape(backward[:, 1:], (-1, backward.shape[-1]))], axis=0)
    words = tf.concat([tf.reshape(ids[:, 1:], (-1,)), tf.reshape(ids[:, :-1], (-1,))], axis=0)
    keep = words != PAD_ID
    return tf.boolean_mask(states, keep), tf.boolean_mask(words, keep)


class LanguageModel:
    """The encoder's id-to-states part plus an output layer used only here, and one training step."""

    def __init__(self, encoder: keras.Model, learning_rate: float) -> None:
        self.states = encoder.get_layer(STATES_MODEL)
        self.output = layers.Dense(self.states.get_layer(EMBEDDING_LAYER).input_dim, name="next_word")
        self.output.build((None, self.states.outputs[0].shape[-1]))
        self.sampled = min(SAMPLED_WORDS, self.output.units // 2)  # a small vocabulary has fewer to sample
        self.variables = self.states.trainable_variables + self.output.trainable_variables
        self.optimizer = keras.optimizers.Adam(learning_rate, global_clipnorm=CLIP_NORM)
        self.optimizer.build(self.variables)

    @tf.function(reduce_retracing=True)
    def train_step(self, ids: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            states, words = next_and_previous(*self.states(ids, training=True), ids)
            loss = tf.reduce_mean(tf.nn.sampled_softmax_loss(
                tf.transpose(self.output.kernel), self.output.bias, words[:, None], states,
                num_sampled=self.sampled, num_classes=self.output.units))
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.variables), self.variables))
        return loss

    @tf.function(reduce_retracing=True)
    def cross_entropy(self, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Summed cross-entropy of both directions' predictions of `ids` (full softmax), and their count."""
        states, words = next_and_previous(*self.states(ids, training=False), ids)
        return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(words, self.output(states))), tf.size(words)

    def perplexity(self, data: tf.data.Dataset) -> float:
        """exp(mean cross-entropy) over every word of `data`."""
        sums = [self.cross_entropy(ids) for ids in data]
        return math.exp(sum(float(total) for total, _ in sums) / max(sum(int(count) for _, count in sums), 1))

    def save_state(self, folder: Path) -> None:
        self.states.save_weights(folder / WEIGHTS_FILE)
        arrays = [v.numpy() for v in self.output.weights + self.optimizer.variables]
        np.savez(folder / STATE_ARRAYS, *arrays)

    def load_state(self, folder: Path) -> None:
        self.states.load_weights(folder / WEIGHTS_FILE)
        with np.load(folder / STATE_ARRAYS, allow_pickle=False) as saved:
            for variable, name in zip(self.output.weights + self.optimizer.variables, saved.files):
                variable.assign(saved[name])


def pretrain(texts: list[str], held_out: list[str], args: argparse.Namespace, state: Path) -> tuple[keras.Model, list]:
    """Fit the language model on `texts` for `args.epochs`, resuming from `state`; the encoder and one
    record per epoch (training loss, held-out perplexity, seconds)."""
    keras.utils.set_random_seed(args.seed)
    tokenizer = make_tokenizer(texts, args.vocab_size, args.sequence_length)
    encoder = build_encoder(tokenizer, args.embedding_dim, args.lstm_units)
    lm = LanguageModel(encoder, args.learning_rate)
    ids = tokenize(tokenizer, texts)
    held_out_ids = batches(tokenize(tokenizer, held_out), EVAL_BATCH, None)
    progress = state / PROGRESS_FILE
    history = json.loads(progress.read_text(encoding="utf-8")) if progress.is_file() else []
    if history:
        lm.load_state(state)
        log.info("resuming after epoch %d", len(history))
    log.info("language model: %d reviews, %d words, vocabulary %d", len(ids), np.count_nonzero(ids),
             tokenizer.vocabulary_size())
    for epoch in range(len(history) + 1, args.epochs + 1):
        started, losses = time.perf_counter(), []
        for step, batch in enumerate(batches(ids, args.batch_size, args.seed + epoch), 1):
            losses.append(float(lm.train_step(batch)))
            if step % 100 == 0:
                log.info("epoch %d step %d: sampled loss %.3f", epoch, step, np.mean(losses[-100:]))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                        "held_out_perplexity": lm.perplexity(held_out_ids), "seconds": time.perf_counter() - started})
        log.info("epoch %d: %s", epoch, history[-1])
        lm.save_state(state)
        progress.write_text(json.dumps(history), encoding="utf-8")
    return encoder, history


@dataclass
class Encoder:
    """What a training takes from an encoder folder: the vocabulary, and the weights by layer name."""

    vocabulary: list[str]  # without the padding and out-of-vocabulary entries
    weights: dict[str, list[np.ndarray]]


def load_encoder(config: TrainConfig) -> Encoder:
    """The encoder folder `config.encoder` (local or hf://OWNER/NAME), loaded in safe mode and checked
    against the network's sizes; ConfigError says what does not fit."""
    try:
        encoder = keras.saving.load_model(config.encoder, safe_mode=True)
        states = encoder.get_layer(STATES_MODEL)
    except (ValueError, OSError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--encoder {config.encoder}: not an encoder folder made by training.encoder ({reason})")
    embedding, bilstm = states.get_layer(EMBEDDING_LAYER), states.get_layer(BILSTM_LAYER)
    sizes = {"vocab_size": embedding.input_dim, "embedding_dim": embedding.output_dim,
             "lstm_units": bilstm.forward_layer.units}
    if any(getattr(config, name) != size for name, size in sizes.items()):
        raise ConfigError(f"--encoder {config.encoder} was pre-trained with "
                          + " ".join(f"--{name.replace('_', '-')} {size}" for name, size in sizes.items())
                          + "; pass the same values")
    return Encoder(encoder.get_layer(TOKENIZER_LAYER).get_vocabulary(include_special_tokens=False),
                   {layer.name: layer.get_weights() for layer in (embedding, bilstm)})
