"""The BiLSTM classifier computed from its own weights in one loop, faster than Keras' layers on a CPU.

Keras runs the two directions as two loops, and at every step multiplies each word's vector by the LSTM's input
kernel. Here both directions share one loop, and those products are looked up: the embedding times the input
kernel, plus the bias, is computed once per vocabulary word when the model loads. Only the classifier that the
presets build on a masked embedding (embedding, BiLSTM, max over time, dense layers) is computed so; `logits`
hands any other to Keras. tests/test_space.py checks the scores against Keras'.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from model_folder import BILSTM_LAYER, EMBEDDING_LAYER
from quiet_tf import keras, tf

layers = keras.layers
INFERENCE_NOOPS = (layers.InputLayer, layers.Dropout, layers.SpatialDropout1D)  # they do nothing at inference
CHAIN = [layers.Embedding, layers.Bidirectional, layers.GlobalMaxPooling1D, layers.Dense, layers.Dense]
LSTM_SETTINGS = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True, "return_sequences": True,
                 "zero_output_for_mask": True}


def logits(classifier: keras.Model, pad_id: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """The classifier as a function of token ids (batch, window) to logits (batch, 1): the fast loop if the
    classifier is the presets' masked BiLSTM (padding: `pad_id`), else the classifier's own layers."""
    if not computes(classifier):
        return lambda ids: classifier(ids, training=False)
    embedding, bilstm, _, head_hidden, head_logit = _chain(classifier)
    units = bilstm.forward_layer.units
    vectors = embedding.get_weights()[0]
    # Per direction: input kernel, recurrent kernel, bias.
    weights = [lstm.cell.get_weights() for lstm in (bilstm.forward_layer, bilstm.backward_layer)]
    # Each word's product with each direction's input kernel, plus the bias: (vocabulary, 2 directions x 4 units).
    # A variable, not a constant: XLA would copy a constant table into every compiled program.
    inputs_table = tf.Variable(np.concatenate([vectors @ kernel + bias for kernel, _, bias in weights], axis=1),
                               trainable=False)
    recurrent = tf.constant(np.stack([kernel for _, kernel, _ in weights]))  # (2, units, 4 units)

    def call(ids: tf.Tensor) -> tf.Tensor:
        # Time-major (step, direction, batch, ...), the backward direction reversed: the loop reads row `t` of
        # each. (Indexing the batch-major tensor by the loop counter gave wrong results under XLA, TF 2.21.)
        steps = tf.transpose(tf.gather(inputs_table, ids), [1, 0, 2])
        steps = tf.stack([steps[:, :, : 4 * units], tf.reverse(steps[:, :, 4 * units :], [0])], axis=1)
        read = tf.transpose(ids != pad_id)
        read = tf.stack([read, tf.reverse(read, [0])], axis=1)[..., None]

        def step(t, h, c, top):
            i, f, g, o = tf.split(steps[t] + tf.einsum("dbu,dug->dbg", h, recurrent), 4, axis=2)  # Keras' order
            c_next = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h_next = tf.sigmoid(o) * tf.tanh(c_next)
            # A masked step keeps the state and outputs zeros, which the max over time sees too (as in Keras).
            return (t + 1, tf.where(read[t], h_next, h), tf.where(read[t], c_next, c),
                    tf.maximum(top, tf.where(read[t], h_next, 0.0)))

        zeros = tf.zeros([2, tf.shape(ids)[0], units])
        start = (tf.constant(0), zeros, zeros, tf.fill(tf.shape(zeros), -np.inf))
        top = tf.while_loop(lambda t, *_: t < tf.shape(ids)[1], step, start)[3]
        return head_logit(head_hidden(tf.concat([top[0], top[1]], axis=1)))

    return call


def computes(classifier: keras.Model) -> bool:
    """Whether the classifier is the chain the fast loop computes, with the settings it assumes."""
    chain = _chain(classifier)
    if [type(layer) for layer in chain] != CHAIN:
        return False
    embedding, bilstm, pool, *_ = chain
    lstms = (bilstm.forward_layer, bilstm.backward_layer)
    return (embedding.name == EMBEDDING_LAYER and embedding.mask_zero and bilstm.name == BILSTM_LAYER
            and bilstm.merge_mode == "concat" and not pool.keepdims and pool.data_format == "channels_last"
            and all(type(lstm) is layers.LSTM and lstm.get_config().items() >= LSTM_SETTINGS.items()
                    for lstm in lstms)
            and [lstm.go_backwards for lstm in lstms] == [False, True])


def _chain(classifier: keras.Model) -> list[layers.Layer]:
    """The classifier's layers that act at inference, in order."""
    return [layer for layer in classifier.layers if not isinstance(layer, INFERENCE_NOOPS)]
