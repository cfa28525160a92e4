"""The hyperparameter rules of training/config.py: each one refuses what it names, and the presets pass."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from training.config import PRESETS, ConfigError, validate

POSITIVE = ("vocab_size", "sequence_length", "embedding_dim", "lstm_units", "dense_units", "batch_size", "epochs")
REFUSED = [
    *[({name: 0}, f"--{name.replace('_', '-')} must be at least 1") for name in POSITIVE],
    ({"vocab_size": 2}, "--vocab-size must be at least 3"),
    ({"test_size": 0.0}, "--test-size must be between 0 and 1"),
    ({"test_size": 1.0}, "--test-size must be between 0 and 1"),
    ({"val_size": 0.0}, "--val-size must be between 0 and 1"),
    ({"val_size": 1.5}, "--val-size must be between 0 and 1"),
    ({"dropout": 1.0}, "--dropout must be in [0, 1)"),
    ({"dropout": -0.1}, "--dropout must be in [0, 1)"),
    ({"embedding_dropout": 1.0}, "--embedding-dropout must be in [0, 1)"),
    ({"learning_rate": 0.0}, "--learning-rate must be positive"),
    ({"patience": -1}, "--patience and --max-rows must not be negative"),
    ({"max_rows": -1}, "--patience and --max-rows must not be negative"),
    ({"bucket_by_length": True, "mask_padding": False}, "--bucket-by-length needs --mask-padding"),
    ({"sentence_weight": -0.1}, "--sentence-weight must not be negative"),
    ({"sentence_weight": 0.3, "ngram_branch": False}, "it needs --ngram-branch (0 without)"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED, ids=[str(overrides) for overrides, _ in REFUSED])
def test_each_rule_refuses_what_it_names(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(replace(PRESETS["default"], **overrides))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_and_the_edges_of_each_range_pass(preset: str) -> None:
    edges = dict(vocab_size=3, sequence_length=1, test_size=0.01, val_size=0.99, dropout=0.0, embedding_dropout=0.0,
                 learning_rate=1e-9, patience=0, max_rows=0)
    assert validate(PRESETS[preset]) == PRESETS[preset]
    validate(replace(PRESETS[preset], **edges))


def test_no_preset_shares_its_name_with_a_flag() -> None:
    """`--preset seed` beside `--seed` read as one thing; a preset's name says what it is instead."""
    import argparse

    from training.config import add_config_flags

    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    flags = {option.lstrip("-") for action in parser._actions for option in action.option_strings}
    assert not set(PRESETS) & flags
