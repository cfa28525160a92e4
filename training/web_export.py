"""Add a browser-ready copy of the model to a model folder: `web/`, read by the static Space's plain-JavaScript
forward pass (space/static/sentiment.js), so the Hub model repo stays the one source of truth.

    python -m training.web_export --model-dir artifacts/full [--overwrite]

`web/model.json`: the tokenizer settings (from tokenizer.json), each layer's settings (from the Keras model) and
where each weight lies in `web/weights.bin.gz` (byte offset, shape, dtype; little-endian); `web/vocabulary.json.gz`:
the word and n-gram vocabularies as JSON. Both are gzipped (the page unpacks them with the browser's own
DecompressionStream). Everything is read from the folder: vocabulary sizes, window, units and weights are never
assumed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from training import model_folder
from training.quiet_tf import keras
from training.model import CLASSIFIER_LAYER, NGRAM_TOKENIZER_LAYER, NGRAM_WEIGHTS_LAYER, OUTPUT_LAYER, \
    STANDARDIZE, TOKENIZER_LAYER, tokenizer_json

WEB_DIR = "web"
MANIFEST = "model.json"
VOCABULARY = "vocabulary.json.gz"
WEIGHTS = "weights.bin.gz"
FORMAT = "imdb-sentiment-web/3"
# The largest tables go as 16-bit numbers, half the download: the n-gram weights (a logit sums many, and their
# rounding errors mostly cancel) and the word vectors (rounded once, on the way in). The page then stays within the
# 1e-3 of Keras' P(positive) that tests/test_static_space.py asks. The LSTM's own weights stay 32-bit: each step would
# compound their error.
NGRAM_DTYPE = EMBEDDING_DTYPE = "float16"
# The word tokenizer's settings that the page's tokenizer reproduces (tokenizer.json's keys).
TOKENIZER_KEYS = ("lowercase", "strip_regex", "split", "sequence_length", "padding",
                  "truncation", "pad_id", "oov_id")
# Layers that do nothing at inference (dropout) or only compute the padding mask.
PASS_THROUGH = ("InputLayer", "SpatialDropout1D", "Dropout", "NotEqual")


class ExportError(ValueError):
    """The folder cannot be exported; the message says why."""


class _Weights:
    """Little-endian tensors laid end to end, each at a multiple of 4 bytes (where a Float32Array may start), with
    its offset in bytes, shape and dtype for the manifest."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, array: np.ndarray, dtype: str = "float32") -> dict:
        data = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
        entry = {"offset": self.size, "shape": list(np.shape(array)), "dtype": dtype}
        padding = -len(data) % 4
        self.parts.append(data + bytes(padding))
        self.size += len(data) + padding
        return entry


def _dense(layer, weights: _Weights, rows: list[int] | None = None, dtype: str = "float32") -> dict:
    """A Dense layer's settings and weights; with `rows`, only those rows of its kernel, in that order."""
    kernel, bias = layer.get_weights()
    return {"type": "dense", "name": layer.name, "activation": layer.get_config()["activation"],
            "kernel": weights.add(kernel if rows is None else kernel[rows], dtype), "bias": weights.add(bias)}


def _lstm(layer, weights: _Weights) -> dict:
    """One direction of the Bidirectional layer: Keras' gate order i, f, c, o in kernel, recurrent kernel, bias."""
    kernel, recurrent, bias = layer.get_weights()
    return {"units": layer.units, "kernel": weights.add(kernel), "recurrent_kernel": weights.add(recurrent),
            "bias": weights.add(bias)}


def _classifier_layers(classifier, weights: _Weights) -> list[dict]:
    """The BiLSTM classifier's layers in order, as the page runs them."""
    out = []
    for layer in classifier.layers:
        kind = type(layer).__name__
        if kind in PASS_THROUGH:
            continue
        if kind == "Embedding":
            out.append({"type": "embedding", "name": layer.name, "mask_zero": bool(layer.get_config()["mask_zero"]),
                        "embeddings": weights.add(layer.get_weights()[0], EMBEDDING_DTYPE)})
        elif kind == "Bidirectional":
            out.append({"type": "bilstm", "name": layer.name,
                        "return_sequences": bool(layer.forward_layer.return_sequences),
                        "forward": _lstm(layer.forward_layer, weights),
                        "backward": _lstm(layer.backward_layer, weights)})
        elif kind == "GlobalMaxPooling1D":
            out.append({"type": "global_max_pool", "name": layer.name})
        elif kind == "Dense":
            out.append(_dense(layer, weights))
        else:
            raise ExportError(f"layer {layer.name} ({kind}) of {CLASSIFIER_LAYER} has no browser version")
    return out


