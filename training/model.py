"""The tokenizers, the bidirectional LSTM, the n-gram branch, and the end-to-end model that takes raw strings.

    text ─ tokenizer (word ids, window) ─┬─ bilstm_classifier ─ logit ─┐
        │                                └─ words read ───────────────┤ output_features
        └─ ngram_tokenizer (binarized 1-3-grams) ─ ngram_weights ─ logit ─┴─ positive: Dense(1, sigmoid)

Only built-in Keras layers are used, so the saved model loads with `safe_mode=True` and nothing from
this project installed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from training.config import TrainConfig

# Layer names: the Space finds the parts of the model by these.
TOKENIZER_LAYER = "tokenizer"
CLASSIFIER_LAYER = "bilstm_classifier"
EMBEDDING_LAYER = "embedding"
BILSTM_LAYER = "bilstm"
NGRAM_TOKENIZER_LAYER = "ngram_tokenizer"
NGRAM_WEIGHTS_LAYER = "ngram_weights"
OUTPUT_LAYER = "positive"

# Keras' built-in standardization: ASCII lower-casing, then this ASCII punctuation removed; then Keras'
# "whitespace" split, on ASCII whitespace. Both tokenizers use the same rules. tokenizer.json spells the
# standardization out for readers outside Keras (STANDARDIZE_RULES); everything else it reads from the layer.
STANDARDIZE = "lower_and_strip_punctuation"
STRIP_PUNCTUATION_REGEX = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
STANDARDIZE_RULES = {STANDARDIZE: {"lowercase": "ascii", "strip_regex": STRIP_PUNCTUATION_REGEX}}
SPLIT = "whitespace"
PAD_ID, OOV_ID = 0, 1  # TextVectorization's fixed ids in "int" mode
FIRST_WORD_ID = 2  # the first id of a word of the vocabulary
MAX_NGRAM_CHARS = 40  # longer n-grams (URLs, "blahblahblah...") are left out of the vocabulary: see storable_ngram
TOKENIZE_CHUNK = 4096  # reviews tokenized at a time, to bound memory


def make_tokenizer(texts: list[str], vocab_size: int, sequence_length: int) -> layers.TextVectorization:
    """Word ids for the BiLSTM, vocabulary fitted on `texts` (the training part only)."""
    settings = dict(standardize=STANDARDIZE, split=SPLIT, output_mode="int", output_sequence_length=sequence_length)
    counter = layers.TextVectorization(max_tokens=vocab_size, **settings)
    counter.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    # Given as an argument, the vocabulary is saved in config.json as JSON. (An adapted layer saves it
    # as a text file of lines instead, which words holding a Unicode line separator would corrupt.)
    vocabulary = counter.get_vocabulary(include_special_tokens=False)
    return layers.TextVectorization(**settings, vocabulary=vocabulary, name=TOKENIZER_LAYER)


def tokenize(tokenizer: layers.TextVectorization, texts: Sequence[str]) -> np.ndarray:
    """Token ids of shape (n, sequence_length), computed in chunks to bound memory."""
    texts = list(texts)
    return np.concatenate([tokenizer(tf.constant(texts[i : i + TOKENIZE_CHUNK])).numpy()
                           for i in range(0, len(texts), TOKENIZE_CHUNK)])


def most_frequent_ngrams(texts: list[str], count: int, max_n: int) -> list[str]:
    """The `count` most frequent 1..max_n-grams of `texts`, standardized and split as the tokenizers do.
    (Four times faster than `TextVectorization.adapt`, which keeps every n-gram in a hash table as it goes.)"""
    grams = []
    for i in range(0, len(texts), TOKENIZE_CHUNK):
        text = tf.strings.regex_replace(tf.strings.lower(texts[i : i + TOKENIZE_CHUNK]), STRIP_PUNCTUATION_REGEX, "")
        grams.append(tf.strings.ngrams(tf.strings.split(text), ngram_width=tuple(range(1, max_n + 1)),
                                       separator=" ").flat_values)
    unique, _, counts = tf.unique_with_counts(tf.concat(grams, axis=0))
    unique = unique.numpy()
    ranked = (unique[i].decode("utf-8") for i in np.argsort(-counts.numpy(), kind="stable"))
    return list(itertools.islice(filter(storable_ngram, ranked), count))


def storable_ngram(gram: str) -> bool:
    """Whether an n-gram may be in the vocabulary: Keras reads a saved vocabulary back with str.splitlines, so one
    holding a line boundary that the whitespace split keeps (U+0085, U+2028...) would come back as two; and it
    loads the vocabulary as a NumPy array of fixed-width strings, each as wide as the longest (a URL would make
    every entry cost hundreds of bytes)."""
    return len(gram) <= MAX_NGRAM_CHARS and gram.splitlines() == [gram]


def make_ngram_tokenizer(texts: list[str], vocab_size: int, max_n: int) -> layers.TextVectorization:
    """Which of the most frequent 1..max_n-grams of `texts` a review contains (sparse 0/1, id 0: any other)."""
    vocabulary = most_frequent_ngrams(texts, vocab_size - 1, max_n)  # id 0 is taken by "any other n-gram"
    layer = layers.TextVectorization(standardize=STANDARDIZE, split=SPLIT, ngrams=max_n, output_mode="multi_hot",
                                     sparse=True, name=NGRAM_TOKENIZER_LAYER)
    # Set here rather than given as an argument, the vocabulary is saved as a text file in the folder's assets/
    # rather than as JSON in config.json, which every reader of the model's configuration would parse whole.
    layer.set_vocabulary(vocabulary)
    return layer


def tokenizer_json(tokenizer: layers.TextVectorization) -> dict:
    """Everything needed to reproduce the BiLSTM's token ids outside Keras, read from the layer itself."""
    config = tokenizer.get_config()
    return {
        "standardize": config["standardize"],
        **STANDARDIZE_RULES[config["standardize"]],
        "split": config["split"],
        "sequence_length": config["output_sequence_length"],
        "padding": "post",  # TextVectorization pads and cuts a window at its end
        "truncation": "post",
        "pad_id": PAD_ID,
        "oov_id": OOV_ID,
        "vocabulary": tokenizer.get_vocabulary(),
    }


