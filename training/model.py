"""The tokenizer and the bidirectional LSTM, and the end-to-end model that takes raw strings.

Only built-in Keras layers are used, so the saved model loads with `safe_mode=True` and nothing from
this project installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf
from keras import layers

from training.data import LINE_BREAK

# Keras' built-in standardization: ASCII lower-casing, then this ASCII punctuation removed.
STANDARDIZE = "lower_and_strip_punctuation"
STRIP_PUNCTUATION_REGEX = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
SPLIT = "whitespace"


def make_tokenizer(texts: list[str], vocab_size: int, sequence_length: int) -> layers.TextVectorization:
    """Fit the tokenizer's vocabulary on `texts` (the training part only)."""
    settings = dict(max_tokens=vocab_size, standardize=STANDARDIZE, split=SPLIT, output_mode="int",
                    output_sequence_length=sequence_length)
    counter = layers.TextVectorization(**settings)
    counter.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    # Given as an argument, the vocabulary is saved in config.json as JSON. (An adapted layer saves it
    # as a text file of lines instead, which words holding a Unicode line separator would corrupt.)
    vocabulary = counter.get_vocabulary(include_special_tokens=False)
    return layers.TextVectorization(**settings, vocabulary=vocabulary, name="tokenizer")


def tokenizer_json(tokenizer: layers.TextVectorization) -> dict:
    """Everything needed to reproduce the model's token ids outside Keras."""
    config = tokenizer.get_config()
    return {
        # Done to the training data before the tokenizer saw it (not by the model): do it to new text too.
        "replace_before_tokenizing": {LINE_BREAK: " "},
        "lowercase": "ascii",
        "strip_regex": STRIP_PUNCTUATION_REGEX,
        "split": "ascii_whitespace",
        "sequence_length": config["output_sequence_length"],
        "padding": "post",
        "truncation": "post",
        "pad_id": 0,
        "oov_id": 1,
        "vocabulary": tokenizer.get_vocabulary(),
    }


def write_tokenizer_json(tokenizer: layers.TextVectorization, path: Path) -> None:
    """Write `tokenizer.json` (settings and the ordered vocabulary: the id of a word is its index)."""
    path.write_text(json.dumps(tokenizer_json(tokenizer), ensure_ascii=False, indent=1), encoding="utf-8")


def build_classifier(
    vocab_size: int,
    embedding_dim: int,
    freeze_embeddings: bool,
    embedding_dropout: float,
    lstm_units: int,
    dense_units: int,
    dropout: float,
    mask_padding: bool,
    pool_over_time: bool,
) -> keras.Model:
    """Token ids in, P(positive) out: Embedding -> Bidirectional LSTM -> Dense -> Dense(sigmoid)."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = layers.Embedding(vocab_size, embedding_dim, mask_zero=mask_padding, trainable=not freeze_embeddings,
                         name="embedding")(ids)
    if embedding_dropout:
        # Drops whole channels, not single numbers, so a word cannot be recognised from a few of them.
        x = layers.SpatialDropout1D(embedding_dropout, name="embedding_dropout")(x)
    if pool_over_time:
        # Max over every step sees the whole review, not just what the last state remembers.
        x = layers.Bidirectional(layers.LSTM(lstm_units, return_sequences=True), name="bilstm")(x)
        x = layers.GlobalMaxPooling1D(name="max_over_time")(x)
    else:
        x = layers.Bidirectional(layers.LSTM(lstm_units), name="bilstm")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    probability = layers.Dense(1, activation="sigmoid", name="positive")(x)
    return keras.Model(ids, probability, name="bilstm_classifier")


def end_to_end(tokenizer: layers.TextVectorization, classifier: keras.Model) -> keras.Model:
    """Raw strings of shape (n,) in, P(positive) of shape (n, 1) out."""
    text = keras.Input(shape=(), dtype="string", name="text")
    probability = classifier(tokenizer(text))
    return keras.Model(text, probability, name="imdb_sentiment_bilstm")