def _tokenizer_settings(model) -> tuple[dict, list[str]]:
    """The BiLSTM tokenizer's settings and vocabulary, read from the layer as training writes tokenizer.json."""
    layer = model.get_layer(TOKENIZER_LAYER)
    if (standardize := layer.get_config()["standardize"]) != STANDARDIZE:
        raise ExportError(f"the model's tokenizer standardizes texts as {standardize!r}; the page implements "
                          f"{STANDARDIZE!r} only")
    tokenizer = tokenizer_json(layer)
    return {key: tokenizer[key] for key in TOKENIZER_KEYS}, tokenizer["vocabulary"]


def _ngram_branch(model, weights: _Weights) -> tuple[dict, list[str]] | None:
    """The n-gram branch (tokenizer settings, vocabulary, weights), or None for a model without one."""
    if NGRAM_TOKENIZER_LAYER not in {layer.name for layer in model.layers}:
        return None
    layer = model.get_layer(NGRAM_TOKENIZER_LAYER)
    config = layer.get_config()
    ngrams = config["ngrams"]
    widths = list(range(1, ngrams + 1)) if isinstance(ngrams, int) else list(ngrams)
    vocabulary = layer.get_vocabulary()  # index 0: any n-gram not in it (multi_hot's out-of-vocabulary slot)
    dense = model.get_layer(NGRAM_WEIGHTS_LAYER)
    # In alphabetical order (the out-of-vocabulary slot first), n-grams that share their start lie side by side,
    # which gzip packs far better than frequency order; the page looks them up by text, not by Keras' ids.
    order = [0, *sorted(range(1, len(vocabulary)), key=vocabulary.__getitem__)]
    return ({"widths": widths, "separator": " ", "oov_index": 0, "weights": _dense(dense, weights, order, NGRAM_DTYPE)},
            [vocabulary[i] for i in order])


def build(folder: Path) -> tuple[dict, dict, bytes]:
    """The manifest, the vocabularies and the weights of the folder's model, loaded with Keras' safe mode on."""
    model = keras.saving.load_model(folder, safe_mode=True)
    labels = json.loads((folder / model_folder.TRAINING_CONFIG).read_text(encoding="utf-8")).get("labels")
    tokenizer, words = _tokenizer_settings(model)
    weights = _Weights()
    classifier = _classifier_layers(model.get_layer(CLASSIFIER_LAYER), weights)
    ngram = _ngram_branch(model, weights)
    ngram, ngrams = ngram if ngram else (None, [])
    output = _dense(model.get_layer(OUTPUT_LAYER), weights)
    manifest = {"format": FORMAT, "labels": labels, "tokenizer": tokenizer, "classifier": classifier,
                "ngram": ngram, "output": output}
    return manifest, {"words": words, "ngrams": ngrams}, b"".join(weights.parts)


def export(folder: Path, overwrite: bool = False) -> Path:
    """Write `folder/web/` whole or not at all; an existing one is replaced only with `overwrite`."""
    model_folder.check_folder(folder)
    manifest, vocabulary, weights = build(folder)
    unpacked = {VOCABULARY: json.dumps(vocabulary, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
                WEIGHTS: weights}
    # mtime 0: the same folder gives the same bytes, so a push of an unchanged export uploads nothing.
    files = {name: gzip.compress(data, compresslevel=9, mtime=0) for name, data in unpacked.items()}
    # The page shows download progress against these sizes, checks what it got and unpacks no more than it should.
    manifest["files"] = {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                "unpacked_bytes": len(unpacked[name])} for name, data in files.items()}
    files[MANIFEST] = json.dumps(manifest, indent=1).encode("utf-8")
    out = folder / WEB_DIR
    with model_folder.staged_folder(out, overwrite) as stage:
        for name, data in files.items():
            (stage / name).write_bytes(data)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.web_export", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="model folder made by training.train")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing web/ folder")
    args = parser.parse_args(argv)
    try:
        out = export(args.model_dir, args.overwrite)
    except (model_folder.FolderError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(out.iterdir()))
    print(f"wrote {out}: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