def accuracy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """1 where the logit is on the side of its label rounded to 0 or 1 (a distilled review's label is the
    teacher's probability), else 0."""
    return keras.metrics.binary_accuracy(ops.round(labels), logits, threshold=0.0)  # a logit of 0 is P = 0.5


def build_classifier(vocab_size: int, config: TrainConfig) -> keras.Model:
    """Token ids in, the logit of P(positive) out: Embedding -> Bidirectional LSTM -> Dense -> Dense(1), sized and
    shaped by the network's hyperparameters in `config`."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = layers.Embedding(vocab_size, config.embedding_dim, mask_zero=config.mask_padding,
                         name=EMBEDDING_LAYER)(ids)
    if config.embedding_dropout:
        # Drops whole channels, not single numbers, so a word cannot be recognised from a few of them.
        x = layers.SpatialDropout1D(config.embedding_dropout, name="embedding_dropout")(x)
    if config.pool_over_time:
        # Max over every step sees the whole review, not just what the last state remembers.
        x = layers.Bidirectional(layers.LSTM(config.lstm_units, return_sequences=True), name=BILSTM_LAYER)(x)
        x = layers.GlobalMaxPooling1D(name="max_over_time")(x)
    else:
        x = layers.Bidirectional(layers.LSTM(config.lstm_units), name=BILSTM_LAYER)(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Dense(config.dense_units, activation="relu", name="dense")(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(ids, logit, name=CLASSIFIER_LAYER)


def ngram_weights(kernel: np.ndarray, bias: np.ndarray) -> layers.Dense:
    """The n-gram branch's linear layer, holding weights fitted outside Keras: one row per n-gram, one column and
    one bias per logit."""
    dense = layers.Dense(kernel.shape[1], name=NGRAM_WEIGHTS_LAYER)
    dense.build((None, len(kernel)))
    dense.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])
    return dense


def output_layer(weights: np.ndarray, bias: float) -> layers.Dense:
    """P(positive) from the output features: sigmoid(weights . features + bias). Fitted on the validation part,
    the weights combine the branches and calibrate; one per logit and zero elsewhere give their plain sum."""
    dense = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)
    dense.build((None, len(weights)))
    dense.set_weights([np.asarray(weights, "float32").reshape(-1, 1), np.array([bias], "float32")])
    return dense


def output_features(logits: keras.KerasTensor | np.ndarray, ids: keras.KerasTensor | np.ndarray):
    """What the output layer reads: the branches' logits, each times r, and r, where r = log(1 + the number of
    words the BiLSTM reads). With r, the logits of a one-liner can count for less than a review's, so that
    P(positive) is calibrated for both. Keras tensors in the model; arrays (to fit the layer) give a tensor."""
    logits = ops.cast(logits, "float32")
    read = ops.log1p(ops.sum(ops.cast(ops.not_equal(ids, PAD_ID), "float32"), axis=1, keepdims=True))
    return ops.concatenate([logits, ops.multiply(logits, read), read], axis=1)


def end_to_end(
    tokenizer: layers.TextVectorization,
    classifier: keras.Model,
    output: layers.Dense,
    ngram_tokenizer: layers.TextVectorization | None = None,
    ngram_dense: layers.Dense | None = None,
) -> keras.Model:
    """Raw strings of shape (n,) in, P(positive) of shape (n, 1) out."""
    text = keras.Input(shape=(), dtype="string", name="text")
    ids = tokenizer(text)
    logits = classifier(ids)
    if ngram_tokenizer is not None:
        logits = layers.Concatenate(name="logits")([logits, ngram_dense(ngram_tokenizer(text))])
    return keras.Model(text, output(output_features(logits, ids)), name="imdb_sentiment_bilstm")
