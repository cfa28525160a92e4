"""Hyperparameters: two named presets, and every field a command-line flag that overrides its preset."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the weights, stored next to the model as `training_config.json`."""

    preset: str = "default"
    seed: int = 42
    test_size: float = 0.25  # as in the original tutorial
    val_size: float = 0.1  # carved from what the test part leaves
    max_rows: int = 0  # 0: every row; otherwise N rows, for quick runs
    vocab_size: int = 20_000
    sequence_length: int = 400
    embedding_dim: int = 64
    pretrain_embeddings: bool = True
    embedding_dropout: float = 0.2
    lstm_units: int = 32  # more units scored no better on the validation part, at several times the cost
    dense_units: int = 32
    dropout: float = 0.3
    mask_padding: bool = True
    pool_over_time: bool = True
    bucket_by_length: bool = True
    ngram_branch: bool = True
    ngram_vocab_size: int = 500_000
    ngram_max_n: int = 3
    ngram_c: float = 1.0
    # A review's label says little about each of its phrases: its sentences, weighted down, teach the n-gram
    # branch's second logit what a one-liner says.
    sentence_weight: float = 0.3
    distill: bool = False
    calibrate: bool = True
    batch_size: int = 64
    learning_rate: float = 1e-3
    epochs: int = 10
    patience: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "default": TrainConfig(),
    # The default without its n-gram branch; given --unlabeled, it also learns from those reviews, labelled by an
    # n-gram model that the saved model does not hold.
    "bilstm": TrainConfig(preset="bilstm", ngram_branch=False, sentence_weight=0.0, distill=True),
    # The original tutorial's network, exactly: post padding/truncation to 200 tokens, no masking.
    "tutorial": TrainConfig(
        preset="tutorial",
        vocab_size=10_000,
        sequence_length=200,
        embedding_dim=16,
        pretrain_embeddings=False,
        embedding_dropout=0.0,
        lstm_units=32,
        dense_units=10,
        dropout=0.0,
        mask_padding=False,
        pool_over_time=False,
        bucket_by_length=False,
        ngram_branch=False,
        sentence_weight=0.0,
        calibrate=False,
        batch_size=64,
        learning_rate=1e-3,
        epochs=10,
        patience=2,
    ),
}

HELP = {
    "seed": "random seed for the split, the weight initialisation and the shuffling",
    "test_size": "fraction of the reviews held out as the test part",
    "val_size": "fraction of the remaining reviews used for validation (early stopping)",
    "max_rows": "use only the first N rows of the data file (0: all); with a Hub dataset's own splits, N reviews "
    "of the train split drawn at random (the test split stays whole)",
    "vocab_size": "tokenizer vocabulary size, padding and out-of-vocabulary ids included",
    "sequence_length": "tokens per review the model reads; longer reviews are cut at the end",
    "embedding_dim": "size of the word embedding",
    "pretrain_embeddings": "start the embedding from word vectors computed without labels (PPMI + SVD) "
    "on the training part and --unlabeled",
    "embedding_dropout": "rate of whole embedding channels dropped during training (0: none)",
    "lstm_units": "units of each direction of the bidirectional LSTM",
    "dense_units": "units of the hidden dense layer",
    "dropout": "dropout rate before the dense head (0: none)",
    "mask_padding": "mask padding so the LSTM skips it",
    "pool_over_time": "max-pool the LSTM outputs over all steps instead of using the final states",
    "bucket_by_length": "batch reviews of similar length together (needs --mask-padding)",
    "ngram_branch": "add a linear branch over binarized n-grams (NBSVM weights) beside the BiLSTM",
    "ngram_vocab_size": "n-grams the n-gram branch knows: the most frequent of the training part",
    "ngram_max_n": "longest n-gram of the n-gram branch, in words",
    "ngram_c": "inverse regularisation strength of the n-gram branch's logistic regression",
    "sentence_weight": "weight of each training review's sentences, labelled as their review, in the n-gram branch's "
    "second logit (0: no second logit)",
    "distill": "the BiLSTM also learns from the --unlabeled reviews, each labelled with the probability that the "
    "n-gram model (NBSVM, fitted on the training part) gives it (knowledge distillation)",
    "calibrate": "fit the output layer (how much each branch counts, and a temperature for each length) on the "
    "validation part's reviews and their last sentences",
    "batch_size": "reviews per training step",
    "learning_rate": "Adam learning rate",
    "epochs": "maximum number of epochs",
    "patience": "epochs without a better validation loss before stopping",
}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per hyperparameter; unset flags keep the preset's value."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="starting hyperparameters")
    for field in fields(TrainConfig):
        if field.name == "preset":
            continue
        flag = "--" + field.name.replace("_", "-")
        default = getattr(PRESETS["default"], field.name)
        tutorial = getattr(PRESETS["tutorial"], field.name)
        help_text = f"{HELP[field.name]} (default: {default or 'none'}; tutorial preset: {tutorial or 'none'})"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=help_text, metavar="N")


class ConfigError(ValueError):
    """A hyperparameter is out of its range; the message names it."""


def validate(config: TrainConfig) -> TrainConfig:
    """Raise ConfigError for values that would fail late or silently train nonsense."""
    positive = ("vocab_size", "sequence_length", "embedding_dim", "lstm_units", "dense_units", "batch_size", "epochs",
                "ngram_vocab_size", "ngram_max_n")
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if config.vocab_size < 3:
        raise ConfigError("--vocab-size must be at least 3 (padding, out-of-vocabulary and one word)")
    for name in ("test_size", "val_size"):
        if not 0 < getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be between 0 and 1")
    for name in ("dropout", "embedding_dropout"):
        if not 0 <= getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1)")
    if config.learning_rate <= 0 or config.patience < 0 or config.max_rows < 0:
        raise ConfigError("--learning-rate must be positive; --patience and --max-rows must not be negative")
    if config.ngram_c <= 0:
        raise ConfigError("--ngram-c must be positive")
    if config.sentence_weight < 0 or (config.sentence_weight and not config.ngram_branch):
        raise ConfigError("--sentence-weight must not be negative, and it needs --ngram-branch (0 without)")
    if config.bucket_by_length and not config.mask_padding:
        raise ConfigError("--bucket-by-length needs --mask-padding: unmasked padding changes the predictions")
    return config


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The chosen preset with every flag given on the command line applied on top."""
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "preset"}
    return validate(replace(PRESETS[args.preset], **{k: v for k, v in overrides.items() if v is not None}))
